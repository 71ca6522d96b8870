"""Render, start, watch and stop a real Synapse process.

One implementation for everything that runs a homeserver: ``lgwan-chat demo``,
the test harness (``tests/conftest.py``) and the benchmarks (``bench/``). The
configuration is always rendered from ``config/homeserver.template.yaml`` so
that what is tested is what admins deploy; deviations (database, rate limits,
modules) go into a second, explicit ``overrides.yaml``.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import attrs
import yaml

from lgwan_chat.core import SOURCE_ROOT
from lgwan_chat.core.http import HttpError, http_json  # noqa: F401 (HttpError: part of this module's API)
from lgwan_chat.ports import free_port, port_in_use  # noqa: F401 (re-exported: tests, bench, demo)
from lgwan_chat.templates import config_dir, write_private
from lgwan_chat.templates import render as render_template

ZONES = ("internet", "lgwan")

#: Raised limits for tests and benchmarks: load from many users on one machine
#: would otherwise fail with M_LIMIT_EXCEEDED.
_UNLIMITED = {"per_second": 10000, "burst_count": 10000}
RELAXED_RATE_LIMITS: dict[str, Any] = {
    **{key: _UNLIMITED for key in (
        "rc_message", "rc_registration", "rc_admin_redaction", "rc_joins_per_room", "rc_key_requests",
        "rc_3pid_validation", "rc_third_party_invite", "rc_media_create", "rc_delayed_event_mgmt",
        "rc_room_creation", "rc_reports", "rc_user_directory", "rc_profile")},
    "rc_login": {key: _UNLIMITED for key in ("address", "account", "failed_attempts")},
    "rc_joins": {key: _UNLIMITED for key in ("local", "remote")},
    "rc_invites": {key: _UNLIMITED for key in ("per_room", "per_user", "per_issuer")},
    "rc_presence": {"per_user": _UNLIMITED},
}


#: The server name of the user IDs in the shipped config/modules.yaml (the demo's, so the sample
#: passes check-config as it is).
SAMPLE_SERVER_NAME = "demo-city.test"


def suite_modules_yaml(server_name: str) -> str:
    """``config/modules.yaml`` for a server: the bots' user IDs on ``server_name``."""
    text = (config_dir() / "modules.yaml").read_text(encoding="utf-8")
    return text.replace(f':{SAMPLE_SERVER_NAME}"', f':{server_name}"')


def suite_modules(server_name: str = "lgwan.test") -> list[dict]:
    """The ``modules:`` block of ``config/modules.yaml``: every module of the suite."""
    return yaml.safe_load(suite_modules_yaml(server_name))["modules"]


#: A new database gets ~60 background schema updates, among them the user directory's population,
#: during which Synapse's directory does not follow new rooms. Synapse sleeps 1 s between their
#: batches (a minute, several on a busy machine); the demo's and tests' databases are small, so
#: they run back to back (about a second). Production keeps Synapse's defaults.
FAST_BACKGROUND_UPDATES = {"sleep_enabled": False}


#: ``device_approval`` with no device held in any zone.
NO_DEVICE_APPROVAL = {"internet": "off", "lgwan": "off"}
ZONES_MODULE = "synapse_modules.zones.ZonePolicyModule"


def with_device_approval(modules: list, policies: dict) -> list:
    """``modules`` with the zone module's ``device_approval`` set to ``policies``."""
    return [{**m, "config": {**(m.get("config") or {}), "device_approval": dict(policies)}}
            if isinstance(m, dict) and m.get("module") == ZONES_MODULE else m for m in modules]


@attrs.define
class HomeserverSpec:
    """What differs between one homeserver and another."""

    data_dir: Path
    server_name: str = "lgwan.test"
    internet_port: int = attrs.field(factory=free_port)
    lgwan_port: int = attrs.field(factory=free_port)
    bind_address: str = "127.0.0.1"
    #: Where coturn listens (UDP and TCP): homeserver.yaml's turn_uris.
    turn_port: int = attrs.field(factory=free_port)
    #: Synapse's Prometheus listener (always on 127.0.0.1: never behind nginx).
    metrics_port: int = attrs.field(factory=free_port)
    #: Trust X-Forwarded-For from the proxy in front (then the proxy must overwrite it).
    x_forwarded: bool = False
    #: The URL clients use (e.g. the proxy's); default: the internet listener itself.
    public_baseurl: str | None = None
    #: Synapse ``database:`` block; None = SQLite in data_dir (the embedded default).
    database: dict | None = None
    #: Synapse ``modules:`` block; None = every module of the suite (config/modules.yaml).
    modules: list | None = None
    #: Any further top-level keys (rate limits, ...).
    extra: dict = attrs.field(factory=dict)
    #: The zone module's ``device_approval`` (zone -> off | self | admin) written over what
    #: ``modules`` says; None: as ``modules`` says. Tests and benchmarks hold no device by
    #: default (a test asks for approval); production and the demo keep modules.yaml's.
    device_approval: dict | None = attrs.field(factory=lambda: dict(NO_DEVICE_APPROVAL))
    access_log_level: str = "INFO"

    def url(self, zone: str) -> str:
        port = {"internet": self.internet_port, "lgwan": self.lgwan_port}[zone]
        return f"http://{self.bind_address}:{port}"


