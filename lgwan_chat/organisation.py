"""The organisation: municipality, departments (with nested sections) and staff.

Read from the ``organisation:`` section of ``config/organisation.yaml``. The
demo registers the staff listed here; provisioning of rooms and spaces builds
on the same classes.
"""

from __future__ import annotations

from typing import Any, Iterator

import attrs

from lgwan_chat.configcheck.issues import ConfigIssue, format_path
from lgwan_chat.configcheck.schema import IDENTIFIER, LOCALPART, bilingual_name, mapping, string, validate

_DEPARTMENT = mapping(
    {
        "id": IDENTIFIER,
        "name": bilingual_name(),
        "sections": {"type": "array", "items": {"$ref": "#/$defs/department"}},
    },
    required=("id", "name"),
)

SCHEMA = {
    "$defs": {"department": _DEPARTMENT},
    **mapping(
        {
            "municipality": mapping({"id": IDENTIFIER, "name": bilingual_name()}, required=("id", "name")),
            "departments": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/department"}},
            "staff": {
                "type": "array",
                "items": mapping(
                    {
                        "localpart": LOCALPART,
                        "display_name": string(),
                        "department": IDENTIFIER,
                        "title": string(),
                    },
                    required=("localpart", "display_name", "department"),
                ),
            },
        },
        required=("municipality", "departments"),
    ),
}


@attrs.frozen
class Name:
    ja: str
    en: str | None = None

    def get(self, lang: str) -> str:
        return self.en if lang == "en" and self.en else self.ja


@attrs.frozen
class Department:
    id: str
    name: Name
    sections: tuple["Department", ...] = ()
    parent: str | None = None


@attrs.frozen
class StaffMember:
    localpart: str
    display_name: str
    department: str
    title: str | None = None


@attrs.frozen
class Organisation:
    id: str
    name: Name
    departments: tuple[Department, ...]
    staff: tuple[StaffMember, ...]

    def all_departments(self) -> Iterator[Department]:
        def walk(items: tuple[Department, ...]) -> Iterator[Department]:
            for d in items:
                yield d
                yield from walk(d.sections)

        return walk(self.departments)

    def department(self, dept_id: str) -> Department:
        return next(d for d in self.all_departments() if d.id == dept_id)


def check(section: Any) -> list[ConfigIssue]:
    """Shape problems, then duplicate ids and unknown department references.

    Reference checks look at whatever entries are well-formed, so an admin sees
    every problem in one run.
    """
    issues = validate(section, SCHEMA)
    if not isinstance(section, dict):
        return issues
    first_seen: dict[str, tuple] = {}

    def duplicate(value: str, here: tuple, seen: dict[str, tuple]) -> None:
        if value in seen:
            issues.append(ConfigIssue(here, "config.duplicate_id",
                                      {"value": value, "first": format_path(seen[value])}))
        else:
            seen[value] = ("organisation",) + here

    def walk(items: Any, path: tuple) -> None:
        for index, dept in enumerate(items if isinstance(items, list) else []):
            if isinstance(dept, dict) and isinstance(dept.get("id"), str):
                duplicate(dept["id"], path + (index, "id"), first_seen)
                walk(dept.get("sections"), path + (index, "sections"))

    walk(section.get("departments"), ("departments",))
    seen_staff: dict[str, tuple] = {}
    staff = section.get("staff")
    for index, member in enumerate(staff if isinstance(staff, list) else []):
        if not isinstance(member, dict):
            continue
        if isinstance(member.get("department"), str) and member["department"] not in first_seen:
            issues.append(ConfigIssue(("staff", index, "department"), "config.unknown_department",
                                      {"value": member["department"]}))
        if isinstance(member.get("localpart"), str):
            duplicate(member["localpart"], ("staff", index, "localpart"), seen_staff)
    return issues


def parse(section: Any) -> Organisation:
    """A typed Organisation; raises ValueError listing every problem."""
    issues = check(section)
    if issues:
        raise ValueError("\n".join(i.format() for i in issues))

    def name(raw: dict) -> Name:
        return Name(ja=raw["ja"], en=raw.get("en"))

    def dept(raw: dict, parent: str | None) -> Department:
        return Department(id=raw["id"], name=name(raw["name"]), parent=parent,
                          sections=tuple(dept(s, raw["id"]) for s in raw.get("sections", [])))

    return Organisation(
        id=section["municipality"]["id"],
        name=name(section["municipality"]["name"]),
        departments=tuple(dept(d, None) for d in section["departments"]),
        staff=tuple(StaffMember(**m) for m in section.get("staff", [])),
    )
