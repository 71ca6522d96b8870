"""What passes the suite's two nginx entrances, decided on the raw request as Synapse reads it.

nginx decodes and resolves a path before choosing where it goes, Synapse routes the raw
path: a path the two read differently could leave the LGWAN media gate or reach the admin
API. The tests generate such paths (escaped separators and dots in any segment, several
levels deep, mixed-case hex, doubled slashes, ";" parameters, the token in the query
string, absolute-form and HTTP/1.0 request lines) and send them byte for byte over
keep-alive sockets (a client library would normalise them) through the real nginx in
front of the real Synapse.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import itertools
import json
import re
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import attrs
import pytest
from harness import http_get
from PIL import Image
from test_zone_media_gate import upload

from lgwan_chat.homeserver import free_port
from lgwan_chat.nginx import ERROR_PAGES, TO_DEVICE_REFUSAL, Nginx, NginxSpec, error_body
from synapse_modules.zones.rest.media_pending import PLACEHOLDER

SANITIZER = "sanitizer-bot"
ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "config" / "nginx" / "lgwan-chat-sites.conf.template"


@pytest.fixture(scope="module")
def homeserver_modules():
    return [{"module": "synapse_modules.zones.ZonePolicyModule",
             "config": {"trusted_uploaders": [f"@{SANITIZER}:lgwan.test"]}}]


# ---- a raw HTTP client: the request line goes out exactly as written -----------------------

@attrs.frozen
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Wire:
    """Keep-alive connections to one nginx entrance; requests are written byte for byte."""

    def __init__(self, base_url: str):
        self.address = base_url.removeprefix("http://")
        self._sock: socket.socket | None = None

    def send(self, target: str, method: str = "GET", version: str = "HTTP/1.1", headers: dict | None = None,
             body: bytes = b"", request_line: bytes | None = None) -> Reply:
        if self._sock is None:
            host, port = self.address.rsplit(":", 1)
            self._sock = socket.create_connection((host, int(port)), timeout=60)
        lines = [request_line or f"{method} {target} {version}".encode("latin-1")]
        for name, value in {"Host": self.address, **(headers or {})}.items():
            lines.append(f"{name}: {value}".encode("latin-1"))
        if body:
            lines.append(f"Content-Length: {len(body)}".encode())
        self._sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        response = http.client.HTTPResponse(self._sock, method=method)
        response.begin()
        reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        if response.will_close:
            self.close()
        return reply

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@pytest.fixture(scope="module")
def wires(nginx_front):
    made = {zone: Wire(nginx_front.url(zone)) for zone in ("internet", "lgwan")}
    yield made
    for wire in made.values():
        wire.close()


# ---- the attack space: every media route, every way to spell it -----------------------------

@attrs.frozen
class Route:
    name: str
    segments: tuple[str, ...]
    query: str = ""

    @property
    def path(self) -> str:
        return "/" + "/".join(self.segments) + (f"?{self.query}" if self.query else "")


THUMB = "width=32&height=32&method=scale"


def media_routes(server: str, media_id: str) -> list[Route]:
    """Every route by which Synapse hands out media content (client, legacy, federation)."""
    routes = [Route("client v1 download", ("_matrix", "client", "v1", "media", "download", server, media_id)),
              Route("client v1 download + name",
                    ("_matrix", "client", "v1", "media", "download", server, media_id, "photo.png")),
              Route("client v1 thumbnail", ("_matrix", "client", "v1", "media", "thumbnail", server, media_id),
                    THUMB)]
    for version in ("r0", "v3", "v1"):
        base = ("_matrix", "media", version)
        routes += [Route(f"legacy {version} download", (*base, "download", server, media_id)),
                   Route(f"legacy {version} download + name", (*base, "download", server, media_id, "photo.png")),
                   Route(f"legacy {version} thumbnail", (*base, "thumbnail", server, media_id), THUMB)]
    routes += [Route("federation download", ("_matrix", "federation", "v1", "media", "download", media_id)),
               Route("federation thumbnail", ("_matrix", "federation", "v1", "media", "thumbnail", media_id), THUMB)]
    return routes


#: How "/" and ".." can be spelled so that nginx still reads a separator and a parent segment
#: (upper, lower and mixed-case hex); and spellings it does not resolve (kept as they are).
SEPARATORS = ("%2F", "%2f")
CLIMBS = ("..", "%2E%2E", "%2e%2E", ".%2E", "%2e.")
NOT_RESOLVED = ("%5C..", "%5c%2E%2E", "%2F.", "%2f%2E", "%00..")


def escape(char: str, upper: bool) -> str:
    return f"%{ord(char):02X}" if upper else f"%{ord(char):02x}"


def spellings(route: Route, hide_behind: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """(label, raw path) for every non-canonical way to write ``route``: nginx and Synapse
    must never disagree on what any of them asks for."""
    segs = route.segments
    query = f"?{route.query}" if route.query else ""

    def join(parts) -> str:
        return "/" + "/".join(parts) + query

    for i, seg in enumerate(segs):
        for upper in (True, False):
            # one character of the segment escaped: its first and last, and each "_", "." or "-"
            for j in {0, len(seg) - 1, *(k for k, c in enumerate(seg) if c in "_.-")}:
                yield f"segment {i}: char {j} escaped", join((*segs[:i], seg[:j] + escape(seg[j], upper) + seg[j + 1:],
                                                             *segs[i + 1:]))
        # escaped separators and dot segments inside the segment, 1-8 levels, each spelling
        for depth in range(1, 9):
            for n, (sep, dots) in enumerate(itertools.product(SEPARATORS, CLIMBS)):
                if n % 5 != depth % 5:  # two spellings at each depth, each of the ten at some depth
                    continue
                climb = (sep + dots) * depth
                yield f"segment {i}: {depth} levels {sep}{dots}", join((*segs[:i], seg + climb, *segs[i + 1:]))
                yield f"segment {i}: {depth} levels {sep}{dots} then back", join(
                    (*segs[:i], seg + climb + sep + sep.join(segs[max(0, i + 1 - depth):i + 1]), *segs[i + 1:]))
                for target in hide_behind:  # what nginx would resolve the path to
                    yield f"segment {i}: {depth} levels into {target}", join(
                        (*segs[:i], seg + climb + sep + target.replace("/", sep), *segs[i + 1:]))
            # literal "/" with dot segments spelled every way
            dots = CLIMBS[depth % len(CLIMBS)]
            yield f"segment {i}: {depth} literal levels {dots}", join((*segs[:i + 1], *([dots] * depth), *segs[i + 1:]))
        for odd in NOT_RESOLVED:
            yield f"segment {i}: {odd}", join((*segs[:i], seg + odd, *segs[i + 1:]))
        yield f"segment {i}: doubled slash", join((*segs[:i], "", *segs[i:]))
        yield f"segment {i}: ; parameter", join((*segs[:i], seg + ";x=1", *segs[i + 1:]))
        yield f"segment {i}: . segment", join((*segs[:i], ".", *segs[i:]))
        yield f"segment {i}: x/.. segment", join((*segs[:i], "x", "..", *segs[i:]))
    plain = "/" + "/".join(segs)
    yield "trailing escaped slash", plain + "%2F" + query
    yield "trailing ;", plain + ";" + query
    yield "backslashes for slashes", plain.replace("/", "\\", 2) + query


#: (request-line form, token in the query string?): each variant is sent in one of these, in turn.
FORMS = [(form, in_query) for form in ("origin", "absolute", "HTTP/1.0") for in_query in (False, True)]


def request(wire: Wire, path: str, token: str, form: str, in_query: bool) -> Reply:
    headers = {}
    if in_query:
        path += ("&" if "?" in path else "?") + f"access_token={token}"
    else:
        headers["Authorization"] = f"Bearer {token}"
    if form == "absolute":
        return wire.send(f"http://{wire.address}{path}", headers=headers)
    return wire.send(path, headers=headers, version="HTTP/1.0" if form == "HTTP/1.0" else "HTTP/1.1")


def nginx_error(reply: Reply) -> str | None:
    """The reason of one of nginx's own error bodies, None for anything else."""
    if not reply.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        body = reply.json
    except ValueError:
        return None
    reason = body.get("jp.lgwan.reason")
    for _status, (errcode, known) in ERROR_PAGES.items():
        if reason == known and body == json.loads(error_body(errcode, known)):
            return reason
    return None


