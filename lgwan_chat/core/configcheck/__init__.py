"""Validation of the suite's YAML, shared by ``lgwan-chat check-config``, the
modules' ``parse_config`` and the bots: one set of rules, one set of messages.

This is the generic part (issues with file and line, JSON-Schema rules with ja/en
messages, reading a YAML file). Which sections a file may hold and whose rules
check them (the suite's modules, bots, organisation, federation allow-list) is
the operations layer's registry, ``lgwan_chat.checkconfig``: core imports no
module or bot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path as FsPath
from typing import Any

from .issues import ConfigIssue, Lines, format_path, raise_config_error
from .yamlfile import load

__all__ = ["ConfigIssue", "Section", "check_document", "check_file", "format_path", "load_file",
           "raise_config_error"]

#: The rules of one top-level section: ``(section value, whole document) -> issues``.
Section = Callable[[Any, dict[str, Any]], Iterable[ConfigIssue]]


def check_document(doc: Any, sections: Mapping[str, Section]) -> list[ConfigIssue]:
    """Every problem in one parsed YAML document (paths from its top level)."""
    if not isinstance(doc, dict):
        return [ConfigIssue((), "config.not_mapping")]
    found = [name for name in sections if name in doc]
    if not found:
        return [ConfigIssue((), "config.no_sections")]
    issues: list[ConfigIssue] = []
    for name in found:
        issues.extend(sections[name](doc[name], doc))
    return issues


def load_file(path: str | FsPath) -> tuple[Any, Lines, list[ConfigIssue]]:
    """``(document, {key path: line}, problems)`` of a YAML file; problems carry the file name."""
    name = str(path)
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, {}, [ConfigIssue((), "config.file_unreadable", {"problem": e}, file=name)]
    doc, lines, issues = load(text)
    return doc, lines, [i.with_location(name) for i in issues]


def locate(issues: Iterable[ConfigIssue], file: str | FsPath, lines: Lines) -> list[ConfigIssue]:
    """Issues with the file name and the line of their key (or of its nearest ancestor), in line order."""
    located = [i.with_location(str(file), lines=lines) if i.line is None else i.with_location(str(file))
               for i in issues]
    return sorted(located, key=lambda i: i.line or 0)


def check_file(path: str | FsPath, sections: Mapping[str, Section]) -> list[ConfigIssue]:
    """Every problem in a YAML file, each with the file name and line."""
    doc, lines, issues = load_file(path)
    if issues and doc is None:
        return issues
    return locate(issues + check_document(doc, sections), path, lines)
