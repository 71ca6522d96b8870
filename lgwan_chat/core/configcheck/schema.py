"""JSON-schema validation whose errors read well in Japanese and English.

Schemas are plain JSON Schema (draft 2020-12) dicts. Two extensions, both
ignored by jsonschema itself:

- ``"x-hint": "hint.localpart"`` on a ``pattern`` schema: the catalogue key
  that explains the expected form to the admin instead of showing a regex.
- ``"x-error": "config.cidr"`` on a schema whose ``format``/``pattern`` check
  fails: the catalogue key to report (with ``{value}``).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from lgwan_chat.core.i18n import Msg

from .issues import ConfigIssue

_JSON_TYPE_OF = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}

_format_checker = jsonschema.FormatChecker()


@_format_checker.checks("cidr", raises=ValueError)
def _is_cidr(value: object) -> bool:
    if isinstance(value, str):
        ipaddress.ip_network(value, strict=False)
    return True


def validate(instance: Any, schema: dict[str, Any]) -> list[ConfigIssue]:
    """Every problem of ``instance`` against ``schema``, in document order."""
    validator = Draft202012Validator(schema, format_checker=_format_checker)
    issues: list[ConfigIssue] = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]):
        issues.extend(_translate(error))
    return issues


def _type_name(value: Any) -> Msg:
    return Msg("type." + _JSON_TYPE_OF.get(type(value), "string"))


def _translate(error: jsonschema.ValidationError) -> Iterator[ConfigIssue]:
    path = tuple(error.absolute_path)
    kind = error.validator
    value = error.instance
    # Unset only on errors built by hand; validation always sets both.
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    limit: Any = error.validator_value  # the keyword's value in the schema: any JSON

    if kind == "required":
        # jsonschema raises one error per missing key, each holding the whole list: report its own key
        for key in limit:
            if isinstance(value, dict) and key not in value and error.message.startswith(repr(key)):
                yield ConfigIssue(path + (key,), "config.required", {"key": key})
    elif kind == "additionalProperties" and isinstance(value, dict):
        allowed = list(schema.get("properties", {}))
        patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
        for key in value:
            if key in allowed or any(p.search(str(key)) for p in patterns):
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1)
            suggestion = Msg("config.did_you_mean", candidate=close[0]) if close else ""
            yield ConfigIssue(
                path + (key,),
                "config.unknown_key",
                {"key": key, "suggestion": suggestion, "allowed": ", ".join(allowed) or "-"},
            )
    elif kind == "type":
        expected = [limit] if isinstance(limit, str) else list(limit)
        yield ConfigIssue(
            path,
            "config.type",
            {"expected": [Msg("type." + e) for e in expected], "actual": _type_name(value)},
        )
    elif kind in ("enum", "const"):
        allowed = limit if kind == "enum" else [limit]
        yield ConfigIssue(path, "config.enum", {"value": value, "allowed": ", ".join(map(str, allowed))})
    elif kind == "pattern" or kind == "format":
        if "x-error" in schema:
            yield ConfigIssue(path, schema["x-error"], {"value": value})
        else:
            hint = Msg(schema["x-hint"]) if "x-hint" in schema else str(limit)
            yield ConfigIssue(path, "config.pattern", {"value": value, "hint": hint})
    elif kind == "minLength":
        yield ConfigIssue(path, "config.min_length")
    elif kind == "maxLength":
        yield ConfigIssue(path, "config.max_length", {"limit": limit})
    elif kind in ("minimum", "exclusiveMinimum"):
        yield ConfigIssue(path, "config.minimum", {"limit": limit, "value": value})
    elif kind in ("maximum", "exclusiveMaximum"):
        yield ConfigIssue(path, "config.maximum", {"limit": limit, "value": value})
    elif kind == "minItems":
        yield ConfigIssue(path, "config.min_items", {"limit": limit})
    elif kind == "maxItems":
        yield ConfigIssue(path, "config.max_items", {"limit": limit})
    elif kind == "uniqueItems":
        yield ConfigIssue(path, "config.unique_items")
    elif kind in ("anyOf", "oneOf") and error.context:
        # Report the alternative that got furthest: usually what the admin meant.
        best = jsonschema.exceptions.best_match(error.context)
        yield from _translate(best)
    else:
        yield ConfigIssue(path, "config.invalid", {"detail": error.message})


# Small schema builders so that schemas stay readable.

def mapping(properties: dict[str, dict[str, Any]], required: Sequence[str] = (), **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required),
            "additionalProperties": False, **extra}


def string(**extra: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, **extra}


def bilingual_name() -> dict[str, Any]:
    """``{ja: 総務課, en: General Affairs}``: what people see, in both languages."""
    return mapping({"ja": string(), "en": string()}, required=("ja",))


IDENTIFIER = string(pattern=r"^[a-z0-9][a-z0-9_-]*$", **{"x-hint": "hint.identifier"})
LOCALPART = string(pattern=r"^[a-z0-9._=/-]+$", **{"x-hint": "hint.localpart"})
LISTENER_TAG = string(pattern=r"^[A-Za-z0-9_-]+$", **{"x-hint": "hint.listener_tag"})
CIDR = string(format="cidr", **{"x-error": "config.cidr"})
USER_ID = string(pattern=r"^@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(:[0-9]+)?$", **{"x-hint": "hint.user_id"})
SERVER_NAME = string(pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?$", **{"x-hint": "hint.server_name"})
