"""Interop: Element's own libraries from npm (matrix-js-sdk, matrix-widget-api) drive the running
suite as Element would. One homeserver (with the suite's nginx and bots) per backend is shared by
the Node scripts of ``tests/interop/``; each script is a pytest test, and every failing
``node:test`` case inside it is named in the failure with its error.

The Node project is installed from its committed lockfile (``npm ci``) when ``node_modules`` is
missing or older than the lockfile; after that it runs offline. Which client behaviour each script
pins is listed in docs/architecture.md ("Interop tests").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from bots_harness import BotProcess

INTEROP = Path(__file__).resolve().parent / "interop"
#: script -> what it needs besides the homeserver, and how many fresh users
SCRIPTS: dict[str, dict[str, Any]] = {
    "zones": {"users": 4},
    "read_status": {"users": 4},
    "polls": {"users": 4, "bots": ["polls"]},
    "bookmarks": {"users": 2},
    "memo": {"users": 1, "bots": ["memo"]},
    "image_packs": {"users": 1},
    "sanitizer": {"users": 2, "bots": ["sanitizer"]},
}
BOTS: dict[str, dict[str, Any]] = {
    # As shipped (config/bots.template.yaml): the summary's pace is what staff see in Element.
    "polls": {"entry": ["-m", "bots.polls"], "options": {}, "zone": "lgwan"},
    "memo": {"entry": ["-m", "bots.memo"], "options": {}, "zone": "lgwan"},
    # As the demo runs it: on the internet side, the zone module's trusted uploader (homeserver_modules).
    "sanitizer": {"entry": ["-m", "bots.sanitizer"], "options": {"work_dir": "{folder}/work"}, "zone": "internet"},
}
#: A whole script may take this long on a busy 2-core machine before it is stopped.
SCRIPT_TIMEOUT_S = 900


def node_command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: run `bash scripts/install-system-deps.sh test` as root "
                    "(Debian packages nodejs, npm) / node がありません", pytrace=False)
    return [node, "--import", str(INTEROP / "lib" / "polyfills.mjs")]


@pytest.fixture(scope="session")
def node_project() -> Path:
    """tests/interop with its packages installed exactly as locked."""
    installed = INTEROP / "node_modules" / ".package-lock.json"
    lock = INTEROP / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is missing: run `bash scripts/install-system-deps.sh test` as root", pytrace=False)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=INTEROP, check=True,
                       timeout=600)
    return INTEROP


@pytest.fixture(scope="module")
def homeserver_modules():
    """Every module of the suite, the sanitizer bot trusted to upload for LGWAN devices."""
    from harness import suite_modules_trusting

    return suite_modules_trusting("@sanitizer-bot:lgwan.test")


@pytest.fixture(scope="module")
def interop_bots(homeserver, tmp_path_factory):
    """The bots the scripts talk to, started once per homeserver."""
    started = {}
    try:
        for name, spec in BOTS.items():
            folder = tmp_path_factory.mktemp(f"interop-{name}")
            options = {key: value.format(folder=folder) if isinstance(value, str) else value
                       for key, value in spec["options"].items()}
            bot = BotProcess(homeserver, folder, name, entry=spec["entry"],
                             options=options, zone=spec["zone"], storage=homeserver.backend)
            started[name] = bot
            bot.start().wait_ready()
        yield started
    finally:
        for bot in started.values():
            bot.close()


def site_photo(path: Path) -> Path:
    """A phone's photo with camera and GPS data (what the sanitizer must remove)."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Phone maker", "Phone model"
    exif[0x8825] = {1: "N", 2: (35.0, 41.0, 22.0), 3: "E", 4: (139.0, 41.0, 30.0)}
    Image.new("RGB", (640, 480), (90, 140, 200)).save(path, "JPEG", quality=85, exif=exif)
    return path


