"""``lgwan-chat guest ...``: guest accounts for outside contractors, from the admin's shell.

Talks to a running homeserver with a server admin's access token: the guests
module (``/_synapse/client/lgwan/v1/guests``) creates the account, marks it as
a guest and enforces the rules (the Synapse admin API only tells whether the
account already exists). The expiry date is inclusive, in Japan time: ``--expires
2026-12-31`` means usable until 2026-12-31 23:59 JST.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from lgwan_chat.core.guest_dates import GuestDateError, date_of, expires_ts
from lgwan_chat.core.i18n import both
from lgwan_chat.core.routes import GUESTS_PATH


class CliError(Exception):
    pass


def add_admin_arguments(parser: argparse.ArgumentParser) -> None:
    """``--homeserver`` and ``--token``: how the admin commands (guest, device) reach Synapse."""
    parser.add_argument("--homeserver", default=os.environ.get("LGWAN_HOMESERVER", "http://127.0.0.1:8018"),
                        help="Synapse の URL / the homeserver's URL (env LGWAN_HOMESERVER; default "
                             "http://127.0.0.1:8018)")
    parser.add_argument("--token", default=os.environ.get("LGWAN_ADMIN_TOKEN"),
                        help="サーバー管理者のアクセストークン / a server admin's access token (env LGWAN_ADMIN_TOKEN)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_admin_arguments(parser)
    actions = parser.add_subparsers(dest="guest_command", required=True)
    create = actions.add_parser("create", help="ゲストを作成 / create a guest account")
    create.add_argument("localpart", help="ユーザー名（@の後ろ）/ the account's localpart, e.g. yamada-contractor")
    create.add_argument("--name", required=True, help="表示名（接尾辞は自動）/ display name (the suffix is added)")
    create.add_argument("--expires", required=True, help="有効期限（この日まで、日本時間）/ last valid day, YYYY-MM-DD")
    create.add_argument("--room", action="append", default=[],
                        help="参加できるルーム（#アドレス か !ID、複数可）/ a room it may join (repeatable)")
    create.add_argument("--password", help="初期パスワード（省略時は自動生成）/ initial password (default: generated)")
    actions.add_parser("list", help="ゲストの一覧 / list guest accounts")
    extend = actions.add_parser("extend", help="有効期限を変更 / change the expiry date")
    extend.add_argument("localpart")
    extend.add_argument("--expires", required=True, help="新しい有効期限 / new last valid day, YYYY-MM-DD")
    revoke = actions.add_parser("revoke", help="ゲストを無効にする / deactivate a guest now")
    revoke.add_argument("localpart")
    actions.add_parser("check", help="期限の確認を今すぐ実行 / run the expiry check now")


class Admin:
    def __init__(self, homeserver: str, token: str):
        self.base = homeserver.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            parsed = json.loads(raw or b"{}")
        except ValueError:
            parsed = {"error": raw.decode("utf-8", "replace")}
        if status not in ok:
            message = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
            raise CliError(both("guests.cli_failed", status=status, error=message))
        return status, parsed

    def user_id(self, localpart: str) -> str:
        if localpart.startswith("@"):
            return localpart
        _, me = self.call("GET", "/_matrix/client/v3/account/whoami")
        return f"@{localpart}:{me['user_id'].split(':', 1)[1]}"


def run_admin_command(command: Any, args: argparse.Namespace, out: Any = None) -> int:
    """Run one admin subcommand against the homeserver; its errors (already in ja/en) go to stderr."""
    out = out or sys.stdout
    try:
        if not args.token:
            raise CliError(both("guests.cli_no_token"))
        return int(command(Admin(args.homeserver, args.token), args, out))
    except (CliError, GuestDateError) as e:
        print(str(e), file=sys.stderr)
        return 1


def run(args: argparse.Namespace, out: Any = None) -> int:
    return run_admin_command(_COMMANDS[args.guest_command], args, out)


def _create(admin: Admin, args: argparse.Namespace, out: Any) -> int:
    expires = expires_ts(args.expires)
    user_id = admin.user_id(args.localpart)
    status, _ = admin.call("GET", "/_synapse/admin/v2/users/" + quote(user_id, safe=""), ok=(200, 404))
    if status == 200:
        raise CliError(both("guests.cli_exists", user=user_id))
    guest = create_guest(admin, user_id, args.name, expires, args.room, args.password)
    print(both("guests.cli_created", user=user_id, name=guest["display_name"], expires=date_of(expires),
               password=guest["password"]), file=out)
    if guest.get("joined"):
        print(both("guests.cli_joined", rooms=", ".join(guest["joined"])), file=out)
    if guest.get("not_joined"):
        print(both("guests.cli_not_joined", rooms=", ".join(guest["not_joined"])), file=out)
    return 0


def create_guest(api: Any, user_id: str, name: str, expires: int, rooms: list[str],
                 password: str | None = None) -> dict[str, Any]:
    """The guests module creates the account (marked as a guest first, then registered with the
    password, generated when None, named with the suffix and joined to the rooms it can join now):
    ``POST .../guests/create``, for server admins and the module's ``managers``. ``api.call(method,
    path, body)`` returns ``(status, answer)``; the answer has ``display_name``, ``joined``,
    ``not_joined``, ``password``. Used by this CLI; the sanitizer bot sends the same request."""
    body: dict[str, Any] = {"user_id": user_id, "display_name": name, "expires_ts": expires, "rooms": rooms}
    if password is not None:
        body["password"] = password
    _, guest = api.call("POST", GUESTS_PATH + "/create", body)
    return guest


def _list(admin: Admin, args: argparse.Namespace, out: Any) -> int:
    _, answer = admin.call("GET", GUESTS_PATH)
    if not answer["guests"]:
        print(both("guests.cli_none"), file=out)
    for g in answer["guests"]:
        state = ("guests.cli_state_active" if g["deactivated_ts"] is None else
                 "guests.cli_state_expired" if g["deactivated_reason"] == "expired" else "guests.cli_state_revoked")
        print("\t".join([g["user_id"], g["display_name"], date_of(g["expires_ts"]), both(state),
                         ",".join(g["rooms"])]), file=out)
    return 0


def _extend(admin: Admin, args: argparse.Namespace, out: Any) -> int:
    expires = expires_ts(args.expires)
    user_id = admin.user_id(args.localpart)
    admin.call("PUT", GUESTS_PATH + "/" + quote(user_id, safe=""), {"expires_ts": expires})
    print(both("guests.cli_extended", user=user_id, expires=date_of(expires)), file=out)
    return 0


def _revoke(admin: Admin, args: argparse.Namespace, out: Any) -> int:
    user_id = admin.user_id(args.localpart)
    admin.call("DELETE", GUESTS_PATH + "/" + quote(user_id, safe=""))
    print(both("guests.cli_revoked", user=user_id), file=out)
    return 0


def _check(admin: Admin, args: argparse.Namespace, out: Any) -> int:
    _, answer = admin.call("POST", GUESTS_PATH + "/check", {})
    print(both("guests.cli_checked", notified=", ".join(answer["notified"]) or "-",
               deactivated=", ".join(answer["deactivated"]) or "-"), file=out)
    return 0


_COMMANDS = {"create": _create, "list": _list, "extend": _extend, "revoke": _revoke, "check": _check}
