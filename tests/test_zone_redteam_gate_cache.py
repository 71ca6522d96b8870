"""The media gate's verdict cache cannot carry one zone's "allowed" to another (zones by IP).

nginx keeps a final verdict per raw path only. With ``zone_source: ip`` the zone is the
client's address, so both zones can reach one entrance: an allow given to an internet
address must not be kept, or an LGWAN PC opens the same untrusted file within a minute.
Generated over the media routes and over who asks first (with or without a token).
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import urllib.request

import pytest
from PIL import Image

from synapse_modules.zones.rest.media_pending import PLACEHOLDER

LGWAN_IP, INTERNET_IP = "127.0.0.1", "127.0.0.2"


@pytest.fixture(scope="module")
def homeserver_spec():
    return {"x_forwarded": True}


@pytest.fixture(scope="module")
def homeserver_modules():
    return [{"module": "synapse_modules.zones.ZonePolicyModule",
             "config": {"zone_source": "ip",
                        "ip_zones": {"lgwan": [f"{LGWAN_IP}/32"], "internet": [f"{INTERNET_IP}/32"]}}}]


def get(base_url: str, path: str, source_ip: str, token: str | None) -> tuple[int, bytes]:
    """GET through nginx from ``source_ip`` (any 127/8 address is this machine's loopback)."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=60, source_address=(source_ip, 0))
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.sock = sock
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def upload_from(base_url: str, token: str, source_ip: str, data: bytes) -> tuple[str, str]:
    """Straight to Synapse, as if its proxy had said the client is ``source_ip``."""
    request = urllib.request.Request(base_url + "/_matrix/media/v3/upload", data=data, method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png",
                                              "X-Forwarded-For": source_ip})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())["content_uri"][len("mxc://"):].split("/", 1)


def png(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (n * 7 % 256, 90, 200)).save(out, "PNG")
    return out.getvalue()


def routes(server: str, media_id: str) -> list[str]:
    return [f"/_matrix/client/v1/media/download/{server}/{media_id}",
            f"/_matrix/client/v1/media/download/{server}/{media_id}/photo.png",
            f"/_matrix/client/v1/media/thumbnail/{server}/{media_id}?width=32&height=32&method=scale",
            *(f"/_matrix/media/{v}/download/{server}/{media_id}" for v in ("r0", "v3", "v1"))]


async def test_an_internet_address_cannot_open_untrusted_media_for_lgwan(homeserver, nginx_front, login):
    phone_user, pc_user = homeserver.new_user("phone"), homeserver.new_user("pc")
    pc = await login(pc_user, "lgwan")  # from 127.0.0.1: an LGWAN device
    lgwan_entrance = nginx_front.url("lgwan")
    served = []
    for n, with_token in enumerate((False, True)):
        data = png(n)
        server, media_id = upload_from(homeserver.url("internet"), phone_user.access_token, INTERNET_IP, data)
        for path in routes(server, media_id):
            # someone at an internet address asks the LGWAN entrance first (no token needed)
            get(lgwan_entrance, path, INTERNET_IP, phone_user.access_token if with_token else None)
            status, body = get(lgwan_entrance, path, LGWAN_IP, pc.access_token)
            # the gate's refusal: 403 for a download, the placeholder picture for a thumbnail
            if not (status == 403 or ("thumbnail" in path and body == PLACEHOLDER.read_bytes())):
                served.append((path, with_token, status, body == data))
    assert not served, served