def tap_results(tap: str) -> list[tuple[bool, str, str]]:
    """(passed, name, details) of the top-level tests of a node:test TAP report."""
    results: list[tuple[bool, str, str]] = []
    lines = tap.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO).*)?$", line)
        if not match:
            continue
        details = []
        for follow in lines[i + 1:]:
            if re.match(r"(not ok|ok) \d+ - ", follow) or follow.startswith("# Subtest"):
                break
            details.append(follow)
        name = match.group(2).replace("\\#", "#").replace("\\\\", "\\")
        results.append((match.group(1) == "ok" and not match.group(3), name, "\n".join(details)))
    return results


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_interop(script, homeserver, nginx_front, interop_bots, node_project, tmp_path):
    spec = SCRIPTS[script]
    context = {
        "server_name": homeserver.server_name,
        "urls": {zone: homeserver.url(zone) for zone in ("internet", "lgwan")},
        "nginx": {zone: nginx_front.url(zone) for zone in ("internet", "lgwan")},
        "users": [{"user_id": u.user_id, "password": u.password}
                  for u in (homeserver.new_user(script.replace("_", "")) for _ in range(spec["users"]))],
        "bots": {name: interop_bots[name].user_id for name in spec.get("bots", [])},
        "files": {"photo": str(site_photo(tmp_path / "photo.jpg"))},
    }
    context_file = tmp_path / "context.json"
    context_file.write_text(json.dumps(context, ensure_ascii=False), encoding="utf-8")
    context_file.chmod(0o600)  # user passwords
    run = subprocess.run(
        [*node_command(), "--test", "--test-reporter=tap", str(node_project / f"{script}.test.mjs")],
        cwd=node_project, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S,
        env={**os.environ, "INTEROP_CONTEXT": str(context_file)})
    results = tap_results(run.stdout)
    failed = [f"✗ {name}\n{details}" for passed, name, details in results if not passed]
    summary = "\n".join(f"{'✓' if passed else '✗'} {name}" for passed, name, _ in results)
    assert results, f"no test results from {script}.test.mjs (exit {run.returncode}):\n{run.stdout}\n{run.stderr}"
    assert not failed and run.returncode == 0, (
        f"{script}.test.mjs: {len(failed)} of {len(results)} failed (exit {run.returncode})\n{summary}\n\n"
        + "\n\n".join(failed) + f"\n\nstderr:\n{run.stderr[-5000:]}")


# --- the sticker picker hosted by matrix-widget-api, as Element hosts it ---

HOST_PAGE = """<!doctype html><html><head><meta charset="utf-8"><script src="/api.js"></script></head><body>
<script>
// What Element's StopGapWidget does with a sticker picker from m.widgets: the widget's URL
// templated by matrix-widget-api (incl. $org.matrix.msc2873.client_language), widgetId and parentUrl
// added, ClientWidgetApi on the iframe, every requested capability shown to the driver, and the
// legacy m.sticker action acknowledged then sent as Element's sendStickerMessage sends it.
const ctx = JSON.parse(decodeURIComponent(location.hash.slice(1)));
window.__requested = null; window.__sent = [];
const widget = new mxwidgets.Widget({id: ctx.widgetId, creatorUserId: ctx.userId, type: ctx.widget.type,
                                      url: ctx.widget.url, data: ctx.widget.data || {}, name: ctx.widget.name});
const url = new URL(widget.getCompleteUrl({widgetRoomId: ctx.roomId, currentUserId: ctx.userId,
    userDisplayName: ctx.userId, clientId: "io.element.web", clientTheme: "light", clientLanguage: ctx.lang,
    deviceId: "INTEROP", baseUrl: ctx.baseUrl}));
url.searchParams.set("widgetId", ctx.widgetId);
url.searchParams.set("parentUrl", location.href.split("#", 2)[0]);
class Driver extends mxwidgets.WidgetDriver {
  async validateCapabilities(requested) { window.__requested = [...requested]; return new Set(requested); }
}
const iframe = document.createElement("iframe");
iframe.id = "picker"; iframe.style.width = "600px"; iframe.style.height = "400px";
window.__iframeUrl = url.toString();
document.body.appendChild(iframe);  // in the page first: ClientWidgetApi talks to its contentWindow
const api = new mxwidgets.ClientWidgetApi(widget, iframe, new Driver());
api.on("ready", () => { window.__ready = true; });
api.on(`action:${mxwidgets.WidgetApiFromWidgetAction.SendSticker}`, async (ev) => {
  if (!api.hasCapability(mxwidgets.MatrixCapabilities.StickerSending)) return;
  ev.preventDefault();
  api.transport.reply(ev.detail, {});
  const data = ev.detail.data;
  const content = {url: data.content.url, info: data.content.info || {}, body: data.description || data.name};
  const room = encodeURIComponent(ctx.roomId);
  const response = await fetch(`${ctx.baseUrl}/_matrix/client/v3/rooms/${room}/send/m.sticker/interop${Date.now()}`,
      {method: "PUT", headers: {Authorization: `Bearer ${ctx.token}`, "Content-Type": "application/json"},
       body: JSON.stringify(content)});
  window.__sent.push({status: response.status, content, ...(await response.json())});
});
iframe.src = url.toString();
</script></body></html>"""


