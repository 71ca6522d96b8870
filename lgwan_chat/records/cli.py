"""``lgwan-chat records``: retention, legal holds, export and verification of chat records.

Every command that changes something or reads a room's history is done with a server admin's
access token (``--admin-token``/``LGWAN_ADMIN_TOKEN`` or ``--token-file``), and holds and
exports are written to the audit log (``records.audit_log`` of ``--config``, or ``--audit-log``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from lgwan_chat.core.configcheck.typed import ConfigInvalid
from lgwan_chat.core.http import HttpError
from lgwan_chat.core.i18n import both
from lgwan_chat.core.signed_manifest import KeyProblem, read_key

from . import audit
from .config import Records
from .config import load as load_records
from .retention import RecordsError, Rooms

if TYPE_CHECKING:
    from lgwan_chat.provisioning.apply import Client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="records_command", required=True)

    def server(p: argparse.ArgumentParser) -> None:
        p.add_argument("--homeserver", required=True, help="Synapse の URL / the homeserver's URL")
        p.add_argument("--admin-token", default=os.environ.get("LGWAN_ADMIN_TOKEN"),
                       help="サーバー管理者のトークン / a server admin's access token (or LGWAN_ADMIN_TOKEN)")
        p.add_argument("--token-file", type=Path, help="トークンのファイル / file holding that token")

    def settings(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, metavar="ORGANISATION_YAML",
                       help="records: を含む組織 YAML / the organisation YAML with its records: section")
        p.add_argument("--audit-log", type=Path, help="監査ログ / the audit log (default: records.audit_log)")

    block = commands.add_parser("synapse-config", help="homeserver.yaml の retention: を出力 / print the "
                                                       "retention: block for homeserver.yaml")
    block.add_argument("file", type=Path, metavar="ORGANISATION_YAML")

    apply = commands.add_parser("apply", help="管理ルームに保存期間を設定 / set the retention of the managed rooms")
    apply.add_argument("file", type=Path, metavar="ORGANISATION_YAML")
    apply.add_argument("--dry-run", action="store_true", help="表示のみ / only show what would change")
    server(apply)

    for name, text in (("hold", "ルームを削除対象から除外（訴訟ホールド）/ exempt a room from purging (legal hold)"),
                       ("unhold", "ホールドを解除 / lift a legal hold")):
        p = commands.add_parser(name, help=text)
        p.add_argument("room", metavar="ROOM", help="!ルームID または #別名 / room id or #alias")
        p.add_argument("--reason", required=True, help="理由（監査ログに記録）/ reason (in the audit log)")
        server(p)
        settings(p)

    listing = commands.add_parser("holds", help="ホールド中のルーム / rooms under legal hold")
    server(listing)

    export = commands.add_parser("export", help="ルームの記録を書き出し / export a room's history")
    export.add_argument("room", metavar="ROOM")
    export.add_argument("--from", dest="first", metavar="YYYY-MM-DD", help="開始日（JST、含む）/ first day (JST)")
    export.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="終了日（JST、含む）/ last day (JST)")
    export.add_argument("--format", choices=("html", "pdf", "csv"), default="html")
    export.add_argument("--out", type=Path, required=True, help="書き出し先（空のディレクトリ）/ an empty directory")
    export.add_argument("--key-file", type=Path, help="署名鍵 / the export key (default: records.export_key_file)")
    server(export)
    settings(export)

    media = commands.add_parser("purge-media", help="削除されたメッセージのファイルを削除 / delete the files "
                                                    "of purged messages")
    media.add_argument("--state", type=Path, help="前回の記録 / what the last run saw (default: records.media_state)")
    media.add_argument("--dry-run", action="store_true")
    server(media)
    settings(media)

    check = commands.add_parser("verify", help="書き出した記録の改ざん検査 / check an export is unchanged")
    check.add_argument("dir", type=Path, metavar="EXPORT_DIR")
    check.add_argument("--key-file", type=Path)
    check.add_argument("--config", type=Path, metavar="ORGANISATION_YAML")


def _records(path: Path | None) -> Records:
    if path is None:
        return Records()
    records = load_records(path)
    return records if records is not None else Records()


def _client(args: argparse.Namespace) -> Client:
    from lgwan_chat.provisioning.apply import Client

    token = args.admin_token
    if not token and args.token_file is not None:
        token = args.token_file.read_text(encoding="utf-8").strip()
    if not token:
        raise RecordsError(both("records.no_token"))
    return Client(args.homeserver, token)


def _require_admin(client: Client) -> str:
    me = str(client.call("GET", "/_matrix/client/v3/account/whoami")["user_id"])
    try:
        is_admin = client.call("GET", f"/_synapse/admin/v1/users/{urllib.parse.quote(me, safe='')}/admin")["admin"]
    except HttpError:
        is_admin = False
    if not is_admin:
        raise RecordsError(both("records.not_admin", user=me))
    return me


def _audit_path(args: argparse.Namespace, records: Records) -> Path:
    path = args.audit_log or (Path(records.audit_log) if records.audit_log else None)
    if path is None:
        raise RecordsError(both("records.no_audit_log"))
    return path


def _key(args: argparse.Namespace, records: Records) -> bytes:
    path = args.key_file or records.key_path()
    if path is None:
        raise RecordsError(both("records.no_key"))
    try:
        return read_key(path)
    except KeyProblem as e:
        raise RecordsError(both(f"records.{e.kind}", **e.params)) from None


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (RecordsError, ConfigInvalid) as e:
        if isinstance(e, ConfigInvalid):
            for issue in e.issues:
                print(issue.format(), file=sys.stderr)
        else:
            print(str(e), file=sys.stderr)
        return 1
    except (HttpError, OSError) as e:
        print(both("records.error", problem=e), file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from .retention import apply, hold, holds, homeserver_block, unhold

    command = args.records_command
    if command == "synapse-config":
        records = _records(args.file)
        print(yaml.safe_dump({"retention": homeserver_block(records.retention)}, sort_keys=False), end="")
        return 0
    if command == "verify":
        from .export import verify

        problems = verify(args.dir, _key(args, _records(args.config)))
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return 1
        print(both("records.verify_ok", path=args.dir))
        return 0
    client = _client(args)
    if command == "apply":
        from lgwan_chat.core.organisation import load as load_organisation

        records = _records(args.file)
        for line in apply(Rooms(client), load_organisation(args.file), records, dry_run=args.dry_run):
            print(line)
        return 0
    if command == "holds":
        found = holds(Rooms(client))
        if not found:
            print(both("records.no_holds"))
        for h in found:
            print(json.dumps(h, ensure_ascii=False, sort_keys=True))
        return 0
    records = _records(args.config)
    log = _audit_path(args, records)
    me = _require_admin(client)
    if command == "purge-media":
        from .media import purge_media

        state = args.state or (Path(records.media_state) if records.media_state else None)
        if state is None:
            raise RecordsError(both("records.no_media_state"))
        deleted = purge_media(client, state, dry_run=args.dry_run)
        if deleted and not args.dry_run:
            audit.append(log, "purge_media", by=me, files=deleted)
        print(both("records.media_purged", count=len(deleted)))
        return 0
    if command in ("hold", "unhold"):
        done = (hold if command == "hold" else unhold)(Rooms(client), args.room, args.reason)
        # in a room the admin is not in (a DM): which member's login the admin API sent the events with
        acted = {"sent_as": done["sent_as"]} if done.get("sent_as") else {}
        audit.append(log, command, by=me, room=args.room, room_id=done["room_id"], reason=args.reason, **acted)
        print(both(f"records.{command}_done", room=args.room))
        return 0
    if command == "export":
        from .export import export

        key = _key(args, records)
        now = int(time.time() * 1000)
        try:
            manifest = export(client, args.room, args.first, args.last, args.format, args.out, key, me, now)
        except Exception as e:
            audit.append(log, "export_failed", by=me, room=args.room, first=args.first, last=args.last,
                         format=args.format, out=str(args.out), problem=str(e)[:500])
            raise
        audit.append(log, "export", by=me, room=args.room, room_id=manifest["room_id"], first=args.first,
                     last=args.last, format=args.format, out=str(args.out.resolve()),
                     messages=manifest["messages"], manifest_hmac=manifest["hmac"])
        print(both("records.export_done", path=args.out, count=manifest["messages"]))
        return 0
    return 2
