"""Federation allow-list: only trusted government homeservers, organisation-internal rooms.

Load it in homeserver.yaml (together with the whitelist `lgwan-chat federation
homeserver-snippet` prints)::

    federation_domain_whitelist: [pref.example.lg.jp, city-a.example.lg.jp, ...]
    modules:
      - module: synapse_modules.federation.FederationAllowListModule
        config:
          allowlist: /etc/lgwan-chat/federation.yaml
          signing_public_key: "<the prefecture's public key, base64>"

Who enforces what:

- Synapse's own ``federation_domain_whitelist`` refuses every federation request
  to and from a server not on the list (messages, invites, joins, media, keys).
  The module only CHECKS at start that it equals the list (plus this server) and
  refuses to start otherwise (``whitelist_check: refuse``, the default);
- the module refuses, with a Japanese + English reason, what the whitelist would
  only fail obscurely or not see at all: inviting a user of a non-listed server
  (``user_may_invite``), an invite from one (``federated_user_may_invite``), any
  membership (invite, join, knock) of a non-listed server's user, whoever sends
  it, including invites by a remote member of the room (``check_event_for_spam``);
- organisation-internal rooms (state ``jp.lgwan.room.internal`` ``{"internal":
  true}`` in the creation request's ``initial_state``) are created with
  ``m.federate: false``: Synapse's own event authorisation then refuses any event
  of another server in them, joins via an alias included. The module refuses
  inviting a remote user there with a clear message, and refuses marking a room
  internal after creation (a federating room cannot become internal);
- group rooms (``groups:`` of the list, by canonical alias) are open to staff of
  the listed servers; a group naming ``servers:`` accepts members from those
  servers (and the group's home server) only, and a group room cannot be internal.

The list is read once at start in every process (workers included); no database.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from synapse.module_api import NOT_SPAM, ModuleApi

from lgwan_chat.core.i18n import both
from synapse_modules._errors import refusal, spam_verdict
from synapse_modules._synapse_internals import federation_domain_whitelist

from .config import FederationConfig, parse, whitelist_problem

logger = logging.getLogger(__name__)

INTERNAL = "jp.lgwan.room.internal"
CREATE = "m.room.create"
CANONICAL_ALIAS = "m.room.canonical_alias"
MEMBER = "m.room.member"
GAINING = ("invite", "join", "knock")


def domain(user_id: str) -> str:
    return user_id.split(":", 1)[1]


class FederationAllowListModule:
    def __init__(self, config: FederationConfig, api: ModuleApi):
        self._config = config
        self._api = api
        self._own = api.server_name
        self._allowed = config.allowlist.server_names | {self._own}
        self._check_whitelist()
        api.register_spam_checker_callbacks(user_may_invite=self.user_may_invite,
                                            federated_user_may_invite=self.federated_user_may_invite,
                                            check_event_for_spam=self.check_event_for_spam)
        api.register_third_party_rules_callbacks(on_create_room=self.on_create_room,
                                                 check_event_allowed=self.check_event_allowed)
        signed = config.allowlist.signed_by
        logger.info("federation allow-list %s: %d servers, %d groups, %s", config.allowlist.file,
                    len(config.allowlist.servers), len(config.allowlist.groups),
                    f"signed by {signed[0]} ({signed[1]})" if signed else "not signature-checked")

    @staticmethod
    def parse_config(raw: dict[str, Any]) -> FederationConfig:
        return parse(raw)

    def _check_whitelist(self) -> None:
        problem = whitelist_problem(self._config.allowlist, federation_domain_whitelist(self._api), self._own)
        if problem is None:
            return
        text = "federation_domain_whitelist: " + problem.format().split(": ", 1)[1]
        if self._config.whitelist_check == "warn":
            logger.warning("%s", text)
            return
        from synapse.config import ConfigError

        raise ConfigError(text, path=["federation_domain_whitelist"])

    # -- what the rules need to know about a room ---------------------------------------

    async def _state(self, room_id: str, *types: str) -> dict[str, Any]:
        state = await self._api.get_room_state(room_id, [(t, "") for t in types])
        return {t: e.content for (t, _), e in state.items()}

    def _member_refusal(self, user_id: str, state: dict[str, Any]) -> tuple[str, str, dict[str, str]] | None:
        """(reason, message key, params) when ``user_id`` may not become a member of a room in ``state``."""
        server = domain(user_id)
        if server not in self._allowed:
            return "federation_server_not_listed", "federation.server_not_listed", {"user": user_id,
                                                                                      "server": server}
        if server == self._own:
            return None
        if (state.get(INTERNAL) or {}).get("internal") is True:
            return "federation_internal_room", "federation.internal_room", {"user": user_id}
        group = self._config.allowlist.group((state.get(CANONICAL_ALIAS) or {}).get("alias"))
        if group is not None and server not in group.servers | {domain(group.alias)}:
            return "federation_group_server", "federation.group_server", {"user": user_id, "server": server,
                                                                            "group": group.alias}
        return None

    # -- spam checker ------------------------------------------------------------------

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> Any:
        """A local user inviting anyone (checked before Synapse contacts the invitee's server)."""
        if domain(invitee) == self._own:
            return NOT_SPAM
        state = await self._state(room_id, INTERNAL, CANONICAL_ALIAS)
        refused = self._member_refusal(invitee, state)
        return spam_verdict(refused[0], refused[1], **refused[2]) if refused else NOT_SPAM

    async def federated_user_may_invite(self, event: Any) -> Any:
        """An invite for a local user arriving from another server."""
        server = domain(event.sender)
        if server not in self._allowed:
            return spam_verdict("federation_server_not_listed", "federation.inviter_not_listed",
                                user=event.sender, server=server)
        return NOT_SPAM

    async def check_event_for_spam(self, event: Any) -> Any:
        """Every membership a room would gain, local or arriving over federation (then soft-failed)."""
        if event.type != MEMBER or event.content.get("membership") not in GAINING:
            return NOT_SPAM
        server = domain(event.sender)
        if server not in self._allowed:
            return spam_verdict("federation_server_not_listed", "federation.server_not_listed",
                                user=event.sender, server=server)
        if domain(event.state_key) == self._own:
            return NOT_SPAM
        refused = self._member_refusal(event.state_key, await self._state(event.room_id, INTERNAL, CANONICAL_ALIAS))
        return spam_verdict(refused[0], refused[1], **refused[2]) if refused else NOT_SPAM

    # -- third-party rules ---------------------------------------------------------------

    async def on_create_room(self, requester: Any, request_content: dict, is_requester_admin: bool) -> None:
        """A room created internal never federates: Synapse itself then refuses other servers' events."""
        internal = any(isinstance(item, dict) and item.get("type") == INTERNAL and item.get("state_key", "") == ""
                       and isinstance(item.get("content"), dict) and item["content"].get("internal") is True
                       for item in request_content.get("initial_state") or [])
        if internal:
            creation = request_content.get("creation_content")
            if not isinstance(creation, dict):
                creation = request_content["creation_content"] = {}
            creation["m.federate"] = False

    async def check_event_allowed(self, event: Any, state: Mapping[tuple[str, str], Any]) -> tuple[bool, dict | None]:
        if event.type != INTERNAL or getattr(event, "state_key", None) != "" \
                or event.content.get("internal") is not True:
            return True, None
        create = state.get((CREATE, ""))
        alias = state.get((CANONICAL_ALIAS, ""))
        problem = None
        if create is None or create.content.get("m.federate", True) is not False:
            problem = ("federation_internal_after_creation", "federation.internal_after_creation")
        elif alias is not None and self._config.allowlist.group(alias.content.get("alias")) is not None:
            problem = ("federation_group_room_internal", "federation.group_room_internal")
        if problem is None:
            return True, None
        if self._api.is_mine(event.sender):
            raise refusal(*problem)
        logger.info("%s", both(problem[1]))
        return False, None
