"""``lgwan-chat check-config``'s registry: which sections a suite YAML file may hold and whose
rules check each (the suite's Synapse modules, bots, organisation and federation allow-list).

An operations module: it imports every module's and bot's ``config``, which the generic
checking in ``lgwan_chat.core.configcheck`` must not (core imports nothing above it). A file
may hold any of these top-level sections (a full homeserver.yaml is fine: Synapse's own keys
are left to Synapse):

- ``modules``: Synapse's modules block; entries naming a module of this suite
  have their ``config`` checked by that module's rules.
- ``organisation``: the municipality, its departments and staff.
- ``bots``: configuration of the suite's bots.
- ``federation``: the federation allow-list (``config/federation.yaml``).
- ``records``: retention periods and export settings (next to ``organisation``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path as FsPath
from typing import Any

from lgwan_chat.core import configcheck, organisation
from lgwan_chat.core.configcheck import ConfigIssue, Section
from lgwan_chat.core.configcheck.schema import validate

__all__ = ["SECTIONS", "SUITE_BOTS", "SUITE_MODULES", "check_document", "check_file", "notes_file"]

#: The suite's Synapse modules: ``module:`` path -> module holding ``check(config)``.
SUITE_MODULES: dict[str, str] = {
    "synapse_modules.zones.ZonePolicyModule": "synapse_modules.zones.config",
    "synapse_modules.read_status.ReadStatusModule": "synapse_modules.read_status.config",
    "synapse_modules.stamps.StampsModule": "synapse_modules.stamps.config",
    "synapse_modules.bookmarks.BookmarksModule": "synapse_modules.bookmarks.config",
    "synapse_modules.provisioning.ProvisioningModule": "synapse_modules.provisioning.config",
    "synapse_modules.guests.GuestAccountsModule": "synapse_modules.guests.config",
    "synapse_modules.federation.FederationAllowListModule": "synapse_modules.federation.config",
}

#: The suite's bots: name under ``bots:`` -> module holding ``check(config)``.
SUITE_BOTS: dict[str, str] = {"memo": "bots.memo.config", "sanitizer": "bots.sanitizer.config",
                             "polls": "bots.polls.config"}


def _checker(module_name: str) -> Callable[[Any], list[ConfigIssue]]:
    return importlib.import_module(module_name).check


def _check_modules(block: Any, doc: dict) -> Iterable[ConfigIssue]:
    entry_schema = {"type": "array", "items": {
        "type": "object", "required": ["module"],
        "properties": {"module": {"type": "string", "minLength": 1}, "config": {}},
    }}
    issues = validate(block, entry_schema)
    if issues:
        yield from (i.with_location(None, ("modules",)) for i in issues)
        return
    for index, entry in enumerate(block):
        name = entry["module"]
        if name in SUITE_MODULES:
            for issue in _checker(SUITE_MODULES[name])(entry.get("config") or {}):
                yield issue.with_location(None, ("modules", index, "config"))
            cross = getattr(importlib.import_module(SUITE_MODULES[name]), "check_with_homeserver", None)
            if cross is not None and "listeners" in doc:
                for issue in cross(entry.get("config") or {}, doc):
                    yield issue.with_location(None, ("modules", index, "config"))
        elif name.split(".")[0] == "synapse_modules":
            yield ConfigIssue(("modules", index, "module"), "config.unknown_suite_module",
                              {"value": name, "allowed": ", ".join(SUITE_MODULES)})


def _check_organisation(section: Any, doc: dict) -> Iterable[ConfigIssue]:
    for issue in organisation.check(section):
        yield issue.with_location(None, ("organisation",))


def _check_bots(section: Any, doc: dict) -> Iterable[ConfigIssue]:
    issues = validate(section, {"type": "object"})
    if issues:
        yield from (i.with_location(None, ("bots",)) for i in issues)
        return
    for name, config in section.items():
        if name not in SUITE_BOTS:
            yield ConfigIssue(("bots", name), "config.unknown_bot",
                              {"value": name, "allowed": ", ".join(SUITE_BOTS) or "-"})
            continue
        for issue in _checker(SUITE_BOTS[name])(config or {}):
            yield issue.with_location(None, ("bots", name))


def _check_federation(section: Any, doc: dict) -> Iterable[ConfigIssue]:
    # imported when needed: the federation package loads Synapse, which check-config otherwise never does
    from synapse_modules.federation.allowlist import check_document as check_allowlist

    return check_allowlist(doc)


def _check_records(section: Any, doc: dict) -> Iterable[ConfigIssue]:
    from lgwan_chat.records.config import check_section

    for issue in check_section(section, doc):
        yield issue.with_location(None, ("records",))


SECTIONS: dict[str, Section] = {
    "modules": _check_modules,
    "organisation": _check_organisation,
    "bots": _check_bots,
    "federation": _check_federation,
    "records": _check_records,
}


def check_document(doc: Any) -> list[ConfigIssue]:
    """Every problem in one parsed YAML document (paths from its top level)."""
    return configcheck.check_document(doc, SECTIONS)


def check_file(path: str | FsPath) -> list[ConfigIssue]:
    """Every problem in a YAML file, each with the file name and line."""
    return configcheck.check_file(path, SECTIONS)


def notes_file(path: str | FsPath) -> list[ConfigIssue]:
    """What a valid file's suite modules tell the admin (their ``notes(config)``): not errors."""
    doc, lines, issues = configcheck.load_file(path)
    if issues or not isinstance(doc, dict) or not isinstance(doc.get("modules"), list):
        return []
    found = []
    for index, entry in enumerate(doc["modules"]):
        name = entry.get("module") if isinstance(entry, dict) else None
        notes = getattr(importlib.import_module(SUITE_MODULES[name]), "notes", None) if name in SUITE_MODULES else None
        if notes is not None:
            found += [n.with_location(None, ("modules", index, "config")) for n in notes(entry.get("config"))]
    return configcheck.locate(found, path, lines)
