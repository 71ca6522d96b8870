"""Legal holds and retention periods that only the records flow changes (issue #18), against a real
Synapse with every module of the suite (the guard is the zone module's, ``zones/records_guard.py``).

Generated: each way in (``PUT /state`` with and without a state key, ``PUT /send``, ``createRoom``'s
``initial_state``, a room upgrade, a redaction of the current or an earlier event) x each of the two
types (``jp.lgwan.records.hold``, ``m.room.retention``) x each kind of sender: a DM's member (a creator
in room version 12: above every power level), a room's admin at power level 100, the server admin
acting directly, and a member acted as through the admin API's "login as user" (what ``records hold``
does in a room the admin is not in). The expected answers come from the admin guide (§5.3, "who can
change a hold"), not from the module's code. After all of them ``records holds`` still lists both holds
with their reasons and neither room's retention changed; hold, unhold and apply still work.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from types import SimpleNamespace

import pytest
from synapse.logging.context import ContextRequest, LoggingContext, PreserveLoggingContext
from test_records import PERIOD_S, City
from test_records import RETENTION as PERIODS
from test_zone_entry_points import call, check_all, outcome, q

from lgwan_chat.core.configcheck.typed import build
from lgwan_chat.records.config import HOLD_LIFETIME_MS, Records
from lgwan_chat.records.retention import homeserver_block
from synapse_modules.zones.records_guard import RecordsGuard
from synapse_modules.zones.state_keeper import StateKeeper, weakens

HOLD = "jp.lgwan.records.hold"
RETENTION = "m.room.retention"
TYPES = (HOLD, RETENTION)
#: what an attacker would write: the hold lifted, the room purged after a second
HARMFUL = {HOLD: {"held": False, "reason": "devtools"}, RETENTION: {"max_lifetime": 1000}}
_txn = itertools.count()


@pytest.fixture(scope="module")
def homeserver_extra():
    return {"retention": homeserver_block(build(Records, {"retention": PERIODS}).retention)}


@pytest.fixture(scope="module")
def files(tmp_path_factory, hs_backend):
    """One per homeserver: the provisioner's token made by the first city's provisioning is kept here."""
    return tmp_path_factory.mktemp(f"records-guard-{hs_backend}")


@pytest.fixture
def city(homeserver, files, capsys):
    return City(homeserver, files, capsys)


class World:
    """A provisioned city: 総務課's room (held by the admin, who is in it; 山田 at power level 100) and
    a DM between 山田 and 佐藤 in room version 12 (held through the admin API: the admin is not in it)."""

    def __init__(self, hs, city: City):
        self.hs, self.city = hs, city
        self.url = hs.url("lgwan")
        admin = city.admin
        self.soumu = city.room_id("soumu")
        levels = admin.call("GET", f"/_matrix/client/v3/rooms/{q(self.soumu)}/state/m.room.power_levels/")
        levels["users"][city.yamada.user_id] = 100
        admin.call("PUT", f"/_matrix/client/v3/rooms/{q(self.soumu)}/state/m.room.power_levels/", levels)
        status, body = call(self.url, "POST", "/_matrix/client/v3/createRoom", city.yamada.access_token,
                            {"preset": "trusted_private_chat", "is_direct": True, "invite": [city.sato.user_id]})
        assert status == 200, body
        self.dm = body["room_id"]
        assert call(self.url, "POST", f"/_matrix/client/v3/join/{q(self.dm)}", city.sato.access_token, {})[0] == 200
        create = self.state(self.dm)[("m.room.create", "")]
        assert create["content"]["room_version"] == "12"
        assert city.sato.user_id in create["content"]["additional_creators"]  # 佐藤 outranks power levels
        # the same in room version 11: both members at power level 100 (enough to upgrade it, too)
        status, body = call(self.url, "POST", "/_matrix/client/v3/createRoom", city.yamada.access_token,
                            {"preset": "trusted_private_chat", "is_direct": True, "invite": [city.sato.user_id],
                             "room_version": "11"})
        assert status == 200, body
        self.dm11 = body["room_id"]
        assert call(self.url, "POST", f"/_matrix/client/v3/join/{q(self.dm11)}", city.sato.access_token, {})[0] == 200
        for room, reason in ((self.soumu, "監査対応"), (self.dm, "情報公開請求 第13号"), (self.dm11, "監査 第2号")):
            code, _, err = city.records("hold", room, "--reason", reason, "--config", str(city.org_file))
            assert code == 0, err
        self.held = {room: self.records_state(room) for room in (self.soumu, self.dm, self.dm11)}

    def state(self, room_id: str) -> dict:
        return {(ev["type"], ev["state_key"]): ev for ev in
                self.city.admin.call("GET", f"/_synapse/admin/v1/rooms/{q(room_id)}/state")["state"]}

    def get_state(self, token: str, room_id: str, event_type: str) -> tuple[int, dict]:
        return call(self.url, "GET", f"/_matrix/client/v3/rooms/{q(room_id)}/state/{q(event_type)}/", token)

    def records_state(self, room_id: str) -> dict:
        state = self.state(room_id)
        return {t: state[(t, "")]["content"] for t in TYPES}

    def puppet(self, user_id: str) -> str:
        """The admin API's login as a member: the token ``records hold`` uses in rooms the admin is not in."""
        status, body = call(self.url, "POST", f"/_synapse/admin/v1/users/{q(user_id)}/login",
                            self.city.token, {"valid_until_ms": int(time.time() * 1000) + 600_000})
        assert status == 200, body
        return str(body["access_token"])

    def holds(self) -> dict[str, dict]:
        code, out, err = self.city.records("holds")
        assert code == 0, err
        return {h["room_id"]: h for h in map(json.loads, out.splitlines()) if h["room_id"] in self.held}

    def event_ids(self, room_id: str, event_type: str) -> list[str]:
        """Every event of the type in the room, the current one last."""
        rows = self.hs.query("SELECT event_id FROM events WHERE room_id = ? AND type = ? ORDER BY stream_ordering",
                             room_id, event_type)
        return [r[0] for r in rows]


