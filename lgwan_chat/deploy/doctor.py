"""``lgwan-chat doctor LGWAN-URL INTERNET-URL``: a live deployment probed from the outside.

What a municipality's IT staff would check by hand after installing or upgrading, each a line
``✓`` or ``✗`` with the reason in Japanese and English, exit code 1 when anything is wrong:

- TLS: each entrance's certificate verifies (system trust, or ``--ca-file``) and does not expire
  within ``--tls-days`` days (expired or not yet valid certificates are named with their dates);
- both entrances answer the Client-Server API;
- with a test account (``--user`` and ``LGWAN_CHAT_DOCTOR_PASSWORD``, or ``--deployment OUTDIR``:
  the ``doctor`` account ``lgwan-chat deploy accounts`` registers), logged in once per entrance:
  the zone module says ``lgwan`` at the LGWAN entrance and ``internet`` at the internet one;
- the LGWAN gate refuses a file uploaded from the internet side (a small PNG) to the LGWAN device;
- the admin API answers through neither entrance, under any spelling of its path nginx or Synapse
  might read differently (encoded, dot segments, double slashes, the client API's admin part);
- the suite's module routes answer (each reads its module's tables: a table the main process
  did not create is a server error here);
- each bot answers ``!ヘルプ`` in a direct chat (``--bot``, or the deployment's bot units);
- each server of the federation allow-list answers Matrix federation from here (``--federation``,
  or the list the deployment's modules.yaml names).

Nothing here needs the deployment's files except ``--deployment`` (credentials, bots, the list);
the probes are what a client on each network would send. The test account's devices are logged
out again; its direct chats and test room are left and forgotten.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import json
import os
import socket
import ssl
import struct
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import attrs
import yaml

from lgwan_chat.core.i18n import LANGUAGES, Msg, both, t
from lgwan_chat.core.routes import BOOKMARKS, ZONE, room_route

ZONES = ("lgwan", "internet")
PASSWORD_ENV = "LGWAN_CHAT_DOCTOR_PASSWORD"
FEDERATION_MODULE = "synapse_modules.federation.FederationAllowListModule"
HTTP_TIMEOUT = 20.0


# --- results --------------------------------------------------------------------------------------

@attrs.frozen
class Finding:
    ok: bool | None  # None: not checked (nothing to check), neither right nor wrong
    key: str
    params: dict[str, Any] = attrs.field(factory=dict)

    def line(self) -> str:
        mark = {True: "✓", False: "✗", None: "–"}[self.ok]
        return f"{mark} {both(self.key, **self.params)}"


def problem_of(error: BaseException) -> str:
    """A short, token-free description of a failed request."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS: {error.verify_message}"
    if isinstance(error, (TimeoutError, ConnectionError, OSError, http.client.HTTPException)):
        return f"{type(error).__name__}: {error}"
    return str(error)


# --- HTTP ---------------------------------------------------------------------------------------

@attrs.frozen
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def errcode(self) -> str | None:
        doc = self.json()
        return doc.get("errcode") if isinstance(doc, dict) else None

    def describe(self) -> str:
        doc = self.json()
        if isinstance(doc, dict) and "errcode" in doc:
            return f"HTTP {self.status} {doc.get('errcode')}: {doc.get('error', '')}"
        return f"HTTP {self.status}"


#: 429 answers waited out per call, and the longest single wait
RATE_LIMIT_RETRIES = 3
MAX_RATE_LIMIT_WAIT_S = 30.0


