"""``GET {prefix}{token}``: the upload form, or why the link cannot be used."""

from __future__ import annotations

import time
from html import escape

from aiohttp import web

from bots.runtime import clock
from lgwan_chat.core.i18n import t

from .html import language, page, problem


def link_problem(link, now_ms: int) -> tuple[str, int] | None:
    """(problem key, HTTP status) when the link cannot take an upload."""
    if link is None:
        return "unknown", 404
    state = link.state(now_ms)
    return None if state == "open" else (state, 410)


async def show_form(request: web.Request) -> web.Response:
    links = request.app["links"]
    link = links.find(request.match_info["token"])
    trouble = link_problem(link, int(time.time() * 1000))
    if trouble:
        return problem(request, trouble[0], trouble[1])
    lang = language(request)
    options = request.app["options"]
    expires = clock.when(link.expires_ts, request.app["timezone"], lang)
    uses = t("upload.single_use" if link.max_uses == 1 else "upload.multi_use", lang)

    def label(key: str) -> str:
        return escape(t(key, lang))

    body = f"""<p>{label("upload.intro")}</p>
<ul class="terms">
<li>{escape(t("upload.expires", lang, expires=expires))}</li>
<li>{escape(t("upload.limit", lang, max_mb=link.max_mb, max_files=options.max_files))}</li>
<li>{escape(uses)}</li>
</ul>
<form method="post" enctype="multipart/form-data" action="?lang={lang}" id="upload-form"
      data-max-bytes="{link.max_mb * 1024 * 1024}" data-max-files="{options.max_files}"
      data-too-large="{escape(t("upload.problem.too_large", lang, max_mb=link.max_mb), quote=True)}"
      data-too-many="{escape(t("upload.problem.too_many", lang, max_files=options.max_files), quote=True)}"
      data-failed="{escape(t("upload.problem.error", lang), quote=True)}">
<label>{label("upload.name")} <span class="required">{label("upload.required")}</span>
<input type="text" name="name" required maxlength="100" autocomplete="name"></label>
<label>{label("upload.org")}
<input type="text" name="org" maxlength="100" autocomplete="organization"></label>
<label>{label("upload.files")} <span class="required">{label("upload.required")}</span>
<input type="file" name="files" multiple required></label>
<p class="note">{label("upload.note")}</p>
<button type="submit">{label("upload.send")}</button>
<div id="progress" hidden><progress max="100" value="0"></progress> <span></span></div>
<p id="client-problem" class="problem" hidden></p>
</form>"""
    return page(request, "upload.title", body)
