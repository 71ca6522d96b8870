"""A configuration problem: where it is, and what is wrong in Japanese and English."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from lgwan_chat.core.i18n import LANGUAGES, t

Path = tuple[Any, ...]
#: the line of each key path in a YAML file (yamlfile.load)
Lines = dict[Path, int]


def format_path(path: Sequence[Any]) -> str:
    """``("modules", 0, "config", "x")`` -> ``modules[0].config.x``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


@attrs.frozen
class ConfigIssue:
    #: Key path inside the YAML document, e.g. ("organisation", "staff", 2, "department").
    path: Path
    #: Message key in the i18n catalogues (``config.*``).
    key: str
    params: dict[str, Any] = attrs.field(factory=dict)
    file: str | None = None
    line: int | None = None

    def message(self, lang: str) -> str:
        return t(self.key, lang, **self.params)

    def with_location(self, file: str | None, prefix: Path = (), lines: Lines | None = None) -> ConfigIssue:
        path = tuple(prefix) + tuple(self.path)
        line = self.line
        if lines is not None:
            line = _nearest_line(lines, path)
        return attrs.evolve(self, path=path, file=file, line=line)

    def format(self) -> str:
        """One line for a terminal: ``file:line: key.path: 日本語 / English``."""
        where = self.file or ""
        if self.file and self.line:
            where += f":{self.line}"
        head = f"{where}: " if where else ""
        return f"{head}{format_path(self.path)}: " + " / ".join(self.message(lang) for lang in LANGUAGES)


def _nearest_line(lines: Lines, path: Path) -> int | None:
    """The line of ``path`` or of its nearest ancestor that the YAML file has."""
    path = tuple(path)
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        path = path[:-1]


def raise_config_error(issues: Iterable[ConfigIssue]) -> None:
    """For a module's ``parse_config``: raise Synapse's ConfigError naming the first bad key.

    Every problem is listed in the message so the admin fixes them in one go.
    """
    issues = list(issues)
    if not issues:
        return
    from synapse.config import ConfigError  # imported late: check-config runs without Synapse loaded

    text = "; ".join(f"{format_path(i.path)}: " + " / ".join(i.message(lang) for lang in LANGUAGES) for i in issues)
    raise ConfigError(text, path=[str(p) for p in issues[0].path])
