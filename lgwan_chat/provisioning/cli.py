"""``lgwan-chat provision [--dry-run] [--allow-delete] organisation.yaml --homeserver URL ...``

Authentication: the provisioning account is a server admin whose access token
is kept in ``--token-file``. When that file does not exist yet and
``--shared-secret-file`` (Synapse's ``registration_shared_secret``) is given,
the account (``--provisioner``, default ``provisioner``) is registered and its
token written there (mode 0600). ``--admin-token`` (or ``LGWAN_ADMIN_TOKEN``)
uses an existing admin's token instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lgwan_chat.core.i18n import both


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="ORGANISATION_YAML")
    parser.add_argument("--homeserver", required=True,
                        help="Synapse のクライアント API の URL / client API URL of the homeserver")
    parser.add_argument("--token-file", type=Path,
                        help="設定用アカウントのアクセストークンのファイル / "
                             "file holding the provisioning account's token")
    parser.add_argument("--shared-secret-file", type=Path,
                        help="registration_shared_secret のファイル（トークンがないとき登録に使用）/ "
                             "Synapse's registration shared secret, "
                             "to register the account when the token file is missing")
    parser.add_argument("--provisioner", default="provisioner",
                        help="設定用アカウントの localpart / "
                             "localpart of the provisioning account (default provisioner)")
    parser.add_argument("--admin-token", default=os.environ.get("LGWAN_ADMIN_TOKEN"),
                        help="既存の管理者のトークン / an existing server admin's token (or LGWAN_ADMIN_TOKEN)")
    parser.add_argument("--dry-run", action="store_true",
                        help="計画を表示するだけで変更しない / print the plan, change nothing")
    parser.add_argument("--allow-delete", action="store_true",
                        help="YAML から外れた職員をルームから外し、YAML にないルームを片付ける / "
                             "remove staff from rooms the YAML no longer gives them, archive rooms gone from the YAML")


def _token(args: argparse.Namespace) -> str | None:
    from .apply import register_provisioner

    if args.admin_token:
        return args.admin_token
    if args.token_file is None:
        return None
    if not args.token_file.exists():
        if args.shared_secret_file is None:
            return None
        secret = args.shared_secret_file.read_text(encoding="utf-8").strip()
        user = register_provisioner(args.homeserver, secret, args.provisioner, args.token_file)
        print(both("provisioning.token_saved", user=user, file=args.token_file))
    return args.token_file.read_text(encoding="utf-8").strip()


def run(args: argparse.Namespace) -> int:
    from lgwan_chat.checkconfig import check_file
    from lgwan_chat.core.organisation import load as load_organisation
    from lgwan_chat.core.provisioning_plan import make_plan

    from .apply import Homeserver, HttpError, ProvisioningError

    issues = check_file(args.file)
    if issues:
        for issue in issues:
            print(issue.format(), file=sys.stderr)
        print(both("config.summary_errors", count=len(issues)), file=sys.stderr)
        return 1
    org = load_organisation(args.file)
    try:
        token = _token(args)
        if not token:
            print(both("provisioning.no_token"), file=sys.stderr)
            return 2
        hs = Homeserver.connect(args.homeserver, token)
        plan = make_plan(org, hs.observe(org), allow_delete=args.allow_delete)
        print(plan.render(), end="")
        if args.dry_run:
            print(both("provisioning.dry_run"))
            return 0
        hs.apply(plan, org)
        # the records: section's retention periods on the rooms just made or changed
        from lgwan_chat.records.config import load as load_records
        from lgwan_chat.records.retention import RecordsError, Rooms
        from lgwan_chat.records.retention import apply as apply_retention

        records = load_records(args.file)
        if records is not None:
            try:
                lines = apply_retention(Rooms(hs.client), org, records)
            except RecordsError as e:
                raise ProvisioningError(str(e)) from None
            for line in lines:
                print(line)
    except (ProvisioningError, HttpError, OSError) as e:
        print(both("provisioning.error", problem=e), file=sys.stderr)
        return 1
    if plan.actions:
        print(both("provisioning.applied", count=len(plan.actions)))
    return 0
