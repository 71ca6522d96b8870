"""Attacks from an outside review of the zone policy (issue 13's fixes), generated.

Each test builds the variant space of one attack and sends it to the real nginx and/or
Synapse: tokens reaching a log through nginx's error log, and event types the call rule
did not know about (the rule is an allow-list of types known not to start a call).
"""

from __future__ import annotations

import itertools
import urllib.error
import urllib.request

from lgwan_chat.homeserver import free_port
from lgwan_chat.nginx import Nginx, NginxSpec

# ---- (c) a token in a log: nginx's error log writes the raw request line -------------------

#: Paths each entrance forwards to Synapse (or the upload page), one per route of the template.
FORWARDED = {
    "internet": ["/_matrix/client/v3/sync", "/_matrix/media/v3/download/lgwan.test/abc",
                 "/_matrix/client/v1/media/thumbnail/lgwan.test/abc", "/_synapse/client/lgwan/v1/zone",
                 "/.well-known/matrix/client", "/health", "/upload/{secret}"],
    "lgwan": ["/_matrix/client/v3/sync", "/_matrix/client/v1/media/download/lgwan.test/abc",
              "/_matrix/media/r0/thumbnail/lgwan.test/abc", "/_matrix/federation/v1/version",
              "/_matrix/key/v2/server", "/_matrix/client/v3/sendToDevice/m.room_key_request/t1",
              "/_synapse/client/lgwan/v1/zone", "/.well-known/matrix/server", "/health"],
}


def token_queries(secret: str) -> list[str]:
    return [f"access_token={secret}", f"since=s1&access_token={secret}&timeout=0",
            f"ACCESS_TOKEN={secret}", f"loginToken={secret}", f"x={secret}"]


def test_no_token_reaches_the_error_log_when_synapse_is_down(tmp_path):
    """Synapse restarting: every forwarded route, every place a token can sit in the URI."""
    nginx = Nginx(NginxSpec(prefix=tmp_path / "nginx", internet_listen=f"127.0.0.1:{free_port()}",
                            lgwan_listen=f"127.0.0.1:{free_port()}", synapse_internet=f"127.0.0.1:{free_port()}",
                            synapse_lgwan=f"127.0.0.1:{free_port()}", upload_page=f"127.0.0.1:{free_port()}"))
    nginx.start()
    secrets = []
    statuses = set()
    try:
        for zone, paths in FORWARDED.items():
            for n, (path, make_query) in enumerate(itertools.product(paths, range(5))):
                secret = f"SECRET{zone}{n}x"
                secrets.append(secret)
                url = nginx.url(zone) + path.format(secret=secret) + "?" + token_queries(secret)[make_query]
                try:
                    urllib.request.urlopen(url, timeout=30)
                except urllib.error.HTTPError as error:
                    statuses.add(error.code)
    finally:
        nginx.stop()
    assert statuses <= {500, 502}  # every request really failed upstream (what nginx logs)
    logs = nginx.error_log.read_text(encoding="utf-8", errors="replace")
    for log in (tmp_path / "nginx").rglob("*.log"):
        logs += log.read_text(encoding="utf-8", errors="replace")
    leaked = [s for s in secrets if s in logs]
    assert not leaked, leaked
