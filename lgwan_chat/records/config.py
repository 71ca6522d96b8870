"""The ``records:`` section of the organisation YAML: retention periods and export settings.

Periods are written like Synapse's durations (``5y``, ``30d``, ``12h``; ``m`` is minutes),
or ``forever``. A year is 365 days, as Synapse counts it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs

from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.configcheck.schema import IDENTIFIER
from lgwan_chat.core.configcheck.typed import build, check, key, schema_of, section

FOREVER = "forever"
_UNITS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000, "y": 365 * 86_400_000}
PERIOD = {"type": "string", "pattern": r"^([1-9][0-9]{0,5}[smhdwy]|forever)$", "x-hint": "hint.retention_period"}
#: a held room's (and a "forever" room's) max_lifetime: a thousand years, above every purge job's range
HOLD_LIFETIME_MS = 1000 * _UNITS["y"]
#: the purge job only looks at rooms whose max_lifetime is at most this (held rooms never are)
PURGE_CEILING = "200y"


def period_ms(period: str) -> int | None:
    """Milliseconds of a period; None for ``forever``."""
    if period == FOREVER:
        return None
    match = re.fullmatch(r"([0-9]+)([smhdwy])", period)
    if match is None:
        raise ValueError(period)
    return int(match.group(1)) * _UNITS[match.group(2)]


@attrs.frozen
class Retention:
    #: department and section rooms, and their ``rooms:``
    departments: str = key("5y", PERIOD)
    #: the cross-department ``projects:`` rooms
    projects: str = key("5y", PERIOD)
    #: the all-staff ``announcement:`` room
    announcement: str = key("5y", PERIOD)
    #: every room the provisioning does not manage: direct messages, rooms made by staff
    #: (Synapse's default policy)
    other: str = key("1y", PERIOD)
    #: by room id of the organisation (e.g. the safety-check room: 10y): overrides its kind
    rooms: dict[str, str] = key({}, {"type": "object", "propertyNames": IDENTIFIER,
                                     "additionalProperties": PERIOD})
    #: how often Synapse's purge job runs
    purge_interval: str = key("1d", {"type": "string", "pattern": r"^[1-9][0-9]{0,5}[smhd]$",
                                     "x-hint": "hint.purge_interval"})

    def lifetime_ms(self, kind: str, room_id: str | None = None) -> int | None:
        """max_lifetime of a room of this kind (None: kept forever)."""
        return period_ms(self.rooms.get(room_id or "", getattr(self, kind)))


@attrs.frozen
class Records:
    retention: Retention = section(Retention)
    #: key for the HMAC of export manifests (a file of the deployment's secrets, 0600)
    export_key_file: str | None = key(None, {"type": "string", "pattern": "^/", "x-hint": "hint.absolute_path"})
    #: where holds and exports are logged (JSON lines, 0600)
    audit_log: str | None = key(None, {"type": "string", "pattern": "^/", "x-hint": "hint.absolute_path"})
    #: what ``records purge-media`` saw at its last run (0600)
    media_state: str | None = key(None, {"type": "string", "pattern": "^/", "x-hint": "hint.absolute_path"})

    def key_path(self) -> Path | None:
        return Path(self.export_key_file) if self.export_key_file else None


SCHEMA = schema_of(Records)


def check_section(section_value: Any, doc: dict[str, Any]) -> list[ConfigIssue]:
    """Shape, then room ids of ``retention.rooms`` against the organisation in the same file."""
    issues = check(Records, section_value)
    if issues or not isinstance(section_value, dict):
        return issues
    org = doc.get("organisation")
    rooms = (section_value.get("retention") or {}).get("rooms") or {}
    if isinstance(org, dict) and rooms:
        known = organisation_room_ids(org)
        for room_id in rooms:
            if room_id not in known:
                issues.append(ConfigIssue(("retention", "rooms", room_id), "records.unknown_room",
                                          {"value": room_id, "allowed": ", ".join(sorted(known)) or "-"}))
    return issues


def organisation_room_ids(org: dict[str, Any]) -> set[str]:
    """Ids of every room an organisation section describes (departments, their rooms, projects,
    the announcement room); read leniently (the organisation's own check reports its problems)."""
    ids: set[str] = set()

    def walk(items: Any) -> None:
        for d in items if isinstance(items, list) else []:
            if isinstance(d, dict):
                if isinstance(d.get("id"), str):
                    ids.add(d["id"])
                for r in d.get("rooms") or []:
                    if isinstance(r, dict) and isinstance(r.get("id"), str):
                        ids.add(r["id"])
                walk(d.get("sections"))

    walk(org.get("departments"))
    for p in org.get("projects") or []:
        if isinstance(p, dict) and isinstance(p.get("id"), str):
            ids.add(p["id"])
    announcement = org.get("announcement")
    if isinstance(announcement, dict):
        ids.add(announcement.get("id") or "all-staff")
    return ids


def parse(section_value: Any) -> Records:
    return build(Records, section_value)


def load(path: str | Path) -> Records | None:
    """The ``records:`` section of a YAML file (None when it has none); ConfigInvalid if broken."""
    import yaml

    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    if not isinstance(raw, dict) or "records" not in raw:
        return None
    return parse(raw["records"])