def senders(world: World) -> dict[str, list[tuple[str, str, str]]]:
    """room -> (sender kind, token, user id) of everyone who can send state there."""
    city = world.city
    puppet = world.puppet(city.yamada.user_id)
    admin_id = city.admin.call("GET", "/_matrix/client/v3/account/whoami")["user_id"]
    return {
        world.soumu: [("room admin at 100", city.yamada.access_token, city.yamada.user_id),
                      ("server admin directly", city.token, admin_id),
                      ("records flow's login as a member", puppet, city.yamada.user_id)],
        world.dm: [("DM creator", city.sato.access_token, city.sato.user_id),
                   ("DM creator (the other)", city.yamada.access_token, city.yamada.user_id),
                   ("records flow's login as a member", puppet, city.yamada.user_id)],
        world.dm11: [("DM member at 100 (room version 11)", city.sato.access_token, city.sato.user_id),
                     ("records flow's login as a member", puppet, city.yamada.user_id)],
    }


def answer(status: int, body: dict) -> str | None:
    """Our refusal's reason (checked in both languages), Synapse's own refusal, or None when accepted."""
    if status != 200 and "jp.lgwan.reason" not in body:
        return f"synapse: {status}"
    return outcome(status, body)


def by_records_flow(kind: str) -> bool:
    return kind in ("server admin directly", "records flow's login as a member")


