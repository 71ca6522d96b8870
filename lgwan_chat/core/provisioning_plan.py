"""What the organisation YAML asks for, what the homeserver has, and the plan between them.

Pure code: no network. ``desired(org)`` lists every room and space the YAML
describes (keyed by the local part of its alias, ``<municipality>-<id>``);
``Observed`` is what a homeserver holds (read by ``lgwan_chat.provisioning.apply``);
``make_plan`` compares them; ``simulate`` applies a plan to an ``Observed`` in
memory, so "the state a plan produced gives an empty plan" can be tested
without a server.

Semantics (the admin guide explains them):

- rooms and spaces are found by alias; a missing one is created, a changed
  name/topic is set again, power levels of the staff of a room follow their
  role (``roles:``), and the all-staff room needs ``ANNOUNCE_LEVEL`` to post:
  only the ``posters:`` roles get it there;
- every staff member that exists on the homeserver is joined to the rooms and
  spaces of their department (a department's rooms include its sections' staff),
  to their projects and to the all-staff room; staff not yet registered are
  listed, and joined by the Synapse module when they register or log in;
- nothing is ever removed without ``allow_delete``: a member of staff moved
  elsewhere in the YAML stays in the old rooms (listed as "kept"), a room
  gone from the YAML stays where it is (listed as "kept"). With ``allow_delete``
  the staff member is removed from the old rooms, and a room gone from the
  YAML is archived: taken out of its space and its alias deleted, its messages
  kept. People not listed in the YAML (bots, guests) are never removed.
"""

from __future__ import annotations

from typing import Any

import attrs

from lgwan_chat.core.i18n import LANGUAGES, t
from lgwan_chat.core.organisation import SPACE_SUFFIX, Department, Name, Organisation

#: power level needed to post in the all-staff announcement room
ANNOUNCE_LEVEL = 50
#: state event marking a room as made by the provisioner (content: municipality, key, archived)
MARKER = "jp.lgwan.provisioning"


@attrs.frozen
class RoomSpec:
    key: str
    is_space: bool
    name: str
    topic: str | None
    #: localparts of the staff who belong here
    members: frozenset[str]
    #: localpart -> power level, for members whose level is not 0
    power: tuple[tuple[str, int], ...] = ()
    events_default: int = 0
    parent: str | None = None


def _topic(topic: Name | None, name: Name) -> str | None:
    if topic is None:
        return name.en
    return f"{topic.ja} / {topic.en}" if topic.en else topic.ja


def desired(org: Organisation) -> list[RoomSpec]:
    """Spaces top-down, then rooms: the order they are created in."""
    muni = org.id
    everyone = frozenset(s.localpart for s in org.staff)

    def staff_in(dept_ids: set[str]) -> frozenset[str]:
        return frozenset(s.localpart for s in org.staff if s.department in dept_ids)

    def power(members: frozenset[str]) -> tuple[tuple[str, int], ...]:
        levels = {}
        for s in org.staff:
            role = org.role(s.title)
            if s.localpart in members and role is not None and role.power_level:
                levels[s.localpart] = role.power_level
        return tuple(sorted(levels.items()))

    spaces = [RoomSpec(muni, True, org.name.ja, org.name.en, everyone)]
    rooms: list[RoomSpec] = []

    def walk(depts: tuple[Department, ...], parent_space: str) -> None:
        for d in depts:
            members = staff_in(org.within(d.id))
            space = f"{muni}-{d.id}{SPACE_SUFFIX}"
            spaces.append(RoomSpec(space, True, d.name.ja, d.name.en, members, parent=parent_space))
            rooms.append(RoomSpec(f"{muni}-{d.id}", False, d.name.ja, _topic(d.topic, d.name), members,
                                  power(members), parent=space))
            for r in d.rooms:
                rooms.append(RoomSpec(f"{muni}-{r.id}", False, r.name.ja, _topic(r.topic, r.name), members,
                                      power(members), parent=space))
            walk(d.sections, space)

    walk(org.departments, muni)
    for p in org.projects:
        ids: set[str] = set()
        for dept in p.departments:
            ids |= org.within(dept)
        members = staff_in(ids) | frozenset(p.members)
        rooms.append(RoomSpec(f"{muni}-{p.id}", False, p.name.ja, _topic(p.topic, p.name), members,
                              power(members), parent=muni))
    if org.announcement is not None:
        a = org.announcement
        posters = tuple(sorted((s.localpart, ANNOUNCE_LEVEL) for s in org.staff if s.title in a.posters))
        rooms.append(RoomSpec(f"{muni}-{a.id}", False, a.name.ja, _topic(a.topic, a.name), everyone,
                              posters, events_default=ANNOUNCE_LEVEL, parent=muni))
    return spaces + rooms


