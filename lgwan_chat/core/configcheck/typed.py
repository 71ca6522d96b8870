"""Config classes where each key is declared once: its type, default, schema and comment.

A config class is an ``attrs`` class whose fields are made with these helpers:

- ``key(default, schema)``: a key of the YAML block. The default is written as it would be in
  YAML (a list, not a frozenset); ``convert`` makes the typed value (it also runs on the
  default, and must accept its own output: ``attrs.evolve`` runs it again). No default: the key
  is required. ``name`` when the YAML key is not a Python name (``from``).
- ``section(cls)``: a nested mapping, itself a config class; missing keys take its defaults.
- ``sections(cls)``: a list of such mappings.
- ``derived(fn)``: a value computed from the keys above it (not in the YAML). ``fn`` may raise
  ``ConfigInvalid`` (e.g. a file the keys name is broken): its issues are reported like the
  schema's.
- a method ``config_issues(self, written) -> list[ConfigIssue]``: checks across keys, run on the
  merged value (defaults included) once the schema holds: a key left out is checked with its
  default. ``written``: the keys the block has, to report a problem at one the admin wrote.

Plain ``attrs`` fields (no helper) are not YAML keys: the program sets them.

``schema_of(cls)`` is the JSON schema that ``schema.validate`` checks (with its ja/en messages);
``checked(cls, raw)`` validates then builds the typed value; ``build`` raises instead.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import attrs

from .issues import ConfigIssue, raise_config_error
from .schema import mapping, validate

T = TypeVar("T")

_KEY = "lgwan_chat.key"        # metadata: {"name": YAML key, "schema": fragment, "default": YAML default}
_SECTION = "lgwan_chat.section"  # metadata: the config class of a nested mapping
_LIST = "lgwan_chat.sections"    # metadata: the config class of each mapping of a list
NO_DEFAULT = attrs.NOTHING


class ConfigInvalid(Exception):
    """A config block that breaks its rules; ``issues`` say where and what (ja/en)."""

    def __init__(self, issues: list[ConfigIssue]):
        super().__init__("; ".join(f"{i.path}: {i.key}" for i in issues))
        self.issues = issues


def key(default: Any = NO_DEFAULT, schema: dict[str, Any] | None = None, *, convert: Callable[[Any], Any] | None = None,
        factory: Callable[[], Any] | None = None, name: str | None = None) -> Any:
    """A YAML key: its default (as written in YAML), JSON schema fragment and typed conversion."""
    if schema is None:
        raise TypeError("key() needs a schema")
    meta = {_KEY: {"name": name, "schema": schema, "default": default, "factory": factory}}
    if factory is not None:
        return attrs.field(factory=factory, converter=convert, metadata=meta)
    if default is NO_DEFAULT:
        return attrs.field(converter=convert, metadata=meta, kw_only=True)
    if isinstance(default, (list, dict, set)):  # a fresh copy per instance
        return attrs.field(factory=lambda: copy.deepcopy(default), converter=convert, metadata=meta)
    return attrs.field(default=default, converter=convert, metadata=meta)


def section(cls: type, *, name: str | None = None) -> Any:
    """A nested mapping of keys, typed by the config class ``cls`` (every key with a default)."""
    meta = {_KEY: {"name": name, "schema": None, "default": {}, "factory": None}, _SECTION: cls}
    return attrs.field(factory=cls, converter=lambda v: v if isinstance(v, cls) else structure(cls, v),
                       metadata=meta)


def sections(cls: type, *, name: str | None = None, **array: Any) -> Any:
    """A list of mappings, each typed by the config class ``cls``; ``array``: e.g. ``maxItems``."""
    meta = {_KEY: {"name": name, "schema": None, "default": [], "factory": None, "array": array}, _LIST: cls}
    return attrs.field(factory=tuple, metadata=meta,
                       converter=lambda v: tuple(i if isinstance(i, cls) else structure(cls, i) for i in v))


def derived(fn: Callable[[Any], Any]) -> Any:
    """A value computed from the keys declared above it."""
    return attrs.field(init=False, default=attrs.Factory(fn, takes_self=True))


def _keys(cls: type) -> Iterator[tuple[str, attrs.Attribute[Any], dict[str, Any]]]:
    for field in attrs.fields(cls):
        meta = field.metadata.get(_KEY)
        if meta is not None and field.init:
            yield meta["name"] or field.name, field, meta


def key_schema(field: attrs.Attribute[Any]) -> dict[str, Any]:
    """The JSON schema fragment of one field made by ``key``/``section``/``sections``."""
    if _SECTION in field.metadata:
        return schema_of(field.metadata[_SECTION])
    if _LIST in field.metadata:
        return {"type": "array", "items": schema_of(field.metadata[_LIST]), **field.metadata[_KEY]["array"]}
    schema: dict[str, Any] = field.metadata[_KEY]["schema"]
    return schema


def schema_of(cls: type, **extra: Any) -> dict[str, Any]:
    """The JSON schema of a config class: its keys, which are required, nothing else."""
    properties = {name: key_schema(field) for name, field, _ in _keys(cls)}
    required = tuple(name for name, field, _ in _keys(cls) if field.default is attrs.NOTHING)
    return mapping(properties, required=required, **extra)


def default_of(field: attrs.Attribute[Any]) -> Any:
    """A key's default as written in YAML (``NO_DEFAULT`` for a required key)."""
    meta = field.metadata[_KEY]
    return meta["factory"]() if meta["factory"] is not None else copy.deepcopy(meta["default"])


