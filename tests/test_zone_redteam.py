"""Attacks from an outside review of the zone policy (issue 13's fixes), generated.

Each test builds the variant space of one attack and sends it to the real nginx and/or
Synapse: tokens reaching nginx's error log or Synapse's log, and event types the call rule
did not know about (the rule is an allow-list of types known not to start a call).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from lgwan_chat.core.i18n import t
from lgwan_chat.homeserver import free_port
from lgwan_chat.nginx import Nginx, NginxSpec


@pytest.fixture(scope="module")
def homeserver_modules():
    return [{"module": "synapse_modules.zones.ZonePolicyModule", "config": {}}]


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
    secrets: list[str] = []
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


# ---- (b) a call by an event type the rule does not know ------------------------------------

ZONE_MARKER = "jp.lgwan.room.zone"
#: Call signalling and membership types clients use today (stable and unstable).
CALL_TYPES = ("m.call.invite", "m.call.answer", "m.call.candidates", "m.call.member", "m.call.negotiate",
              "org.matrix.msc3401.call.member", "org.matrix.msc3401.call", "m.rtc.notification",
              "org.matrix.msc4075.rtc.notification", "org.matrix.msc4143.rtc.member")
#: Call-ish types no rule lists: other MSC numbers, other vendors, future names.
UNLISTED = ("org.matrix.msc4310.rtc.decline", "org.matrix.msc9999.call.invite", "io.element.video.invite",
            "com.example.meeting.start", "net.jitsi.conference", "m.rtc", "m.call", "m.room.call",
            "im.vector.modular.widgets.call", "m.widgets")
#: The same text, spelt so a rule comparing prefixes misses it (a client may still act on it).
SPELLINGS = (lambda s: s.upper(), lambda s: s.title(), lambda s: " " + s, lambda s: s + " ",
             lambda s: s + "\t", lambda s: "\u200b" + s, lambda s: s.replace(".", "\uff0e"),
             lambda s: s.replace("c", "\u0441"))  # fullwidth dot, Cyrillic es


def unknown_types() -> list[str]:
    types = set(UNLISTED)
    for base in CALL_TYPES:
        types.update(spell(base) for spell in SPELLINGS)
    types.update(spell("m.room.message") for spell in SPELLINGS[:5])  # not the message type either
    return sorted(types)


#: Controls, accepted from anyone: (type, content, as state?)
ORDINARY: list[tuple[str, dict, bool]] = [("m.room.message", {"msgtype": "m.text", "body": "了解です"}, False),
            ("m.poll.start", {"m.poll": {"question": {"m.text": [{"body": "いつ？"}]}, "answers": []}}, False),
            ("m.call.hangup", {"call_id": "c1", "party_id": "p1", "version": "1"}, False),
            ("m.call.member", {}, True),  # leaving a call
            ("m.key.verification.cancel", {"code": "m.user", "reason": "中止"}, False),
            ("m.room.topic", {"topic": "議題"}, True),
            ("im.ponies.room_emotes", {"images": {}}, True),
            ("jp.lgwan.room.internal", {"internal": True}, True)]


def call_api(url: str, method: str, path: str, token: str, body) -> tuple[int, dict]:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def reason(status: int, body: dict) -> str | None:
    """The refusal a person sees (None: accepted); a refusal is always the suite's 403 in ja and en."""
    if status == 200:
        return None
    key = body.get("jp.lgwan.reason")
    assert status == 403 and key and t(f"zones.{key}", "ja") in body["error"], (status, body)
    assert t(f"zones.{key}", "en") in body["error"], body
    return key


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


