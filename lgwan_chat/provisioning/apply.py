"""Reading a homeserver's rooms and applying a provisioning plan, over the Matrix APIs.

Everything is done as the provisioning account (a server admin: it checks
which staff have accounts with the admin users API and joins staff with the
admin join API, which invites them first into the invite-only rooms it made).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import urllib.parse
from pathlib import Path
from typing import Any

import attrs

from lgwan_chat.core.http import HttpError, http_json
from lgwan_chat.core.i18n import both
from lgwan_chat.core.organisation import Organisation
from lgwan_chat.core.provisioning_plan import MARKER, Action, Observed, ObservedRoom, Plan, desired


class ProvisioningError(RuntimeError):
    """A problem the admin must fix; the message is Japanese then English."""


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


#: rate-limited requests are tried this many times in all
MAX_RATE_LIMIT_RETRIES = 20


@attrs.define
class Client:
    base_url: str
    token: str | None = None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One request; a rate limit (429) is waited out and retried, as Synapse asks."""
        for attempt in range(MAX_RATE_LIMIT_RETRIES):
            try:
                return self._call(method, path, body)
            except HttpError as e:
                if e.status != 429 or attempt == MAX_RATE_LIMIT_RETRIES - 1:
                    raise
                retry_ms = e.body.get("retry_after_ms") if isinstance(e.body, dict) else None
                time.sleep(min(30.0, (retry_ms or 1000) / 1000))
        raise AssertionError("unreachable")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        return http_json(method, self.base_url.rstrip("/") + path, body, self.token, timeout=60)


def register_provisioner(base_url: str, shared_secret: str, localpart: str, token_file: Path) -> str:
    """Register the provisioning account (server admin) with the registration shared secret
    and keep its access token in ``token_file`` (mode 0600). Returns the user id."""
    client = Client(base_url)
    url = "/_synapse/admin/v1/register"
    nonce = client.call("GET", url)["nonce"]
    password = secrets.token_urlsafe(24)
    mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), b"admin"]))
    result = client.call("POST", url, {"nonce": nonce, "username": localpart, "password": password,
                                       "admin": True, "mac": mac.hexdigest(),
                                       "displayname": "組織設定 / Provisioning"})
    # A city's rooms are dozens of creations and joins at once: not a spammer to be slowed down.
    Client(base_url, result["access_token"]).call(
        "POST", f"/_synapse/admin/v1/users/{_q(result['user_id'])}/override_ratelimit",
        {"messages_per_second": 0, "burst_count": 0})
    token_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(result["access_token"] + "\n")
    return result["user_id"]


