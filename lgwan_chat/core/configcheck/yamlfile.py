"""Read a YAML file keeping the line of every key, and catching duplicate keys.

PyYAML silently keeps the last of two equal keys; for an admin that is a lost
setting, so it is reported as an error here.
"""

from __future__ import annotations

from typing import Any

import yaml

from .issues import ConfigIssue, Path


def load(text: str) -> tuple[Any, dict[Path, int], list[ConfigIssue]]:
    """``(data, lines, issues)``: the document, ``{key path: 1-based line}``, problems."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        return None, {}, [ConfigIssue((), "config.yaml_syntax", {"line": line or "?", "problem": problem}, line=line)]
    lines: dict[Path, int] = {}
    issues: list[ConfigIssue] = []
    if node is not None:
        _walk(node, (), lines, issues)
    return data, lines, issues


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int], issues: list[ConfigIssue]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key == "<<":  # merge key: its entries belong to this mapping
                _walk(value_node, path, lines, issues)
                continue
            if key in seen:
                issues.append(ConfigIssue(path + (key,), "config.duplicate_key", {"key": key},
                                          line=key_node.start_mark.line + 1))
            seen.add(key)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), lines, issues)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), lines, issues)
