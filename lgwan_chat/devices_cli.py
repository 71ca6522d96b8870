"""``lgwan-chat device ...``: approved devices (端末認証) from the admin's shell.

Talks to a running homeserver with a server admin's access token, through the zone module's
``/_synapse/client/lgwan/v1/device_approvals_admin``: ``list`` a user's devices with their
state, ``approve`` one, ``revoke`` one (it is logged out: the module deletes the device as the
admin API's device deletion does). Every decision is recorded by the module (who, when, how).
"""

from __future__ import annotations

import argparse
import datetime
from typing import Any
from urllib.parse import quote

from lgwan_chat.core.guest_dates import JST
from lgwan_chat.core.i18n import both
from lgwan_chat.core.routes import DEVICE_APPROVALS_ADMIN
from lgwan_chat.guests_cli import Admin, add_admin_arguments, run_admin_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_admin_arguments(parser)
    actions = parser.add_subparsers(dest="device_command", required=True)
    listing = actions.add_parser("list", help="ユーザーの端末と承認状態 / a user's devices and their state")
    listing.add_argument("user", help="ユーザー（@の後ろ、または @user:server）/ the user's localpart or ID")
    approve = actions.add_parser("approve", help="端末を承認 / approve a device")
    approve.add_argument("user")
    approve.add_argument("device", help="端末 ID（list で確認）/ the device ID (see list)")
    revoke = actions.add_parser("revoke", help="端末の承認を取り消しログアウトさせる / revoke a device and log it out")
    revoke.add_argument("user")
    revoke.add_argument("device")


def run(args: argparse.Namespace, out: Any = None) -> int:
    return run_admin_command(_COMMANDS[args.device_command], args, out)


def _when(ts: int | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts / 1000, JST).strftime("%Y-%m-%d %H:%M")


def _list(admin: Admin, args: argparse.Namespace, out: Any) -> int:
    user_id = admin.user_id(args.user)
    _, answer = admin.call("GET", DEVICE_APPROVALS_ADMIN + "?user_id=" + quote(user_id, safe=""))
    if not answer["devices"]:
        print(both("devices.cli_none", user=user_id), file=out)
    for d in answer["devices"]:
        print("\t".join([d["device_id"], d["display_name"] or "-", d["zone"] or "-", _when(d["first_seen_ts"]),
                         both("devices.cli_state_" + d["state"])]), file=out)
    return 0


def _decide(admin: Admin, args: argparse.Namespace, out: Any, decision: str) -> int:
    user_id = admin.user_id(args.user)
    admin.call("POST", DEVICE_APPROVALS_ADMIN, {"user_id": user_id, "device_id": args.device, "decision": decision})
    print(both("devices.cli_" + decision + "d", user=user_id, device=args.device), file=out)
    return 0


_COMMANDS = {"list": _list,
             "approve": lambda admin, args, out: _decide(admin, args, out, "approve"),
             "revoke": lambda admin, args, out: _decide(admin, args, out, "revoke")}
