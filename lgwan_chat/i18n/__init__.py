"""Message catalogues: every text a person reads from the suite, in Japanese and English.

One YAML catalogue per language (``ja.yaml``, ``en.yaml``) with the same keys
and the same ``{placeholders}``; a test keeps them in step. Japanese is the
default language everywhere.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"
_DIR = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    with open(_DIR / f"{lang}.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def t(key: str, lang: str = DEFAULT_LANGUAGE, /, **params: Any) -> str:
    """The message ``key`` in ``lang``, with ``params`` filled in."""
    return catalogue(lang)[key].format(**params)


def both(key: str, /, sep: str = " / ", **params: Any) -> str:
    """Japanese first, then English: for logs, errors and terminals read by anyone."""
    return sep.join(t(key, lang, **params) for lang in LANGUAGES)
