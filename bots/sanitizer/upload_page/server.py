"""The upload page's HTTP server, run inside the sanitizer bot's process (it shares the engine,
the link store and the Matrix session). Put it behind the internet-side reverse proxy."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .form import show_form
from .html import HEADERS, problem
from .submit import receive

log = logging.getLogger("lgwan_chat.sanitizer.upload")
STATIC = Path(__file__).resolve().parent / "static"


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every failure is a page in the visitor's language, never a stack trace."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status == 404:
            return problem(request, "unknown", 404)
        if e.status == 405:
            return problem(request, "bad_form", 405)
        if e.status == 413:
            return problem(request, "too_large", 413, max_mb="-")
        return problem(request, "error", e.status)
    except Exception:
        log.exception("upload page failed", extra={"path": request.path})
        return problem(request, "error", 500)


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ("page.js", "page.css"):
        return problem(request, "unknown", 404)
    kind = "application/javascript" if name.endswith(".js") else "text/css"
    return web.Response(body=(STATIC / name).read_bytes(), content_type=kind, charset="utf-8",
                        headers={**HEADERS, "Cache-Control": "public, max-age=3600"})


class UploadPage:
    def __init__(self, bot_app: Any):
        self.bot_app = bot_app
        self.options = bot_app.options.upload
        self.prefix = urlsplit(self.options.public_url).path  # e.g. /upload/
        self._runner: web.AppRunner | None = None

    def application(self) -> web.Application:
        # submit.py counts while streaming and answers with a page of its own; this cap is aiohttp's
        # own, for any single part it reads whole
        app = web.Application(middlewares=[_errors], client_max_size=(self.options.max_mb + 1) * 1024 * 1024)
        app["prefix"] = self.prefix
        app["links"] = self.bot_app.links
        app["bot_app"] = self.bot_app
        app["options"] = self.options
        app["timezone"] = self.bot_app.bot.config.timezone
        app.router.add_get(self.prefix + "_static/{name}", _static)
        app.router.add_get(self.prefix + "{token}", show_form)
        app.router.add_post(self.prefix + "{token}", receive)
        return app

    async def start(self) -> None:
        host, port = self.options.listen.rsplit(":", 1)
        self._runner = web.AppRunner(self.application(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, int(port)).start()
        log.info("upload page listening", extra={"listen": self.options.listen, "public_url": self.options.public_url})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
