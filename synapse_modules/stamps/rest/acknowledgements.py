"""``GET /_synapse/client/lgwan/v1/rooms/{roomId}/stamps/{eventId}``: who acknowledged with what.

Per reaction key (了解, 確認しました, ...): who sent it and when, next to the
read status of the same event, e.g. 既読 12 / 了解 8 / 未読 3. Members only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synapse.module_api import ModuleApi

from synapse_modules.read_status import synapse_tables as tables
from synapse_modules.read_status.rest.read_status import ReadStatusRoutes, event_status_txn

from ..config import StampsConfig

if TYPE_CHECKING:
    from synapse.http.site import SynapseRequest


class AcknowledgementRoutes:
    def __init__(self, api: ModuleApi, config: StampsConfig):
        self._api = api
        self._config = config

    async def get(self, request: SynapseRequest, room_id: str, event_id: str) -> tuple[int, dict]:
        user_id = (await self._api.get_user_by_req(request)).user.to_string()

        def txn(cur: Any) -> dict | str:
            found = event_status_txn(cur, room_id, event_id, user_id)
            if isinstance(found, str):
                return found
            _, seen = found
            by_key: dict[str, list[dict]] = {key: [] for key in self._config.acknowledgements}
            for reaction in tables.reactions(cur, room_id, event_id):
                by_key.setdefault(reaction.key, []).append({"user_id": reaction.sender,
                                                            "ts": reaction.origin_server_ts})
            return {"event_id": event_id,
                    "stamps": [{"key": key, "count": len(users), "users": users} for key, users in by_key.items()],
                    "read_count": len(seen.read), "unread_count": len(seen.unread)}

        answer = await self._api.run_db_interaction("lgwan_stamps_acknowledgements", txn)
        return 200, ReadStatusRoutes.raise_for(answer, event_id)
