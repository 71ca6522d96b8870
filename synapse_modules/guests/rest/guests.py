"""``/_synapse/client/lgwan/v1/guests``: server admins and the module's ``managers`` (e.g. the
sanitizer bot) manage guest accounts (what ``lgwan-chat guest`` and the bot's ``!ゲスト作成`` call).

- ``POST   .../guests/create``           the whole creation in one call: ``{"user_id", "display_name",
  "expires_ts", "rooms", "password"?}``: marks the guest, registers the account with that password
  (generated when absent), sets the display name, joins the rooms; answers the guest with
  ``joined``, ``not_joined`` and ``password``

- ``GET    .../guests``                  every guest
- ``POST   .../guests``                  mark a local account that does NOT exist yet as a guest:
  ``{"user_id", "display_name", "expires_ts", "rooms": [room id or alias]}`` (then create the
  account, e.g. with the admin API, and call ``.../join``)
- ``POST   .../guests/{userId}/join``    once the account exists: display name with the suffix,
  joined to each given room it can join now (``joined``, ``not_joined``)
- ``GET    .../guests/{userId}``         one guest
- ``PUT    .../guests/{userId}``         ``{"expires_ts"}``: extend (or shorten)
- ``DELETE .../guests/{userId}``         revoke: deactivate now (or forget it if the account was never created)
- ``POST   .../guests/check``            tell and deactivate whoever is due, now
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from synapse.api.errors import Codes, SynapseError
from synapse.module_api import DirectServeJsonResource, ModuleApi, UserID

from lgwan_chat.core.routes import GUESTS_PATH
from synapse_modules._errors import error, refusal
from synapse_modules._rest import request_body
from synapse_modules._synapse_internals import register_password_user

from ..config import GuestsConfig
from ..expiry import ExpiryCheck
from ..lookup import note_guest
from ..rules import room_is_internal, with_suffix
from ..store import GuestStore, now_ms

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest

logger = logging.getLogger(__name__)

PATH = GUESTS_PATH
USER_ID = re.compile(r"@[!-9;-~]+:[A-Za-z0-9.-]+(:[0-9]{1,5})?")
MAX_NAME = 200
MAX_PASSWORD = 512


class GuestsResource(DirectServeJsonResource):
    isLeaf = True

    def __init__(self, api: ModuleApi, config: GuestsConfig, store: GuestStore, expiry: ExpiryCheck):
        super().__init__()
        self._api = api
        self._config = config
        self._store = store
        self._expiry = expiry

    async def _admin(self, request: SynapseRequest) -> str:
        caller = (await self._api.get_user_by_req(request)).user.to_string()
        if caller not in self._config.managers and not await self._api.is_user_admin(caller):
            raise refusal("not_admin", "guests.not_manager")
        return caller

    def _target(self, request: SynapseRequest) -> str | None:
        rest = request.path.decode("ascii")[len(PATH):]
        if rest in ("", "/"):
            return None
        return unquote(rest[1:])

    async def _async_render_GET(self, request: SynapseRequest) -> tuple[int, Any]:
        await self._admin(request)
        target = self._target(request)
        if target is None:
            return 200, {"guests": [g.as_json() for g in await self._store.all()]}
        guest = await self._store.get(target)
        if guest is None:
            raise error(404, Codes.NOT_FOUND, "guests.not_guest", user=target)
        return 200, guest.as_json()

    async def _async_render_POST(self, request: SynapseRequest) -> tuple[int, Any]:
        caller = await self._admin(request)
        target = self._target(request)
        if target == "check":
            return 200, await self._expiry.run()
        if target is not None and target.endswith("/join"):
            return await self._join(target[:-len("/join")])
        if target == "create":
            return await self._create(caller, _json(request))
        if target is not None:
            raise SynapseError(405, "Method not allowed", Codes.UNRECOGNIZED)
        guest = await self._mark(caller, _json(request))
        return 200, guest.as_json()

    async def _create(self, caller: str, body: dict[str, Any]) -> tuple[int, Any]:
        """Mark, register with a password, name and join: the one implementation of "create a guest"."""
        password = body.get("password")
        if password is None:
            password = secrets.token_urlsafe(12)
        if not isinstance(password, str) or not 8 <= len(password) <= MAX_PASSWORD:
            raise error(400, Codes.INVALID_PARAM, "guests.bad_password", limit=MAX_PASSWORD)
        guest = await self._mark(caller, body)
        # Marked first, so that the account is never an ordinary one, not even at registration.
        try:
            await register_password_user(self._api, UserID.from_string(guest.user_id).localpart, password,
                                         guest.display_name)
        except Exception:
            await self._store.remove(guest.user_id)  # forget the mark: nothing was created
            raise
        status, joined = await self._join(guest.user_id)
        return status, {**joined, "password": password}

    async def _mark(self, caller: str, body: dict[str, Any]) -> Any:
        user_id = body.get("user_id")
        name = body.get("display_name")
        expires_ts = body.get("expires_ts")
        rooms = body.get("rooms", [])
        if not isinstance(user_id, str) or not USER_ID.fullmatch(user_id) or not self._api.is_mine(user_id):
            raise error(400, Codes.INVALID_PARAM, "guests.bad_user_id")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            raise error(400, Codes.INVALID_PARAM, "guests.bad_name", limit=MAX_NAME)
        if not isinstance(expires_ts, int) or isinstance(expires_ts, bool) or expires_ts <= now_ms():
            raise error(400, Codes.INVALID_PARAM, "guests.bad_expiry")
        if not isinstance(rooms, list) or not all(isinstance(r, str) and r[:1] in "!#" for r in rooms):
            raise error(400, Codes.INVALID_PARAM, "guests.bad_rooms")
        # Marked before the account exists, so that nothing done at registration (e.g. joining
        # the stamp pack room of all staff) happens to it as an ordinary account.
        if await self._api.check_user_exists(user_id) is not None:
            raise error(409, Codes.USER_IN_USE, "guests.account_exists", user=user_id)
        room_ids = []
        for room in rooms:
            room_id = await self._resolve(room)
            if await room_is_internal(self._api, room_id):
                raise error(400, Codes.INVALID_PARAM, "guests.internal_room_given", room=room)
            room_ids.append(room_id)
        display_name = with_suffix(name, self._config.display_suffix)
        if not await self._store.add(user_id, display_name, expires_ts, caller, room_ids):
            raise error(409, Codes.USER_IN_USE, "guests.already_guest", user=user_id)
        note_guest(self._api, user_id)
        guest = await self._store.get(user_id)
        assert guest is not None
        return guest

    async def _join(self, user_id: str) -> tuple[int, Any]:
        """Once the account exists: its display name with the suffix, and into each given room it can join now."""
        guest = await self._store.get(user_id)
        if guest is None:
            raise error(404, Codes.NOT_FOUND, "guests.not_guest", user=user_id)
        if await self._api.check_user_exists(user_id) is None:
            raise error(404, Codes.NOT_FOUND, "guests.no_account", user=user_id)
        profile = await self._api.get_profile_for_user(UserID.from_string(user_id).localpart)
        if profile.display_name != guest.display_name:
            await self._api.set_displayname(UserID.from_string(user_id), guest.display_name)
        joined, not_joined = [], []
        for room_id in guest.rooms:
            try:
                await self._api.update_room_membership(user_id, user_id, room_id, "join")
                joined.append(room_id)
            except Exception as e:  # e.g. an invite-only room: staff invite the guest, who then joins
                logger.info("guest %s not joined to %s now: %s", user_id, room_id, e)
                not_joined.append(room_id)
        return 200, {**guest.as_json(), "joined": joined, "not_joined": not_joined}

    async def _async_render_PUT(self, request: SynapseRequest) -> tuple[int, Any]:
        await self._admin(request)
        target = self._target(request)
        guest = await self._store.get(target) if target else None
        if guest is None:
            raise error(404, Codes.NOT_FOUND, "guests.not_guest", user=target)
        if guest.deactivated_ts is not None:
            raise error(400, Codes.INVALID_PARAM, "guests.already_deactivated", user=target)
        expires_ts = _json(request).get("expires_ts")
        if not isinstance(expires_ts, int) or isinstance(expires_ts, bool) or expires_ts <= now_ms():
            raise error(400, Codes.INVALID_PARAM, "guests.bad_expiry")
        await self._store.set_expiry(guest.user_id, expires_ts)
        return 200, (await self._store.get(guest.user_id)).as_json()  # type: ignore[union-attr]

    async def _async_render_DELETE(self, request: SynapseRequest) -> tuple[int, Any]:
        await self._admin(request)
        target = self._target(request)
        guest = await self._store.get(target) if target else None
        if guest is None:
            raise error(404, Codes.NOT_FOUND, "guests.not_guest", user=target)
        if await self._api.check_user_exists(guest.user_id) is None:
            await self._store.remove(guest.user_id)  # the account was never created
            return 200, {**guest.as_json(), "removed": True}
        if guest.deactivated_ts is None:
            await self._expiry.deactivate(guest.user_id, "revoked")
        return 200, (await self._store.get(guest.user_id)).as_json()  # type: ignore[union-attr]

    async def _resolve(self, room: str) -> str:
        if room.startswith("!"):
            return room
        try:
            room_id, _ = await self._api.lookup_room_alias(room)
        except SynapseError:
            raise error(404, Codes.NOT_FOUND, "guests.unknown_room", room=room) from None
        return room_id


def _json(request: SynapseRequest) -> dict[str, Any]:
    try:
        body = json.loads(request_body(request) or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise error(400, Codes.NOT_JSON, "guests.bad_json")
    return body
