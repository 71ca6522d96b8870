"""The only place where the suite touches Synapse internals (not the module API).

Each helper wraps one internal detail listed in ``shared/MATRIX-FACTS.md``;
``tests/test_synapse_internals.py`` fails loudly when a Synapse upgrade
changes one of them, instead of the zone rules silently stopping to apply.
"""

from __future__ import annotations

import json
from typing import Any

import attrs


@attrs.frozen
class RequestOrigin:
    #: The ``tag:`` of the listener the request arrived on (Synapse's "site tag").
    site_tag: str
    #: The client's address (the first X-Forwarded-For entry with ``x_forwarded: true``).
    ip_address: str
    user_agent: str
    #: Synapse's id of the request (e.g. "POST-42"), unique within the process.
    request_id: str = ""
    #: The user making the request, once authenticated.
    requester: str | None = None
    #: The request's path and query, as the client sent it.
    url: str = ""
    #: Whose token authenticated the request: ``requester`` itself, or the server admin whose admin
    #: API "login as user" token (a puppet token) acts as ``requester``.
    authenticated_entity: str | None = None


def current_request_origin() -> RequestOrigin | None:
    """Where the client request being handled came from; None in background work.

    Synapse copies the request's site tag, IP and user agent into the logging
    context (``synapse.logging.context.ContextRequest``) for every client request,
    and module callbacks run inside that context.
    """
    from synapse.logging.context import current_context

    request = getattr(current_context(), "request", None)
    if request is None:
        return None
    return RequestOrigin(site_tag=request.site_tag, ip_address=request.ip_address,
                         user_agent=request.user_agent, request_id=request.request_id,
                         requester=request.requester, url=request.url,
                         authenticated_entity=request.authenticated_entity)


def event_device_id(event: Any) -> str | None:
    """The device that sent a locally created event (``internal_metadata.device_id``)."""
    return getattr(event.internal_metadata, "device_id", None)


def is_redacted(event: Any) -> bool:
    """Has the event been redacted (``internal_metadata.is_redacted()``: Synapse applies a redaction
    when it reads the event, another server's too, even one the spam checker soft-failed)?"""
    return bool(event.internal_metadata.is_redacted())


def redacted_by(event: Any) -> str | None:
    """The redaction Synapse applied when it read the event (``internal_metadata.redacted_by``)."""
    return getattr(event.internal_metadata, "redacted_by", None) if is_redacted(event) else None


def wrap_request_authentication(api: Any, check: Any) -> None:
    """Run ``await check(requester)`` after Synapse authenticates any client request.

    The module API has no per-request callback, yet a device's zone must be
    checked on every request made with its token (a stolen internet-side token
    must not work on the LGWAN listener). Every servlet authenticates through
    the one ``Auth`` object of the homeserver (``hs.get_auth()``), calling its
    ``get_user_by_req(request, ...)``; this wraps that method on that object.
    ``check`` runs in the request's logging context (so
    ``current_request_origin()`` works) and refuses by raising a SynapseError.
    """
    auth = api._hs.get_auth()
    original = auth.get_user_by_req

    async def get_user_by_req(request: Any, *args: Any, **kwargs: Any) -> Any:
        requester = await original(request, *args, **kwargs)
        await check(requester)
        return requester

    get_user_by_req.__wrapped__ = original  # type: ignore[attr-defined]
    auth.get_user_by_req = get_user_by_req


