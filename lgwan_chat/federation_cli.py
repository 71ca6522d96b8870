"""``lgwan-chat federation``: the federation allow-list for the prefecture and each municipality.

- ``generate-key KEYFILE``: the prefecture's ed25519 signing key (Synapse's signing.key format);
  prints the public key every server configures as ``signing_public_key``;
- ``sign --key KEYFILE LIST.yaml``: writes (or replaces) the list's ``signatures:`` block;
- ``verify [--public-key B64] LIST.yaml``: checks the list (and its signature);
- ``homeserver-snippet [--server-name NAME] LIST.yaml``: Synapse's ``federation_domain_whitelist``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from lgwan_chat.core.i18n import both


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="federation_command", required=True)
    generate = commands.add_parser("generate-key", help="県の署名鍵を作成 / create the prefecture's signing key")
    generate.add_argument("keyfile", type=Path, metavar="KEYFILE")
    generate.add_argument("--key-id", default=None,
                          help="鍵 ID（ed25519: の後）/ key id after ed25519: (default: a random one)")
    sign = commands.add_parser("sign", help="許可リストに署名 / sign the allow-list (in place)")
    sign.add_argument("--key", type=Path, required=True, metavar="KEYFILE")
    sign.add_argument("--signer", default=None,
                      help="署名者のサーバー名 / signer's server name (default: the list's first prefecture)")
    sign.add_argument("list", type=Path, metavar="LIST.yaml")
    verify = commands.add_parser("verify", help="許可リストを検証 / check the allow-list and its signature")
    verify.add_argument("--public-key", default=None, metavar="BASE64")
    verify.add_argument("list", type=Path, metavar="LIST.yaml")
    snippet = commands.add_parser("homeserver-snippet",
                                  help="homeserver.yaml 用の federation_domain_whitelist を出力 / "
                                       "print homeserver.yaml's federation_domain_whitelist")
    snippet.add_argument("--server-name", default=None,
                         help="このサーバーの名前（一覧になければ加える）/ this server's name (added if not listed)")
    snippet.add_argument("list", type=Path, metavar="LIST.yaml")


def _fail(error: Exception) -> int:
    for issue in getattr(error, "issues", None) or []:
        print(issue.format(), file=sys.stderr)
    if not getattr(error, "issues", None):
        print(str(error), file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    from synapse_modules.federation.allowlist import AllowListError, load_allowlist, sign_text, whitelist

    command = args.federation_command
    if command == "generate-key":
        from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key, write_signing_keys

        if args.keyfile.exists():
            print(both("federation.cli.key_exists", file=args.keyfile), file=sys.stderr)
            return 1
        import secrets

        key = generate_signing_key(args.key_id or "pref_" + secrets.token_hex(3))
        args.keyfile.parent.mkdir(parents=True, exist_ok=True)
        with open(args.keyfile, "x", encoding="utf-8") as f:
            write_signing_keys(f, [key])
        args.keyfile.chmod(0o600)
        print(both("federation.cli.key_written", sep="\n", file=args.keyfile, key_id=f"ed25519:{key.version}",
                   public_key=encode_verify_key_base64(get_verify_key(key))))
        return 0
    try:
        if command == "sign":
            from signedjson.key import read_signing_keys

            with open(args.key, encoding="utf-8") as f:
                key = read_signing_keys(f)[0]
            allowlist = load_allowlist(args.list)
            signer = args.signer or next((s.name for s in allowlist.servers if s.role == "prefecture"),
                                         allowlist.servers[0].name)
            args.list.write_text(sign_text(args.list.read_text(encoding="utf-8"), key, signer), encoding="utf-8")
            print(both("federation.cli.signed", file=args.list, signer=signer, key_id=f"ed25519:{key.version}"))
            return 0
        if command == "verify":
            allowlist = load_allowlist(args.list, args.public_key)
            if allowlist.signed_by:
                print(both("federation.cli.verified", file=args.list, servers=len(allowlist.servers),
                           groups=len(allowlist.groups), signer=" ".join(allowlist.signed_by)))
            else:
                print(both("federation.cli.valid_unsigned", file=args.list, servers=len(allowlist.servers),
                           groups=len(allowlist.groups)))
            return 0
        if command == "homeserver-snippet":
            allowlist = load_allowlist(args.list)
            print(f"# {both('federation.cli.snippet_comment', file=args.list)}")
            print(yaml.safe_dump({"federation_domain_whitelist": whitelist(allowlist, args.server_name)},
                                 allow_unicode=True, default_flow_style=False), end="")
            return 0
    except AllowListError as e:
        return _fail(e)
    except (OSError, ValueError, IndexError) as e:  # unreadable or malformed key file
        return _fail(e)
    return 2
