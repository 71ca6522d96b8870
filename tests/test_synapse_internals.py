"""Fails loudly when Synapse changes an internal detail the zone rules rely on.

The live counterpart is test_zone_endpoint.py: the zone endpoint reads the
request origin through the same helper inside a real Synapse process.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any, get_type_hints

import attrs
from synapse.logging.context import ContextRequest, LoggingContext, PreserveLoggingContext
from synapse.synapse_rust.events import EventInternalMetadata

from synapse_modules._synapse_internals import current_request_origin, event_device_id, is_redacted, redacted_by


def test_logging_context_request_still_carries_site_tag_ip_and_user_agent():
    fields = get_type_hints(ContextRequest)
    for name in ("site_tag", "ip_address", "user_agent", "request_id", "requester", "url", "authenticated_entity"):
        assert name in fields, f"Synapse's ContextRequest lost {name!r}: zone detection is broken"


def test_current_request_origin_reads_the_logging_context():
    request = ContextRequest(request_id="GET-1", ip_address="10.1.2.3", site_tag="lgwan",
                             requester="@a:x", authenticated_entity=None, method="GET", url="/x",
                             protocol="1.1", user_agent="Element/1.11")
    with PreserveLoggingContext(LoggingContext(name="test", server_name="test", request=request)):
        origin = current_request_origin()
    assert origin is not None
    assert (origin.site_tag, origin.ip_address, origin.user_agent) == ("lgwan", "10.1.2.3", "Element/1.11")
    assert (origin.request_id, origin.requester, origin.url) == ("GET-1", "@a:x", "/x")
    assert current_request_origin() is None  # background work has no request


def test_current_request_origin_names_the_admin_behind_a_login_as_token():
    """zones/records_guard.py tells the records flow by the request's authenticated entity: the admin
    whose admin API "login as user" token acts as a member (or the requester, for any other token)."""
    import inspect

    from synapse.api.auth.internal import InternalAuth
    from synapse.http.site import SynapseRequest
    from synapse.rest.admin.users import UserTokenRestServlet
    from synapse.storage.databases.main.registration import RegistrationWorkerStore

    request = ContextRequest(request_id="PUT-7", ip_address="127.0.0.1", site_tag="lgwan",
                             requester="@member:x", authenticated_entity="@admin:x", method="PUT",
                             url="/state", protocol="1.1", user_agent="lgwan-chat")
    with PreserveLoggingContext(LoggingContext(name="test", server_name="test", request=request)):
        origin = current_request_origin()
    assert origin is not None and (origin.requester, origin.authenticated_entity) == ("@member:x", "@admin:x")
    # the token: the admin's, puppeting the member; looked up as (member, owner = admin) ...
    login_as = inspect.getsource(UserTokenRestServlet.on_POST)
    assert "user_id=auth_user.to_string()" in login_as and "puppets_user_id=user_id" in login_as
    lookup = inspect.getsource(RegistrationWorkerStore._query_for_auth)
    assert "access_tokens.user_id as token_owner" in lookup and "COALESCE(puppets_user_id" in lookup
    # ... becomes the requester's authenticated entity, and the logging context's
    assert "authenticated_entity=user_info.token_owner" in inspect.getsource(InternalAuth.get_user_by_access_token)
    setter = inspect.getsource(vars(SynapseRequest)["requester"].fset)
    assert "self.logcontext.request.authenticated_entity = authenticated_entity or requester" in setter


def test_event_internal_metadata_still_has_device_id():
    metadata = EventInternalMetadata({})
    metadata.device_id = "PHONEDEVICE"
    assert event_device_id(SimpleNamespace(internal_metadata=metadata)) == "PHONEDEVICE"
    assert event_device_id(SimpleNamespace(internal_metadata=EventInternalMetadata({}))) is None


def test_a_redacted_event_is_still_marked_in_its_internal_metadata():
    # Synapse's event store redacts an event it reads with prune_event (another server's redaction
    # too): the zone rules count a redacted LGWAN-only marker as still LGWAN-only
    from synapse.api.room_versions import RoomVersions
    from synapse.events import make_event_from_dict
    from synapse.events.utils import prune_event

    marker = make_event_from_dict({"type": "jp.lgwan.room.zone", "state_key": "", "room_id": "!r:lgwan.test",
                                   "sender": "@a:lgwan.test", "content": {"lgwan_only": True},
                                   "auth_events": [], "prev_events": [], "depth": 1, "origin_server_ts": 0,
                                   "hashes": {"sha256": "x"}, "signatures": {}},
                                  RoomVersions.V10)
    assert not is_redacted(marker) and redacted_by(marker) is None
    pruned = prune_event(marker)
    assert is_redacted(pruned) and pruned.content == {}
    # ... and names the redaction it applied (the state keeper's log says which)
    pruned.internal_metadata.redacted_by = "$redaction"
    assert redacted_by(pruned) == "$redaction"
    import inspect

    from synapse.storage.databases.main.events_worker import EventsWorkerStore
    source = inspect.getsource(EventsWorkerStore._maybe_redact_event_row)
    assert "redacted_event = prune_event(original_ev)" in source
    assert "redacted_event.internal_metadata.redacted_by = redaction_id" in source


def test_every_servlet_authenticates_through_one_cached_auth_object():
    """wrap_request_authentication patches hs.get_auth().get_user_by_req: both must still exist."""
    import inspect
    import re

    from synapse.api.auth.internal import InternalAuth
    from synapse.api.auth.mas import MasDelegatedAuth
    from synapse.module_api import ModuleApi
    from synapse.server import HomeServer

    # get_auth is cached on the homeserver (one object shared by every servlet and the module API).
    assert re.search(r"@cache_in_self\s+def get_auth\(self\)", inspect.getsource(HomeServer))
    assert "self._hs = hs" in inspect.getsource(ModuleApi.__init__)
    assert "self._auth = hs.get_auth()" in inspect.getsource(ModuleApi.__init__)
    for auth_class in (InternalAuth, MasDelegatedAuth):
        method = auth_class.get_user_by_req
        assert inspect.iscoroutinefunction(method), auth_class
        assert list(inspect.signature(method).parameters)[:2] == ["self", "request"], auth_class


def test_events_seen_by_still_finds_synapse_event_reading_and_visibility():
    """events_seen_by (bookmarks) reads events as GET /rooms/{roomId}/event/{eventId} does.

    The live counterpart is test_bookmarks.py (edits, redactions, history visibility)."""
    import inspect

    from synapse.events.utils import FilteredEvent
    from synapse.handlers.events import EventHandler
    from synapse.server import HomeServer
    from synapse.storage.databases.main import DataStore
    from synapse.storage.databases.main.events_worker import EventRedactBehaviour
    from synapse.synapse_rust.events import EventInternalMetadata
    from synapse.visibility import filter_and_transform_events_for_client

    for name in ("get_datastores", "get_storage_controllers"):
        assert callable(getattr(HomeServer, name, None)), f"HomeServer lost {name}"
    get_events = inspect.signature(DataStore.get_events)
    assert list(get_events.parameters)[:2] == ["self", "event_ids"]
    assert get_events.parameters["redact_behaviour"].default is EventRedactBehaviour.redact
    edits = inspect.getattr_static(DataStore, "get_applicable_edits")  # a cached-list descriptor
    assert list(inspect.signature(edits.orig).parameters) == ["self", "event_ids"]
    filtering = inspect.signature(filter_and_transform_events_for_client)
    assert list(filtering.parameters)[:4] == ["storage", "user_id", "events", "is_peeking"]
    assert "event" in attrs.fields_dict(FilteredEvent), "filtered events no longer carry .event"
    assert callable(EventInternalMetadata({}).is_redacted)
    # Synapse's own single-event read still goes through the same two steps.
    source = inspect.getsource(EventHandler.get_event)
    assert "self.store.get_event(" in source and "filter_and_transform_events_for_client(" in source


SYNAPSE_COLUMNS_READ_BY_READ_STATUS = {
    "events": ["event_id", "room_id", "stream_ordering", "sender", "origin_server_ts", "outlier",
               "rejection_reason", "state_key", "type"],
    "event_relations": ["event_id", "relates_to_id", "relation_type", "aggregation_key"],
    "current_state_events": ["room_id", "type", "state_key", "membership", "event_stream_ordering"],
    "receipts_linearized": ["room_id", "receipt_type", "user_id", "thread_id", "event_stream_ordering", "data",
                            "stream_id"],
}

#: What keeps the read status cache's "what changed since" reads to a few index lookups.
SYNAPSE_INDEXES_USED_BY_READ_STATUS = {
    "events_room_stream": ("events", ["room_id", "stream_ordering"]),
    "receipts_linearized_room_stream": ("receipts_linearized", ["room_id", "stream_id"]),
}


def test_synapse_tables_read_by_the_read_status_module_still_exist(homeserver):
    """synapse_modules/read_status/synapse_tables.py reads these columns on SQLite and PostgreSQL."""
    for table, columns in SYNAPSE_COLUMNS_READ_BY_READ_STATUS.items():
        homeserver.query(f"SELECT {', '.join(columns)} FROM {table} LIMIT 0")


def test_synapse_indexes_used_by_the_read_status_cache_still_exist(homeserver):
    """synapse_modules/read_status/room_cache.py reads "after position N" through these indexes."""
    for name, (table, columns) in SYNAPSE_INDEXES_USED_BY_READ_STATUS.items():
        if homeserver.backend == "postgres":
            rows = homeserver.query("SELECT indexdef FROM pg_indexes WHERE indexname = ? AND tablename = ?",
                                    name, table)
        else:
            rows = homeserver.query("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ? AND tbl_name = ?",
                                    name, table)
        assert rows, f"Synapse no longer has index {name} on {table}"
        definition = rows[0][0].replace(" ", "")
        assert f"({','.join(columns)})" in definition, definition


SYNAPSE_COLUMNS_READ_BY_BOOKMARKS = {
    "events": ["event_id", "type", "sender", "room_id", "stream_ordering", "origin_server_ts", "outlier",
               "rejection_reason"],
    "event_relations": ["event_id", "relates_to_id", "relation_type", "aggregation_key"],
    "redactions": ["event_id", "redacts"],
}


def test_synapse_tables_read_by_the_bookmarks_feed_still_exist(homeserver):
    """synapse_modules/bookmarks/synapse_tables.py reads these columns on SQLite and PostgreSQL."""
    for table, columns in SYNAPSE_COLUMNS_READ_BY_BOOKMARKS.items():
        homeserver.query(f"SELECT {', '.join(columns)} FROM {table} LIMIT 0")


def test_the_records_guard_still_finds_the_type_of_a_redacted_event(homeserver):
    """zones/records_guard.py: a redaction names only its target; ``event_type_txn`` reads its type."""
    homeserver.query("SELECT event_id, room_id, type FROM events LIMIT 0")


def test_the_records_keeper_still_reads_the_state_history_it_restores_from(homeserver):
    """zones/records_guard.py puts back a hold or retention another server changed: it reads these
    columns (``state_changes_since_txn``, ``current_state_senders_txn``, ``state_history_txn``) and
    a room's state changes through Synapse's index on (room_id, stream_id)."""
    from synapse_modules._synapse_internals import state_stream_position_txn

    homeserver.query("SELECT stream_id, room_id, type, state_key, event_id FROM current_state_delta_stream LIMIT 0")
    homeserver.query("SELECT room_id, type, state_key, event_id FROM current_state_events LIMIT 0")
    homeserver.query("SELECT event_id, json FROM event_json LIMIT 0")
    homeserver.query("SELECT event_id, min_lifetime, max_lifetime FROM room_retention LIMIT 0")
    name, table = "current_state_delta_stream_room_idx", "current_state_delta_stream"
    if homeserver.backend == "postgres":
        rows = homeserver.query("SELECT indexdef FROM pg_indexes WHERE indexname = ? AND tablename = ?", name, table)
    else:
        rows = homeserver.query("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ? AND tbl_name = ?",
                                name, table)
    assert rows and "(room_id,stream_id)" in rows[0][0].replace(" ", ""), rows

    class Cursor:  # the position helper on the test's own database connection
        def execute(self, sql, args=()):
            self.rows = homeserver.query(sql, *args)

        def fetchone(self):
            return self.rows[0]

    assert isinstance(state_stream_position_txn(Cursor()), int)  # the SQL runs on this backend


def test_federation_domain_whitelist_is_still_read_from_the_federation_config():
    """The federation allow-list module compares the list with hs.config.federation.federation_domain_whitelist."""
    from synapse.config.federation import FederationConfig

    from synapse_modules._synapse_internals import federation_domain_whitelist

    def api_for(raw: dict):
        root: Any = SimpleNamespace()  # no other section is read
        config = FederationConfig(root)
        config.read_config(raw)
        return SimpleNamespace(_hs=SimpleNamespace(config=SimpleNamespace(federation=config)))

    assert federation_domain_whitelist(api_for({"federation_domain_whitelist": ["b.test", "a.test"]})) \
        == ["a.test", "b.test"]
    assert federation_domain_whitelist(api_for({})) is None


def test_register_password_user_still_finds_the_password_hash_and_registration_handler():
    """The guests module creates accounts with a password through hs.get_auth_handler().hash and
    hs.get_registration_handler().register_user (what the admin API's PUT v2/users calls)."""
    import inspect

    from synapse.handlers.auth import AuthHandler
    from synapse.handlers.register import RegistrationHandler
    from synapse.server import HomeServer

    from synapse_modules._synapse_internals import register_password_user

    assert callable(HomeServer.get_auth_handler) and callable(HomeServer.get_registration_handler)
    assert inspect.iscoroutinefunction(AuthHandler.hash)
    assert list(inspect.signature(AuthHandler.hash).parameters) == ["self", "password"]
    assert inspect.iscoroutinefunction(RegistrationHandler.register_user)
    params = inspect.signature(RegistrationHandler.register_user).parameters
    assert {"localpart", "password_hash", "default_display_name", "by_admin"} <= set(params)

    calls = {}

    class Auth:
        async def hash(self, password):
            return "hashed:" + password

    class Registration:
        async def register_user(self, **kwargs):
            calls.update(kwargs)
            return "@guest:lgwan.test"

    hs = type("HS", (), {"get_auth_handler": lambda self: Auth(),
                         "get_registration_handler": lambda self: Registration()})()
    api = type("Api", (), {"_hs": hs})()
    assert asyncio.run(register_password_user(api, "guest", "pw", "山田（外部）")) == "@guest:lgwan.test"
    assert calls == {"localpart": "guest", "password_hash": "hashed:pw", "default_display_name": "山田（外部）",
                     "by_admin": True}


def test_well_known_is_built_from_the_server_config_on_every_request():
    """set_client_well_known (zones: io.element.e2ee) replaces
    hs.config.server.extra_well_known_client_content, which WellKnownBuilder reads per request.
    The live counterparts are the well-known tests of test_zone_calls_and_encryption.py and
    test_zone_encryption_allowed.py."""
    import inspect

    from synapse.config.server import ServerConfig
    from synapse.rest.well_known import WellKnownBuilder

    from synapse_modules._synapse_internals import set_client_well_known

    assert "extra_well_known_client_content" in inspect.getsource(ServerConfig.read_config)
    source = inspect.getsource(WellKnownBuilder.get_well_known)
    assert "self._config.server.extra_well_known_client_content" in source
    assert "self._config = hs.config" in inspect.getsource(WellKnownBuilder.__init__)

    server = SimpleNamespace(serve_client_wellknown=True, public_baseurl="https://chat.example/",
                             extra_well_known_client_content={"org.example": {"a": 1}})
    config = SimpleNamespace(server=server, registration=SimpleNamespace(default_identity_server=None),
                             mas=SimpleNamespace(enabled=False))
    hs: Any = SimpleNamespace(config=config, get_auth=lambda: None)  # what WellKnownBuilder reads of it
    builder = WellKnownBuilder(hs)
    set_client_well_known(SimpleNamespace(_hs=hs), "io.element.e2ee", {"force_disable": True})
    served = asyncio.run(builder.get_well_known())
    assert served is not None
    assert served["io.element.e2ee"] == {"force_disable": True}
    assert served["org.example"] == {"a": 1}  # the admin's own keys stay


def test_url_preview_media_is_still_marked_by_url_cache():
    """is_url_preview_media_txn reads local_media_repository.url_cache, which Synapse's URL
    previewer fills (store_local_media(..., url_cache=url)) and uploads leave NULL.
    The live counterpart is test_zone_url_previews.py."""
    import inspect
    import sqlite3

    from synapse.media.url_previewer import UrlPreviewer
    from synapse.storage.databases.main.media_repository import MediaRepositoryStore

    from synapse_modules._synapse_internals import is_url_preview_media_txn

    assert "url_cache" in inspect.signature(MediaRepositoryStore.store_local_media).parameters
    assert "url_cache=url" in inspect.getsource(UrlPreviewer._handle_url)
    assert '"url_cache": url_cache' in inspect.getsource(MediaRepositoryStore.store_local_media)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE local_media_repository (media_id TEXT, url_cache TEXT)")
    db.execute("INSERT INTO local_media_repository VALUES ('preview', 'https://example.org/'), ('upload', NULL)")
    assert is_url_preview_media_txn(db.cursor(), "preview") is True
    assert is_url_preview_media_txn(db.cursor(), "upload") is False
    assert is_url_preview_media_txn(db.cursor(), "absent") is False


def test_room_creation_still_runs_the_callbacks_the_zone_rules_use():
    """zones/event_rules.py relies on: createRoom calls on_create_room (admins included) before any
    event is created; its events are persisted without check_event_for_spam; upgrades call
    user_may_create_room (admins included) with creation_content and initial_state.
    The live counterpart is test_zone_entry_points.py."""
    import inspect

    from synapse.handlers.room import RoomCreationHandler

    create = inspect.getsource(RoomCreationHandler.create_room)
    assert create.index("self._third_party_event_rules.on_create_room(") < create.index(
        "self._send_events_for_new_room(")
    assert "is_requester_admin=is_requester_admin" in create
    send = inspect.getsource(RoomCreationHandler._send_events_for_new_room)
    assert "check_event_for_spam" not in send  # why initial_state is checked in on_create_room
    clone = inspect.getsource(RoomCreationHandler.clone_existing_room)
    assert clone.index("user_may_create_room(") < clone.index("self._send_events_for_new_room(")
    assert '"creation_content": dict(creation_content)' in clone and '"initial_state": [' in clone
    between = clone[clone.index("user_may_create_room("):clone.index("self._send_events_for_new_room(")]
    assert "is_requester_admin" not in between  # admins upgrading are checked too


def test_local_media_still_gets_its_length_only_once_uploaded():
    """The LGWAN media gate asks local_media_has_content: hs datastore get_local_media -> LocalMedia.media_length
    (None while a /_matrix/media/v1/create ID waits for its upload). Live: tests/test_zone_entrance_paths.py."""
    from synapse.storage.databases.main.media_repository import LocalMedia, MediaRepositoryStore

    assert "media_length" in attrs.fields_dict(LocalMedia)
    assert callable(MediaRepositoryStore.get_local_media)
    assert get_type_hints(LocalMedia)["media_length"] == int | None


def test_client_well_known_is_still_answered_by_the_builder_in_the_request(monkeypatch):
    """extend_client_well_known (zones: maps and group calls per entrance) wraps
    WellKnownBuilder.get_well_known, which ClientWellKnownResource calls for each request inside
    the request's logging context. The live counterpart is test_phones.py (both nginx entrances)."""
    import inspect

    from synapse.rest.well_known import ClientWellKnownResource, WellKnownBuilder

    from synapse_modules._synapse_internals import extend_client_well_known

    assert "self._well_known_builder = WellKnownBuilder(hs)" in inspect.getsource(ClientWellKnownResource.__init__)
    assert "await self._well_known_builder.get_well_known()" in inspect.getsource(
        ClientWellKnownResource._async_render_GET)
    assert inspect.iscoroutinefunction(WellKnownBuilder.get_well_known)
    assert list(inspect.signature(WellKnownBuilder.get_well_known).parameters) == ["self"]
    assert "self._config = hs.config" in inspect.getsource(WellKnownBuilder.__init__)

    monkeypatch.setattr(WellKnownBuilder, "get_well_known", WellKnownBuilder.get_well_known)  # restored after

    def fake_hs(base: str) -> Any:  # what WellKnownBuilder reads of a HomeServer
        server = SimpleNamespace(serve_client_wellknown=True, public_baseurl=base,
                                 extra_well_known_client_content={"org.example": {"a": 1}})
        return SimpleNamespace(config=SimpleNamespace(server=server, mas=SimpleNamespace(enabled=False),
                                                      registration=SimpleNamespace(default_identity_server=None)),
                               get_auth=lambda: None)

    ours, other = fake_hs("https://chat.example/"), fake_hs("https://other.example/")
    asked: list[int] = []

    def extra() -> dict[str, Any]:
        asked.append(1)
        return {"m.tile_server": {"map_style_url": "https://tiles/style.json"}, "m.homeserver": "not this"}

    extend_client_well_known(SimpleNamespace(_hs=ours), extra)
    served = asyncio.run(WellKnownBuilder(ours).get_well_known())
    assert served is not None
    assert served["m.tile_server"] == {"map_style_url": "https://tiles/style.json"} and asked == [1]
    assert served["m.homeserver"] == {"base_url": "https://chat.example/"}  # Synapse's own keys win
    assert served["org.example"] == {"a": 1}
    other_served = asyncio.run(WellKnownBuilder(other).get_well_known())  # another homeserver
    assert other_served is not None and "m.tile_server" not in other_served


def test_pushers_are_still_added_through_the_pusher_pool():
    """wrap_pusher_registration (zones/pushers.py) wraps hs.get_pusherpool().add_or_update_pusher,
    which POST /pushers/set calls with keywords. The live counterpart is test_phones.py."""
    import inspect
    import re

    from synapse.push.pusherpool import PusherPool
    from synapse.rest.client.pusher import PushersSetRestServlet
    from synapse.server import HomeServer

    from synapse_modules._synapse_internals import wrap_pusher_registration

    assert re.search(r"@cache_in_self\s+def get_pusherpool\(self\)", inspect.getsource(HomeServer))
    assert "self.pusher_pool = self.hs.get_pusherpool()" in inspect.getsource(PushersSetRestServlet.__init__)
    servlet = inspect.getsource(PushersSetRestServlet.on_POST)
    assert "await self.pusher_pool.add_or_update_pusher(" in servlet
    for keyword in ("user_id=user_id", 'kind=content["kind"]', 'data=content["data"]',
                    "device_id=requester.device_id"):
        assert keyword in servlet, keyword
    parameters = inspect.signature(PusherPool.add_or_update_pusher).parameters
    assert {"user_id", "kind", "data", "device_id"} <= set(parameters)
    # the other users' pushers with the same pushkey are removed first, through the pool, by keywords
    removal = "await self.pusher_pool.remove_pushers_by_app_id_and_pushkey_not_user("
    assert removal in servlet and servlet.index(removal) < servlet.index("add_or_update_pusher(")
    assert {"app_id", "pushkey", "not_user_id"} == (
        set(inspect.signature(PusherPool.remove_pushers_by_app_id_and_pushkey_not_user).parameters) - {"self"})

    calls, checked = [], []

    class Pool:
        async def add_or_update_pusher(self, user_id, kind, app_id, app_display_name, device_display_name,
                                       pushkey, lang, data, profile_tag="", enabled=True, device_id=None):
            calls.append((user_id, kind, data, device_id))

    pool = Pool()

    async def check(user_id, device_id, kind, data):
        checked.append((user_id, device_id, kind, data))
        if data.get("format") != "event_id_only":
            raise PermissionError("refused")

    wrap_pusher_registration(SimpleNamespace(_hs=SimpleNamespace(get_pusherpool=lambda: pool)), check)
    args = dict(user_id="@a:x", kind="http", app_id="a", app_display_name="A", device_display_name="D",
                pushkey="k", lang="ja", profile_tag="", enabled=True, device_id="PHONE")
    asyncio.run(pool.add_or_update_pusher(**args, data={"format": "event_id_only"}))
    assert calls == [("@a:x", "http", {"format": "event_id_only"}, "PHONE")]
    with contextlib.suppress(PermissionError):
        asyncio.run(pool.add_or_update_pusher(**args, data={}))
    assert len(calls) == 1 and checked[-1] == ("@a:x", "PHONE", "http", {})  # refused before Synapse stores it


def test_turn_route_is_still_the_one_the_zone_module_refuses():
    """zones/turn.py refuses GET /voip/turnServer by path: every path Synapse serves it at must match."""
    from synapse.rest.client.voip import VoipRestServlet

    from synapse_modules.zones.turn import TURN_SERVER_PATH

    for version in ("api/v1", "r0", "v3", "v4", "unstable", "v1", "client"):
        path = f"/_matrix/client/{version}/voip/turnServer"
        if any(pattern.match(path) for pattern in VoipRestServlet.PATTERNS):
            assert TURN_SERVER_PATH.match(path), path
    assert any(pattern.match("/_matrix/client/v3/voip/turnServer") for pattern in VoipRestServlet.PATTERNS)


def test_device_approval_still_finds_sending_devices_and_device_handling(homeserver):
    """zones/device_approval.py: which device sent an event (``sending_device_txn``), a user's devices
    (``user_devices``) and logging one out (``delete_device``)."""
    import inspect

    from synapse.handlers.device import DeviceHandler
    from synapse.storage.databases.main.devices import DeviceWorkerStore

    homeserver.query("SELECT event_id, room_id, user_id, device_id, txn_id FROM event_txn_id_device_id LIMIT 0")
    assert list(inspect.signature(DeviceHandler.delete_devices).parameters)[1:3] == ["user_id", "device_ids"]
    assert "user_id" in inspect.signature(DeviceWorkerStore.get_devices_by_user).parameters


def test_logins_still_check_credentials_through_the_one_auth_handler():
    """wrap_login_check patches hs.get_auth_handler().validate_login(submission, ratelimit, is_reauth):
    the login servlet must still call it on that cached object, a wrong password or user must still
    raise LoginError from it, and re-authentication must still say so by ``is_reauth``."""
    import inspect
    import re

    from synapse.api.errors import LimitExceededError, LoginError, SynapseError
    from synapse.handlers.auth import AuthHandler
    from synapse.rest.client.login import LoginRestServlet
    from synapse.server import HomeServer

    from synapse_modules._synapse_internals import is_failed_login

    assert re.search(r"@cache_in_self\s+def get_auth_handler\(self\)", inspect.getsource(HomeServer))
    assert "self.auth_handler = self.hs.get_auth_handler()" in inspect.getsource(LoginRestServlet.__init__)
    assert "self.auth_handler.validate_login(" in inspect.getsource(LoginRestServlet._do_other_login)
    assert list(inspect.signature(AuthHandler.validate_login).parameters) == \
        ["self", "login_submission", "ratelimit", "is_reauth"]
    assert "self.validate_login(authdict, is_reauth=True)" in inspect.getsource(AuthHandler)
    assert "raise LoginError(403, msg=INVALID_USERNAME_OR_PASSWORD" in \
        inspect.getsource(AuthHandler._validate_userid_login)
    assert is_failed_login(LoginError(403, "Invalid username or password"))
    assert not is_failed_login(LimitExceededError("failed_login")) and not is_failed_login(SynapseError(400, "x"))
