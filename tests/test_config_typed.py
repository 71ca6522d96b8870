"""Config classes (lgwan_chat/configcheck/typed.py): each key declared once, built after the schema
check, cross-key checks on the merged value; and every config class of the suite agrees with
itself (each default passes its own key's schema)."""

from __future__ import annotations

import importlib
from collections.abc import Collection

import attrs
import pytest

from lgwan_chat.checkconfig import SUITE_BOTS, SUITE_MODULES
from lgwan_chat.core.configcheck import typed
from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.configcheck.schema import string, validate
from lgwan_chat.core.configcheck.typed import ConfigInvalid, derived, key, section


@attrs.frozen
class Limits:
    low: int = key(1, {"type": "integer", "minimum": 0})
    high: int = key(10, {"type": "integer", "minimum": 0})

    def config_issues(self, written: Collection[str]) -> list[ConfigIssue]:
        if self.low > self.high:
            return [ConfigIssue(("low" if "low" in written else "high",), "config.sanitizer_default_above_max",
                                {"key": "low", "max_key": "high", "value": self.low, "max": self.high})]
        return []


@attrs.frozen
class Item:
    id: str = key(schema=string())
    size: int = key(1, {"type": "integer"})


@attrs.frozen
class Example:
    title: str = key(schema=string())
    tags: frozenset[str] = key(["a"], {"type": "array", "items": string()}, convert=frozenset)
    accept_from: str = key("local", {"enum": ["local", "any"]}, name="from")
    limits: Limits = section(Limits)
    items: tuple[Item, ...] = typed.sections(Item, maxItems=3)
    shout: str = derived(lambda c: c.title.upper())
    #: set by the program, not a YAML key
    started_by: str = "test"


def test_defaults_fill_what_is_left_out_and_are_converted_like_written_values():
    value = typed.build(Example, {"title": "x"})
    assert value == Example(title="x")
    assert value.tags == frozenset({"a"}) and value.accept_from == "local"
    assert value.limits == Limits(low=1, high=10) and value.items == ()
    assert value.shout == "X"


def test_written_values_are_typed_and_yaml_names_may_differ_from_python_names():
    value = typed.build(Example, {"title": "t", "tags": ["b", "b"], "from": "any",
                                  "items": [{"id": "one"}, {"id": "two", "size": 5}]})
    assert value.tags == frozenset({"b"}) and value.accept_from == "any"
    assert value.items == (Item(id="one", size=1), Item(id="two", size=5))
    assert "from" in typed.schema_of(Example)["properties"]
    assert "started_by" not in typed.schema_of(Example)["properties"]  # not a key: refused if written
    assert [i.key for i in typed.check(Example, {"title": "t", "started_by": "me"})] == ["config.unknown_key"]


def test_a_nested_section_written_in_part_keeps_the_defaults_of_the_rest():
    assert typed.build(Example, {"title": "t", "limits": {"high": 20}}).limits == Limits(low=1, high=20)


def test_missing_required_keys_are_each_reported_once_in_japanese_and_english():
    issues = typed.check(Item, {})
    assert [i.path for i in issues] == [("id",)]
    issues = typed.check(Example, {"items": [{}]})
    assert sorted(i.path for i in issues) == [("items", 0, "id"), ("title",)]
    title = next(i for i in issues if i.path == ("title",))
    assert title.message("ja") == "必須のキー「title」がありません"
    assert title.message("en") == "required key 'title' is missing"


def test_wrong_values_in_sections_are_reported_at_their_path_in_both_languages():
    issues = typed.check(Example, {"title": "t", "limits": {"hihg": 3, "low": -1}})
    assert {i.path for i in issues} == {("limits", "hihg"), ("limits", "low")}
    unknown = next(i for i in issues if i.path == ("limits", "hihg"))
    assert "high" in unknown.message("ja") and "did you mean 'high'" in unknown.message("en")
    with pytest.raises(ConfigInvalid) as error:
        typed.build(Example, {"title": 3})
    assert error.value.issues[0].path == ("title",)


