"""The progress message of a long file: "無害化しています… 40/300 ページ", one message edited.

- It is posted (a reply to the file) once the file has run ``after_s`` seconds, or at once when it
  has ``pages`` pages or more; a quick file never gets one.
- It is edited as pages come back checked from the jail (the engine's ``progress`` callback), at most
  every ``every_s`` seconds; an edit is sent only when the count changed.
- At the end the result replaces it (:func:`delivery.deliver` with ``edit=``), or it says the file was
  cancelled: the room keeps one message per file, not one per step. Every edit has a fresh transaction
  id (:func:`edit_txn`): a file stopped by a restart after its result was shown is done again, its
  message edited again, and the result must come last again.
- After a restart the same message goes on being edited (its id is kept with the queued file).
- A ``!編集用`` request (queue.py's ``editable`` jobs) gets the same message, as a reply to the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time
from collections.abc import Callable
from typing import Any

from bots.runtime import Bot
from lgwan_chat.core.i18n import t

log = logging.getLogger("lgwan_chat.sanitizer.progress")


def replacement(event_id: str, text: str, html_text: str | None = None) -> dict[str, Any]:
    """An edit (``m.replace``) of the bot's message ``event_id`` so that it reads ``text``."""
    new: dict[str, Any] = {"msgtype": "m.notice", "body": text, "m.mentions": {},
                           "format": "org.matrix.custom.html",
                           "formatted_body": html_text if html_text is not None
                           else html.escape(text).replace("\n", "<br>")}
    return {"msgtype": "m.notice", "body": "* " + text, "m.new_content": new, "m.mentions": {},
            "m.relates_to": {"rel_type": "m.replace", "event_id": event_id}}


def edit_txn(key: str) -> str:
    """A fresh transaction id for an edit of a progress message. After a restart the file is done
    again and its message edited again from the first page: the final edit (the result) must then
    be sent again too, to stay the latest one a client shows; a repeated edit is not a second message."""
    return f"{key}/{time.time_ns()}"


class Progress:
    """One running file's progress message."""

    def __init__(self, bot: Bot, room_id: str, file_event_id: str, lang: str, *, after_s: float, pages: int,
                 every_s: float, shown: str | None = None, posted: Callable[[str], None] | None = None,
                 cancel_hint: str = "sanitizer.progress.how_to_cancel"):
        self.bot = bot
        self.room_id = room_id
        self.file_event_id = file_event_id
        self.lang = lang
        self.after_s = after_s
        self.pages = pages
        self.every_s = every_s
        #: the progress message, once posted (or kept from before a restart)
        self.event_id = shown
        self._posted = posted
        #: how to cancel, for what the job's event is (a file, a !編集用 request)
        self.cancel_hint = cancel_hint
        self.done = 0
        self.total: int | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._started = time.monotonic()

    def text(self) -> str:
        if self.total:
            head = t("sanitizer.progress.pages", self.lang, done=self.done, total=self.total)
        else:
            head = t("sanitizer.progress.started", self.lang)
        return head + "\n" + t(self.cancel_hint, self.lang)

    def update(self, done: int, total: int) -> None:
        """The engine's progress callback: pages checked so far, pages in all."""
        self.done, self.total = max(self.done, min(done, total)), total
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> str | None:
        """No more edits (an edit under way is finished first); the message's id, if one was posted."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), 30)
            if not self._task.done():
                self._task.cancel()
        return self.event_id

    async def _wait(self, timeout: float | None) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    def _long(self) -> bool:
        return (self.total is not None and self.total >= self.pages) or \
            time.monotonic() - self._started >= self.after_s

    async def _run(self) -> None:
        try:
            while self.event_id is None:
                if self._stopping:
                    return
                if self._long():
                    await self._post()
                    break
                await self._wait(max(0.05, self.after_s - (time.monotonic() - self._started)))
            shown = self.text()
            while not self._stopping:
                await self._wait(None)
                if self._stopping:
                    return
                if self.text() != shown:
                    shown = self.text()
                    await self._edit(shown)
                    await self._pause()
        except asyncio.CancelledError:
            raise
        except Exception:  # a progress message that could not be sent never fails the file
            log.exception("progress message failed", extra={"event_id": self.file_event_id})

    async def _pause(self) -> None:
        """Rate limit: at most one edit every ``every_s`` (cut short when the file is done)."""
        until = time.monotonic() + self.every_s
        while not self._stopping and time.monotonic() < until:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), until - time.monotonic())
            if self._stopping:
                return
            self._wake.clear()
        self._wake.set()  # what changed meanwhile is shown by the next edit

    async def _post(self) -> None:
        text = self.text()
        content = {"msgtype": "m.notice", "body": text, "m.mentions": {},
                   "format": "org.matrix.custom.html", "formatted_body": html.escape(text).replace("\n", "<br>"),
                   "m.relates_to": {"m.in_reply_to": {"event_id": self.file_event_id}}}
        self.event_id = await self.bot.send(self.room_id, "m.room.message", content,
                                            txn_key=f"{self.file_event_id}/progress")
        log.info("progress posted", extra={"event_id": self.file_event_id, "progress_event_id": self.event_id})
        if self._posted is not None and self.event_id:
            self._posted(self.event_id)

    async def _edit(self, text: str) -> None:
        assert self.event_id is not None
        # a fresh transaction each time: after a restart the same count must still be sent
        await self.bot.send(self.room_id, "m.room.message", replacement(self.event_id, text),
                            txn_key=edit_txn(f"{self.file_event_id}/progress"))