async def test_only_types_known_not_to_start_a_call_enter_from_lgwan(homeserver, login):
    user = homeserver.new_user("staff")
    phone, pc = await login(user, "internet"), await login(user, "lgwan")
    url = {"internet": homeserver.url("internet"), "lgwan": homeserver.url("lgwan")}
    token = {"internet": phone.access_token, "lgwan": pc.access_token}

    def room(lgwan_only: bool) -> str:
        initial = [{"type": ZONE_MARKER, "state_key": "", "content": {"lgwan_only": True}}] if lgwan_only else []
        status, body = call_api(url["internet"], "POST", "/_matrix/client/v3/createRoom", token["internet"],
                                {"initial_state": initial})
        assert status == 200, body
        return body["room_id"]

    rooms = {False: room(False), True: room(True)}
    n = iter(range(10**6))

    def send(zone: str, lgwan_only: bool, event_type: str, content: dict, as_state: bool) -> str | None:
        room_id = q(rooms[lgwan_only])
        if as_state:
            path = f"/_matrix/client/v3/rooms/{room_id}/state/{q(event_type)}/k{next(n)}"
        else:
            path = f"/_matrix/client/v3/rooms/{room_id}/send/{q(event_type)}/t{next(n)}"
        return reason(*call_api(url[zone], "PUT", path, token[zone], content))

    def create(zone: str, event_type: str, content: dict) -> str | None:
        body = {"initial_state": [{"type": event_type, "state_key": "", "content": content}]}
        return reason(*call_api(url[zone], "POST", "/_matrix/client/v3/createRoom", token[zone], body))

    wrong = []
    content = {"call_id": "c1", "party_id": "p1", "version": "1", "application": "m.call",
               "offer": {"type": "offer", "sdp": "v=0"}, "type": "jitsi", "url": "https://meet.example/r"}
    for event_type in unknown_types():
        cases = {("send", "lgwan", False): send("lgwan", False, event_type, content, False),
                 ("state", "lgwan", False): send("lgwan", False, event_type, content, True),
                 ("send", "internet", True): send("internet", True, event_type, content, False),
                 ("state", "internet", True): send("internet", True, event_type, content, True),
                 ("createRoom", "lgwan", False): create("lgwan", event_type, content),
                 ("send", "internet", False): send("internet", False, event_type, content, False)}
        for (entry, zone, lgwan_only), got in cases.items():
            refused = zone == "lgwan" or lgwan_only
            if refused != (got is not None):
                wrong.append(f"{entry} {event_type!r} from {zone} (LGWAN-only room: {lgwan_only}): {got}")
    for zone, lgwan_only in (("lgwan", False), ("lgwan", True), ("internet", True)):
        status, body = call_api(url[zone], "PUT", f"/_matrix/client/v3/rooms/{q(rooms[lgwan_only])}/send/"
                                f"m.room.message/m{next(n)}", token[zone], {"msgtype": "m.text", "body": "確認"})
        assert status == 200, body
        reaction = {"m.relates_to": {"rel_type": "m.annotation", "event_id": body["event_id"], "key": "👍"}}
        for event_type, ordinary, as_state in [*ORDINARY, ("m.reaction", reaction, False)]:
            got = send(zone, lgwan_only, event_type, ordinary, as_state)
            if got is not None:
                wrong.append(f"ordinary {event_type} from {zone} (LGWAN-only room: {lgwan_only}): refused {got}")
    assert not wrong, f"{len(wrong)} wrong:\n" + "\n".join(wrong)


# ---- (c) a token in Synapse's log: query spellings its log masking does not know --------------

def escaped_names() -> list[str]:
    """"access_token" with one character %-escaped, each position, upper and lower hex."""
    name = "access_token"
    return [name[:i] + (f"%{ord(c):02X}" if upper else f"%{ord(c):02x}") + name[i + 1:]
            for i, c in enumerate(name) for upper in (True, False)]


def leaking_queries(secret: str) -> list[str]:
    """Queries whose token Synapse would read but its log would not mask (generated)."""
    found = []
    for name in escaped_names():
        found += [f"{name}={secret}", f"since=s1&{name}={secret}", f"{name}={secret}&access_token=x"]
    found += [f"access_token={secret}&access_token=x", f"access_token={secret}&via=access_token=x",
              f"access_token={secret}&access_token={secret}", f"a=1&access_token={secret}&b=2&access_token=x",
              f"access_token={secret}&ACCESS_TOKEN=x"]
    return found


