"""``!エクスポート``: every memo as Markdown or CSV, attachments beside it, in one zip.

CSV is UTF-8 with a BOM so that Excel opens Japanese correctly. Attachments that came from the
internet side and wait for sanitization are left out (named in the file instead): an export
must not carry an unsanitized file across zones. Zip member names are UTF-8 (flagged as such).
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import zipfile
from typing import TYPE_CHECKING, Any

import aiohttp

from bots.runtime import Context
from bots.runtime.bot import TooLarge
from bots.runtime.excel import excel_csv, text_cell

from .store import Memo

if TYPE_CHECKING:
    from .app import MemoBot  # app.py imports this module: a type only

log = logging.getLogger("lgwan_chat.memo")

_UNSAFE = re.compile(r"[\\/:*?\"<>|\x00-\x1f]")


def _safe_name(number: int, name: str | None) -> str:
    cleaned = _UNSAFE.sub("_", (name or "file").strip()) or "file"
    return f"attachments/{number:04d}-{cleaned[:120]}"


async def build_export(app: MemoBot, ctx: Context, memos: list[Memo], fmt: str) -> tuple[bytes, int]:
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
            try:  # read up to what is left of the limit: a file past it stops the download there
                body = await app.bot.download(memo.mxc, limit - total)
            except TooLarge:
                notes[memo.number] = ctx.t("memo.export_left_out_size", limit=app.options.export_max_mb)
                continue
            except (RuntimeError, ValueError, aiohttp.ClientError, asyncio.TimeoutError):
                log.warning("export: attachment not downloaded", extra={"mxc": memo.mxc}, exc_info=True)
                notes[memo.number] = ctx.t("memo.export_left_out_download")
                continue
            total += len(body)
            files[memo.number] = _safe_name(memo.number, memo.filename)
            archive.writestr(files[memo.number], body)
        if fmt == "csv":
            archive.writestr("memos.csv", _csv(ctx, memos, files, notes))
        else:
            archive.writestr("memos.md", _markdown(ctx, memos, files, notes))
    return out.getvalue(), len(notes)


def _csv(ctx: Context, memos: list[Memo], files: dict[int, str], notes: dict[int, str]) -> bytes:
    header = [ctx.t(f"memo.export_column.{c}") for c in ("number", "created", "kind", "text", "tags", "attachment")]
    return excel_csv([header] + [
        [memo.number, ctx.when(memo.created_ts, with_zone=False), ctx.t(f"memo.kind.{memo.kind}"),
         text_cell(memo.body), " ".join(memo.tags), files.get(memo.number) or notes.get(memo.number, "")]
        for memo in memos])


def _markdown(ctx: Context, memos: list[Memo], files: dict[int, str], notes: dict[int, str]) -> bytes:
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