def render(spec: HomeserverSpec) -> list[Path]:
    """Write homeserver.yaml (first time only), log.config and overrides.yaml.

    homeserver.yaml keeps its secrets across restarts: rendering again only
    refreshes the overrides. Returns the ``-c`` files in order.
    """
    data = Path(spec.data_dir)
    (data / "logs").mkdir(parents=True, exist_ok=True)
    homeserver_yaml = data / "homeserver.yaml"
    values = {
        "server_name": spec.server_name,
        "public_baseurl": (spec.public_baseurl or spec.url("internet")).rstrip("/") + "/",
        "data_dir": str(data),
        "internet_port": spec.internet_port,
        "lgwan_port": spec.lgwan_port,
        "metrics_port": spec.metrics_port,
        "bind_address": spec.bind_address,
        "x_forwarded": "true" if spec.x_forwarded else "false",
        "registration_shared_secret": secrets.token_urlsafe(32),
        "macaroon_secret_key": secrets.token_urlsafe(32),
        "form_secret": secrets.token_urlsafe(32),
        "log_file": str(data / "logs" / "homeserver.log"),
        "access_log_level": spec.access_log_level,
        "turn_host": spec.bind_address,
        "turn_port": spec.turn_port,
    }
    turn_secret = turn_secret_path(data)
    if not turn_secret.exists():  # shared by Synapse and coturn (lgwan_chat/coturn.py)
        turn_secret.parent.mkdir(mode=0o700, exist_ok=True)
        write_private(turn_secret, secrets.token_urlsafe(32))
    if not homeserver_yaml.exists():
        render_template("homeserver.template.yaml", homeserver_yaml, values)
    render_template("log.template.yaml", data / "log.config", values)
    if not (data / "signing.key").exists():
        from signedjson.key import generate_signing_key, write_signing_keys

        key = io.StringIO()
        write_signing_keys(key, [generate_signing_key("a_" + secrets.token_hex(2))])
        write_private(data / "signing.key", key.getvalue())  # the federation key: 0600
    modules = spec.modules if spec.modules is not None else suite_modules(spec.server_name)
    if spec.device_approval is not None:
        modules = with_device_approval(modules, spec.device_approval)
    overrides: dict[str, Any] = {"modules": modules,
                                 "background_updates": FAST_BACKGROUND_UPDATES}
    if spec.database is not None:
        overrides["database"] = spec.database
    overrides.update(spec.extra)
    overrides_yaml = data / "overrides.yaml"  # may hold the database password: 0600
    write_private(overrides_yaml, yaml.safe_dump(overrides, allow_unicode=True, sort_keys=False))
    return [homeserver_yaml, overrides_yaml]


def turn_secret_path(data_dir: Path) -> Path:
    """The TURN shared secret of a deployment (homeserver.yaml's turn_shared_secret_path)."""
    return Path(data_dir) / "secrets" / "turn_shared_secret"


class HomeserverError(RuntimeError):
    pass