def assert_no_version(reply: Reply) -> None:
    """No server software version in the headers or an error body (nginx sends "Server: nginx")."""
    assert reply.headers.get("server", "nginx") == "nginx", reply.headers
    assert not any("nginx/" in v or "Synapse/" in v for v in reply.headers.values()), reply.headers
    assert b"nginx/" not in reply.body and b"<hr><center>nginx" not in reply.body, reply.body[:300]


# ---- fixtures: a phone (internet) and an office PC (LGWAN) of one user ----------------------

def png(colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
async def devices(homeserver, nginx_front, login):
    user = homeserver.new_user("staff")
    return await login(user, "internet", via=nginx_front), await login(user, "lgwan", via=nginx_front)


def is_pending_refusal(reply: Reply) -> bool:
    try:
        return reply.status == 403 and reply.json.get("jp.lgwan.reason") == "media_pending_sanitization"
    except ValueError:
        return False


async def test_no_spelling_of_a_media_route_serves_untrusted_media_to_lgwan(homeserver, wires, devices):
    phone, pc = devices
    photo = png((200, 30, 30))
    server, media_id = await upload(phone, photo)
    lgwan = wires["lgwan"]
    sent = 0
    seen: dict[str, int] = {}
    forms = itertools.cycle(FORMS)
    for route in media_routes(server, media_id):
        # the plain form, in every request-line form: the placeholder or the refusal
        cases = [("canonical", route.path, form) for form in FORMS]
        cases += [(label, path, next(forms)) for label, path in spellings(route)]
        for label, path, (form, in_query) in cases:
            reply = request(lgwan, path, pc.access_token, form, in_query)
            sent += 1
            where = (route.name, label, path, form, in_query, reply.status)
            assert reply.body != photo, where
            assert_no_version(reply)
            if reply.status == 200:
                assert reply.body == PLACEHOLDER.read_bytes(), where
            else:
                assert is_pending_refusal(reply) or nginx_error(reply) in ("bad_request", "not_found"), \
                    (where, reply.body[:200])
            seen[str(reply.status)] = seen.get(str(reply.status), 0) + 1
    # The attack space really was covered, and the gate itself was asked for the plain forms.
    assert sent > 1000 and seen.get("400", 0) > 900 and seen.get("403", 0) >= 6, seen

    # Without nginx, Synapse itself serves the photo on the plain route: the gate is what refuses.
    status, _, body = http_get(f"{homeserver.url('lgwan')}/_matrix/client/v1/media/download/{server}/{media_id}",
                               pc.access_token)
    assert (status, body) == (200, photo)


async def test_trusted_media_is_served_through_the_gate_unchanged(homeserver, nginx_front, wires, devices, login):
    """The plain form of every media route gives what Synapse itself gives, in every request form."""
    _, pc = devices
    sanitizer = await login(homeserver.new_user(localpart=f"{SANITIZER}"), "internet", via=nginx_front)
    for uploader, colour in ((pc, (0, 0, 200)), (sanitizer, (250, 250, 250))):
        data = png(colour)
        server, media_id = await upload(uploader, data)
        for route in media_routes(server, media_id):
            direct = http_get(homeserver.url("lgwan") + route.path, pc.access_token)
            for form, in_query in FORMS:
                reply = request(wires["lgwan"], route.path, pc.access_token, form, in_query)
                assert (reply.status, reply.body) == (direct[0], direct[2]), (route.name, form, in_query)
        status, _, body = http_get(f"{nginx_front.url('lgwan')}/_matrix/client/v1/media/download/{server}/{media_id}",
                                   pc.access_token)
        assert (status, body) == (200, data)


async def test_a_final_verdict_is_asked_for_once_a_minute(homeserver, nginx_front, devices):
    """nginx keeps what the gate marks final: opening a file again does not ask Synapse again."""
    phone, pc = devices
    data = png((30, 60, 90))
    for uploader in (pc, phone):  # trusted, then untrusted: both final
        server, media_id = await upload(uploader, data)
        path = f"/_matrix/client/v1/media/download/{server}/{media_id}"
        since = homeserver.log_size()
        replies = [http_get(nginx_front.url("lgwan") + path, pc.access_token)[0] for _ in range(3)]
        assert replies == ([200] * 3 if uploader is pc else [403] * 3)
        asked = homeserver.log_tail(since=since, max_chars=10**6).count('"GET /_synapse/client/lgwan/v1/media_gate ')
        assert asked == 1


async def test_url_previews_are_refused_to_lgwan(wires, devices):
    _, pc = devices
    for path in ("/_matrix/client/v1/media/preview_url?url=http%3A%2F%2F127.0.0.1%2F",
                 "/_matrix/media/v3/preview_url?url=http%3A%2F%2F127.0.0.1%2F"):
        assert is_pending_refusal(wires["lgwan"].send(path, headers={"Authorization": f"Bearer {pc.access_token}"}))


def create_media_id(base_url: str, token: str) -> tuple[str, str]:
    """``POST /_matrix/media/v1/create``: a media ID whose content is uploaded later."""
    request = urllib.request.Request(base_url + "/_matrix/media/v1/create", data=b"{}", method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        server, media_id = json.loads(r.read())["content_uri"][len("mxc://"):].split("/", 1)
    return server, media_id


def upload_to(base_url: str, token: str, server: str, media_id: str, data: bytes) -> int:
    request = urllib.request.Request(f"{base_url}/_matrix/media/v3/upload/{server}/{media_id}", data=data,
                                     method="PUT", headers={"Authorization": f"Bearer {token}",
                                                            "Content-Type": "image/png"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return r.status


async def test_a_download_waiting_for_an_upload_does_not_pass_the_gate(nginx_front, devices):
    """An LGWAN download of a media ID created on the internet side, started before its upload:
    Synapse would hold it past the gate and serve the upload. The gate refuses it at once."""
    phone, pc = devices
    photo = png((120, 0, 120))
    server, media_id = create_media_id(nginx_front.url("internet"), phone.access_token)
    waiting: dict = {}

    def download() -> None:
        waiting["reply"] = http_get(f"{nginx_front.url('lgwan')}/_matrix/client/v1/media/download/{server}/{media_id}"
                                    "?timeout_ms=20000", pc.access_token)

    thread = threading.Thread(target=download)
    thread.start()
    await asyncio.sleep(1)
    assert upload_to(nginx_front.url("internet"), phone.access_token, server, media_id, photo) == 200
    thread.join()
    status, _, body = waiting["reply"]
    assert body != photo
    assert (status, json.loads(body)["jp.lgwan.reason"]) == (403, "media_not_uploaded_yet")
    # After the upload: untrusted, like any file from the internet side.
    status, _, body = http_get(f"{nginx_front.url('lgwan')}/_matrix/client/v1/media/download/{server}/{media_id}",
                               pc.access_token)
    assert (status, json.loads(body)["jp.lgwan.reason"]) == (403, "media_pending_sanitization")


async def test_an_lgwan_upload_opens_once_its_content_is_there(nginx_front, devices):
    """"Not uploaded yet" is not a final verdict: nginx must not keep it."""
    _, pc = devices
    document = png((0, 90, 0))
    lgwan = nginx_front.url("lgwan")
    server, media_id = create_media_id(lgwan, pc.access_token)
    for kind in ("download", "thumbnail"):
        status, _, body = http_get(f"{lgwan}/_matrix/client/v1/media/{kind}/{server}/{media_id}"
                                   "?width=32&height=32&timeout_ms=0", pc.access_token)
        assert (status, json.loads(body)["jp.lgwan.reason"]) == (403, "media_not_uploaded_yet"), kind
    assert upload_to(lgwan, pc.access_token, server, media_id, document) == 200
    status, _, body = http_get(f"{lgwan}/_matrix/client/v1/media/download/{server}/{media_id}", pc.access_token)
    assert (status, body) == (200, document)


# ---- the admin API: unreachable through both entrances, however it is spelled ----------------

#: Prefixes an entrance forwards; a path nginx resolves to one of them must still not pass.
ALLOWED_TARGETS = ("_matrix/client/versions", "_matrix/media/v3/config", "_synapse/client/lgwan/v1/zone",
                   "health", ".well-known/matrix/client")


def admin_routes(user_id: str) -> list[Route]:
    return [Route("server version", ("_synapse", "admin", "v1", "server_version")),
            Route("user details", ("_synapse", "admin", "v2", "users", quote(user_id, safe=""))),
            Route("registration tokens", ("_synapse", "admin", "v1", "registration_tokens")),
            # a path parameter that takes anything ("[^/]*"): where a resolved suffix hides
            Route("registration token", ("_synapse", "admin", "v1", "registration_tokens", "abcd")),
            # Synapse serves one admin API in the client API too: whois (sessions, IP addresses)
            *(Route(f"whois via client {version}", ("_matrix", "client", *version.split("/"), "admin", "whois",
                                                   quote(user_id, safe="")))
              for version in ("r0", "v3", "unstable", "api/v1"))]


def test_admin_api_is_unreachable_through_either_entrance(homeserver, wires):
    admin = homeserver.new_user("admin", admin=True)
    # Straight to Synapse, the admin API answers (so a request that reached it would show).
    for route in admin_routes(admin.user_id)[1], admin_routes(admin.user_id)[-1]:
        assert http_get(homeserver.url("internet") + route.path, admin.access_token)[0] == 200
    forms = itertools.cycle(FORMS)
    for zone, wire in wires.items():
        count = 0
        for route in admin_routes(admin.user_id):
            cases = [("canonical", route.path, form) for form in FORMS]
            cases += [(label, path, next(forms)) for label, path in spellings(route, hide_behind=ALLOWED_TARGETS)]
            for label, path, (form, in_query) in cases:
                reply = request(wire, path, admin.access_token, form, in_query)
                count += 1
                # Answered by nginx itself, never by Synapse (whose bodies carry no such reason).
                assert nginx_error(reply) in ("bad_request", "not_found"), \
                    (zone, route.name, label, path, form, in_query, reply.status, reply.body[:200])
                assert_no_version(reply)
        assert count > 500


# ---- to-device messages from LGWAN: an allow-list --------------------------------------------

REFUSED_TO_DEVICE = ["m.call.invite", "m.call.candidates", "m.call.answer", "m.call.hangup", "m.call.select_answer",
                     "m.call.negotiate", "m.call.reject", "m.call.sdp_stream_metadata_changed",
                     "org.matrix.call.sdp_stream_metadata_changed", "org.matrix.msc3401.call.member",
                     "io.element.call.encryption_keys", "org.matrix.msc4143.rtc.member", "m.custom", "x",
                     "M.ROOM.ENCRYPTED", "m.room.encrypted.x", "m.room.encryptedx", "m.key.verification.call"]
ALLOWED_TO_DEVICE = ["m.room.encrypted", "m.room_key_request", "m.secret.request", "m.key.verification.request",
                     "m.key.verification.cancel"]


def to_device_body(user_id: str, device_id: str, event_type: str) -> bytes:
    content = {"m.room.encrypted": {"algorithm": "m.olm.v1.curve25519-aes-sha2", "sender_key": "k",
                                    "ciphertext": {}}}.get(event_type, {"body": "x", "call_id": "c1"})
    return json.dumps({"messages": {user_id: {device_id: content}}}).encode()


def sync(base_url: str, token: str, since: str | None = None) -> dict:
    query = "timeout=0" + (f"&since={since}" if since else "")
    request = urllib.request.Request(f"{base_url}/_matrix/client/v3/sync?{query}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


async def test_to_device_from_lgwan_only_for_keys_and_verification(homeserver, wires, devices):
    phone, pc = devices
    since = sync(homeserver.url("internet"), phone.access_token)["next_batch"]
    txn = itertools.count()
    auth = {"Authorization": f"Bearer {pc.access_token}", "Content-Type": "application/json"}
    for version in ("r0", "v3", "unstable"):
        for event_type in REFUSED_TO_DEVICE:
            reply = wires["lgwan"].send(f"/_matrix/client/{version}/sendToDevice/{quote(event_type)}/t{next(txn)}",
                                        method="PUT", headers=auth,
                                        body=to_device_body(phone.user_id, phone.device_id, event_type))
            assert reply.status == 403, (version, event_type, reply.status, reply.body)
            assert reply.json == json.loads(error_body(*TO_DEVICE_REFUSAL))
        # escaped spellings of allowed types are not canonical
        reply = wires["lgwan"].send(f"/_matrix/client/{version}/sendToDevice/m%2Eroom%2Eencrypted/t{next(txn)}",
                                    method="PUT", headers=auth,
                                    body=to_device_body(phone.user_id, phone.device_id, "m.room.encrypted"))
        assert nginx_error(reply) == "bad_request"
    for event_type in ALLOWED_TO_DEVICE:
        reply = wires["lgwan"].send(f"/_matrix/client/v3/sendToDevice/{event_type}/t{next(txn)}", method="PUT",
                                    headers=auth, body=to_device_body(phone.user_id, phone.device_id, event_type))
        assert (reply.status, reply.json) == (200, {}), event_type
    # The phone got exactly the allowed ones (what reached Synapse reached the device).
    received = [event["type"] for event in sync(homeserver.url("internet"), phone.access_token, since)
                .get("to_device", {}).get("events", [])]
    assert sorted(received) == sorted(ALLOWED_TO_DEVICE)


# ---- /health, nginx's own errors, the access log ----------------------------------------------

def test_health_answers_through_both_entrances(wires):
    for wire in wires.values():
        reply = wire.send("/health")
        assert (reply.status, reply.body) == (200, b"OK")


def test_the_template_error_bodies_are_the_catalogue_messages():
    text = TEMPLATE.read_text(encoding="utf-8")
    block = text[text.index("map $status $lgwan_chat_error_body {"):]
    block = block[:block.index("\n}")]
    bodies = dict(re.findall(r"^\s+(\d+|default)\s+'(.*)';$", block, re.M))
    assert set(bodies) == {str(s) for s in ERROR_PAGES} | {"default"}
    for status, (errcode, reason) in ERROR_PAGES.items():
        assert bodies[str(status)] == error_body(errcode, reason), status
    assert bodies["default"] == error_body(*ERROR_PAGES[500])
    assert f"return 403 '{error_body(*TO_DEVICE_REFUSAL)}';" in text


def assert_error(reply: Reply, status: int, reason: str) -> None:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["content-type"] == "application/json; charset=utf-8"
    assert nginx_error(reply) == reason, reply.body
    assert_no_version(reply)


def test_nginx_errors_are_the_suites_on_both_entrances(wires):
    for wire in wires.values():
        assert_error(wire.send("/_matrix/client/v3/../../_synapse/admin/v1/server_version"), 400, "bad_request")
        assert_error(wire.send("/", request_line=b"GARBAGE \x01 HTTP/1.1"), 400, "bad_request")
        assert_error(wire.send("/"), 404, "not_found")
        assert_error(wire.send("/index.html"), 404, "not_found")
        assert_error(wire.send("/_matrix/client/versions", method="TRACE"), 405, "method_not_allowed")
        assert_error(wire.send("/_matrix/client/v3/sync", headers={"Content-Length": "200000000"}, method="POST"),
                     413, "too_large")
        assert_error(wire.send("/_matrix/client/v3/" + "a" * 10000), 414, "uri_too_long")
        assert_error(wire.send("/_matrix/client/versions", headers={"X-Big": "b" * 20000}), 400, "bad_request")
        wire.close()  # nginx closes after some of these


def test_nginx_errors_when_synapse_is_down(tmp_path):
    """502 from an entrance whose Synapse is not running: the suite's body too."""
    nginx = Nginx(NginxSpec(prefix=tmp_path / "nginx", internet_listen=f"127.0.0.1:{free_port()}",
                            lgwan_listen=f"127.0.0.1:{free_port()}", synapse_internet=f"127.0.0.1:{free_port()}",
                            synapse_lgwan=f"127.0.0.1:{free_port()}", upload_page=f"127.0.0.1:{free_port()}"))
    nginx.start()
    try:
        for zone in ("internet", "lgwan"):
            wire = Wire(nginx.url(zone))
            assert_error(wire.send("/_matrix/client/versions"), 502, "unavailable")
            # (on LGWAN the gate cannot be asked: auth_request turns that into a 500)
            assert_error(wire.send("/_matrix/client/v1/media/download/lgwan.test/abc"),
                         502 if zone == "internet" else 500, "unavailable")
            wire.close()
    finally:
        nginx.stop()


def test_access_log_never_holds_a_token(nginx_front, wires):
    secrets = [f"SECRET{i}x" for i in range(8)]
    queries = [f"access_token={secrets[0]}",
               f"since=s1&access_token={secrets[1]}&timeout=0",
               f"access_token={secrets[2]}&access_token={secrets[3]}",
               f"access%5Ftoken={secrets[4]}",
               f"ACCESS_TOKEN={secrets[5]}",
               f"unknown_param={secrets[6]}"]
    for wire in wires.values():
        for query in queries:
            wire.send(f"/_matrix/client/v3/account/whoami?{query}")
    wires["internet"].send(f"/upload/{secrets[7]}")
    wires["internet"].send("/_matrix/client/v3/sync?since=s9&timeout=0&access_token=plain")
    log = nginx_front.access_log.read_text(encoding="utf-8")
    for secret in secrets:
        assert secret not in log
    assert "/_matrix/client/v3/account/whoami?access_token=*** " in log  # masked, not dropped
    assert "/_matrix/client/v3/account/whoami?since=s1&access_token=***&timeout=0 " in log
    assert "/upload/*** " in log
    assert "access_token=plain" not in log


@pytest.mark.parametrize("guide", ["admin-guide.ja.md", "admin-guide.en.md"])
def test_the_admin_guide_shows_the_tested_configuration(guide):
    """What an admin copies from §3 is the file the tests run (followed literally, it keeps the gate)."""
    text = (ROOT / "docs" / guide).read_text(encoding="utf-8")
    section = text[text.index("## 3. "):text.index("## 4. ")]
    blocks = re.findall(r"```nginx\n(.*?)```", section, re.S)
    assert blocks == [TEMPLATE.read_text(encoding="utf-8")]
