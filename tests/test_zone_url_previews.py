"""URL previews fetch files from the internet: with ``url_preview_enabled`` they are untrusted media.

Synapse's previewer stores the page's image (og:image) as local media; without this rule
an LGWAN device could open an internet file through any preview. A real page is served
on loopback, Synapse previews it, and the previewed image must be untrusted (what the
LGWAN media gate decides, answered by ``media_status``), while an upload from the LGWAN
side stays trusted.
"""

from __future__ import annotations

import http.server
import io
import json
import threading
import urllib.parse

import pytest
from harness import http_get
from nio import UploadResponse
from PIL import Image

STATUS = "/_synapse/client/lgwan/v1/media_status"


@pytest.fixture(scope="module")
def homeserver_extra():
    return {"url_preview_enabled": True,
            # the test page is on loopback: allow exactly that address
            "url_preview_ip_range_blacklist": ["192.0.2.0/24"],
            "url_preview_ip_range_whitelist": ["127.0.0.1"]}


def png(colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def internet_page():
    """A web page with an og:image, as any site on the internet has."""
    image = png((10, 120, 200))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/photo.png"):
                body, kind = image, "image/png"
            else:
                port = server.server_port
                body = (f'<html><head><title>外部サイト</title><meta property="og:title" content="外部のお知らせ">'
                        f'<meta property="og:image" content="http://127.0.0.1:{port}/photo.png"></head>'
                        f'<body>本文</body></html>').encode()
                kind = "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def untrusted(homeserver, client, zone: str, mxc: str) -> bool:
    status, _, body = http_get(homeserver.url(zone) + STATUS + "/" + mxc[len("mxc://"):], client.access_token)
    assert status == 200, body
    return json.loads(body)["untrusted"]


@pytest.mark.parametrize("previewer", ["internet", "lgwan"])
async def test_previewed_images_are_untrusted_for_lgwan(homeserver, login, internet_page, previewer):
    user = homeserver.new_user("staff")
    devices = {"internet": await login(user, "internet"), "lgwan": await login(user, "lgwan")}
    client = devices[previewer]
    page = f"{internet_page}/news?{previewer}"
    status, _, body = http_get(homeserver.url(previewer) + "/_matrix/client/v1/media/preview_url?url="
                               + urllib.parse.quote(page, safe=""), client.access_token)
    assert status == 200, body
    preview = json.loads(body)
    assert preview["og:title"] == "外部のお知らせ"
    mxc = preview["og:image"]
    assert mxc.startswith(f"mxc://{homeserver.server_name}/")
    # Kept from LGWAN devices whoever asked for the preview; the same answer on either side.
    for zone, device in devices.items():
        assert untrusted(homeserver, device, zone, mxc) is True

    # Control: a file uploaded from the LGWAN side is trusted (the rule is not "everything").
    uploaded, _ = await devices["lgwan"].upload(io.BytesIO(png((1, 2, 3))), content_type="image/png",
                                                filename="庁内.png", filesize=len(png((1, 2, 3))))
    assert isinstance(uploaded, UploadResponse)
    assert untrusted(homeserver, devices["lgwan"], "lgwan", uploaded.content_uri) is False
