"""Joins staff to their rooms when they register or log in.

Load it in homeserver.yaml (every key: config/modules.yaml, docs/admin-guide)::

    modules:
      - module: synapse_modules.provisioning.ProvisioningModule
        config:
          organisation_file: /etc/lgwan-chat/organisation.yaml
          provisioner: "@provisioner:city.example.jp"

``lgwan-chat provision`` creates the rooms and spaces of ``organisation_file``
and joins the staff who already have accounts. Staff registered afterwards are
joined here, from the account validity callbacks ``on_user_registration`` and
``on_user_login``: the provisioning account invites them into each of their
department's rooms and spaces, their projects and the all-staff room (rooms
not created yet are skipped), and they join as themselves. Nobody is ever
removed here; a failure is logged and never blocks a registration or login.
The file is read when it changes, so every process (workers too) follows it.
"""

from __future__ import annotations

import logging
from typing import Any

from synapse.module_api import ModuleApi

from lgwan_chat.core.organisation import Organisation, OrganisationFile
from lgwan_chat.core.provisioning_plan import rooms_of

from .config import ProvisioningConfig, parse

logger = logging.getLogger(__name__)


class ProvisioningModule:
    def __init__(self, config: ProvisioningConfig, api: ModuleApi):
        self._config = config
        self._api = api
        self._file = OrganisationFile(config.organisation_file)
        api.register_account_validity_callbacks(on_user_registration=self.on_user_registration,
                                                on_user_login=self.on_user_login)

    @staticmethod
    def parse_config(raw: dict[str, Any]) -> ProvisioningConfig:
        return parse(raw)

    def organisation(self) -> Organisation | None:
        """The organisation file, read again when it changes; the last good one if it breaks."""
        try:
            self._file.refresh()
        except Exception as e:  # a broken file must not break logins
            logger.error("provisioning: cannot read %s: %s", self._file.path, e)
        return self._file.organisation

    async def on_user_registration(self, user_id: str) -> None:
        await self.join_rooms(user_id)

    async def on_user_login(self, user_id: str, auth_provider_type: str | None,
                            auth_provider_id: str | None) -> None:
        if self._config.join_on_login:
            await self.join_rooms(user_id)

    async def join_rooms(self, user_id: str) -> list[str]:
        """Join ``user_id`` to every room of theirs they are not in; the room ids joined."""
        joined: list[str] = []
        try:
            org = self.organisation()
            if org is None or not self._api.is_mine(user_id) or user_id == self._config.provisioner:
                return joined
            localpart = user_id[1:].split(":", 1)[0]
            for key in rooms_of(org, localpart):
                try:
                    if await self._join(user_id, f"#{key}:{self._api.server_name}"):
                        joined.append(key)
                except Exception as e:
                    logger.warning("provisioning: could not join %s to #%s: %s", user_id, key, e)
        except Exception:
            logger.exception("provisioning: joining %s to their rooms failed", user_id)
        return joined

    async def _join(self, user_id: str, alias: str) -> bool:
        from synapse.api.errors import SynapseError

        try:
            room_id, _ = await self._api.lookup_room_alias(alias)
        except SynapseError:
            return False  # not provisioned yet
        state = await self._api.get_room_state(room_id, [("m.room.member", user_id)])
        event = state.get(("m.room.member", user_id))
        membership = event.content.get("membership") if event is not None else None
        if membership in ("join", "ban"):
            return False
        if membership != "invite":
            await self._api.update_room_membership(self._config.provisioner, user_id, room_id, "invite")
        await self._api.update_room_membership(user_id, user_id, room_id, "join")
        return True
