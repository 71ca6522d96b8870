"""The zone policy holds at every way state or events enter a room (issue #13, sections 2 and 3).

Generated: each forbidden (and each allowed control) thing x each entry point (send, state,
createRoom initial_state, createRoom with presets and a power-level override, creation_content,
the room after an upgrade, redaction) x each kind of token (LGWAN device, internet device,
admin-issued token without a device through either entrance) x normal / LGWAN-only room.
The expected answer comes from the rule table in ``expected()``, written from the admin
guide's "what the zone policy guarantees", not from the module's code.
"""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import attrs
import pytest

from lgwan_chat.core.i18n import t

ZONE_MARKER = "jp.lgwan.room.zone"
ACTORS = ("lgwan-device", "internet-device", "deviceless-via-lgwan", "deviceless-via-internet")
#: The zone the rules must see for each actor: a device's own; a token without device: its entrance.
ACTOR_ZONE = {"lgwan-device": "lgwan", "internet-device": "internet",
              "deviceless-via-lgwan": "lgwan", "deviceless-via-internet": "internet"}
ACTOR_LISTENER = {"lgwan-device": "lgwan", "internet-device": "internet",
                  "deviceless-via-lgwan": "lgwan", "deviceless-via-internet": "internet"}


@attrs.frozen
class Thing:
    name: str
    type: str
    content: dict
    kind: str  # "call" | "widget" | "encryption" | "plain"
    #: widgets only: is the URL on the default allow-list (the suite's own pages)?
    allow_listed: bool = False


def membership(device: str) -> dict:
    return {"application": "m.call", "call_id": "", "scope": "m.room", "device_id": device,
            "focus_active": {"type": "livekit"}, "foci_preferred": [], "expires": 3600000}


def widget(kind: str, url: str) -> dict:
    return {"type": kind, "url": url, "name": "ウィジェット", "data": {}}


def widget_urls(base: str) -> list[tuple[str, bool]]:
    """The suite's own page, and variants that must not pass for it (generated from the base)."""
    parts = urllib.parse.urlsplit(base)
    own = "_synapse/client/lgwan/v1/stamps/picker"
    host, port = parts.hostname, parts.port or 80
    return [
        (f"{base}{own}?lang=$org.matrix.msc2873.client_language", True),
        (f"{base}_synapse/client/lgwan/", True),
        (f"{parts.scheme}://{host}.evil.example:{port}/{own}", False),
        (f"{parts.scheme}://{host}:{port + 1}/{own}", False),
        (f"{parts.scheme}://{host}:{port}@evil.example/{own}", False),
        (f"{parts.scheme}://evil.example@{host}:{port}/{own}", False),  # user info: never ours
        (f"https://{host}:{port}/{own}", False),
        (f"{base}_synapse/client/lgwanx/page", False),
        (f"{base}_synapse/client/lgwan", False),
        *((f"{base}_synapse/client/lgwan/{trick}_matrix/client/versions", False)
          for trick in ("../../../", "..%2f..%2f..%2f", "%2e%2e/%2E%2E/%2e%2e/", "..\\..\\..\\", "./../../../",
                        "%252e%252e/")),
        (f"{base}_synapse/client//lgwan/", False),
        ("https://meet.example.org/room", False),
        ("javascript:alert(1)", False),
        ("", False),
    ]