def test_only_the_records_flow_changes_a_hold_or_a_retention(homeserver, city):
    world = World(homeserver, city)
    url = world.url
    everyone = senders(world)
    cases: list[tuple[str, str | None, str | None]] = []
    for room, in_room in everyone.items():
        where = {world.soumu: "総務課", world.dm: "DM", world.dm11: "DM v11"}[room]
        for (kind, token, _), event_type in itertools.product(in_room, TYPES):
            # allowed senders put back what is there (the holds must stay for the rest of the test)
            content = world.held[room][event_type] if by_records_flow(kind) else HARMFUL[event_type]
            want = None if by_records_flow(kind) else "records_state_protected"
            for state_key in ("", "x"):
                got = answer(*call(url, "PUT", f"/_matrix/client/v3/rooms/{q(room)}/state/{q(event_type)}/"
                                                f"{q(state_key)}", token, content))
                cases.append((f"{where}: PUT /state {event_type}/{state_key} by {kind}", want, got))
            status, body = call(url, "PUT", f"/_matrix/client/v3/rooms/{q(room)}/send/{q(event_type)}/g{next(_txn)}",
                                token, HARMFUL[event_type])
            # Synapse takes a retention only as state: 400 for anyone, before any module
            cases.append((f"{where}: PUT /send {event_type} by {kind}",
                          "synapse: 400" if event_type == RETENTION else want, answer(status, body)))
            # redactions: of the current event and of every earlier one; nobody, the records flow never redacts
            for n, event_id in enumerate(reversed(world.event_ids(room, event_type))):
                got = answer(*call(url, "PUT", f"/_matrix/client/v3/rooms/{q(room)}/redact/{q(event_id)}/"
                                                f"r{next(_txn)}", token, {"reason": "devtools"}))
                cases.append((f"{where}: redact {'current' if n == 0 else 'earlier'} {event_type} by {kind}",
                              "records_state_redaction", got))
        for kind, token, _ in in_room:
            if by_records_flow(kind):
                continue  # allowed upgrades move the room: at the end
            # room version 12: the tombstone needs power level 150, so only a creator gets as far as the guard
            want = "synapse: 403" if kind == "room admin at 100" else "records_room_upgrade"
            got = answer(*call(url, "POST", f"/_matrix/client/v3/rooms/{q(room)}/upgrade", token,
                                {"new_version": "12"}))
            cases.append((f"{where}: upgrade by {kind}", want, got))
    # createRoom: a new room born with a hold or a retention (any room kind, any sender)
    for (kind, token, _), event_type in itertools.product(everyone[world.soumu] + everyone[world.dm][:1], TYPES):
        want = None if by_records_flow(kind) else "records_state_protected"
        for preset in ("private_chat", "trusted_private_chat"):
            status, body = call(url, "POST", "/_matrix/client/v3/createRoom", token, {
                "preset": preset,
                "initial_state": [{"type": event_type, "state_key": "", "content": HARMFUL[event_type]}],
                "power_level_content_override": {"events": {event_type: 0}, "state_default": 0}})
            got = answer(status, body)
            cases.append((f"createRoom ({preset}) with {event_type} by {kind}", want, got))
            if got is None:  # what the records flow asked for is really in the new room
                assert world.get_state(token, body["room_id"], event_type) == (200, HARMFUL[event_type])
    check_all(cases)

    # nothing changed: every hold listed with its reason, every room's retention as the hold set it
    holds = world.holds()
    assert {room: h["reason"] for room, h in holds.items()} == {world.soumu: "監査対応",
                                                                world.dm: "情報公開請求 第13号",
                                                                world.dm11: "監査 第2号"}
    for room, held in world.held.items():
        assert world.records_state(room) == held
        assert held[RETENTION] == {"max_lifetime": HOLD_LIFETIME_MS}

    # the records flow can still upgrade a held room (the new room holds nothing: the guide says so)
    for room, (kind, token, _) in ((world.soumu, everyone[world.soumu][1]), (world.dm, everyone[world.dm][2])):
        status, body = call(url, "POST", f"/_matrix/client/v3/rooms/{q(room)}/upgrade", token, {"new_version": "12"})
        assert status == 200, (kind, body)