@attrs.define
class Homeserver:
    """The homeserver as the provisioning account sees it."""

    client: Client
    user_id: str = ""
    server_name: str = ""
    #: key -> room id, filled by observe() and by creations
    room_ids: dict[str, str] = attrs.Factory(dict)
    #: room id -> key for every room the provisioner is in and knows the key of
    keys: dict[str, str] = attrs.Factory(dict)

    @classmethod
    def connect(cls, base_url: str, token: str) -> Homeserver:
        client = Client(base_url, token)
        user_id = client.call("GET", "/_matrix/client/v3/account/whoami")["user_id"]
        return cls(client, user_id, user_id.split(":", 1)[1])

    def localpart(self, user_id: str) -> str | None:
        local, _, server = user_id[1:].partition(":")
        return local if server == self.server_name else None

    def user_id_of(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def alias(self, key: str) -> str:
        return f"#{key}:{self.server_name}"

    def observe(self, org: Organisation, check_users: bool = True) -> Observed:
        joined = self.client.call("GET", "/_matrix/client/v3/joined_rooms")["joined_rooms"]
        states = {room_id: self.client.call("GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/state")
                  for room_id in joined}
        # Which key each of our rooms has: the alias first, the marker for rooms gone from the YAML.
        managed: set[str] = set()
        for room_id, state in states.items():
            for ev in state:
                if (ev["type"] == MARKER and ev["content"].get("municipality") == org.id
                        and not ev["content"].get("archived")):
                    self.keys[room_id] = ev["content"]["key"]
                    managed.add(room_id)
        for spec in desired(org):
            try:
                room_id = self.client.call("GET", f"/_matrix/client/v3/directory/room/{_q(self.alias(spec.key))}")[
                    "room_id"]
            except HttpError as e:
                if e.status == 404:
                    continue
                raise
            if room_id not in states:
                raise ProvisioningError(both("provisioning.alias_not_ours", room=self.alias(spec.key),
                                             user=self.user_id))
            self.keys[room_id] = spec.key
        self.room_ids = {key: room_id for room_id, key in self.keys.items()}
        observed = Observed()
        for room_id, key in self.keys.items():
            observed.rooms[key] = self._observed_room(room_id, states[room_id], managed=room_id in managed)
        if check_users:
            observed.users = {s.localpart for s in org.staff if self.user_exists(s.localpart)}
        return observed

    def _observed_room(self, room_id: str, state: list[dict], managed: bool) -> ObservedRoom:
        room = ObservedRoom(room_id=room_id, managed=managed)
        for ev in state:
            kind, key, content = ev["type"], ev.get("state_key"), ev["content"]
            if kind == "m.room.create":
                room.is_space = content.get("type") == "m.space"
            elif kind == "m.room.name":
                room.name = content.get("name")
            elif kind == "m.room.topic":
                room.topic = content.get("topic")
            elif kind == "m.room.power_levels":
                room.events_default = content.get("events_default", 0)
                for user, level in content.get("users", {}).items():
                    lp = self.localpart(user)
                    if lp is not None and user != self.user_id:
                        room.power[lp] = level
            elif kind == "m.room.member" and content.get("membership") == "join" and key not in (None, self.user_id):
                lp = self.localpart(key)
                if lp is not None:
                    room.members.add(lp)
            elif kind == "m.space.child" and content.get("via") and key in self.keys:
                room.children.add(self.keys[key])
        return room

    def user_exists(self, localpart: str) -> bool:
        try:
            user = self.client.call("GET", f"/_synapse/admin/v2/users/{_q(self.user_id_of(localpart))}")
        except HttpError as e:
            if e.status == 404:
                return False
            raise
        return not user.get("deactivated")

    # ---- applying

    def apply(self, plan: Plan, org: Organisation) -> None:
        for action in plan.actions:
            getattr(self, "_do_" + action.kind)(action, org)

    def _state(self, key: str, event_type: str, state_key: str, content: dict) -> None:
        self.client.call("PUT", f"/_matrix/client/v3/rooms/{_q(self.room_ids[key])}/state/"
                                f"{_q(event_type)}/{_q(state_key)}", content)

    def _do_create(self, a: Action, org: Organisation) -> None:
        body: dict[str, Any] = {
            "room_alias_name": a.key, "name": a.value["name"], "preset": "private_chat", "visibility": "private",
            # the creator (the provisioning account) keeps full power: in room version 12 as creator
            "power_level_content_override": {"events_default": a.value["events_default"]},
            "initial_state": [{"type": MARKER, "state_key": "",
                               "content": {"municipality": org.id, "key": a.key}}],
        }
        if a.value["topic"]:
            body["topic"] = a.value["topic"]
        if a.is_space:
            body["creation_content"] = {"type": "m.space"}
        room_id = self.client.call("POST", "/_matrix/client/v3/createRoom", body)["room_id"]
        self.room_ids[a.key] = room_id
        self.keys[room_id] = a.key

    def _do_name(self, a: Action, org: Organisation) -> None:
        self._state(a.key, "m.room.name", "", {"name": a.value})

    def _do_topic(self, a: Action, org: Organisation) -> None:
        self._state(a.key, "m.room.topic", "", {"topic": a.value})

    def _do_power(self, a: Action, org: Organisation) -> None:
        room_id = self.room_ids[a.key]
        content = self.client.call("GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/state/m.room.power_levels/")
        users = content.setdefault("users", {})
        for lp, (_, new) in a.value["users"].items():
            if new:
                users[self.user_id_of(lp)] = new
            else:
                users.pop(self.user_id_of(lp), None)
        if a.value["events_default"]:
            content["events_default"] = a.value["events_default"][1]
        self._state(a.key, "m.room.power_levels", "", content)

    def _do_link(self, a: Action, org: Organisation) -> None:
        via = {"via": [self.server_name]}
        self._state(a.key, "m.space.child", self.room_ids[a.value], via)
        self._state(a.value, "m.space.parent", self.room_ids[a.key], {**via, "canonical": True})

    def _do_unlink(self, a: Action, org: Organisation) -> None:
        self._state(a.key, "m.space.child", self.room_ids[a.value], {})
        self._state(a.value, "m.space.parent", self.room_ids[a.key], {})

    def _do_join(self, a: Action, org: Organisation) -> None:
        self.client.call("POST", f"/_synapse/admin/v1/join/{_q(self.room_ids[a.key])}",
                         {"user_id": self.user_id_of(a.value)})

    def _do_remove(self, a: Action, org: Organisation) -> None:
        self.client.call("POST", f"/_matrix/client/v3/rooms/{_q(self.room_ids[a.key])}/kick",
                         {"user_id": self.user_id_of(a.value), "reason": "組織設定 / provisioning"})

    def _do_archive(self, a: Action, org: Organisation) -> None:
        room_id = self.room_ids[a.key]
        for parent_key, parent_id in list(self.room_ids.items()):
            state = self.client.call("GET", f"/_matrix/client/v3/rooms/{_q(parent_id)}/state")
            if any(ev["type"] == "m.space.child" and ev.get("state_key") == room_id and ev["content"].get("via")
                   for ev in state):
                self._state(parent_key, "m.space.child", room_id, {})
        try:
            self.client.call("DELETE", f"/_matrix/client/v3/directory/room/{_q(self.alias(a.key))}")
        except HttpError as e:
            if e.status != 404:
                raise
        self._state(a.key, "m.room.canonical_alias", "", {})
        self._state(a.key, MARKER, "", {"municipality": org.id, "key": a.key, "archived": True})