def test_cross_key_checks_run_on_the_merged_value_and_point_at_the_key_written():
    # only high written: the default low (1) is above it
    issues = typed.check(Example, {"title": "t", "limits": {"high": 0}})
    assert [i.path for i in issues] == [("limits", "high")]
    assert "low（1）が high（0）" in issues[0].message("ja")
    assert "low (1) is larger than high (0)" in issues[0].message("en")
    issues = typed.check(Example, {"title": "t", "limits": {"low": 50}})
    assert [i.path for i in issues] == [("limits", "low")]
    assert typed.check(Example, {"title": "t", "limits": {"low": 5}}) == []


def test_a_derived_value_that_finds_a_problem_reports_it_like_the_schema():
    def refuse(c):
        raise ConfigInvalid([ConfigIssue(("path",), "config.required", {"key": "path"})])

    @attrs.frozen
    class Loader:
        path: str = key("x", string())
        loaded: str = derived(refuse)

    value, issues = typed.checked(Loader, {})
    assert value is None and [i.path for i in issues] == [("path",)]


def test_sanitizer_options_refuse_one_maximum_below_the_default_left_out():
    """max_mb: 50 alone must not leave 100 MB uploads allowed; max_hours: 24 alone, 72 h links."""
    from bots.sanitizer.config import options

    with pytest.raises(ConfigInvalid) as error:
        options({"upload": {"max_mb": 50}})
    assert [i.path for i in error.value.issues] == [("upload", "max_mb")]
    with pytest.raises(ConfigInvalid) as error:
        options({"upload": {"max_hours": 24}})
    assert [i.path for i in error.value.issues] == [("upload", "max_hours")]
    upload = options({"upload": {"max_mb": 50, "default_max_mb": 50, "max_hours": 24, "default_hours": 24}}).upload
    assert (upload.default_max_mb, upload.max_mb, upload.default_hours, upload.max_hours) == (50, 50, 24, 24)


# --- every config class of the suite ---

def _config_classes() -> list[type]:
    from bots.runtime.config import RuntimeKeys

    modules = [*SUITE_MODULES.values(), *SUITE_BOTS.values(), "bots.sanitizer.engine.policy",
               "lgwan_chat.deploy.answers"]
    found: list[type] = [RuntimeKeys]
    for name in modules:
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, type) and attrs.has(value) and any(typed.key_fields(value)):
                found.append(value)
    # and the sections they hold
    for cls in found:
        for _, field in typed.key_fields(cls):
            inner = typed.section_class(field)
            if inner is not None and inner not in found:
                found.append(inner)
    return found


CONFIG_CLASSES = _config_classes()


def test_every_suite_config_is_a_typed_class():
    names = {cls.__name__ for cls in CONFIG_CLASSES}
    assert {"ZonesConfig", "ReadStatusConfig", "StampsConfig", "BookmarksConfig", "ProvisioningConfig",
            "GuestsConfig", "FederationConfig", "RuntimeKeys", "InvitePolicy", "MemoOptions", "PollsOptions",
            "TaskOptions", "SafetyOptions", "SanitizerOptions", "UploadOptions", "Policies",
            "ArchiveLimits", "StampEntry", "Answers", "Entrance", "Postgres", "Redis", "Turn", "Install"} <= names


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_each_default_passes_its_own_schema(cls):
    for name, field in typed.key_fields(cls):
        default = typed.default_of(field)
        if default is typed.NO_DEFAULT or default is None:  # required, or "not set"
            continue
        issues = validate(default, typed.key_schema(field))
        assert issues == [], f"{cls.__name__}.{name}: default {default!r}: {[i.format() for i in issues]}"


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_an_empty_block_builds_the_class_defaults(cls):
    schema = typed.schema_of(cls)
    if schema["required"]:
        assert validate({}, schema) != []  # a required key is refused when missing
        return
    assert typed.build(cls, {}) == cls()
