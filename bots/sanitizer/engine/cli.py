"""``lgwan-chat sanitize FILE... [--out DIR]`` (or ``python -m bots.sanitizer.engine``): the engine
without the bot, e.g. for a file that came by USB or email. Exit 0 when every file was sanitized,
1 when any was refused, 2 on bad usage or configuration."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import yaml

from lgwan_chat.core.configcheck import typed
from lgwan_chat.core.i18n import LANGUAGES, both

from .audit import AuditLog
from .engine import Sanitizer
from .policy import Policies


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--out", type=Path, default=Path("sanitized"),
                        help="無害化したファイルの保存先 / folder for the sanitized files (default: ./sanitized)")
    parser.add_argument("--config", type=Path,
                        help="bots.yaml（bots.sanitizer.engine を使う）か engine: だけの YAML / "
                             "bots.yaml (its bots.sanitizer.engine) or a YAML with an engine: mapping")
    parser.add_argument("--audit", type=Path, help="監査ログ（JSON Lines）/ audit log (JSON lines)")
    parser.add_argument("--lang", choices=LANGUAGES, default="ja", help="報告の言語 / language of the reports")
    parser.add_argument("--json", action="store_true", help="結果を JSON で出力 / print results as JSON lines")


def load_policies(path: Path | None) -> Policies:
    if path is None:
        return Policies()
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    raw = ((doc.get("bots") or {}).get("sanitizer") or {}).get("engine") if "bots" in doc else doc.get("engine")
    policies, issues = typed.checked(Policies, raw)
    if issues:
        raise ValueError("\n".join(i.with_location(str(path), ("engine",)).format() for i in issues))
    assert policies is not None
    return policies


async def sanitize_files(args: argparse.Namespace) -> int:
    policies = load_policies(args.config)
    audit = AuditLog(args.audit) if args.audit else None
    args.out.mkdir(parents=True, exist_ok=True)
    refused = 0
    async with Sanitizer(policies, audit=audit) as engine:
        for path in args.files:
            result = await engine.sanitize(path.read_bytes(), path.name)
            written = []
            for output in result.outputs:
                target = args.out / output.filename
                target.write_bytes(output.data)
                written.append(str(target))
            refused += not result.ok
            if args.json:
                print(json.dumps({"file": str(path), "verdict": result.verdict, "detected": result.detected,
                                  "kind": result.kind, "policy": result.policy, "outputs": written,
                                  "report": result.report(args.lang)}, ensure_ascii=False))
            else:
                print(f"{path}: {result.report(args.lang)}" + "".join(f"\n  -> {w}" for w in written))
    return 1 if refused else 0


def run(args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        print(both("sanitizer.cli_missing", files=", ".join(missing)), file=sys.stderr)
        return 2
    try:
        return asyncio.run(sanitize_files(args))
    except ValueError as e:  # configuration
        print(str(e), file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bots.sanitizer.engine",
                                     description="ファイルを無害化します / sanitize files")
    add_arguments(parser)
    return run(parser.parse_args(argv))