def wrap_login_check(api: Any, around: Any) -> None:
    """Run each ``/login`` check of credentials as ``await around(check)``, where ``await check()``
    is Synapse's own check (it returns, or raises: :func:`is_failed_login` says which raise is a
    wrong password or user name).

    The module API sees successful logins only (``check_login_for_spam``), yet wrong passwords must
    be counted per client address (password spraying). The login servlet checks credentials through
    the homeserver's one ``AuthHandler`` (``hs.get_auth_handler().validate_login(submission,
    ratelimit, is_reauth)``); this wraps that method on that object. A signed-in user confirming a
    sensitive action (user-interactive auth: ``is_reauth=True``) is left as it is.
    """
    handler = api._hs.get_auth_handler()
    original = handler.validate_login

    async def validate_login(submission: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("is_reauth") or (len(args) > 1 and args[1]):
            return await original(submission, *args, **kwargs)
        return await around(lambda: original(submission, *args, **kwargs))

    validate_login.__wrapped__ = original  # type: ignore[attr-defined]
    handler.validate_login = validate_login


def is_failed_login(error: BaseException) -> bool:
    """A login refused for its credentials (Synapse's ``LoginError``: wrong password, unknown
    user), not for a malformed request or a rate limit."""
    from synapse.api.errors import LoginError

    return isinstance(error, LoginError)


async def upload_media(api: Any, uploader: str, data: bytes, content_type: str, name: str) -> str:
    """Store ``data`` in the media repository as uploaded by ``uploader``; returns its mxc:// URI.

    The module API cannot upload media, and stamps must be real media so that
    every client can show them: this calls the media repository of the
    homeserver (``hs.get_media_repository().create_or_update_content``).
    """
    import io

    from synapse.types import UserID

    repository = api._hs.get_media_repository()
    uri = await repository.create_or_update_content(content_type, name, io.BytesIO(data), len(data),
                                                    UserID.from_string(uploader))
    return str(uri)


async def local_media_has_content(api: Any, media_id: str) -> bool:
    """Has this local media ID received its content? False for an unknown ID, and for one
    created with ``/_matrix/media/v1/create`` whose upload has not happened yet (Synapse
    sets ``media_length`` only once the content is stored, after the media spam checks)."""
    media = await api._hs.get_datastores().main.get_local_media(media_id)
    return media is not None and media.media_length is not None


def active_local_users_txn(txn: Any) -> list[str]:
    """Every active, non-guest, non-appservice local user (``users`` table), for backfills."""
    txn.execute("SELECT name FROM users WHERE deactivated = 0 AND is_guest = 0 AND appservice_id IS NULL"
                " ORDER BY name")
    return [row[0] for row in txn.fetchall()]


async def events_seen_by(api: Any, user_id: str, event_ids: list[str]) -> dict[str, tuple[Any, Any | None]]:
    """Each event ``user_id`` may see now, as Synapse serves it to clients, with its latest edit.

    The module API cannot read events. This does for many events what
    ``GET /rooms/{roomId}/event/{eventId}`` does for one (``EventHandler.get_event``):
    the store returns redacted events pruned (``internal_metadata.is_redacted()``),
    ``filter_and_transform_events_for_client`` drops what the user may not see
    (history visibility, ignored senders, soft-failed events) and prunes erased
    senders' events, and ``get_applicable_edits`` gives the latest valid edit
    (``m.replace`` by the same sender; ``content["m.new_content"]``). Events the
    server does not have or the user may not see are absent. For rooms the user
    is joined to (``is_peeking=False``).
    """
    from synapse.storage.databases.main.events_worker import EventRedactBehaviour
    from synapse.visibility import filter_and_transform_events_for_client

    hs = api._hs
    store = hs.get_datastores().main
    found = await store.get_events(event_ids, redact_behaviour=EventRedactBehaviour.redact)
    visible = [f.event for f in await filter_and_transform_events_for_client(
        hs.get_storage_controllers(), user_id, list(found.values()), is_peeking=False)]
    edits = await store.get_applicable_edits([e.event_id for e in visible if not e.internal_metadata.is_redacted()])
    return {e.event_id: (e, edits.get(e.event_id)) for e in visible}


async def deactivate_user(api: Any, user_id: str) -> None:
    """Deactivate a local account as the admin API does (no erasure): it can no longer log in,
    its tokens stop working, it leaves its rooms.

    The module API cannot deactivate an account, and guest accounts must be
    deactivated at expiry by the module itself: this calls Synapse's
    ``DeactivateAccountHandler.deactivate_account(user_id, erase_data, requester, by_admin=...)``.
    Runs on the main process (the handler's home).
    """
    from synapse.types import create_requester

    handler = api._hs.get_deactivate_account_handler()
    await handler.deactivate_account(user_id, erase_data=False, requester=create_requester(user_id), by_admin=True)


def federation_domain_whitelist(api: Any) -> list[str] | None:
    """homeserver.yaml's ``federation_domain_whitelist`` as the running Synapse parsed it
    (None: federation with every server).

    The module API does not expose the homeserver's configuration, and the
    federation allow-list module must check at start that Synapse's own whitelist
    matches the list: this reads ``hs.config.federation.federation_domain_whitelist``
    (a dict ``{domain: True}``, or None when the key is absent).
    """
    configured = api._hs.config.federation.federation_domain_whitelist
    return None if configured is None else sorted(configured)


async def register_password_user(api: Any, localpart: str, password: str, display_name: str) -> str:
    """Create a local password account as the admin API does (``PUT /_synapse/admin/v2/users``);
    returns its user ID.

    The module API registers accounts without a password (``register_user``), and guest accounts
    must be created by the guests module for its managers (who are not server admins) with an
    initial password: this hashes it with ``hs.get_auth_handler().hash(password)`` and calls
    ``hs.get_registration_handler().register_user(localpart, password_hash, default_display_name,
    by_admin=True)``. Raises Synapse's SynapseError (e.g. ``M_USER_IN_USE``, ``M_INVALID_USERNAME``).
    """
    password_hash = await api._hs.get_auth_handler().hash(password)
    return await api._hs.get_registration_handler().register_user(
        localpart=localpart, password_hash=password_hash, default_display_name=display_name, by_admin=True)


def set_client_well_known(api: Any, key: str, value: Any) -> None:
    """Serve ``value`` under ``key`` in ``/.well-known/matrix/client`` (as if homeserver.yaml's
    ``extra_well_known_client_content`` had it).

    The module API cannot add to the client well-known, and whether Element offers
    encryption must follow the zone module's ``allow_encryption`` in every process:
    Synapse's ``WellKnownBuilder.get_well_known`` reads
    ``hs.config.server.extra_well_known_client_content`` on every request, so this
    sets the key there (a new dict: the parsed config is not shared with anything else).
    """
    server = api._hs.config.server
    server.extra_well_known_client_content = {**(server.extra_well_known_client_content or {}), key: value}


def is_url_preview_media_txn(txn: Any, media_id: str) -> bool:
    """Was this local media made by Synapse's URL previewer (page images, oEmbed thumbnails)?

    Synapse stores previewed files in ``local_media_repository`` with the page URL in its
    ``url_cache`` column (``MediaRepositoryStore.store_local_media(..., url_cache=url)``),
    NULL for uploads.
    """
    txn.execute("SELECT 1 FROM local_media_repository WHERE media_id = ? AND url_cache IS NOT NULL", (media_id,))
    return txn.fetchone() is not None


def extend_client_well_known(api: Any, extra: Any) -> None:
    """Add ``extra()``'s keys to each ``/.well-known/matrix/client`` answer of this homeserver,
    computed during the request (``current_request_origin()`` tells which entrance asked).

    The module API cannot touch the client well-known, and what Element is told about maps and
    group calls must differ per entrance (an LGWAN PC must not be sent to a public tile server).
    Synapse's ``ClientWellKnownResource`` answers with ``WellKnownBuilder.get_well_known()``
    (no request argument) inside the request's logging context; this wraps that method on the
    class, for the builders of this homeserver only (``builder._config is hs.config``). Keys
    Synapse sets itself (``m.homeserver`` ...) win.
    """
    from synapse.rest.well_known import WellKnownBuilder

    config = api._hs.config
    original = WellKnownBuilder.get_well_known

    async def get_well_known(self: Any) -> Any:
        result = await original(self)
        if result is None or self._config is not config:
            return result
        return {**extra(), **result}

    get_well_known.__wrapped__ = original  # type: ignore[attr-defined]
    WellKnownBuilder.get_well_known = get_well_known  # type: ignore[method-assign]


def wrap_pusher_registration(api: Any, check: Any, check_takeover: Any = None) -> None:
    """Run ``await check(user_id, device_id, kind, data)`` before Synapse adds or updates a pusher.

    The module API has no pusher callback, yet what a push gateway receives (through Apple and
    Google) must be decided by the suite. ``POST /pushers/set`` calls
    ``hs.get_pusherpool().add_or_update_pusher(user_id=, kind=, ..., data=, device_id=)`` (the
    one PusherPool of the process); this wraps that method on that object. ``check`` runs in the
    request's logging context and refuses by raising a SynapseError; deleting a pusher
    (``kind: null``) does not go through here.

    Before adding, the servlet (unless ``append``) removes the pushers of *other* users with the
    same app_id and pushkey (a pushkey belongs to one phone). ``check_takeover(user_id,
    device_id)``, given, runs before that removal so that a refused registration cannot delete
    anyone's pusher first.
    """
    import inspect

    pool = api._hs.get_pusherpool()
    if check_takeover is not None:
        remove_others = pool.remove_pushers_by_app_id_and_pushkey_not_user

        async def remove_pushers_by_app_id_and_pushkey_not_user(app_id: str, pushkey: str,
                                                                not_user_id: str) -> Any:
            origin = current_request_origin()
            requester = origin.requester if origin is not None else None
            await check_takeover(not_user_id, getattr(requester, "device_id", None))
            return await remove_others(app_id=app_id, pushkey=pushkey, not_user_id=not_user_id)

        remove_pushers_by_app_id_and_pushkey_not_user.__wrapped__ = remove_others  # type: ignore[attr-defined]
        pool.remove_pushers_by_app_id_and_pushkey_not_user = remove_pushers_by_app_id_and_pushkey_not_user
    original = pool.add_or_update_pusher
    signature = inspect.signature(original)

    async def add_or_update_pusher(*args: Any, **kwargs: Any) -> Any:
        call = signature.bind(*args, **kwargs)
        call.apply_defaults()
        given = call.arguments
        await check(given["user_id"], given["device_id"], given["kind"], given["data"])
        return await original(*args, **kwargs)

    add_or_update_pusher.__wrapped__ = original  # type: ignore[attr-defined]
    pool.add_or_update_pusher = add_or_update_pusher


async def user_devices(api: Any, user_id: str) -> dict[str, str | None]:
    """device_id -> display name of every device a user has now (Synapse's ``devices`` table,
    ``store.get_devices_by_user``): the module API cannot list devices."""
    devices = await api._hs.get_datastores().main.get_devices_by_user(user_id)
    return {device_id: info.get("display_name") for device_id, info in devices.items()}


async def delete_device(api: Any, user_id: str, device_id: str) -> None:
    """Log a device out as ``DELETE /_synapse/admin/v2/users/{userId}/devices/{deviceId}`` does
    (``DeviceHandler.delete_devices``: its access and refresh tokens go, its keys and pushers too).
    Runs on the main process (the handler's home)."""
    await api._hs.get_device_handler().delete_devices(user_id, [device_id])


def sending_device_txn(txn: Any, event_id: str) -> tuple[str, str] | None:
    """(user, device) that sent a local event through the client API with a transaction ID
    (``PUT .../send/{type}/{txnId}``: Synapse's ``event_txn_id_device_id`` table, kept about a
    day); None for any other event. The module API does not say which device sent an event."""
    txn.execute("SELECT user_id, device_id FROM event_txn_id_device_id WHERE event_id = ?", (event_id,))
    row = txn.fetchone()
    return (row[0], row[1]) if row else None


def event_type_txn(txn: Any, room_id: str, event_id: str) -> str | None:
    """The type of an event of the room this server has (Synapse's ``events`` table); None if it has
    none. The module API cannot read an event by its ID (a redaction names only its target)."""
    txn.execute("SELECT type FROM events WHERE event_id = ? AND room_id = ?", (event_id, room_id))
    row = txn.fetchone()
    return str(row[0]) if row else None


def state_changes_since_txn(txn: Any, after: int, types: tuple[str, ...]) -> tuple[list[tuple[str, str]], int]:
    """Rooms whose current state of ``types`` (state key "") changed after a stream position, with
    the sender of the event now in the state, and the highest position read (where to go on from):
    Synapse's ``current_state_delta_stream(stream_id, room_id, type, state_key, event_id)`` (index on
    ``stream_id``). A change may come from federation, whose events no module callback can refuse
    once a later event builds on them (state resolution)."""
    highest = max(state_stream_position_txn(txn), after)
    marks = ", ".join("?" for _ in types)
    txn.execute("SELECT d.room_id, e.sender FROM current_state_delta_stream AS d"
                " JOIN events AS e ON e.event_id = d.event_id"
                f" WHERE d.stream_id > ? AND d.stream_id <= ? AND d.type IN ({marks}) AND d.state_key = ''",
                (after, highest, *types))
    return [(str(room_id), str(sender)) for room_id, sender in txn.fetchall()], int(highest)


def state_stream_position_txn(txn: Any) -> int:
    """The highest position of ``current_state_delta_stream`` (0 when empty)."""
    txn.execute("SELECT MAX(stream_id) FROM current_state_delta_stream")
    return int(txn.fetchone()[0] or 0)


def events_stream_position_txn(txn: Any) -> int:
    """The highest position of the events stream (``events.stream_ordering``; 0 when empty)."""
    txn.execute("SELECT MAX(stream_ordering) FROM events")
    return int(txn.fetchone()[0] or 0)


def state_redactions_since_txn(txn: Any, after: int, types: tuple[str, ...]) -> tuple[list[tuple[str, str]], int]:
    """Rooms where a redaction after an events stream position targets a current state event of
    ``types`` (state key ""), with the redaction's sender, and the highest position read. Synapse keeps
    every redaction it persisted, another server's soft-failed one too, in ``redactions(event_id,
    redacts)`` and applies it when reading the target; ``events`` has an index on ``stream_ordering``."""
    highest = max(events_stream_position_txn(txn), after)
    marks = ", ".join("?" for _ in types)
    txn.execute("SELECT c.room_id, e.sender FROM events AS e JOIN redactions AS r ON r.event_id = e.event_id"
                " JOIN current_state_events AS c ON c.event_id = r.redacts"
                " WHERE e.stream_ordering > ? AND e.stream_ordering <= ? AND e.type = 'm.room.redaction'"
                f" AND c.type IN ({marks}) AND c.state_key = ''", (after, highest, *types))
    return [(str(room_id), str(sender)) for room_id, sender in txn.fetchall()], int(highest)


def redacted_current_state_txn(txn: Any, types: tuple[str, ...]) -> list[tuple[str, str]]:
    """(room, the redaction's sender) of every current state event of ``types`` (state key "") that a
    redaction targets (``redactions`` has an index on ``redacts``)."""
    marks = ", ".join("?" for _ in types)
    txn.execute("SELECT c.room_id, e.sender FROM current_state_events AS c"
                " JOIN redactions AS r ON r.redacts = c.event_id JOIN events AS e ON e.event_id = r.event_id"
                f" WHERE c.type IN ({marks}) AND c.state_key = ''", types)
    return [(str(room_id), str(sender)) for room_id, sender in txn.fetchall()]


def current_state_senders_txn(txn: Any, types: tuple[str, ...]) -> list[tuple[str, str]]:
    """(room, sender) of every current state event of ``types`` (state key ""): Synapse's
    ``current_state_events(room_id, type, state_key, event_id)``."""
    marks = ", ".join("?" for _ in types)
    txn.execute("SELECT c.room_id, e.sender FROM current_state_events AS c JOIN events AS e ON e.event_id = c.event_id"
                f" WHERE c.type IN ({marks}) AND c.state_key = ''", types)
    return [(str(room_id), str(sender)) for room_id, sender in txn.fetchall()]


def state_history_txn(txn: Any, room_id: str, event_type: str, limit: int = 100) -> list[tuple[str, dict]]:
    """The room's current state of ``event_type`` (state key "") over time, newest first: (sender,
    content as sent, before any redaction). ``current_state_delta_stream`` (index on room_id,
    stream_id) and ``event_json`` (the event as received; Synapse applies redactions when reading, and
    blanks the stored copy only after ``redaction_retention_period``, when ``room_retention`` still
    holds a retention event's periods)."""
    txn.execute("SELECT e.sender, j.json, r.min_lifetime, r.max_lifetime FROM current_state_delta_stream AS d"
                " JOIN events AS e ON e.event_id = d.event_id JOIN event_json AS j ON j.event_id = d.event_id"
                " LEFT JOIN room_retention AS r ON r.event_id = d.event_id"
                " WHERE d.room_id = ? AND d.type = ? AND d.state_key = '' ORDER BY d.stream_id DESC LIMIT ?",
                (room_id, event_type, limit))
    history = []
    for sender, stored, min_lifetime, max_lifetime in txn.fetchall():
        content = json.loads(stored).get("content") or {}
        for key, value in (("min_lifetime", min_lifetime), ("max_lifetime", max_lifetime)):
            if value is not None and key not in content:
                content[key] = value
        history.append((str(sender), content))
    return history