async def test_no_spelling_of_a_query_token_reaches_synapses_log(homeserver, nginx_front, login):
    user = homeserver.new_user("logs")
    tokens = {"internet": (await login(user, "internet", via=nginx_front)).access_token,
              "lgwan": (await login(user, "lgwan", via=nginx_front)).access_token}
    paths = ["/_matrix/client/v3/account/whoami", "/_matrix/client/v3/sync?timeout=0",
             "/_matrix/client/v1/media/download/lgwan.test/abc"]
    secrets: list[str] = []
    for zone in ("internet", "lgwan"):
        for path in paths:
            secret = f"SECRET{len(secrets)}x"
            for query in leaking_queries(secret):
                url = nginx_front.url(zone) + path + ("&" if "?" in path else "?") + query
                with contextlib.suppress(urllib.error.HTTPError):
                    urllib.request.urlopen(url, timeout=30)
            secrets.append(secret)
            # a single plain token still works (what clients send), and is masked
            plain = nginx_front.url(zone) + path + ("&" if "?" in path else "?") + f"access_token={tokens[zone]}"
            if "whoami" in path:
                with urllib.request.urlopen(plain, timeout=30) as reply:
                    assert json.loads(reply.read())["user_id"] == user.user_id
            secrets.append(tokens[zone])
    logs = homeserver.log_tail(max_chars=10**9) + nginx_front.access_log.read_text(encoding="utf-8")
    leaked = sorted({s for s in secrets if s in logs})
    assert not leaked, leaked


def secret_parameters() -> list[str]:
    """Names a token travels under (Element's registration-token check, SSO, upload links...)
    and names nobody listed: every name not on the log's allow-list must be masked."""
    known = ["token", "loginToken", "login_token", "refresh_token", "session", "sid", "client_secret",
             "password", "registration_token", "upload_token", "code", "state", "redirectUrl"]
    return known + [f"p{i}{suffix}" for i, suffix in enumerate(["", "_token", "Token", "KEY"])]


def test_synapses_own_log_keeps_only_allowed_query_values(homeserver):
    """Straight to Synapse's listeners (a worker or an operator's tool reaches them without nginx):
    Synapse masks only access_token and client_secret itself; the suite's log filter the rest."""
    secrets: list[str] = []
    paths = ["/_matrix/client/v1/register/m.login.registration_token/validity",
             "/_matrix/client/v3/login/sso/redirect", "/_matrix/client/v3/sync", "/health"]
    for zone in ("internet", "lgwan"):
        for path in paths:
            for name in secret_parameters():
                secret = f"SECRET{len(secrets)}x"
                secrets.append(secret)
                url = f"{homeserver.url(zone)}{path}?limit=5&{name}={secret}&timeout=0"
                with contextlib.suppress(urllib.error.HTTPError):
                    urllib.request.urlopen(url, timeout=30).close()
    log = homeserver.log_tail(max_chars=10**9)
    leaked = sorted({s for s in secrets if s in log})
    assert not leaked, leaked
    # masked, not dropped: what the request was stays readable (allowed values kept)
    assert "validity?limit=5&token=<redacted>&timeout=0" in log


def test_query_redaction_is_an_allow_list():
    from lgwan_chat.core.logged_queries import LOGGED_QUERY_PARAMETERS, redact_queries

    for name in LOGGED_QUERY_PARAMETERS:
        assert redact_queries(f'"GET /x?{name}=v HTTP/1.1"') == f'"GET /x?{name}=v HTTP/1.1"'
    for name in secret_parameters():
        assert redact_queries(f"GET /x?{name}=v&dir=b") == f"GET /x?{name}=<redacted>&dir=b"
    assert redact_queries("GET /x?bare&from=1 ok") == "GET /x?<redacted>&from=1 ok"
    assert redact_queries("no query here") == "no query here"
