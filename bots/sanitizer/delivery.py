"""Posting a sanitization result into a room: the one-line report, then each sanitized file.

Used for files posted in rooms (replies to the original), files sent to the bot in a DM, and files
from the contractor upload page. Only the engine's outputs are ever uploaded; the bot is a
``trusted_uploader`` of the zone module, so LGWAN devices may open what it posts.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from PIL import Image

from bots.runtime import Bot

from .engine import Output, Result
from .engine.filetypes import file_type_words  # noqa: F401 (re-exported)
from .progress import edit_txn, replacement

log = logging.getLogger("lgwan_chat.sanitizer")


def report(result: Result, lang: str) -> str:
    """The one-line report a person reads: what was done, or why it was refused, in words."""
    return result.report(lang)


def _file_content(output: Output, mxc: str) -> dict[str, Any]:
    info: dict[str, Any] = {"mimetype": output.mimetype, "size": len(output.data)}
    msgtype = "m.file"
    if output.mimetype in ("image/png", "image/jpeg"):
        msgtype = "m.image"
        with Image.open(io.BytesIO(output.data)) as image:  # our own re-encoded image: only its size is read
            info["w"], info["h"] = image.size
    return {"msgtype": msgtype, "body": output.filename, "filename": output.filename, "url": mxc, "info": info,
            "m.mentions": {}}


async def deliver(bot: Bot, room_id: str, result: Result, report: str, *, txn_key: str,
                  reply_to: str | None = None, report_html: str | None = None, edit: str | None = None) -> list[str]:
    """Send ``report`` (a notice) and, when sanitized, each output file; returns the event ids.
    ``txn_key`` makes a repeat after a crash send nothing twice. ``edit``: the file's progress
    message (progress.py), which the report replaces instead of being a message of its own (that edit is
    sent again after a crash: the repeat edited the progress message again)."""
    relates = {"m.relates_to": {"m.in_reply_to": {"event_id": reply_to}}} if reply_to else {}
    if edit is not None:
        await bot.send(room_id, "m.room.message", replacement(edit, report, report_html),
                       txn_key=edit_txn(f"{txn_key}/report"))
        sent = [edit]
    else:
        notice: dict[str, Any] = {"msgtype": "m.notice", "body": report, "m.mentions": {}, **relates}
        if report_html is not None:
            notice.update({"format": "org.matrix.custom.html", "formatted_body": report_html})
        sent = [await bot.send(room_id, "m.room.message", notice, txn_key=f"{txn_key}/report")]
    outputs = result.outputs if result.ok else ()
    if outputs:
        log.info("uploading", extra={"room_id": room_id, "txn_key": txn_key, "files": len(outputs)})
    for index, output in enumerate(outputs):
        mxc = await bot.upload(output.data, output.mimetype, output.filename)
        sent.append(await bot.send(room_id, "m.room.message", {**_file_content(output, mxc), **relates},
                                   txn_key=f"{txn_key}/file/{index}"))
    return [event_id for event_id in sent if event_id]