@pytest.fixture(scope="module")
def widget_host(node_project):
    """Element's side of the widget: a page on its own origin (as Element is on another host than
    the homeserver) with matrix-widget-api's browser build from tests/interop/node_modules."""
    import http.server
    import threading

    from lgwan_chat.homeserver import free_port

    api_js = (node_project / "node_modules" / "matrix-widget-api" / "dist" / "api.js").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body, kind = (api_js, "text/javascript") if self.path == "/api.js" else (HOST_PAGE.encode(), "text/html")
            self.send_response(200)
            self.send_header("Content-Type", kind + "; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/element"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_sticker_picker_hosted_by_matrix_widget_api(lang, homeserver, widget_host):
    from urllib.parse import quote

    from harness import http_get
    from playwright.sync_api import sync_playwright
    from test_stamps_pack import wait_for_pack, wait_until
    from test_stamps_picker_browser import CHROMIUM, CHROMIUM_ARGS

    wait_for_pack(homeserver)
    user = homeserver.new_user("sticker")
    base = homeserver.url("internet")

    def widgets() -> dict | None:
        status, _, body = http_get(f"{base}/_matrix/client/v3/user/{quote(user.user_id)}/account_data/m.widgets",
                                   user.access_token)
        return json.loads(body) if status == 200 else None

    # the pack, with Element's sticker picker, is given in the background a moment after registration
    widget_id, entry = next(iter(wait_until(widgets).items()))
    assert "$org.matrix.msc2873.client_language" in entry["content"]["url"]
    request = urllib.request.Request(f"{base}/_matrix/client/v3/createRoom", method="POST",
                                      data=json.dumps({"name": "スタンプ試験"}).encode(),
                                      headers={"Authorization": f"Bearer {user.access_token}",
                                               "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        room_id = json.loads(r.read())["room_id"]
    context = {"widgetId": widget_id, "widget": entry["content"], "userId": user.user_id, "roomId": room_id,
               "lang": lang, "baseUrl": base, "token": user.access_token}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.on("pageerror", lambda error: console.append(str(error)))
            page.goto(widget_host + "#" + quote(json.dumps(context)))
            try:
                page.wait_for_function("window.__ready === true", timeout=30000)
            except Exception:
                raise AssertionError(f"ClientWidgetApi never ready: requested {page.evaluate('window.__requested')}, "
                                     f"iframe {page.evaluate('window.__iframeUrl')}, console {console}") from None
            # Capabilities negotiated through ClientWidgetApi: the picker asks for m.sticker only.
            assert page.evaluate("window.__requested") == ["m.sticker"]
            iframe_url = page.evaluate("window.__iframeUrl")
            assert f"lang={lang}" in iframe_url and "$org.matrix" not in iframe_url  # the language substituted
            frame = page.frame_locator("#picker")
            label = {"ja": "確認しました", "en": "Checked"}[lang]
            frame.locator("button[data-stamp='kakunin']").click()
            page.wait_for_function("window.__sent.length === 1", timeout=30000)
            [sent] = page.evaluate("window.__sent")
        finally:
            browser.close()
    assert sent["status"] == 200, sent
    # What Element posts: an m.sticker with the pack's image and the label in the user's language.
    status, _, body = http_get(f"{base}/_matrix/client/v3/rooms/{quote(room_id)}/event/{quote(sent['event_id'])}",
                               user.access_token)
    assert status == 200, body
    event = json.loads(body)
    assert event["type"] == "m.sticker"
    assert event["content"]["body"] == label
    assert event["content"]["url"].startswith("mxc://")
    assert event["content"]["info"]["mimetype"] == "image/png" and event["content"]["info"]["w"] > 0
    assert http_get(f"{base}/_matrix/client/v1/media/download/{event['content']['url'][len('mxc://'):]}",
                    user.access_token)[0] == 200
