"""Rendering the templates in config/ (``${name}`` placeholders)."""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import Any

from lgwan_chat.core import SOURCE_ROOT
from lgwan_chat.core.logged_queries import nginx_alternatives

#: Placeholders every template may use, declared once in code.
TEMPLATE_CONSTANTS = {"logged_query_parameters": nginx_alternatives()}


def config_dir() -> Path:
    if SOURCE_ROOT is None:
        raise RuntimeError("lgwan-chat must run from its source checkout (pip install -e .): config/ not found")
    return SOURCE_ROOT / "config"


def fill(name: str, values: dict[str, Any]) -> str:
    """config/NAME with its ``${name}`` placeholders filled in.

    Other ``$`` signs (nginx variables such as ``$host``) are left alone; a
    ``${...}`` placeholder left unfilled is an error, never a broken file.
    """
    values = {**TEMPLATE_CONSTANTS, **values}
    text = string.Template((config_dir() / name).read_text(encoding="utf-8")).safe_substitute(values)
    missing = re.findall(r"\$\{(\w+)\}", text)
    if missing:
        raise KeyError(f"{name}: no value for {sorted(set(missing))}")
    return text


def render(name: str, target: Path, values: dict[str, Any]) -> None:
    """Write config/NAME with its placeholders filled in (``fill``), for its owner only."""
    write_private(target, fill(name, values))


def write_private(target: Path, text: str) -> None:
    """Write a file only its owner can read (0600): rendered configs hold secrets and passwords."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