class Homeserver:
    """A Synapse process for one rendered deployment."""

    def __init__(self, spec: HomeserverSpec):
        self.spec = spec
        self.data_dir = Path(spec.data_dir)
        self.config_files = render(spec)
        self.log_path = self.data_dir / "logs" / "homeserver.log"
        self.console_log_path = self.data_dir / "logs" / "homeserver.console.log"
        self.process: subprocess.Popen | None = None
        with open(self.config_files[0], encoding="utf-8") as f:
            rendered = yaml.safe_load(f)
        self._shared_secret = rendered["registration_shared_secret"]
        # homeserver.yaml is rendered once and may be edited since: its listeners are the truth.
        ports = {lst.get("tag"): lst["port"] for lst in rendered.get("listeners", [])}
        self.spec.internet_port = ports.get("internet", self.spec.internet_port)
        self.spec.lgwan_port = ports.get("lgwan", self.spec.lgwan_port)
        #: Synapse's metrics listener (``type: metrics``), None when homeserver.yaml has none.
        self.metrics_port: int | None = next(
            (lst["port"] for lst in rendered.get("listeners", []) if lst.get("type") == "metrics"), None)
        #: Whether a listener believes X-Forwarded-For: then only a proxy that overwrites it may reach it.
        self.trusts_forwarded_for = any(lst.get("x_forwarded") for lst in rendered.get("listeners", []))
        #: (host, port) of the TURN server homeserver.yaml names (its first turn: URI), None without one.
        self.turn_address = turn_address(rendered.get("turn_uris") or [])

    def reconfigure(self, **changes: Any) -> None:
        """Change the spec (e.g. ``modules=``) for the next start; the data stays."""
        self.spec = attrs.evolve(self.spec, **changes)
        self.config_files = render(self.spec)

    @property
    def registration_shared_secret(self) -> str:
        return self._shared_secret

    @property
    def server_name(self) -> str:
        return self.spec.server_name

    def url(self, zone: str = "internet") -> str:
        return self.spec.url(zone)

    def metrics_url(self) -> str:
        """Where Prometheus scrapes this homeserver (Synapse's metrics and the suite's ``lgwan_chat_*``)."""
        if self.metrics_port is None:
            raise HomeserverError(f"{self.config_files[0]} has no metrics listener")
        return f"http://127.0.0.1:{self.metrics_port}/_synapse/metrics"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def exit_code(self) -> int | None:
        """Synapse's exit code once it has exited; None while it runs (or before it starts)."""
        return self.process.poll() if self.process else None

    def start(self, timeout: float = 60.0) -> None:
        args = [sys.executable, "-m", "synapse.app.homeserver"]
        for path in self.config_files:
            args += ["-c", str(path)]
        with open(self.console_log_path, "ab") as console:  # the child keeps its own copy
            self.process = subprocess.Popen(args, stdout=console, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.data_dir,
                                            env=child_env(), start_new_session=True)
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = set(ZONES)
        while pending:
            if self.process is not None and self.process.poll() is not None:
                raise HomeserverError(f"Synapse exited with {self.process.returncode}; see {self.log_path} "
                                      f"and {self.console_log_path}:\n{self.log_tail()}")
            for zone in list(pending):
                try:
                    with urllib.request.urlopen(self.url(zone) + "/health", timeout=2) as r:
                        if r.status == 200:
                            pending.discard(zone)
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
            if pending:
                if time.monotonic() > deadline:
                    raise HomeserverError(f"Synapse not healthy after {timeout}s:\n{self.log_tail()}")
                time.sleep(0.1)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in ``timeout``; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_tail(self, since: int = 0, max_chars: int = 20000) -> str:
        parts = []
        for path, start in ((self.log_path, since), (self.console_log_path, 0)):
            if path.exists():
                with open(path, "rb") as f:
                    f.seek(start)
                    text = f.read().decode("utf-8", "replace")
                parts.append(f"--- {path.name} ---\n{text[-max_chars:]}")
        return "\n".join(parts)

    # --- admin API -------------------------------------------------------

    def register(self, localpart: str, password: str, admin: bool = False,
                 displayname: str | None = None, device_name: str | None = None) -> dict:
        """Register through the shared-secret admin API; returns user_id, access_token, device_id
        (a new device, named ``device_name``). No login limit applies: this is not a login."""
        return register_user(self.url("lgwan"), self._shared_secret, localpart, password, admin=admin,
                             displayname=displayname, device_name=device_name)

    def login(self, user_id: str, password: str) -> str:
        """A password login (it spends the login limits: only for what registration cannot give);
        returns the access token."""
        body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id},
                "password": password, "initial_device_display_name": "lgwan-chat"}
        return http_json("POST", self.url("lgwan") + "/_matrix/client/v3/login", body)["access_token"]


def register_user(url: str, shared_secret: str, localpart: str, password: str, admin: bool = False,
                  displayname: str | None = None, device_name: str | None = None) -> dict:
    """Shared-secret registration (``/_synapse/admin/v1/register``) on the Synapse listener at ``url``."""
    url += REGISTER_PATH
    nonce = http_json("GET", url)["nonce"]
    return http_json("POST", url, registration_body(shared_secret, nonce, localpart, password, admin=admin,
                                                     displayname=displayname, device_name=device_name))


#: Synapse's shared-secret registration endpoint (GET: a nonce; POST: the registration).
REGISTER_PATH = "/_synapse/admin/v1/register"


def registration_body(shared_secret: str, nonce: str, localpart: str, password: str, admin: bool = False,
                      displayname: str | None = None, device_name: str | None = None) -> dict:
    """The POST body of a shared-secret registration for ``nonce`` (its HMAC-SHA1 ``mac``)."""
    mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(),
                             b"admin" if admin else b"notadmin"]))
    body = {"nonce": nonce, "username": localpart, "password": password, "admin": admin, "mac": mac.hexdigest()}
    if displayname:
        body["displayname"] = displayname
    if device_name:
        body["initial_device_display_name"] = device_name
    return body


def turn_address(uris: list) -> tuple[str, int] | None:
    """``turn:HOST:PORT?transport=udp`` -> (HOST, PORT) of the first plain turn: URI."""
    for uri in uris:
        if isinstance(uri, str) and uri.startswith("turn:"):
            host, _, port = uri[len("turn:"):].split("?", 1)[0].rpartition(":")
            if host and port.isdigit():
                return host, int(port)
    return None


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # Synapse must import our modules: make the checkout importable even when
    # the suite is not installed into the interpreter running it.
    if SOURCE_ROOT is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE_ROOT), env.get("PYTHONPATH")]))
    return env