def test_hold_unhold_and_apply_still_work_under_the_guard(homeserver, city):
    world = World(homeserver, city)  # held: soumu by the admin, the DMs through the login as a member
    assert city.state("doboku", RETENTION) == {"max_lifetime": PERIOD_S * 1000}  # provision's apply
    for room in world.held:
        code, _, err = city.records("unhold", room, "--reason", "開示完了", "--config", str(city.org_file))
        assert code == 0, err
    assert world.records_state(world.soumu)[RETENTION] == {"max_lifetime": PERIOD_S * 1000}
    assert world.records_state(world.dm)[RETENTION] == {}
    assert world.holds() == {}
    code, out, err = city.cli("records", "apply", str(city.org_file), "--homeserver", homeserver.url("lgwan"),
                              "--admin-token", city.token, "--dry-run")
    assert code == 0 and out == "", (out, err)
    # with the hold lifted, a DM's member still cannot set the DM's retention
    status, body = call(world.url, "PUT", f"/_matrix/client/v3/rooms/{q(world.dm)}/state/{RETENTION}/",
                        city.sato.access_token, {"max_lifetime": 1000})
    assert answer(status, body) == "records_state_protected"
    code, _, err = city.records("hold", world.dm, "--reason", "再ホールド", "--config", str(city.org_file))
    assert code == 0, err
    assert world.holds()[world.dm]["reason"] == "再ホールド"


# --- the rule itself, for senders a single homeserver cannot produce ------------------------------

class FakeApi:
    """The module API as the guard uses it: this server is lgwan.test, its one admin @admin."""

    def is_mine(self, user_id: str) -> bool:
        return user_id.endswith(":lgwan.test")

    async def is_user_admin(self, user_id: str) -> bool:
        return user_id == "@admin:lgwan.test"


def refused_in(request: ContextRequest | None, sender: str) -> bool:
    api = FakeApi()
    guard = RecordsGuard(api, StateKeeper(api))  # type: ignore[arg-type]

    async def check() -> bool:
        return await guard.event_refusal(SimpleNamespace(sender=sender)) is not None

    if request is None:
        return asyncio.run(check())
    with PreserveLoggingContext(LoggingContext(name="test", server_name="test", request=request)):
        return asyncio.run(check())


def request(requester: str | None, authenticated_entity: str | None) -> ContextRequest:
    return ContextRequest(request_id="PUT-1", ip_address="127.0.0.1", site_tag="lgwan", requester=requester,
                          authenticated_entity=authenticated_entity, method="PUT", url="/x", protocol="1.1",
                          user_agent="test")


@pytest.mark.parametrize("context, sender, refused", [
    (None, "@admin:lgwan.test", True),  # background work, or an event from another server: no client request
    (request("remote.test", "remote.test"), "@admin:remote.test", True),  # a federation request
    (request("@admin:remote.test", "@admin:remote.test"), "@admin:remote.test", True),
    (request("@staff:lgwan.test", "@staff:lgwan.test"), "@staff:lgwan.test", True),
    (request("@admin:lgwan.test", "@admin:lgwan.test"), "@staff:lgwan.test", True),  # not the sender's request
    (request("@staff:lgwan.test", "@admin:remote.test"), "@staff:lgwan.test", True),
    (request("@admin:lgwan.test", "@admin:lgwan.test"), "@admin:lgwan.test", False),
    (request("@staff:lgwan.test", "@admin:lgwan.test"), "@staff:lgwan.test", False),  # the admin's login as staff
], ids=["no-request", "federation", "remote-admin", "staff", "other-sender", "remote-puppeteer", "admin", "puppet"])
def test_who_counts_as_the_records_flow(context, sender, refused):
    assert refused_in(context, sender) is refused


# --- putting back what another server changed (the live case: test_records_guard_federation.py) ---