def rooms_of(org: Organisation, localpart: str) -> list[str]:
    """Keys (alias local parts) of every room and space ``localpart`` belongs to, spaces first."""
    return [spec.key for spec in desired(org) if localpart in spec.members]


@attrs.define
class ObservedRoom:
    room_id: str
    is_space: bool = False
    name: str | None = None
    topic: str | None = None
    #: joined local users (localparts), the provisioner left out
    members: set[str] = attrs.Factory(set)
    #: localpart -> level of local users
    power: dict[str, int] = attrs.Factory(dict)
    events_default: int = 0
    #: keys of the child rooms/spaces this space links (only ones the provisioner knows)
    children: set[str] = attrs.Factory(set)
    #: made by the provisioner for this municipality (MARKER state), not archived
    managed: bool = True


@attrs.define
class Observed:
    #: key -> room, for every key whose alias exists, and every managed room
    rooms: dict[str, ObservedRoom] = attrs.Factory(dict)
    #: localparts of the staff with an account on the homeserver; None: not checked (all assumed)
    users: set[str] | None = None


@attrs.frozen
class Action:
    kind: str  # create, name, topic, power, link, join, remove, unlink, archive
    key: str
    #: kind-dependent: name/topic text, localpart, child key, power changes...
    value: Any = None
    is_space: bool = False

    def describe(self, lang: str) -> str:
        params: dict[str, Any] = {"room": f"#{self.key}", "value": self.value}
        kind = self.kind
        if kind == "create":
            kind = "create_space" if self.is_space else "create_room"
            params["value"] = self.value["name"]
        elif kind == "power":
            changes = [f"{lp}: {old}→{new}" for lp, (old, new) in sorted(self.value["users"].items())]
            if self.value.get("events_default") is not None:
                changes.append(f"events_default: {self.value['events_default'][0]}→{self.value['events_default'][1]}")
            params["value"] = ", ".join(changes)
        elif kind in ("link", "unlink"):
            params["value"] = f"#{self.value}"
        return t(f"provisioning.action.{kind}", lang, **params)


@attrs.frozen
class Plan:
    actions: tuple[Action, ...]
    #: ("member", key, localpart) or ("room", key, None): what allow_delete would remove
    kept: tuple[tuple[str, str, str | None], ...] = ()
    #: staff listed in the YAML without an account on the homeserver
    missing_users: tuple[str, ...] = ()

    def render(self) -> str:
        """Japanese first, then English."""
        out = []
        for lang in LANGUAGES:
            if not self.actions:
                out.append(t("provisioning.no_changes", lang))
            else:
                out.append(t("provisioning.plan_header", lang, count=len(self.actions)))
                out.extend(f"  {i}. {a.describe(lang)}" for i, a in enumerate(self.actions, 1))
            for what, key, lp in self.kept:
                if what == "member":
                    out.append("  - " + t("provisioning.kept_member", lang, room=f"#{key}", user=lp))
                else:
                    out.append("  - " + t("provisioning.kept_room", lang, room=f"#{key}"))
            if self.missing_users:
                out.append("  - " + t("provisioning.missing_users", lang, users=", ".join(self.missing_users)))
            out.append("")
        return "\n".join(out).rstrip() + "\n"


