"""Message catalogues: every text a person reads from the suite, in Japanese and English.

One YAML catalogue per language (``ja.yaml``, ``en.yaml``) with the same keys
and the same ``{placeholders}``; a test keeps them in step. Japanese is the
default language everywhere. A large feature may keep its messages in files of
its own (``ja.sanitizer.yaml``, ``en.sanitizer.yaml``): merged into the
catalogue, a key defined twice is an error.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"
_DIR = Path(__file__).resolve().parent


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    merged: dict[str, str] = {}
    for path in [_DIR / f"{lang}.yaml", *sorted(_DIR.glob(f"{lang}.*.yaml"))]:
        with open(path, encoding="utf-8") as f:
            part = yaml.safe_load(f) or {}
        twice = set(part) & set(merged)
        if twice:
            raise ValueError(f"{path.name}: message keys defined twice: {sorted(twice)}")
        merged.update(part)
    return merged


class Msg:
    """A message to be translated later, usable as a parameter of another message."""

    __slots__ = ("key", "params")

    def __init__(self, key: str, /, **params: Any):
        self.key = key
        self.params = params

    def __repr__(self) -> str:
        return f"Msg({self.key!r}, {self.params!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Msg) and (self.key, self.params) == (other.key, other.params)


def _param(value: Any, lang: str) -> Any:
    if isinstance(value, Msg):
        return t(value.key, lang, **value.params)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Msg) for v in value):
        return catalogue(lang)["list.or"].join(_param(v, lang) for v in value)
    return value


def t(key: str, lang: str = DEFAULT_LANGUAGE, /, **params: Any) -> str:
    """The message ``key`` in ``lang``, with ``params`` filled in (``Msg`` params translated too)."""
    return catalogue(lang)[key].format(**{name: _param(v, lang) for name, v in params.items()})


def both(key: str, /, sep: str = " / ", **params: Any) -> str:
    """Japanese first, then English: for logs, errors and terminals read by anyone."""
    return sep.join(t(key, lang, **params) for lang in LANGUAGES)