class KeeperApi(FakeApi):
    """A room whose hold (or ``event_type``) another server's event replaced (or, with ``redaction``,
    whose hold of ours the newest of ``history`` another server redacted); ``history``: (sender,
    content), newest first, as ``state_history_txn`` reads it; sending runs the guard as Synapse's spam
    check does."""

    def __init__(self, history: list[tuple[str, dict]], send_fails: bool = False,
                 event_type: str = "jp.lgwan.records.hold", redaction: str | None = None):
        self.history = history
        self.send_fails = send_fails
        self.event_type = event_type
        self.redaction = redaction
        self.sent: list[dict] = []
        self.guard: RecordsGuard | None = None
        self.theirs: dict = {"held": False}

    async def get_room_state(self, room_id, keys):
        from synapse.synapse_rust.events import EventInternalMetadata

        assert (self.event_type, "") in keys
        metadata = EventInternalMetadata({})
        if self.redaction is None:
            sender, content = "@partner:remote.test", self.theirs
        else:  # as Synapse reads a redacted event: pruned, and marked
            (sender, _), content = self.history[0], {}
            metadata.redacted, metadata.redacted_by = True, self.redaction
        return {(self.event_type, ""): SimpleNamespace(sender=sender, event_id="$current", content=content,
                                                       internal_metadata=metadata)}

    async def run_db_interaction(self, desc, func, *args):
        assert func.__name__ == "state_history_txn" and args == ("!room:lgwan.test", self.event_type)
        return self.history

    async def create_and_send_event_into_room(self, event_dict):
        event = SimpleNamespace(get_state_key=lambda: event_dict["state_key"], **{
            k: v for k, v in event_dict.items() if k != "state_key"})
        assert self.guard is not None
        if self.send_fails or await self.guard.event_refusal(event) is not None:
            raise RuntimeError("refused")
        self.sent.append(event_dict)
        return SimpleNamespace(event_id="$ours-again")


def put_back(api: KeeperApi, state: str = "legal_hold") -> tuple[float, float]:
    from synapse_modules._metrics import PROTECTED_STATE_RESTORED

    keeper = StateKeeper(api)  # type: ignore[arg-type]
    api.guard = RecordsGuard(api, keeper)  # type: ignore[arg-type]
    counts = [PROTECTED_STATE_RESTORED.labels(state=state, outcome=o) for o in ("restored", "failed")]
    before = [c._value.get() for c in counts]
    asyncio.run(keeper.restore("!room:lgwan.test"))
    assert not keeper._restoring  # the ticket is gone: the same event from a client is refused again
    after = [c._value.get() for c in counts]
    return after[0] - before[0], after[1] - before[1]


OURS = {"held": True, "reason": "監査対応", "by": "@admin:lgwan.test"}


def test_the_last_hold_of_ours_is_sent_again_by_its_sender_and_only_that_passes_the_guard():
    api = KeeperApi([("@partner:remote.test", {"held": False}), ("@staff:lgwan.test", OURS),
                     ("@staff:lgwan.test", {"held": True, "reason": "古い"})])
    assert put_back(api) == (1, 0)
    assert api.sent == [{"type": "jp.lgwan.records.hold", "room_id": "!room:lgwan.test",
                         "sender": "@staff:lgwan.test", "state_key": "", "content": OURS}]
    # outside a put-back the same event is refused as before
    event = SimpleNamespace(get_state_key=lambda: "", **{k: v for k, v in api.sent[0].items() if k != "state_key"})
    assert asyncio.run(api.guard.event_refusal(event)) is not None  # type: ignore[union-attr]


def test_a_hold_that_cannot_be_sent_again_is_counted_as_failed():
    api = KeeperApi([("@staff:lgwan.test", OURS)], send_fails=True)  # e.g. the member left the room
    assert put_back(api) == (0, 1) and api.sent == []


def test_a_room_that_never_had_a_hold_of_ours_is_left_alone():
    # e.g. a room another server made, whose retention its admins set: nothing was replaced
    api = KeeperApi([("@partner:remote.test", {"held": False})])
    assert put_back(api) == (0, 0) and api.sent == []


def test_another_servers_hold_of_the_same_room_is_left_alone():
    # two municipalities that both hold a shared room: neither puts its own back (no back and forth)
    api = KeeperApi([("@partner:remote.test", {"held": True, "reason": "先方の監査"}), ("@staff:lgwan.test", OURS)])
    api.theirs = {"held": True, "reason": "先方の監査"}
    assert put_back(api) == (0, 0) and api.sent == []