class Entrance:
    """One entrance (``lgwan`` or ``internet``) as a client on that network reaches it."""

    def __init__(self, zone: str, url: str, context: ssl.SSLContext):
        self.zone, self.url = zone, url.rstrip("/")
        parts = urlsplit(self.url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        self.context = context
        self.token: str | None = None
        self.user_id: str | None = None

    def request(self, method: str, path: str, body: bytes | None = None, token: str | None = None,
                content_type: str = "application/json", timeout: float = HTTP_TIMEOUT) -> Response:
        """``path`` is sent exactly as given (the admin-API probes depend on it)."""
        if self.tls:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, self.port, context=self.context, timeout=timeout)
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        headers = {"Content-Type": content_type} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            connection.request(method, path, body=body, headers=headers)
            answer = connection.getresponse()
            return Response(answer.status, answer.read())
        finally:
            connection.close()

    def call(self, method: str, path: str, body: Any = None, authenticated: bool = True,
             wait_rate_limit: bool = True) -> Response:
        """A Client-Server API call; a 429 is waited out as Synapse asks (``retry_after_ms``), as
        clients do, a few times: several bots checked in a row meet Synapse's per-account limits."""
        data = json.dumps(body).encode() if body is not None else None
        for _ in range(RATE_LIMIT_RETRIES if wait_rate_limit else 0):
            answer = self.request(method, path, data, self.token if authenticated else None)
            if answer.status != 429:
                return answer
            wait_ms = (answer.json() or {}).get("retry_after_ms") if isinstance(answer.json(), dict) else None
            time.sleep(min(MAX_RATE_LIMIT_WAIT_S, (wait_ms if isinstance(wait_ms, int) else 1000) / 1000))
        return self.request(method, path, data, self.token if authenticated else None)


