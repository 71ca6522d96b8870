"""LGWAN / internet zone policy module.

Load it in homeserver.yaml (every key: config/modules.yaml, docs/admin-guide)::

    modules:
      - module: synapse_modules.zones.ZonePolicyModule
        config: {}

- decides the zone of each client request from the listener it arrived on
  (or the client IP);
- binds each device to the zone of its first request and refuses its token
  from the other zone; guests are held to one zone;
- refuses calls from LGWAN devices and any call in rooms marked LGWAN-only, and
  widgets from LGWAN devices unless the admin allows their URL, at every way an
  event enters a room (``event_rules.py``: send, state, createRoom, upgrades,
  redactions of the rules' own state, federation);
- refuses end-to-end encryption unless allowed, and tells Element so in
  ``/.well-known/matrix/client`` (``io.element.e2ee``);
- records media uploaded from the internet side as untrusted and answers the
  LGWAN-side nginx's ``auth_request`` for every media fetch (``media_gate``),
  with a "waiting for sanitization" placeholder (``media_pending``);
- serves a different ``/.well-known/matrix/client`` per entrance: the map style URL of
  that zone for location sharing, and group-call SFUs (LiveKit) at the internet entrance only
  (``well_known.py``);
- refuses TURN credentials (``/voip/turnServer``) to LGWAN devices (``turn.py``), and every
  pusher but an internet device's ``event_id_only`` one (``pushers.py``);
- holds a new device of a zone with ``device_approval`` self/admin until the user (from an
  approved LGWAN device) or an admin approves it (``device_approval.py``, ``rest/device_*``);
- pauses password logins from a client address after too many wrong ones, whatever the accounts
  (password spraying; ``login_failures.py``): right passwords are never counted;
- tells a client its zone at ``GET /_synapse/client/lgwan/v1/zone``, and whether a
  file is untrusted at ``GET /_synapse/client/lgwan/v1/media_status/{serverName}/{mediaId}``.
"""

from __future__ import annotations

import functools
from typing import Any

from synapse.module_api import ModuleApi

from synapse_modules._metrics import set_zone_of_request
from synapse_modules._synapse_internals import (
    extend_client_well_known,
    set_client_well_known,
    wrap_login_check,
    wrap_pusher_registration,
    wrap_request_authentication,
)

from .config import ZonesConfig, parse
from .device_approval import DeviceApproval
from .device_binding import DeviceZoneGuard
from .event_rules import EventRules
from .login_failures import FailedLoginLimiter
from .media import MediaRules
from .pushers import PusherRules
from .rest import (
    device_approvals,
    device_approvals_admin,
    device_approvals_bot,
    device_status,
    media_gate,
    media_pending,
    media_status,
)
from .rest import zone as zone_rest
from .store import ZoneStore
from .turn import TurnCredentialsRule
from .well_known import EntranceWellKnown
from .zone import zone_of

#: Element reads this from /.well-known/matrix/client: with force_disable it offers no encryption.
E2EE_WELL_KNOWN = "io.element.e2ee"


def e2ee_well_known(config: ZonesConfig) -> dict[str, bool]:
    if config.allow_encryption:
        return {"default": False}
    return {"default": False, "force_disable": True}


class ZonePolicyModule:
    def __init__(self, config: ZonesConfig, api: ModuleApi):
        set_zone_of_request(functools.partial(zone_of, config=config))  # refusals are counted by zone
        store = ZoneStore(api)
        media = MediaRules(config, store, api.server_name)
        approval = DeviceApproval(config, store, api)
        guard = DeviceZoneGuard(config, store, media.upload_devices, api, approval)
        turn = TurnCredentialsRule(config)

        async def check_request(requester: Any) -> None:
            await guard.check(requester)
            await turn.check(requester)

        wrap_request_authentication(api, check_request)
        wrap_login_check(api, FailedLoginLimiter(config.failed_logins_per_address).around)
        pushers = PusherRules(config, store)
        wrap_pusher_registration(api, pushers.check, pushers.check_device)
        events = EventRules(config, store, api)
        api.register_spam_checker_callbacks(check_event_for_spam=events.check_event_for_spam,
                                            user_may_create_room=events.user_may_create_room,
                                            check_media_file_for_spam=media.check_media_file_for_spam,
                                            check_login_for_spam=guard.check_login)
        api.register_third_party_rules_callbacks(on_create_room=events.check_room_creation)
        if api.should_run_background_tasks():  # one process puts back what another server changed
            events.keeper.keep()
        set_client_well_known(api, E2EE_WELL_KNOWN, e2ee_well_known(config))
        extend_client_well_known(api, EntranceWellKnown(config))
        api.register_web_resource(zone_rest.PATH, zone_rest.ZoneResource(api, config))
        api.register_web_resource(media_gate.PATH, media_gate.MediaGateResource(config, media, api))
        api.register_web_resource(media_pending.PATH, media_pending.MediaPendingResource())
        api.register_web_resource(media_status.PATH, media_status.MediaStatusResource(api, media))
        api.register_web_resource(device_status.PATH, device_status.DeviceStatusResource(api, config, approval))
        api.register_web_resource(device_approvals.PATH,
                                  device_approvals.DeviceApprovalsResource(api, config, approval))
        api.register_web_resource(device_approvals_bot.PATH,
                                  device_approvals_bot.DeviceApprovalsBotResource(api, config, store, approval))
        api.register_web_resource(device_approvals_admin.PATH,
                                  device_approvals_admin.DeviceApprovalsAdminResource(api, approval))

    @staticmethod
    def parse_config(raw: dict[str, Any]) -> ZonesConfig:
        return parse(raw)