def test_our_lgwan_only_marker_lifted_by_another_server_is_sent_again_by_the_room_admin_who_set_it():
    marker = {"lgwan_only": True}
    api = KeeperApi([("@partner:remote.test", {"lgwan_only": False}), ("@kacho:lgwan.test", marker)],
                    event_type="jp.lgwan.room.zone")
    api.theirs = {"lgwan_only": False}
    assert put_back(api, "zone_marker") == (1, 0)
    assert api.sent == [{"type": "jp.lgwan.room.zone", "room_id": "!room:lgwan.test",
                         "sender": "@kacho:lgwan.test", "state_key": "", "content": marker}]


@pytest.mark.parametrize("event_type, ours", [("jp.lgwan.records.hold", OURS),
                                               ("jp.lgwan.room.zone", {"lgwan_only": True}),
                                               ("m.room.retention", {"max_lifetime": HOLD_LIFETIME_MS})])
def test_our_state_redacted_by_another_server_is_sent_again_while_its_content_is_still_stored(event_type, ours):
    api = KeeperApi([("@staff:lgwan.test", ours)], event_type=event_type, redaction="$theirs")
    state = {"jp.lgwan.records.hold": "legal_hold", "jp.lgwan.room.zone": "zone_marker"}.get(event_type, "retention")
    assert put_back(api, state) == (1, 0)
    assert api.sent == [{"type": event_type, "room_id": "!room:lgwan.test", "sender": "@staff:lgwan.test",
                         "state_key": "", "content": ours}]


def test_a_lifted_hold_or_marker_of_ours_that_was_redacted_is_sent_again_as_it_was():
    # a redacted hold counts as held, a redacted marker as LGWAN-only: ours said otherwise
    for event_type, state, lifted in (("jp.lgwan.records.hold", "legal_hold", {"held": False}),
                                      ("jp.lgwan.room.zone", "zone_marker", {"lgwan_only": False})):
        api = KeeperApi([("@staff:lgwan.test", lifted)], event_type=event_type, redaction="$theirs")
        assert put_back(api, state) == (1, 0)
        assert [sent["content"] for sent in api.sent] == [lifted]


def test_a_redacted_value_whose_stored_copy_synapse_blanked_is_left_as_it_reads():
    # after redaction_retention_period: sending {} would keep less than the redacted event does
    api = KeeperApi([("@staff:lgwan.test", {})], event_type="jp.lgwan.room.zone", redaction="$theirs")
    assert put_back(api, "zone_marker") == (0, 0) and api.sent == []


@pytest.mark.parametrize("event_type, ours, theirs, weaker", [
    ("jp.lgwan.records.hold", {"held": True}, {"held": False}, True),
    ("jp.lgwan.records.hold", {"held": True}, {}, True),  # blanked (redacted, or soft-failed and pruned)
    ("jp.lgwan.records.hold", {"held": True}, {"held": True, "reason": "先方"}, False),
    ("jp.lgwan.records.hold", {"held": False}, {"held": True}, False),
    ("m.room.retention", {"max_lifetime": 10}, {"max_lifetime": 5}, True),
    ("m.room.retention", {"max_lifetime": 10}, {}, True),  # the server's default policy instead
    ("m.room.retention", {"max_lifetime": 10}, {"max_lifetime": "10"}, True),
    ("m.room.retention", {"max_lifetime": 10}, {"max_lifetime": 10}, False),
    ("m.room.retention", {"max_lifetime": 10}, {"max_lifetime": 20}, False),
    ("m.room.retention", {}, {"max_lifetime": 20}, False),
    ("jp.lgwan.room.zone", {"lgwan_only": True}, {"lgwan_only": False}, True),
    ("jp.lgwan.room.zone", {"lgwan_only": True}, {}, True),  # blanked (redacted, or soft-failed and pruned)
    ("jp.lgwan.room.zone", {"lgwan_only": True}, {"lgwan_only": "true"}, True),
    ("jp.lgwan.room.zone", {"lgwan_only": True}, {"lgwan_only": True, "note": "先方"}, False),
    ("jp.lgwan.room.zone", {"lgwan_only": False}, {}, False),
])
def test_what_counts_as_keeping_less(event_type, ours, theirs, weaker):
    assert weakens(event_type, ours, theirs) is weaker