def context_for(ca_file: Path | None, verify: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def tiny_png() -> bytes:
    """A 1x1 PNG: the untrusted test file (made here, so no image library is needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xc8\x1e\x1e"))
            + chunk(b"IEND", b""))


# --- the checks ---------------------------------------------------------------------------------

@attrs.define
class Options:
    lgwan_url: str
    internet_url: str
    user: str | None = None
    password: str | None = None
    bots: list[str] = attrs.field(factory=list)
    federation: list[str] = attrs.field(factory=list)
    ca_file: Path | None = None
    tls_days: int = 21
    bot_timeout: float = 60.0


def peer_certificate(entrance: Entrance, context: ssl.SSLContext) -> bytes | None:
    with socket.create_connection((entrance.host, entrance.port), timeout=HTTP_TIMEOUT) as raw, \
            context.wrap_socket(raw, server_hostname=entrance.host) as tls:
        return tls.getpeercert(binary_form=True)


def check_tls(entrance: Entrance, ca_file: Path | None, warn_days: int) -> Finding:
    from cryptography import x509

    where = entrance.url
    if not entrance.tls:
        return Finding(False, "doctor.tls_plain", {"url": where})
    try:
        der = peer_certificate(entrance, context_for(ca_file))
        verified, reason = True, ""
    except ssl.SSLCertVerificationError as e:
        verified, reason = False, e.verify_message
        try:  # again without verification, to say which certificate and its dates
            der = peer_certificate(entrance, context_for(ca_file, verify=False))
        except (OSError, ssl.SSLError) as again:
            return Finding(False, "doctor.tls_failed", {"url": where, "problem": problem_of(again)})
    except (OSError, ssl.SSLError) as e:
        return Finding(False, "doctor.tls_failed", {"url": where, "problem": problem_of(e)})
    if der is None:
        return Finding(False, "doctor.tls_failed", {"url": where, "problem": "no certificate"})
    cert = x509.load_der_x509_certificate(der)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_after, not_before = cert.not_valid_after_utc, cert.not_valid_before_utc
    dates = {"url": where, "subject": cert.subject.rfc4514_string(), "not_after": f"{not_after:%Y-%m-%d %H:%M} UTC",
             "not_before": f"{not_before:%Y-%m-%d %H:%M} UTC", "days": (not_after - now).days}
    if not_after <= now:
        return Finding(False, "doctor.tls_expired", dates)
    if not_before > now:
        return Finding(False, "doctor.tls_not_yet_valid", dates)
    if not verified:
        return Finding(False, "doctor.tls_untrusted", {**dates, "problem": reason})
    if not_after - now < datetime.timedelta(days=warn_days):
        return Finding(False, "doctor.tls_expiring", {**dates, "limit": warn_days})
    return Finding(True, "doctor.tls_ok", dates)


def check_entrance(entrance: Entrance) -> Finding:
    try:
        answer = entrance.call("GET", "/_matrix/client/versions", authenticated=False)
    except (OSError, http.client.HTTPException) as e:
        return Finding(False, "doctor.entrance_down", {"zone": Msg(f"doctor.zone.{entrance.zone}"),
                                                       "url": entrance.url, "problem": problem_of(e)})
    doc = answer.json()
    if answer.status != 200 or not isinstance(doc, dict) or "versions" not in doc:
        return Finding(False, "doctor.entrance_down", {"zone": Msg(f"doctor.zone.{entrance.zone}"),
                                                       "url": entrance.url, "problem": answer.describe()})
    return Finding(True, "doctor.entrance_ok", {"zone": Msg(f"doctor.zone.{entrance.zone}"), "url": entrance.url})


def login(entrance: Entrance, user: str, password: str) -> Finding | None:
    """Logs the test account in at ``entrance`` (one device per zone); a Finding only on failure."""
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password,
            "device_id": f"LGWANCHATDOCTOR{entrance.zone.upper()}", "initial_device_display_name": "lgwan-chat doctor"}
    zone = Msg(f"doctor.zone.{entrance.zone}")
    try:
        # (a login limit lasts minutes: reported with its wait, not waited out)
        answer = entrance.call("POST", "/_matrix/client/v3/login", body, authenticated=False, wait_rate_limit=False)
    except (OSError, http.client.HTTPException) as e:
        return Finding(False, "doctor.login_failed", {"zone": zone, "user": user, "problem": problem_of(e)})
    doc = answer.json()
    if answer.status == 429:
        seconds = int((doc or {}).get("retry_after_ms", 0) / 1000) + 1
        return Finding(False, "doctor.login_limited", {"zone": zone, "user": user, "seconds": seconds})
    if answer.status != 200 or not isinstance(doc, dict) or "access_token" not in doc:
        return Finding(False, "doctor.login_failed", {"zone": zone, "user": user, "problem": answer.describe()})
    entrance.token, entrance.user_id = doc["access_token"], doc["user_id"]
    return None


def check_zone(entrance: Entrance) -> Finding:
    expected = Msg(f"doctor.zone.{entrance.zone}")
    try:
        answer = entrance.call("GET", ZONE)
    except (OSError, http.client.HTTPException) as e:
        return Finding(False, "doctor.zone_failed", {"url": entrance.url, "problem": problem_of(e)})
    doc = answer.json()
    if answer.status != 200 or not isinstance(doc, dict):
        return Finding(False, "doctor.zone_failed", {"url": entrance.url, "problem": answer.describe()})
    if doc.get("zone") != entrance.zone:
        got = doc.get("zone")
        return Finding(False, "doctor.zone_wrong", {"url": entrance.url, "expected": expected,
                                                    "got": Msg(f"doctor.zone.{got}") if got in ZONES else got})
    return Finding(True, "doctor.zone_ok", {"url": entrance.url, "zone": expected})


def check_gate(lgwan: Entrance, internet: Entrance) -> Finding:
    """A PNG uploaded from the internet side must not reach the LGWAN device (untrusted until sanitized)."""
    try:
        upload = internet.request("POST", "/_matrix/media/v3/upload?filename=lgwan-chat-doctor.png", tiny_png(),
                                  internet.token, content_type="image/png")
        uri = (upload.json() or {}).get("content_uri", "") if upload.status == 200 else ""
        if not uri.startswith("mxc://"):
            return Finding(False, "doctor.gate_failed", {"problem": "upload: " + upload.describe()})
        server, media_id = uri[len("mxc://"):].split("/", 1)
        answer = lgwan.request("GET", f"/_matrix/client/v1/media/download/{quote(server)}/{quote(media_id)}",
                               token=lgwan.token)
    except (OSError, http.client.HTTPException) as e:
        return Finding(False, "doctor.gate_failed", {"problem": problem_of(e)})
    doc = answer.json()
    if answer.status == 200 and answer.body == tiny_png():
        return Finding(False, "doctor.gate_open", {})
    if answer.status == 403 and isinstance(doc, dict) and doc.get("jp.lgwan.reason") == "media_pending_sanitization":
        return Finding(True, "doctor.gate_ok", {})
    return Finding(False, "doctor.gate_failed", {"problem": answer.describe()})


def admin_probes(server_name: str) -> list[tuple[str, bool]]:
    """(raw path, send the token): the admin API under the spellings a proxy might read otherwise."""
    version = "v1/server_version"
    other = quote(f"@lgwan-chat-doctor-nobody:{server_name}")
    paths = [f"/_synapse/admin/{version}", f"/_synapse%2Fadmin/{version}", f"/_synapse/%61dmin/{version}",
             f"/_synapse%2fadmin/{version}", f"//_synapse/admin/{version}", f"/_synapse//admin/{version}",
             f"/_synapse/./admin/{version}", f"/_matrix/../_synapse/admin/{version}",
             f"/_synapse/client/lgwan/../../admin/{version}", f"/_synapse/client/lgwan/..%2F..%2Fadmin/{version}",
             f"/_matrix/client/v3/../../_synapse/admin/{version}", f"/_synapse/admin/{version}?x=/_matrix/client/",
             f"/%5Fsynapse/admin/{version}", f"/_synapse/admin/{version}%00", f"/_synapse/admin/{version}/"]
    probes = [(path, False) for path in paths]
    probes += [("/_synapse/admin/v2/users?limit=1", True), ("/_synapse/admin/v1/users/" + other + "/admin", True)]
    probes += [(f"/_matrix/client/{v}/admin/whois/{other}", True) for v in ("v3", "r0", "api/v1", "unstable")]
    probes += [(f"/_matrix/client/v3/%61dmin/whois/{other}", True), (f"/_matrix/client/v3//admin/whois/{other}", True)]
    return probes


def synapse_admin_answered(answer: Response) -> bool:
    """Did Synapse's admin API itself answer (as opposed to nginx's refusal)?"""
    doc = answer.json()
    if not isinstance(doc, dict):
        return False
    if answer.status == 200 and ("server_version" in doc or "users" in doc or "devices" in doc):
        return True
    # A non-admin's token reached the admin API: Synapse says so.
    return answer.status == 403 and "server admin" in str(doc.get("error", ""))


def check_admin_hidden(entrances: list[Entrance], server_name: str) -> list[Finding]:
    """One ✗ per entrance that lets the admin API through (its first spelling, and how many did)."""
    found: list[Finding] = []
    count = 0
    for entrance in entrances:
        reached: list[tuple[str, int]] = []
        for path, with_token in admin_probes(server_name):
            count += 1
            try:
                answer = entrance.request("GET", path, token=entrance.token if with_token else None)
            except (OSError, http.client.HTTPException):
                continue  # not answered is not reachable (the entrance itself is checked above)
            if synapse_admin_answered(answer):
                reached.append((path, answer.status))
        if reached:
            found.append(Finding(False, "doctor.admin_reachable", {
                "url": entrance.url + reached[0][0], "status": reached[0][1], "count": len(reached)}))
    return found or [Finding(True, "doctor.admin_hidden", {"count": count})]


@attrs.frozen
class ModuleRoute:
    module: str
    path: Callable[[str, str], str]  # (room_id, event_id) -> path


MODULE_ROUTES = (
    ModuleRoute("zones", lambda room, event: ZONE),
    ModuleRoute("bookmarks", lambda room, event: BOOKMARKS),
    ModuleRoute("read_status", lambda room, event: room_route(room, "read_status", event)),
    ModuleRoute("stamps", lambda room, event: room_route(room, "stamps", event)),
)


def check_modules(lgwan: Entrance) -> list[Finding]:
    """Each module's route reads its tables: answered, they were created (and migrated) by main."""
    try:
        room = lgwan.call("POST", "/_matrix/client/v3/createRoom",
                          {"name": "lgwan-chat doctor", "preset": "private_chat"})
        room_id = (room.json() or {}).get("room_id")
        if not room_id:
            return [Finding(False, "doctor.modules_failed", {"module": "-", "problem": "createRoom: "
                                                             + room.describe()})]
        sent = lgwan.call("PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/{uuid.uuid4().hex}",
                          {"msgtype": "m.notice", "body": "lgwan-chat doctor"})
        event_id = (sent.json() or {}).get("event_id", "")
    except (OSError, http.client.HTTPException) as e:
        return [Finding(False, "doctor.modules_failed", {"module": "-", "problem": problem_of(e)})]
    failed: list[Finding] = []
    try:
        for route in MODULE_ROUTES:
            try:
                answer = lgwan.call("GET", route.path(room_id, event_id))
            except (OSError, http.client.HTTPException) as e:
                failed.append(Finding(False, "doctor.modules_failed", {"module": route.module,
                                                                       "problem": problem_of(e)}))
                continue
            if answer.status != 200:
                failed.append(Finding(False, "doctor.modules_failed", {"module": route.module,
                                                                       "problem": answer.describe()}))
    finally:
        leave(lgwan, room_id)
    return failed or [Finding(True, "doctor.modules_ok", {"modules": ", ".join(r.module for r in MODULE_ROUTES)})]


