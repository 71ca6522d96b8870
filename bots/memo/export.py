"""``!エクスポート``: every memo as Markdown or CSV, attachments beside it, in one zip.

CSV is UTF-8 with a BOM so that Excel opens Japanese correctly. Attachments that came from the
internet side and wait for sanitization are left out (named in the file instead): an export
must not carry an unsanitized file across zones. Zip member names are UTF-8 (flagged as such).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from typing import TYPE_CHECKING, Any

from nio import DownloadResponse

if TYPE_CHECKING:
    from bots.runtime import Context

    from .app import MemoBot
    from .store import Memo

_UNSAFE = re.compile(r"[\\/:*?\"<>|\x00-\x1f]")


def _safe_name(number: int, name: str | None) -> str:
    cleaned = _UNSAFE.sub("_", (name or "file").strip()) or "file"
    return f"attachments/{number:04d}-{cleaned[:120]}"


async def build_export(app: "MemoBot", ctx: "Context", memos: list["Memo"], fmt: str) -> tuple[bytes, int]:
    """The zip and how many attachments were left out."""
    limit = app.options.export_max_mb * 1024 * 1024
    files: dict[int, str] = {}
    notes: dict[int, str] = {}
    total = 0
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for memo in memos:
            if not memo.mxc:
                continue
            if await app.untrusted(memo.mxc):
                notes[memo.number] = ctx.t("memo.export_left_out_unsanitized")
                continue
            if memo.size and total + memo.size > limit:
                notes[memo.number] = ctx.t("memo.export_left_out_size", limit=app.options.export_max_mb)
                continue
            server_name, _, media_id = memo.mxc[len("mxc://"):].partition("/")
            response = await app.bot.client.download(server_name=server_name, media_id=media_id)
            if not isinstance(response, DownloadResponse):
                notes[memo.number] = ctx.t("memo.export_left_out_download")
                continue
            body = response.body if isinstance(response.body, bytes) else bytes(response.body)
            if total + len(body) > limit:
                notes[memo.number] = ctx.t("memo.export_left_out_size", limit=app.options.export_max_mb)
                continue
            total += len(body)
            files[memo.number] = _safe_name(memo.number, memo.filename)
            archive.writestr(files[memo.number], body)
        if fmt == "csv":
            archive.writestr("memos.csv", _csv(ctx, memos, files, notes))
        else:
            archive.writestr("memos.md", _markdown(ctx, memos, files, notes))
    return out.getvalue(), len(notes)


def _csv(ctx: "Context", memos: list["Memo"], files: dict[int, str], notes: dict[int, str]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow([ctx.t(f"memo.export_column.{c}") for c in ("number", "created", "kind", "text", "tags",
                                                                  "attachment")])
    for memo in memos:
        writer.writerow([memo.number, ctx.when(memo.created_ts, with_zone=False), ctx.t(f"memo.kind.{memo.kind}"),
                         _no_formula(memo.body), " ".join(memo.tags),
                         files.get(memo.number) or notes.get(memo.number, "")])
    return "\ufeff".encode() + text.getvalue().encode("utf-8")


def _no_formula(value: str) -> str:
    """Excel would run a cell starting with = + - @ as a formula: quote it as text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _markdown(ctx: "Context", memos: list["Memo"], files: dict[int, str], notes: dict[int, str]) -> bytes:
    lines: list[Any] = [f"# {ctx.t('memo.export_title')}", ""]
    for memo in memos:
        lines.append(f"## #{memo.number} {ctx.when(memo.created_ts)} ({ctx.t(f'memo.kind.{memo.kind}')})")
        if memo.tags:
            lines.append(" ".join("#" + t for t in memo.tags))
        lines.append("")
        lines.append(memo.body)
        if memo.number in files:
            lines.append("")
            lines.append(f"[{memo.filename or files[memo.number]}](<{files[memo.number]}>)")
        elif memo.number in notes:
            lines.append("")
            lines.append(f"> {notes[memo.number]}")
        lines.append("")
    return "\n".join(lines).encode("utf-8")
