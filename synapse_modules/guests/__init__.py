"""Guest accounts for outside contractors (外部の方のゲストアカウント).

Load it in homeserver.yaml::

    modules:
      - module: synapse_modules.guests.GuestAccountsModule
        config:
          display_suffix: "（外部）"
          notify_days_before: 3
          notice_sender: "@system:city.example.lg.jp"
          managers: ["@sanitizer-bot:city.example.lg.jp"]   # besides server admins

A guest is an ordinary password account that this module marks as a guest in
its own table (Synapse's own ``is_guest`` accounts cannot log in with a
password). Admins create them with ``lgwan-chat guest create``, authorised staff with the
sanitizer bot's ``!ゲスト作成`` in a DM (the bot is one of ``managers``); both call
``POST /_synapse/client/lgwan/v1/guests/create``, see ``rest/guests.py``. A guest:

- cannot create rooms (direct chats included);
- can join only the rooms given by the admin (and the direct chat of its expiry notice);
- cannot be invited into organisation-internal rooms (``jp.lgwan.room.internal``) or rooms not given;
- finds in the user directory only people it shares a room with;
- keeps the display name suffix: a change without it is put back at once, a room nickname without it refused;
- is held to the guest zone of the zones module (``lookup.is_registered_guest``);
- is told ``notify_days_before`` days before expiry and deactivated at expiry
  (background-tasks process only).
"""

from __future__ import annotations

from typing import Any

from synapse.module_api import ModuleApi

from . import lookup
from .config import GuestsConfig, parse
from .expiry import ExpiryCheck
from .rest.guests import PATH, GuestsResource
from .rules import GuestRules
from .store import GuestStore


class GuestAccountsModule:
    def __init__(self, config: GuestsConfig, api: ModuleApi):
        store = GuestStore(api)
        lookup.register(api, store)
        rules = GuestRules(api, config, store)
        expiry = ExpiryCheck(api, config, store)
        api.register_spam_checker_callbacks(
            user_may_create_room=rules.user_may_create_room, user_may_join_room=rules.user_may_join_room,
            user_may_invite=rules.user_may_invite, check_username_for_spam=rules.check_username_for_spam,
            user_may_send_state_event=rules.user_may_send_state_event)
        api.register_third_party_rules_callbacks(on_profile_update=rules.on_profile_update)
        api.register_web_resource(PATH, GuestsResource(api, config, store, expiry))
        if api.should_run_background_tasks():
            expiry.start()

    @staticmethod
    def parse_config(raw: dict[str, Any]) -> GuestsConfig:
        return parse(raw)
