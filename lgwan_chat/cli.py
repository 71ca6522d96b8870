"""The ``lgwan-chat`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lgwan_chat.core.i18n import both


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lgwan-chat",
        description="自治体向けチャット（Matrix）スイートの管理コマンド / "
                    "Administration command of the municipal chat suite on Matrix")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="デモ環境を起動 / start the demo suite in the foreground (what `make demo` runs)")
    demo.add_argument("--data-dir", type=Path, default=Path("var/demo"),
                      help="デモのデータ置き場 / where the demo deployment lives (default: var/demo)")
    demo.add_argument("--internet-port", type=int, default=8008,
                      help="インターネット系の入口 / port of the internet-side entrance (default 8008)")
    demo.add_argument("--lgwan-port", type=int, default=8018,
                      help="LGWAN 系の入口 / port of the LGWAN-side entrance (default 8018)")
    demo.add_argument("--synapse-port-offset", type=int, default=100,
                      help="nginx の後ろの Synapse のポート = 入口 + この値 / Synapse behind nginx listens "
                           "this much higher (default 100)")

    check = commands.add_parser(
        "check-config", help="設定 YAML を検証 / validate the suite's YAML files")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")

    provision = commands.add_parser(
        "provision", help="組織 YAML からルームとスペースを作成・更新 / create and update rooms and spaces "
                          "from the organisation YAML")
    from lgwan_chat.provisioning.cli import add_arguments as provision_arguments

    provision_arguments(provision)

    sanitize = commands.add_parser(
        "sanitize", help="ファイルを無害化（ボットなしで）/ sanitize files without the bot")
    from bots.sanitizer.engine.cli import add_arguments

    add_arguments(sanitize)

    guest = commands.add_parser("guest", help="外部の方のゲストアカウント / guest accounts for outside contractors")
    from lgwan_chat.guests_cli import add_arguments as add_guest_arguments

    add_guest_arguments(guest)

    device = commands.add_parser("device", help="端末の承認（端末認証）/ approved devices")
    from lgwan_chat.devices_cli import add_arguments as add_device_arguments

    add_device_arguments(device)

    federation = commands.add_parser(
        "federation", help="フェデレーション許可リスト（署名・検証）/ the federation allow-list (sign, verify)")
    from lgwan_chat.federation_cli import add_arguments as add_federation_arguments

    add_federation_arguments(federation)

    deploy = commands.add_parser(
        "deploy", help="本番構成の生成と検証 / write and check a production deployment")
    from lgwan_chat.deploy.cli import add_arguments as add_deploy_arguments

    add_deploy_arguments(deploy)

    doctor = commands.add_parser(
        "doctor", help="稼働中の構成を外から診断 / probe a running deployment from the outside")
    from lgwan_chat.deploy.cli import add_doctor_arguments

    add_doctor_arguments(doctor)
    records = commands.add_parser(
        "records", help="記録の保存期間・ホールド・書き出し / chat records: retention, legal hold, export")
    from lgwan_chat.records.cli import add_arguments as add_records_arguments

    add_records_arguments(records)

    from lgwan_chat.operations.cli import add_backup_arguments, add_restore_arguments

    add_backup_arguments(commands.add_parser(
        "backup", help="稼働中の配置をバックアップ / back up a running deployment (databases, media, keys, bots)"))
    add_restore_arguments(commands.add_parser(
        "restore", help="バックアップを検証して復元 / check a backup and restore it"))

    args = parser.parse_args(argv)
    if args.command == "demo":
        from lgwan_chat import demo as demo_mod

        return demo_mod.run(args.data_dir, args.internet_port, args.lgwan_port, args.synapse_port_offset)
    if args.command == "check-config":
        return check_config(args.files)
    if args.command == "provision":
        from lgwan_chat.provisioning.cli import run as run_provision

        return run_provision(args)
    if args.command == "sanitize":
        from bots.sanitizer.engine.cli import run

        return run(args)
    if args.command == "guest":
        from lgwan_chat.guests_cli import run as run_guest

        return run_guest(args)
    if args.command == "device":
        from lgwan_chat.devices_cli import run as run_device

        return run_device(args)
    if args.command == "deploy":
        from lgwan_chat.deploy.cli import run as run_deploy

        return run_deploy(args)
    if args.command == "doctor":
        from lgwan_chat.deploy.cli import run_doctor

        return run_doctor(args)
    if args.command == "federation":
        from lgwan_chat.federation_cli import run as run_federation

        return run_federation(args)
    if args.command == "records":
        from lgwan_chat.records.cli import run as run_records

        return run_records(args)
    if args.command in ("backup", "restore"):
        from lgwan_chat.operations import cli as operations_cli

        return operations_cli.run_backup(args) if args.command == "backup" else operations_cli.run_restore(args)
    return 2


def check_config(files: list[Path]) -> int:
    from lgwan_chat.checkconfig import check_file, notes_file

    errors = 0
    for path in files:
        issues = check_file(path)
        for issue in issues:
            print(issue.format(), file=sys.stderr)
        if not issues:
            print(both("config.ok", file=path))
            for note in notes_file(path):
                print(note.format())
        errors += len(issues)
    if errors:
        print(both("config.summary_errors", count=errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