def structure(cls: type[T], raw: Any) -> T:
    """The typed value of an already validated mapping (missing keys take their defaults)."""
    raw = raw or {}
    args = {str(field.alias): raw[name] for name, field, _ in _keys(cls) if name in raw}
    return cls(**args)


def config_issues(value: Any, raw: Any) -> list[ConfigIssue]:
    """The cross-key checks of a typed value and of its sections (paths from the value's block).

    ``raw`` is the block as written: the hook gets the keys written, to point at one of them.
    """
    raw = raw if isinstance(raw, dict) else {}
    hook = getattr(value, "config_issues", None)
    issues = list(hook(frozenset(raw))) if hook is not None else []
    for name, field, _ in _keys(type(value)):
        inner = getattr(value, field.name)
        if _SECTION in field.metadata:
            issues += [i.with_location(None, (name,)) for i in config_issues(inner, raw.get(name))]
        elif _LIST in field.metadata:
            written = raw.get(name) or []
            for index, item in enumerate(inner):
                issues += [i.with_location(None, (name, index)) for i in config_issues(item, written[index])]
    return issues


def checked(cls: type[T], raw: Any) -> tuple[T | None, list[ConfigIssue]]:
    """``(typed value, [])``, or ``(None, every problem)``: schema first, then cross-key checks."""
    issues = validate(raw if raw is not None else {}, schema_of(cls))
    if issues:
        return None, issues
    try:
        value = structure(cls, raw)
    except ConfigInvalid as e:  # a derived value found a problem (a named file, a key)
        return None, e.issues
    issues = config_issues(value, raw)
    return (None, issues) if issues else (value, [])


def check(cls: type, raw: Any) -> list[ConfigIssue]:
    """What ``lgwan-chat check-config`` reports for a block of this class."""
    return checked(cls, raw)[1]


def build(cls: type[T], raw: Any) -> T:
    """The typed value of a block, or ``ConfigInvalid`` with every problem."""
    value, issues = checked(cls, raw)
    if issues:
        raise ConfigInvalid(issues)
    assert value is not None
    return value


def module_functions(cls: type[T]) -> tuple[Callable[[Any], list[ConfigIssue]], Callable[[Any], T]]:
    """``check, parse`` of a Synapse module's config class: ``check`` is what ``check-config`` runs,
    ``parse`` what the module's ``parse_config`` returns (Synapse's ConfigError naming every problem)."""

    def check_block(raw: Any) -> list[ConfigIssue]:
        return check(cls, raw)

    def parse_block(raw: Any) -> T:
        value, issues = checked(cls, raw)
        raise_config_error(issues)
        assert value is not None
        return value

    return check_block, parse_block


def section_class(field: attrs.Attribute[Any]) -> type | None:
    """The config class of a ``section``/``sections`` field (None for a plain key)."""
    return field.metadata.get(_SECTION) or field.metadata.get(_LIST)


def key_fields(cls: type) -> Iterator[tuple[str, attrs.Attribute[Any]]]:
    """``(YAML key, field)`` of every key of a config class (for tests and docs)."""
    for name, field, _ in _keys(cls):
        yield name, field
