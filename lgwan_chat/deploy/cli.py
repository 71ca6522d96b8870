"""``lgwan-chat deploy init ANSWERS.yaml OUTDIR`` and ``lgwan-chat deploy check OUTDIR``."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from lgwan_chat.core.i18n import both

from . import answers as answers_file
from .apply import plan, write
from .check import check, overridden
from .render import Layout, render
from .secrets import ensure
from .topology import build


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="deploy_command", required=True)
    init = commands.add_parser("init", help="回答ファイルから本番構成を生成 / write a deployment from an answers file")
    init.add_argument("answers", type=Path, metavar="ANSWERS.yaml")
    init.add_argument("outdir", type=Path, metavar="OUTDIR")
    init.add_argument("--dry-run", "--diff", dest="dry_run", action="store_true",
                      help="書き込まず差分だけ表示 / show what would change, write nothing")
    checker = commands.add_parser("check", help="生成した構成を検証 / validate a deployment directory")
    checker.add_argument("outdir", type=Path, metavar="OUTDIR")
    accounts = commands.add_parser("accounts", help="管理者とボットのアカウントを登録（Synapse の起動後）/ register "
                                                    "the admin's and the bots' accounts (Synapse running)")
    accounts.add_argument("outdir", type=Path, metavar="OUTDIR")
    move = commands.add_parser("move-to-postgres", help="SQLite から PostgreSQL へ移行（停止中に、deploy init の後）/ "
                                                        "move the data from SQLite to PostgreSQL (stopped, after "
                                                        "deploy init)")
    move.add_argument("outdir", type=Path, metavar="OUTDIR")
    move.add_argument("--sqlite-database", type=Path, required=True, metavar="FILE",
                      help="これまでの SQLite データベース / the SQLite database used until now")


def run(args: argparse.Namespace) -> int:
    if args.deploy_command == "check":
        return run_check(args.outdir)
    if args.deploy_command == "accounts":
        return run_accounts(args.outdir)
    if args.deploy_command == "move-to-postgres":
        return run_move(args.outdir, args.sqlite_database)
    return run_init(args.answers, args.outdir, args.dry_run)


def run_init(answers_path: Path, outdir: Path, dry_run: bool = False) -> int:
    answers, issues = answers_file.load_file(answers_path)
    if answers is None:
        for issue in issues:
            print(issue.format(), file=sys.stderr)
        print(both("config.summary_errors", count=len(issues)), file=sys.stderr)
        return 1
    outdir = outdir.resolve()
    secrets, made = ensure(outdir, answers.bots, dry_run=dry_run)
    files = render(answers, build(answers), secrets, Layout(outdir))
    changes = plan(outdir, files)
    for path in made:
        print(both("deploy.secret_created", path=path))
    for change in changes:
        if change.diff:
            print(change.diff, end="")
        print(both(f"deploy.{change.action}", path=outdir / change.path))
    if dry_run:
        print(both("deploy.dry_run"))
        return 0
    write(outdir, files, changes)
    return report_check(outdir, both("deploy.written", path=outdir))


def print_warnings(outdir: Path) -> None:
    """What does not stop the deployment but is not what the admin meant (stderr, exit code unchanged)."""
    warnings = overridden(outdir)
    for warning in warnings:
        print(warning.format(), file=sys.stderr)
    if warnings:
        print(both("deploy.warnings", count=len(warnings)), file=sys.stderr)


def run_check(outdir: Path) -> int:
    return report_check(outdir, both("config.ok", file=outdir))


def report_check(outdir: Path, success: str) -> int:
    """Check what is in ``outdir``: warnings and errors on stderr (exit 1 on errors), else ``success``."""
    issues = check(outdir)
    print_warnings(outdir)
    for issue in issues:
        print(issue.format(), file=sys.stderr)
    if issues:
        print(both("config.summary_errors", count=len(issues)), file=sys.stderr)
        return 1
    print(success)
    return 0


def run_accounts(outdir: Path) -> int:
    from lgwan_chat.core.http import HttpError

    from .accounts import ensure_accounts

    try:
        outcome = ensure_accounts(outdir)
    except (OSError, HttpError, KeyError, StopIteration) as e:
        print(both("deploy.accounts_failed", problem=e), file=sys.stderr)
        return 1
    for localpart, state in outcome.items():
        print(both(f"deploy.account_{state}", user=localpart))
    print(both("deploy.accounts_password", path=outdir / "secrets" / "admin.password"))
    return 0


def run_move(outdir: Path, sqlite_database: Path) -> int:
    import time

    try:
        import psycopg2
    except ImportError:
        print(both("deploy.move_no_driver"), file=sys.stderr)
        return 1

    from lgwan_chat.operations.deployment import DeploymentError

    from .move_to_postgres import move

    began = time.monotonic()
    say = lambda key, **params: print(both(key, **params), flush=True)  # noqa: E731
    try:
        outcome = move(outdir, sqlite_database, say)
    except DeploymentError as e:
        print(both(e.key, **e.params), file=sys.stderr)
        print(both("deploy.move_refused"), file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error, psycopg2.Error) as e:
        print(both("deploy.move_failed", problem=str(e).strip()), file=sys.stderr)
        return 1
    if outcome == "already":
        say("deploy.move_already_done")
    else:
        say("deploy.move_done", seconds=f"{time.monotonic() - began:.1f}")
    return 0


def add_doctor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lgwan_url", metavar="https://LGWAN-ENTRANCE")
    parser.add_argument("internet_url", metavar="https://INTERNET-ENTRANCE")
    parser.add_argument("--deployment", type=Path, metavar="OUTDIR",
                        help="deploy init の出力: テスト用アカウント（doctor）、ボット、連合リストをここから読む / "
                             "a deploy-init directory: the test account (doctor), the bots and the federation list")
    parser.add_argument("--user", help="テスト用アカウント（パスワードは環境変数 LGWAN_CHAT_DOCTOR_PASSWORD）/ "
                                       "the test account (its password in LGWAN_CHAT_DOCTOR_PASSWORD)")
    parser.add_argument("--password-file", type=Path, help="テスト用アカウントのパスワードのファイル / "
                                                           "a file holding the test account's password")
    parser.add_argument("--bot", action="append", metavar="NAME",
                        help="応答を確かめるボット（memo、@memo-bot:example など。繰り返し可）/ "
                             "a bot to ask (repeatable)")
    parser.add_argument("--federation", type=Path, metavar="FEDERATION.yaml",
                        help="連合の許可リスト: 載っているサーバーへの接続を確かめる / "
                             "the federation allow-list to probe")
    parser.add_argument("--ca-file", type=Path, help="入口の証明書を発行した CA（既定: システムの信頼）/ "
                                                     "the CA of the entrances' certificates (default: the system's)")
    parser.add_argument("--tls-days", type=int, default=21,
                        help="この日数以内に切れる証明書を ✗ にする（既定 21）/ ✗ a certificate expiring within "
                             "this many days (default 21)")
    parser.add_argument("--bot-timeout", type=float, default=60.0,
                        help="ボットの応答を待つ秒数（既定 60）/ seconds to wait for each bot (default 60)")


def run_doctor(args: argparse.Namespace) -> int:
    from .doctor import diagnose, languages_line, options_from, report

    try:
        options = options_from(args)
    except (OSError, ValueError) as e:
        print(both("doctor.options_failed", problem=e), file=sys.stderr)
        return 2
    print(languages_line(), flush=True)
    return report(diagnose(options), lambda line: print(line, flush=True))
