"""The organisation: municipality, departments (with nested sections) and staff.

Read from the ``organisation:`` section of ``config/organisation.yaml``. The
demo registers the staff listed here; ``lgwan-chat provision`` builds rooms and
spaces from the same classes (``lgwan_chat.provisioning``): each department and
section gets a room (plus its ``rooms:``), ``projects:`` are cross-department
rooms, ``announcement:`` is the all-staff room where only the ``posters:`` roles
may post, and ``roles:`` gives the power level of each staff ``title``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import attrs
import yaml

from lgwan_chat.core.configcheck.issues import ConfigIssue, format_path
from lgwan_chat.core.configcheck.issues import Path as KeyPath
from lgwan_chat.core.configcheck.schema import IDENTIFIER, LOCALPART, bilingual_name, mapping, string, validate

_ROOM = mapping({"id": IDENTIFIER, "name": bilingual_name(), "topic": bilingual_name()}, required=("id", "name"))

_DEPARTMENT = mapping(
    {
        "id": IDENTIFIER,
        "name": bilingual_name(),
        "topic": bilingual_name(),
        # extra rooms of this department (its own room is always made)
        "rooms": {"type": "array", "items": _ROOM},
        "sections": {"type": "array", "items": {"$ref": "#/$defs/department"}},
    },
    required=("id", "name"),
)

_ROLE = mapping({"title": string(), "name": bilingual_name(),
                 "power_level": {"type": "integer", "minimum": 0, "maximum": 99}},
                required=("title", "power_level"))

_PROJECT = mapping(
    {
        "id": IDENTIFIER,
        "name": bilingual_name(),
        "topic": bilingual_name(),
        # every member of these departments (and of their sections)
        "departments": {"type": "array", "items": IDENTIFIER, "uniqueItems": True},
        # and these people (localparts)
        "members": {"type": "array", "items": LOCALPART, "uniqueItems": True},
    },
    required=("id", "name"),
)

_ANNOUNCEMENT = mapping(
    {
        "id": IDENTIFIER,
        "name": bilingual_name(),
        "topic": bilingual_name(),
        # staff titles (roles) that may post; everyone else only reads
        "posters": {"type": "array", "items": string(), "uniqueItems": True},
    },
    required=("name",),
)

SCHEMA = {
    "$defs": {"department": _DEPARTMENT},
    **mapping(
        {
            "municipality": mapping({"id": IDENTIFIER, "name": bilingual_name()}, required=("id", "name")),
            "departments": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/department"}},
            "roles": {"type": "array", "items": _ROLE},
            "projects": {"type": "array", "items": _PROJECT},
            "announcement": _ANNOUNCEMENT,
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
class Room:
    id: str
    name: Name
    topic: Name | None = None


@attrs.frozen
class Department:
    id: str
    name: Name
    sections: tuple[Department, ...] = ()
    parent: str | None = None
    topic: Name | None = None
    rooms: tuple[Room, ...] = ()


@attrs.frozen
class Role:
    title: str
    power_level: int
    name: Name | None = None


@attrs.frozen
class Project:
    id: str
    name: Name
    topic: Name | None = None
    departments: tuple[str, ...] = ()
    members: tuple[str, ...] = ()


DEFAULT_ANNOUNCEMENT_ID = "all-staff"
#: a department's space has the alias of its room plus this
SPACE_SUFFIX = "-space"


@attrs.frozen
class Announcement:
    name: Name
    id: str = DEFAULT_ANNOUNCEMENT_ID
    topic: Name | None = None
    posters: tuple[str, ...] = ()


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
    roles: tuple[Role, ...] = ()
    projects: tuple[Project, ...] = ()
    announcement: Announcement | None = None

    def all_departments(self) -> Iterator[Department]:
        def walk(items: tuple[Department, ...]) -> Iterator[Department]:
            for d in items:
                yield d
                yield from walk(d.sections)

        return walk(self.departments)

    def department(self, dept_id: str) -> Department:
        return next(d for d in self.all_departments() if d.id == dept_id)

    def within(self, dept_id: str) -> set[str]:
        """The department and every section under it (ids)."""
        def walk(d: Department) -> Iterator[str]:
            yield d.id
            for s in d.sections:
                yield from walk(s)

        return set(walk(self.department(dept_id)))

    def role(self, title: str | None) -> Role | None:
        return next((r for r in self.roles if r.title == title), None)


def check(section: Any) -> list[ConfigIssue]:
    """Shape problems, then duplicate ids and unknown department references.

    Reference checks look at whatever entries are well-formed, so an admin sees
    every problem in one run.
    """
    issues = validate(section, SCHEMA)
    if not isinstance(section, dict):
        return issues
    first_seen: dict[str, KeyPath] = {}

    def duplicate(value: str, here: KeyPath, seen: dict[str, KeyPath]) -> None:
        if value in seen:
            issues.append(ConfigIssue(here, "config.duplicate_id",
                                      {"value": value, "first": format_path(seen[value])}))
        else:
            seen[value] = ("organisation",) + here

    def walk(items: Any, path: KeyPath) -> None:
        for index, dept in enumerate(items if isinstance(items, list) else []):
            if isinstance(dept, dict) and isinstance(dept.get("id"), str):
                duplicate(dept["id"], path + (index, "id"), first_seen)
                walk(dept.get("sections"), path + (index, "sections"))

    walk(section.get("departments"), ("departments",))
    departments = set(first_seen)

    def entries(value: Any) -> list[tuple[int, dict[str, Any]]]:
        return [(i, e) for i, e in enumerate(value if isinstance(value, list) else []) if isinstance(e, dict)]

    # Every room id becomes an alias #<municipality>-<id>: one namespace for all of them.
    def rooms_of(items: Any, path: KeyPath) -> None:
        for index, dept in entries(items):
            for r_index, room in entries(dept.get("rooms")):
                if isinstance(room.get("id"), str):
                    duplicate(room["id"], path + (index, "rooms", r_index, "id"), first_seen)
            rooms_of(dept.get("sections"), path + (index, "sections"))

    rooms_of(section.get("departments"), ("departments",))
    for index, project in entries(section.get("projects")):
        if isinstance(project.get("id"), str):
            duplicate(project["id"], ("projects", index, "id"), first_seen)
        for d_index, dept in enumerate(project.get("departments") or []):
            if isinstance(dept, str) and dept not in departments:
                issues.append(ConfigIssue(("projects", index, "departments", d_index), "config.unknown_department",
                                          {"value": dept}))
    announcement = section.get("announcement")
    if isinstance(announcement, dict):
        announcement_id = announcement.get("id")
        duplicate(announcement_id if isinstance(announcement_id, str) else DEFAULT_ANNOUNCEMENT_ID,
                  ("announcement", "id"), first_seen)

    for dept_id in departments:  # the department's space is #<municipality>-<id>-space
        if f"{dept_id}{SPACE_SUFFIX}" in first_seen:
            issues.append(ConfigIssue(first_seen[f"{dept_id}{SPACE_SUFFIX}"][1:], "config.duplicate_alias",
                                      {"value": f"{dept_id}{SPACE_SUFFIX}", "department": dept_id}))

    seen_roles: dict[str, KeyPath] = {}
    for index, role in entries(section.get("roles")):
        if isinstance(role.get("title"), str):
            duplicate(role["title"], ("roles", index, "title"), seen_roles)
    roles_defined = isinstance(section.get("roles"), list)

    def unknown_role(title: Any, here: KeyPath) -> None:
        if isinstance(title, str) and title not in seen_roles:
            issues.append(ConfigIssue(here, "config.unknown_role",
                                      {"value": title, "allowed": ", ".join(seen_roles) or "-"}))

    if isinstance(announcement, dict):
        for p_index, title in enumerate(announcement.get("posters") or []):
            unknown_role(title, ("announcement", "posters", p_index))

    seen_staff: dict[str, KeyPath] = {}
    staff = section.get("staff")
    for index, member in enumerate(staff if isinstance(staff, list) else []):
        if not isinstance(member, dict):
            continue
        if isinstance(member.get("department"), str) and member["department"] not in departments:
            issues.append(ConfigIssue(("staff", index, "department"), "config.unknown_department",
                                      {"value": member["department"]}))
        if isinstance(member.get("localpart"), str):
            duplicate(member["localpart"], ("staff", index, "localpart"), seen_staff)
        if roles_defined and "title" in member:
            unknown_role(member["title"], ("staff", index, "title"))
    for index, project in entries(section.get("projects")):
        for m_index, localpart in enumerate(project.get("members") or []):
            if isinstance(localpart, str) and localpart not in seen_staff:
                issues.append(ConfigIssue(("projects", index, "members", m_index), "config.unknown_staff",
                                          {"value": localpart}))
    return issues


def parse(section: Any) -> Organisation:
    """A typed Organisation; raises ValueError listing every problem."""
    issues = check(section)
    if issues:
        raise ValueError("\n".join(i.format() for i in issues))

    def name(raw: dict[str, Any]) -> Name:
        return Name(ja=raw["ja"], en=raw.get("en"))

    def optional_name(raw: dict[str, Any] | None) -> Name | None:
        return name(raw) if raw else None

    def room(raw: dict[str, Any]) -> Room:
        return Room(id=raw["id"], name=name(raw["name"]), topic=optional_name(raw.get("topic")))

    def dept(raw: dict[str, Any], parent: str | None) -> Department:
        return Department(id=raw["id"], name=name(raw["name"]), parent=parent, topic=optional_name(raw.get("topic")),
                          rooms=tuple(room(r) for r in raw.get("rooms", [])),
                          sections=tuple(dept(s, raw["id"]) for s in raw.get("sections", [])))

    raw_announcement = section.get("announcement")
    return Organisation(
        id=section["municipality"]["id"],
        name=name(section["municipality"]["name"]),
        departments=tuple(dept(d, None) for d in section["departments"]),
        staff=tuple(StaffMember(**m) for m in section.get("staff", [])),
        roles=tuple(Role(title=r["title"], power_level=r["power_level"], name=optional_name(r.get("name")))
                    for r in section.get("roles", [])),
        projects=tuple(Project(id=p["id"], name=name(p["name"]), topic=optional_name(p.get("topic")),
                               departments=tuple(p.get("departments", [])), members=tuple(p.get("members", [])))
                       for p in section.get("projects", [])),
        announcement=None if raw_announcement is None else Announcement(
            name=name(raw_announcement["name"]), id=raw_announcement.get("id", DEFAULT_ANNOUNCEMENT_ID),
            topic=optional_name(raw_announcement.get("topic")), posters=tuple(raw_announcement.get("posters", []))),
    )


def load(path: str | os.PathLike[str]) -> Organisation:
    """The organisation in a YAML file: its ``organisation:`` section (or the whole file when it
    holds only that section's keys). Raises OSError or ValueError (listing every problem)."""
    with open(path, encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: {e}") from None
    return parse(raw.get("organisation", raw) if isinstance(raw, dict) else raw)


class OrganisationFile:
    """An organisation file read again when it changes (an admin fixes a department without
    restarting anything); a change that breaks it keeps the last good version."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = path
        self._stamp: tuple[int, int] | None = None
        #: the last version read without problems, None before the first
        self.organisation: Organisation | None = None

    def refresh(self) -> bool:
        """Read the file if it changed since the last call; True when a new version was loaded.

        Raises OSError when the file cannot be read, ValueError when it is not a valid
        organisation: the last good version stays in ``organisation``, and the same broken
        version is not read (nor reported) again."""
        stat = os.stat(self.path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        self.organisation = load(self.path)
        return True
