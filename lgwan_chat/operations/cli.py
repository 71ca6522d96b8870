"""``lgwan-chat backup OUTDIR`` and ``lgwan-chat restore BACKUPDIR``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from lgwan_chat.core.i18n import both


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("outdir", type=Path, metavar="OUTDIR",
                        help="バックアップの書き込み先（新規か空のフォルダ）/ where to write the backup (new or empty)")
    parser.add_argument("--deployment", type=Path, default=Path("."), metavar="DIR",
                        help="対象の配置フォルダ（deploy init の出力先か var/demo。既定: カレント）/ the deployment "
                             "folder (deploy init's OUTDIR or var/demo; default: the current folder)")


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("backup", type=Path, metavar="BACKUPDIR")
    parser.add_argument("--target", type=Path, metavar="DIR",
                        help="復元先のフォルダ（既定: バックアップ元と同じ場所）/ folder to restore into "
                             "(default: where the deployment was)")
    parser.add_argument("--postgres-database", metavar="NAME",
                        help="Synapse の PostgreSQL データベースをこの名前で復元（空か未作成）/ restore Synapse's "
                             "PostgreSQL database under this name (empty or not yet created)")
    parser.add_argument("--bot-postgres", action="append", default=[], metavar="BOT=DSN",
                        help="PostgreSQL に保存するボットの復元先 / where a bot kept in PostgreSQL is restored")
    parser.add_argument("--key-file", type=Path, metavar="FILE",
                        help="バックアップの署名鍵（既定: 復元先の secrets/backup_manifest_key。別のマシンへ復元する"
                             "ときは保管しておいた鍵）/ the backup key (default: the target's "
                             "secrets/backup_manifest_key; on a new machine, the copy you kept)")
    parser.add_argument("--force", action="store_true",
                        help="空でない復元先にも上書きする / overwrite a target that is not empty")
    parser.add_argument("--verify-only", action="store_true",
                        help="検証だけ行い、何も書かない / check the backup, write nothing")


def _say(key: str, **params: Any) -> None:
    print(both(key, **params), flush=True)


def run_backup(args: argparse.Namespace) -> int:
    from .backup import backup
    from .deployment import DeploymentError, find

    began = time.monotonic()
    try:
        manifest = backup(find(args.deployment), args.outdir, progress=_say)
    except DeploymentError as e:
        print(both(e.key, **e.params), file=sys.stderr)
        return 1
    except OSError as e:
        print(both("ops.backup_failed", problem=e), file=sys.stderr)
        return 1
    size = sum(f["size"] for f in manifest["files"].values())
    _say("ops.backup_done", path=args.outdir.resolve(), files=len(manifest["files"]), mb=f"{size / 1e6:.1f}",
         seconds=f"{time.monotonic() - began:.1f}")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from .deployment import DeploymentError
    from .restore import BackupInvalid, key_for, restore, verify

    began = time.monotonic()
    bot_postgres = {}
    for item in args.bot_postgres:
        name, sep, dsn = item.partition("=")
        if not sep or not dsn:
            print(both("ops.bad_bot_postgres", value=item), file=sys.stderr)
            return 2
        bot_postgres[name] = dsn
    try:
        target = args.target
        if target is None:
            target = Path(_unverified_root(args.backup.resolve()))
        key = key_for(target.resolve(), args.key_file)
        if args.verify_only:
            manifest = verify(args.backup.resolve(), key)
            _say("ops.backup_verified", path=args.backup.resolve(), files=len(manifest["files"]),
                 created=manifest.get("created"))
            print(json.dumps({"versions": manifest.get("versions"), "included": {
                k: v for k, v in manifest.get("included", {}).items() if k != "external"}}, ensure_ascii=False,
                indent=1))
            return 0
        restore(args.backup, target, key, force=args.force, postgres_database=args.postgres_database,
                bot_postgres=bot_postgres, progress=_say)
    except BackupInvalid as e:
        print(both(e.key, **e.params), file=sys.stderr)
        print(both("ops.restore_refused"), file=sys.stderr)
        return 1
    except DeploymentError as e:
        print(both(e.key, **e.params), file=sys.stderr)
        return 1
    except OSError as e:
        print(both("ops.restore_failed", problem=e), file=sys.stderr)
        return 1
    _say("ops.restore_done", path=target.resolve(), seconds=f"{time.monotonic() - began:.1f}")
    return 0


def _unverified_root(backup: Path) -> str:
    """Where the backed-up deployment was, as its manifest says: only the default target (and so the
    place of its key); the whole manifest is checked before anything is restored."""
    from .restore import BackupInvalid, read_manifest

    root = (read_manifest(backup).get("deployment") or {}).get("root")
    if not isinstance(root, str) or not root.startswith("/"):
        raise BackupInvalid("ops.manifest_broken", path=backup / "manifest.json", problem="deployment.root")
    return root
