"""The runtime's small typed helpers: attributes set in start/attach, event fields of a given type."""

from __future__ import annotations

import pytest

from bots.runtime.fields import typed_get
from bots.runtime.late import Late


class _Store:
    pass


class _App:
    store = Late[_Store]()


def test_a_late_attribute_read_before_it_is_set_names_itself() -> None:
    app = _App()
    assert not _App.store.is_set(app)
    with pytest.raises(RuntimeError, match=r"_App\.store is read before it is set"):
        _ = app.store


def test_a_late_attribute_once_set_is_per_instance() -> None:
    first, second = _App(), _App()
    store = _Store()
    first.store = store
    assert first.store is store and _App.store.is_set(first)
    assert not _App.store.is_set(second)


@pytest.mark.parametrize("content, expected", [
    ({"body": "議事録"}, "議事録"),
    ({}, "-"),
    ({"body": None}, "-"),
    ({"body": 3}, "-"),
    ({"body": ["議事録"]}, "-"),
])
def test_typed_get_gives_the_field_only_when_it_has_the_type(content: dict, expected: str) -> None:
    assert typed_get(content, "body", str, "-") == expected
