"""``POST {prefix}{token}``: receive the files, use up the link, sanitize, post into the room.

The body is read as a stream and counted: past the link's size cap the upload stops with a clear
page. The link is used up only once the whole submission arrived (a broken upload does not burn a
single-use link) and before anything is posted (two browsers racing cannot both deliver).
"""

from __future__ import annotations

import logging
import time
import unicodedata
from html import escape

from aiohttp import BodyPartReader, web

from lgwan_chat.core.i18n import t

from ..delivery import report
from ..engine.filenames import clean
from ..links import token_hash
from .form import link_problem
from .html import language, page, problem

log = logging.getLogger("lgwan_chat.sanitizer.upload")
MAX_FIELD = 400  # bytes of a name or company field


class _Rejected(Exception):
    def __init__(self, key: str, status: int, **params: object):
        super().__init__(key)
        self.key, self.status, self.params = key, status, params


def _text(value: str) -> str:
    """A person's stated name or company: NFKC, no control or bidi characters, one line."""
    value = unicodedata.normalize("NFKC", value)
    return " ".join("".join(c for c in value if unicodedata.category(c)[0] != "C").split())[:100]


async def _read(request: web.Request, max_bytes: int,
                max_files: int) -> tuple[dict[str, str], list[tuple[str, str | None, bytes]]]:
    fields: dict[str, str] = {}
    files: list[tuple[str, str | None, bytes]] = []
    total = 0
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):  # a multipart inside the form: the page sends none
            await part.release()
        elif part.name in ("name", "org"):
            raw = bytearray()
            while chunk := await part.read_chunk(MAX_FIELD):
                raw += chunk
                if len(raw) > MAX_FIELD:
                    raise _Rejected("bad_field", 400)
            fields[part.name] = raw.decode("utf-8", errors="replace")
        elif part.name == "files" and part.filename:
            if len(files) >= max_files:
                raise _Rejected("too_many", 413, max_files=max_files)
            data = bytearray()
            while chunk := await part.read_chunk(256 * 1024):
                total += len(chunk)
                if total > max_bytes:
                    raise _Rejected("too_large", 413, max_mb=max_bytes // (1024 * 1024))
                data += chunk
            if data:
                files.append((part.filename, part.headers.get("Content-Type"), bytes(data)))
        else:
            await part.release()
    return fields, files


async def receive(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    links = request.app["links"]
    bot_app = request.app["bot_app"]
    options = request.app["options"]
    link = links.find(token)
    trouble = link_problem(link, int(time.time() * 1000))
    if trouble:
        return problem(request, trouble[0], trouble[1])
    max_bytes = link.max_mb * 1024 * 1024
    if request.content_type != "multipart/form-data":
        return problem(request, "bad_form", 400)
    if request.content_length is not None and request.content_length > max_bytes + 64 * 1024:
        return problem(request, "too_large", 413, max_mb=link.max_mb)
    try:
        fields, files = await _read(request, max_bytes, options.max_files)
    except _Rejected as e:
        return problem(request, e.key, e.status, **e.params)
    except ValueError:  # not a multipart form
        return problem(request, "bad_form", 400)
    name, org = _text(fields.get("name", "")), _text(fields.get("org", ""))
    if not name:
        return problem(request, "no_name", 400)
    if not files:
        return problem(request, "no_files", 400)
    if link.room_id not in bot_app.bot.client.rooms:
        return problem(request, "room_gone", 410)
    used = links.use(token)
    if used is None:  # used up or expired between the form and now
        return problem(request, (link_problem(links.find(token), int(time.time() * 1000)) or ("used", 410))[0], 410)
    uploader = f"{name}（{org}）" if org else name
    remote = request.headers.get("X-Forwarded-For", request.remote or "")
    results = []
    for filename, claimed, data in files:
        results.append(await bot_app.engine.sanitize(data, filename, claimed, source={
            "upload_link": used.number, "room_id": used.room_id, "uploader_name": name, "uploader_org": org,
            "remote_addr": remote}))
    # the n-th use of this link: a repeat after a crash sends nothing twice
    await bot_app.deliver_upload(used.room_id, f"upload/{token_hash(token)[:24]}/{used.uses}", uploader, results)
    links.record_upload(token, name, org, remote, len(files), sum(1 for r in results if r.ok))
    log.info("upload received", extra={"room_id": used.room_id, "link": used.number, "files": len(files),
                                       "remote": remote})
    lang = language(request)
    items = []
    for (filename, _, _), result in zip(files, results, strict=True):
        mark = "ok" if result.ok else "refused"
        items.append(f'<li class="{mark}"><strong>{escape(clean(filename))}</strong>: '
                     f'{escape(t(f"upload.result_{mark}", lang))} {escape(report(result, lang))}</li>')
    again = used.max_uses is None or used.uses < used.max_uses
    # the headline says what happened: delivered, not delivered, or some of each
    refused = sum(1 for r in results if not r.ok)
    outcome = "" if not refused else "_refused" if refused == len(results) else "_partly"
    intro = t(f"upload.done_intro{outcome}", lang, count=len(files), refused=refused)
    body = (f'<p class="outcome{outcome.replace("_", " ")}">{escape(intro)}</p>'
            f'<ul class="results">{"".join(items)}</ul>'
            + (f'<p><a href="?lang={lang}">{escape(t("upload.send_more", lang))}</a></p>' if again else ""))
    return page(request, f"upload.done_title{outcome}", body)