def make_plan(org: Organisation, observed: Observed, allow_delete: bool = False) -> Plan:
    specs = desired(org)
    staff = {s.localpart for s in org.staff}
    existing = observed.users

    def exists(localpart: str) -> bool:  # unknown (not checked): assumed to exist
        return existing is None or localpart in existing

    creates, changes, links, joins, removes, unlinks, archives = [], [], [], [], [], [], []
    kept: list[tuple[str, str, str | None]] = []
    wanted_children: dict[str, set[str]] = {}
    for spec in specs:
        if spec.parent:
            wanted_children.setdefault(spec.parent, set()).add(spec.key)
    for spec in specs:
        have = observed.rooms.get(spec.key)
        if have is None:
            creates.append(Action("create", spec.key, {"name": spec.name, "topic": spec.topic,
                                                       "events_default": spec.events_default}, spec.is_space))
            have = ObservedRoom(room_id="", is_space=spec.is_space, name=spec.name, topic=spec.topic,
                                events_default=spec.events_default)
        if have.name != spec.name:
            changes.append(Action("name", spec.key, spec.name))
        if spec.topic is not None and have.topic != spec.topic:
            changes.append(Action("topic", spec.key, spec.topic))
        want_power = dict(spec.power)
        users = {}
        for lp in sorted(spec.members):
            old, new = have.power.get(lp, 0), want_power.get(lp, 0)
            if old != new:
                users[lp] = (old, new)
        events_default = None if have.events_default == spec.events_default else (have.events_default,
                                                                                   spec.events_default)
        if users or events_default:
            changes.append(Action("power", spec.key, {"users": users, "events_default": events_default}))
        for child in sorted(wanted_children.get(spec.key, ())):
            if child not in have.children:
                links.append(Action("link", spec.key, child))
        for child in sorted(have.children - wanted_children.get(spec.key, set())):
            if allow_delete:
                unlinks.append(Action("unlink", spec.key, child))
        for lp in sorted(spec.members):
            if lp not in have.members and exists(lp):
                joins.append(Action("join", spec.key, lp))
        for lp in sorted(have.members - spec.members):
            if lp not in staff:
                continue  # not ours to remove: bots, guests, people not in the YAML
            if allow_delete:
                removes.append(Action("remove", spec.key, lp))
            else:
                kept.append(("member", spec.key, lp))
    keys = {spec.key for spec in specs}
    for key in sorted(observed.rooms):
        if key not in keys and observed.rooms[key].managed:
            if allow_delete:
                archives.append(Action("archive", key, is_space=observed.rooms[key].is_space))
            else:
                kept.append(("room", key, None))
    missing = tuple(sorted(lp for lp in staff if not exists(lp)))
    return Plan(tuple(creates + changes + links + joins + removes + unlinks + archives), tuple(kept), missing)


def simulate(plan: Plan, observed: Observed) -> Observed:
    """The state after ``plan`` (in memory): what ``apply`` does to a homeserver."""
    rooms = {k: attrs.evolve(r, members=set(r.members), power=dict(r.power), children=set(r.children))
             for k, r in observed.rooms.items()}
    for n, a in enumerate(plan.actions):
        if a.kind == "create":
            rooms[a.key] = ObservedRoom(room_id=f"!sim{n}", is_space=a.is_space, name=a.value["name"],
                                        topic=a.value["topic"], events_default=a.value["events_default"])
            continue
        room = rooms[a.key]
        if a.kind == "name":
            room.name = a.value
        elif a.kind == "topic":
            room.topic = a.value
        elif a.kind == "power":
            for lp, (_, new) in a.value["users"].items():
                if new:
                    room.power[lp] = new
                else:
                    room.power.pop(lp, None)
            if a.value["events_default"]:
                room.events_default = a.value["events_default"][1]
        elif a.kind == "link":
            room.children.add(a.value)
        elif a.kind == "unlink":
            room.children.discard(a.value)
        elif a.kind == "join":
            room.members.add(a.value)
        elif a.kind == "remove":
            room.members.discard(a.value)
        elif a.kind == "archive":
            del rooms[a.key]
            for other in rooms.values():
                other.children.discard(a.key)
    return Observed(rooms=rooms, users=None if observed.users is None else set(observed.users))
