"""The page layout and the messages pages: Japanese by default, English with ``?lang=en``."""

from __future__ import annotations

from html import escape
from typing import Any

from aiohttp import web

from lgwan_chat.core.i18n import LANGUAGES, t

#: no framing, no referrer (the token is in the URL), nothing from elsewhere, nothing cached
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
                               " connect-src 'self';"
                               " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}


def language(request: web.Request) -> str:
    lang = request.query.get("lang", "ja")
    return lang if lang in LANGUAGES else "ja"


def page(request: web.Request, title_key: str, body: str, status: int = 200, **params: Any) -> web.Response:
    lang = language(request)
    static = request.app["prefix"] + "_static/"
    other = "en" if lang == "ja" else "ja"
    switch = f'<a class="lang" href="?lang={other}">{escape(t("upload.switch_language", lang))}</a>'
    document = f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{escape(t(title_key, lang, **params))}</title>
<link rel="stylesheet" href="{static}page.css">
</head>
<body>
<header><span class="brand">{escape(t("upload.brand", lang))}</span>{switch}</header>
<main>
<h1>{escape(t(title_key, lang, **params))}</h1>
{body}
</main>
<script src="{static}page.js"></script>
</body>
</html>
"""
    return web.Response(text=document, status=status, content_type="text/html", charset="utf-8", headers=HEADERS)


def problem(request: web.Request, key: str, status: int, **params: Any) -> web.Response:
    """A clear page for everything that went wrong: never a stack trace."""
    lang = language(request)
    body = f'<p class="problem">{escape(t(f"upload.problem.{key}", lang, **params))}</p>' \
           f'<p>{escape(t("upload.problem_help", lang))}</p>'
    return page(request, "upload.problem_title", body, status=status)