def things(base: str) -> list[Thing]:
    call_invite = {"call_id": "c1", "lifetime": 60000, "version": "1", "party_id": "p1",
                   "offer": {"type": "offer", "sdp": "v=0"}}
    found = [
        Thing("m.call.invite", "m.call.invite", call_invite, "call"),
        Thing("m.call.member", "m.call.member", membership("DEV"), "call"),
        Thing("msc3401.call.member", "org.matrix.msc3401.call.member", membership("DEV"), "call"),
        Thing("jitsi widget", "im.vector.modular.widgets", widget("jitsi", "https://jitsi.example/会議"), "call"),
        Thing("element call widget", "im.vector.modular.widgets",
              widget("io.element.call", "https://call.element.io/room"), "call"),
        Thing("m.widget jitsi", "m.widget", widget("m.jitsi", f"{base}_synapse/client/lgwan/x"), "call"),
        Thing("m.custom meeting site", "im.vector.modular.widgets", widget("m.custom", "https://whereby.example/r"),
              "widget"),
        Thing("m.widget custom site", "m.widget", widget("m.custom", "https://meet.example.org/r"), "widget"),
        Thing("m.room.encrypted", "m.room.encrypted",
              {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgA", "sender_key": "k", "session_id": "s",
               "device_id": "D"}, "encryption"),
        Thing("m.room.encryption", "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}, "encryption"),
        Thing("text message", "m.room.message", {"msgtype": "m.text", "body": "了解です"}, "plain"),
        Thing("topic", "m.room.topic", {"topic": "議題"}, "plain"),
    ]
    for i, (url, allowed) in enumerate(widget_urls(base)):
        found.append(Thing(f"etherpad widget {i} {url!r}", "im.vector.modular.widgets", widget("m.etherpad", url),
                           "widget", allow_listed=allowed))
    return found


def thing_named(name: str) -> Thing:
    return next(t for t in things("http://x/") if t.name == name)


def expected(thing: Thing, zone: str, lgwan_only: bool) -> str | None:
    """The rule table (admin guide, "what the zone policy guarantees"): the refusal reason, or None."""
    if thing.kind == "encryption":
        return "encryption_disabled"
    if thing.kind == "call":
        if lgwan_only:
            return "call_in_lgwan_only_room"
        return "call_from_lgwan" if zone == "lgwan" else None
    if thing.kind == "widget" and not thing.allow_listed and (zone == "lgwan" or lgwan_only):
        return "widget_not_allowed"
    return None


# --- a client that says exactly what came back -------------------------------------------------

_txn = itertools.count()


def call(url: str, method: str, path: str, token: str, body: Any = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


@attrs.define
class Actor:
    name: str
    url: str
    token: str
    user_id: str

    def send(self, room_id: str, thing: Thing) -> tuple[int, dict]:
        return call(self.url, "PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/send/{q(thing.type)}/t{next(_txn)}",
                    self.token, thing.content)

    def state(self, room_id: str, event_type: str, content: dict, state_key: str = "") -> tuple[int, dict]:
        return call(self.url, "PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/state/{q(event_type)}/{q(state_key)}",
                    self.token, content)

    def create_room(self, body: dict) -> tuple[int, dict]:
        return call(self.url, "POST", "/_matrix/client/v3/createRoom", self.token, body)

    def joined(self) -> set[str]:
        status, body = call(self.url, "GET", "/_matrix/client/v3/joined_rooms", self.token)
        assert status == 200, body
        return set(body["joined_rooms"])

    def redact(self, room_id: str, event_id: str) -> tuple[int, dict]:
        return call(self.url, "PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/redact/{q(event_id)}/r{next(_txn)}",
                    self.token, {"reason": "test"})

    def upgrade(self, room_id: str, version: str) -> tuple[int, dict]:
        return call(self.url, "POST", f"/_matrix/client/v3/rooms/{q(room_id)}/upgrade", self.token,
                    {"new_version": version})

    def get_state(self, room_id: str, event_type: str, state_key: str = "") -> tuple[int, dict]:
        return call(self.url, "GET", f"/_matrix/client/v3/rooms/{q(room_id)}/state/{q(event_type)}/{q(state_key)}",
                    self.token)


def outcome(status: int, body: dict) -> str | None:
    """The refusal reason as a person's client sees it, or None when accepted."""
    if status == 200:
        return None
    reason = body.get("jp.lgwan.reason")
    assert status == 403 and body.get("errcode") == "M_FORBIDDEN", (status, body)
    assert t(f"zones.{reason}", "ja") in body["error"] and t(f"zones.{reason}", "en") in body["error"], body
    return reason


def check_all(cases: list[tuple[str, str | None, str | None]]) -> None:
    wrong = [f"{label}: expected {want or 'accepted'}, got {got or 'accepted'}" for label, want, got in cases
             if want != got]
    assert not wrong, f"{len(wrong)} of {len(cases)} cases wrong:\n" + "\n".join(wrong)


@pytest.fixture
async def actors(homeserver, login) -> dict[str, Actor]:
    """One staff member's tokens: a phone, an office PC, and admin-issued tokens without a device."""
    user = homeserver.new_user("staff")
    admin = await login(homeserver.new_user("admin", admin=True), "internet")
    found = {}
    for name in ACTORS:
        url = homeserver.url(ACTOR_LISTENER[name])
        if name.endswith("device"):
            client = await login(user, ACTOR_ZONE[name])
            found[name] = Actor(name, url, client.access_token, user.user_id)
        else:
            status, body = call(homeserver.url("internet"), "POST",
                                f"/_synapse/admin/v1/users/{q(user.user_id)}/login", admin.access_token, {})
            assert status == 200, body
            found[name] = Actor(name, url, body["access_token"], user.user_id)
            # really without a device: Synapse has none for it
            assert call(url, "GET", "/_matrix/client/v3/account/whoami", body["access_token"])[1].get(
                "device_id") is None
    return found


def base_url(homeserver) -> str:
    return homeserver.url("internet").rstrip("/") + "/"  # the harness's public_baseurl


def new_room(owner: Actor, lgwan_only: bool) -> str:
    initial = [{"type": ZONE_MARKER, "state_key": "", "content": {"lgwan_only": True}}] if lgwan_only else []
    status, body = owner.create_room({"name": "入口テスト", "initial_state": initial})
    assert status == 200, body
    return body["room_id"]


#: Types Synapse accepts only as state (``/send`` answers 400 before any module runs).
STATE_ONLY = frozenset({"m.room.topic", "m.room.encryption"})


# --- send and state --------------------------------------------------------------------------

@pytest.mark.parametrize("entry", ["send", "state"])
@pytest.mark.parametrize("lgwan_only", [False, True], ids=["normal-room", "lgwan-only-room"])
async def test_events_and_state(homeserver, actors, entry, lgwan_only):
    room_id = new_room(actors["internet-device"], lgwan_only)
    cases = []
    for actor, thing in itertools.product(actors.values(), things(base_url(homeserver))):
        if entry == "send" and thing.type in STATE_ONLY:
            continue  # Synapse refuses these as message events itself (400)
        if entry == "send":
            got = outcome(*actor.send(room_id, thing))
        else:
            got = outcome(*actor.state(room_id, thing.type, thing.content, state_key=f"k{next(_txn)}"))
        cases.append((f"{entry} {thing.name} by {actor.name}", expected(thing, ACTOR_ZONE[actor.name], lgwan_only),
                      got))
    check_all(cases)


# --- createRoom ------------------------------------------------------------------------------

PRESETS = ("private_chat", "public_chat", "trusted_private_chat")


def creation_bodies(thing: Thing, lgwan_only: bool, index: int) -> list[tuple[str, dict]]:
    initial = [{"type": thing.type, "state_key": "", "content": thing.content}]
    if lgwan_only:
        initial.insert(index % 2, {"type": ZONE_MARKER, "state_key": "", "content": {"lgwan_only": True}})
    return [
        ("initial_state", {"initial_state": initial}),
        # Presets and a power-level override that hands everyone every power: no way around the rules.
        ("preset+power_level_override",
         {"initial_state": initial, "preset": PRESETS[index % len(PRESETS)],
          "power_level_content_override": {"users_default": 100, "events_default": 0, "state_default": 0,
                                           "events": {thing.type: 0, ZONE_MARKER: 0}}}),
    ]


@pytest.mark.parametrize("lgwan_only", [False, True], ids=["normal-room", "lgwan-only-room"])
async def test_create_room_initial_state(homeserver, actors, lgwan_only):
    cases = []
    for actor in actors.values():
        before = actor.joined()
        created = set()
        for index, thing in enumerate(things(base_url(homeserver))):
            if thing.kind == "widget" and index % 3 and not thing.allow_listed:
                continue  # every lookalike URL is sent by test_events_and_state; a third of them here
            for entry, body in creation_bodies(thing, lgwan_only, index):
                status, answer = actor.create_room(body)
                got = outcome(status, answer)
                if got is None:
                    created.add(answer["room_id"])
                    # what was asked for is really in the new room
                    state = actor.get_state(answer["room_id"], thing.type)
                    assert state == (200, thing.content), (thing.name, state)
                cases.append((f"createRoom {entry} {thing.name} by {actor.name}",
                              expected(thing, ACTOR_ZONE[actor.name], lgwan_only), got))
        # a refused createRoom leaves no half-created room behind
        assert actor.joined() - before == created
    check_all(cases)


ROOM_TYPES = [(None, True), ("m.space", True), ("io.element.video", False), ("org.matrix.msc3417.call", False),
              ("m.video", False), ("com.example.meeting", False), ("", False), (7, False)]


async def test_create_room_creation_content_type(actors):
    """Only room types known to be safe (ordinary rooms, spaces); video rooms and unknown types refused,
    from every zone, also together with an LGWAN-only marker."""
    cases = []
    for actor, (room_type, safe), lgwan_only in itertools.product(actors.values(), ROOM_TYPES, (False, True)):
        body: dict = {"creation_content": {} if room_type is None else {"type": room_type}}
        if lgwan_only:
            body["initial_state"] = [{"type": ZONE_MARKER, "state_key": "", "content": {"lgwan_only": True}}]
        status, answer = actor.create_room(body)
        want = None if safe else "room_type_not_allowed"
        # Synapse's own validation may refuse a malformed type first (400): refused all the same.
        got = want if (status == 400 and not safe) else outcome(status, answer)
        cases.append((f"creation_content.type={room_type!r} lgwan_only={lgwan_only} by {actor.name}", want, got))
    check_all(cases)


async def test_internet_device_cannot_create_an_lgwan_only_room_with_a_call_widget(actors):
    phone = actors["internet-device"]
    before = phone.joined()
    for order in (0, 1):
        initial = [{"type": "im.vector.modular.widgets", "state_key": "w",
                    "content": widget("jitsi", "https://jitsi.example/x")}]
        initial.insert(order, {"type": ZONE_MARKER, "state_key": "", "content": {"lgwan_only": True}})
        assert outcome(*phone.create_room({"initial_state": initial})) == "call_in_lgwan_only_room"
    assert phone.joined() == before


# --- upgrades --------------------------------------------------------------------------------

async def test_an_upgraded_lgwan_only_room_stays_lgwan_only(homeserver, actors):
    owner = actors["internet-device"]
    room_id = new_room(owner, lgwan_only=True)
    for version in ("12", "12"):  # twice: the zone follows the whole chain of predecessors
        status, body = owner.upgrade(room_id, version)
        assert status == 200, body
        room_id = body["replacement_room"]
    # Synapse did not copy the marker: the zone is inherited, not copied.
    assert owner.get_state(room_id, ZONE_MARKER)[0] == 404
    # The new room's own marker cannot lift it (that takes lifting it in the old rooms too).
    assert owner.state(room_id, ZONE_MARKER, {"lgwan_only": False})[0] == 200
    cases = []
    for actor, thing in itertools.product(actors.values(), things(base_url(homeserver))):
        if thing.kind == "widget" or thing.type in STATE_ONLY:
            got = outcome(*actor.state(room_id, thing.type, thing.content, state_key=f"k{next(_txn)}"))
        else:
            got = outcome(*actor.send(room_id, thing))
        cases.append((f"upgraded room: {thing.name} by {actor.name}", expected(thing, ACTOR_ZONE[actor.name], True),
                      got))
    check_all(cases)


async def test_an_upgraded_ordinary_room_stays_ordinary(actors):
    owner = actors["internet-device"]
    room_id = new_room(owner, lgwan_only=False)
    status, body = owner.upgrade(room_id, "12")
    assert status == 200, body
    call_invite = thing_named("m.call.invite")
    assert outcome(*owner.send(body["replacement_room"], call_invite)) is None
    assert outcome(*actors["lgwan-device"].send(body["replacement_room"], call_invite)) == "call_from_lgwan"


# --- redactions ------------------------------------------------------------------------------

async def test_the_rules_own_state_cannot_be_redacted(homeserver, actors, login):
    owner = actors["internet-device"]
    moderator_user = homeserver.new_user("moderator")
    moderator_client = await login(moderator_user, "internet")
    moderator = Actor("moderator", homeserver.url("internet"), moderator_client.access_token,
                      moderator_user.user_id)
    status, body = owner.create_room({
        "initial_state": [{"type": ZONE_MARKER, "state_key": "", "content": {"lgwan_only": True}}],
        "invite": [moderator_user.user_id],
        "power_level_content_override": {"users": {moderator_user.user_id: 50},  # room v12: creator not listed
                                         "events": {ZONE_MARKER: 100}, "redact": 50}})
    assert status == 200, body
    room_id = body["room_id"]
    assert call(moderator.url, "POST", f"/_matrix/client/v3/join/{q(room_id)}", moderator.token, {})[0] == 200
    # The moderator may not change the marker (so redacting it would be the way round).
    assert moderator.state(room_id, ZONE_MARKER, {"lgwan_only": False})[0] == 403

    protected = {name: owner.get_state(room_id, event_type) for name, event_type in
                 (("marker", ZONE_MARKER), ("create", "m.room.create"))}
    marker_id = _state_event_id(homeserver, room_id, ZONE_MARKER)
    create_id = _state_event_id(homeserver, room_id, "m.room.create")
    cases: list[tuple[str, str | None, str | None]] = []
    for actor in [moderator, *actors.values()]:
        for name, event_id in (("marker", marker_id), ("create event", create_id)):
            cases.append((f"redact the {name} by {actor.name}", "protected_state_redaction",
                          outcome(*actor.redact(room_id, event_id))))
        # Control: an ordinary message can still be redacted by the same token.
        status, sent = actor.send(room_id, thing_named("text message"))
        assert status == 200, sent
        cases.append((f"redact a message by {actor.name}", None, outcome(*actor.redact(room_id, sent["event_id"]))))
    check_all(cases)
    # Nothing was lost: the marker still holds, and calls are still refused.
    for name, event_type in (("marker", ZONE_MARKER), ("create", "m.room.create")):
        assert owner.get_state(room_id, event_type) == protected[name]
    assert outcome(*owner.send(room_id, thing_named("m.call.invite"))) == "call_in_lgwan_only_room"


def _state_event_id(homeserver, room_id: str, event_type: str) -> str:
    rows = homeserver.query("SELECT event_id FROM current_state_events WHERE room_id = ? AND type = ?"
                            " AND state_key = ''", room_id, event_type)
    assert len(rows) == 1, rows
    return rows[0][0]
