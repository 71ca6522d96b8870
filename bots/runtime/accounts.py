"""A bot account's one-time setup on the homeserver, done by an admin (or whatever registers it).

Synapse limits how many messages an account may send (``rc_message``: by default a burst of 10,
then one every 5 s). A person never notices; a bot that has answered a few commands does: a safety
check started after that waited 9 s for its poll, throttled, in an emergency. Bot accounts are
therefore exempt from the message limit (Synapse's per-user override, kept in its database); the
bots pace their own edits (``summary_interval_s``) and remain subject to every other limit.
"""

from __future__ import annotations

from urllib.parse import quote

from lgwan_chat.core.http import http_json


def exempt_from_rate_limits(homeserver_url: str, admin_token: str, user_id: str) -> None:
    """``POST /_synapse/admin/v1/users/{user_id}/override_ratelimit`` with no limit (0, 0)."""
    http_json("POST", f"{homeserver_url.rstrip('/')}/_synapse/admin/v1/users/{quote(user_id)}/override_ratelimit",
              {"messages_per_second": 0, "burst_count": 0}, token=admin_token)