def leave(entrance: Entrance, room_id: str) -> None:
    for action in ("leave", "forget"):
        with contextlib.suppress(OSError, http.client.HTTPException):
            entrance.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/{action}", {})


def bot_user(bot: str, server_name: str) -> str:
    return bot if bot.startswith("@") else f"@{bot}-bot:{server_name}"


def wait_for(condition: Callable[[], Any], timeout: float, step: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def check_bot(lgwan: Entrance, user_id: str, timeout: float) -> Finding:
    """A direct chat with the bot, ``!ヘルプ``, and its answer."""
    params: dict[str, Any] = {"bot": user_id, "seconds": int(timeout)}
    room_id = None
    try:
        created = lgwan.call("POST", "/_matrix/client/v3/createRoom",
                             {"is_direct": True, "invite": [user_id], "preset": "trusted_private_chat"})
        room_id = (created.json() or {}).get("room_id")
        if not room_id:
            return Finding(False, "doctor.bot_failed", {**params, "problem": created.describe()})
        room = quote(room_id)

        def joined() -> bool:
            members = lgwan.call("GET", f"/_matrix/client/v3/rooms/{room}/joined_members")
            return user_id in ((members.json() or {}).get("joined") or {})

        if not wait_for(joined, timeout):
            return Finding(False, "doctor.bot_not_joined", params)
        sent = lgwan.call("PUT", f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{uuid.uuid4().hex}",
                          {"msgtype": "m.text", "body": "!ヘルプ"})
        if sent.status != 200:
            return Finding(False, "doctor.bot_failed", {**params, "problem": sent.describe()})

        def answered() -> bool:
            messages = lgwan.call("GET", f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=30")
            return any(e.get("sender") == user_id and e.get("type") == "m.room.message"
                       for e in (messages.json() or {}).get("chunk", []))

        if not wait_for(answered, timeout):
            return Finding(False, "doctor.bot_silent", params)
        return Finding(True, "doctor.bot_ok", params)
    except (OSError, http.client.HTTPException) as e:
        return Finding(False, "doctor.bot_failed", {**params, "problem": problem_of(e)})
    finally:
        if room_id:
            leave(lgwan, room_id)


def federation_base(server: str, context: ssl.SSLContext) -> str:
    """Where Matrix server discovery finds ``server`` (well-known, else port 8448; SRV is not looked up)."""
    host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
    if port or host.replace(".", "").isdigit() or server.startswith("["):
        return f"https://{server}"
    try:
        probe = Entrance("lgwan", f"https://{server}", context)
        answer = probe.request("GET", "/.well-known/matrix/server", timeout=10)
        delegated = (answer.json() or {}).get("m.server") if answer.status == 200 else None
        if isinstance(delegated, str) and delegated:
            return f"https://{delegated}" if ":" in delegated else f"https://{delegated}:8448"
    except (OSError, http.client.HTTPException, AttributeError):
        pass
    return f"https://{server}:8448"


def check_federation(servers: list[str], context: ssl.SSLContext) -> list[Finding]:
    if not servers:
        return [Finding(None, "doctor.federation_none", {})]
    found = []
    for server in servers:
        base = federation_base(server, context)
        try:
            answer = Entrance("lgwan", base, context).request("GET", "/_matrix/federation/v1/version", timeout=10)
            doc = answer.json()
            if answer.status == 200 and isinstance(doc, dict) and "server" in doc:
                software = f"{doc['server'].get('name', '?')} {doc['server'].get('version', '')}".strip()
                found.append(Finding(True, "doctor.federation_ok", {"server": server, "software": software}))
            else:
                found.append(Finding(False, "doctor.federation_unreachable",
                                     {"server": server, "url": base, "problem": answer.describe()}))
        except (OSError, http.client.HTTPException) as e:
            found.append(Finding(False, "doctor.federation_unreachable",
                                 {"server": server, "url": base, "problem": problem_of(e)}))
    return found


def logout(entrance: Entrance) -> None:
    if entrance.token:
        with contextlib.suppress(OSError, http.client.HTTPException):
            entrance.call("POST", "/_matrix/client/v3/logout", {})
        entrance.token = None


def diagnose(options: Options) -> Iterator[Finding]:
    """Every check, in the order an admin would go: network and TLS, then as a user, then the bots."""
    verified = context_for(options.ca_file)
    entrances = {"lgwan": Entrance("lgwan", options.lgwan_url, verified),
                 "internet": Entrance("internet", options.internet_url, verified)}
    for entrance in entrances.values():
        finding = check_tls(entrance, options.ca_file, options.tls_days)
        yield finding
        if finding.key in ("doctor.tls_expired", "doctor.tls_not_yet_valid", "doctor.tls_untrusted"):
            # Said once: the other checks of this entrance still run (without verifying).
            entrance.context = context_for(options.ca_file, verify=False)
    up = {}
    for zone, entrance in entrances.items():
        finding = check_entrance(entrance)
        up[zone] = finding.ok
        yield finding
    if not all(up.values()):
        return
    if not options.user or not options.password:
        yield Finding(False, "doctor.no_account", {"env": PASSWORD_ENV})
        yield from check_admin_hidden(list(entrances.values()), "localhost")
        yield from check_federation(options.federation, verified)
        return
    try:
        failures = [f for f in (login(e, options.user, options.password) for e in entrances.values()) if f]
        yield from failures
        lgwan, internet = entrances["lgwan"], entrances["internet"]
        server_name = (lgwan.user_id or internet.user_id or ":localhost").split(":", 1)[1]
        if not failures:
            for entrance in entrances.values():
                yield check_zone(entrance)
            yield check_gate(lgwan, internet)
        yield from check_admin_hidden(list(entrances.values()), server_name)
        if lgwan.token:
            yield from check_modules(lgwan)
            for bot in options.bots:
                yield check_bot(lgwan, bot_user(bot, server_name), options.bot_timeout)
        yield from check_federation(options.federation, verified)
    finally:
        for entrance in entrances.values():
            logout(entrance)


# --- what a deployment directory tells -------------------------------------------------------

def from_deployment(outdir: Path) -> dict[str, Any]:
    """The test account, the bots and the federation list of a ``deploy init`` directory."""
    from .accounts import DOCTOR, deployed_bots

    found: dict[str, Any] = {"bots": deployed_bots(outdir)}
    password = outdir / "secrets" / f"{DOCTOR}.password"
    if password.is_file():
        found["user"] = DOCTOR
        found["password"] = password.read_text(encoding="utf-8").strip()
    modules = yaml.safe_load((outdir / "synapse" / "modules.yaml").read_text(encoding="utf-8")) or {}
    for module in modules.get("modules") or []:
        if isinstance(module, dict) and module.get("module") == FEDERATION_MODULE:
            found["federation"] = federation_servers(Path((module.get("config") or {}).get("allowlist", "")))
    return found


def federation_servers(path: Path) -> list[str]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [s["name"] for s in (doc.get("federation") or {}).get("servers") or [] if isinstance(s, dict)]


def report(findings: Iterator[Finding], write: Callable[[str], None]) -> int:
    wrong = 0
    for finding in findings:
        write(finding.line())
        wrong += finding.ok is False
    write(both("doctor.summary_wrong", count=wrong) if wrong else both("doctor.summary_ok"))
    return 1 if wrong else 0


def options_from(args: Any) -> Options:
    options = Options(args.lgwan_url, args.internet_url, ca_file=args.ca_file, tls_days=args.tls_days,
                      bot_timeout=args.bot_timeout)
    if args.deployment is not None:
        found = from_deployment(args.deployment)
        options.user, options.password = found.get("user"), found.get("password")
        options.bots, options.federation = found["bots"], found.get("federation", [])
    if args.user:
        options.user = args.user
        options.password = os.environ.get(PASSWORD_ENV)
    if args.password_file is not None:
        options.password = args.password_file.read_text(encoding="utf-8").strip()
    if args.bot:
        options.bots = list(args.bot)
    if args.federation is not None:
        options.federation = federation_servers(args.federation)
    return options


def languages_line() -> str:
    return " / ".join(t("doctor.title", lang) for lang in LANGUAGES)
