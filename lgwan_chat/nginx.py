"""nginx in front of Synapse, one server block per zone (the LGWAN media gate lives there).

Renders ``config/nginx/*.template`` and runs nginx in the foreground as a
child process; used by ``lgwan-chat demo`` and the tests.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import attrs

from lgwan_chat import processes
from lgwan_chat.core.i18n import LANGUAGES, both, t
from lgwan_chat.templates import render


def nginx_binary() -> str | None:
    """The nginx to run; ``LGWAN_CHAT_NGINX`` names another one, or ``none`` to run without."""
    chosen = os.environ.get("LGWAN_CHAT_NGINX")
    if chosen:
        return None if chosen == "none" else chosen
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


@attrs.define
class NginxSpec:
    prefix: Path
    internet_listen: str  # e.g. 127.0.0.1:8008: what internet-side clients connect to
    lgwan_listen: str  # e.g. 127.0.0.1:8018: what LGWAN-side clients connect to
    synapse_internet: str  # Synapse's internet-tagged listener, host:port
    synapse_lgwan: str  # Synapse's lgwan-tagged listener, host:port
    log_dir: Path | None = None  # default: PREFIX/logs
    upload_page: str = "127.0.0.1:8030"  # the sanitizer bot's upload page (upload.listen in bots.yaml)
    #: A sites file rendered elsewhere (``lgwan-chat deploy``) to run as is, instead of rendering one.
    sites_file: Path | None = None
    tls: bool = False  # whether the entrances speak TLS (a deployed sites file)


#: The pools of Synapse processes behind each entrance (``lgwan_chat_<zone>_<pool>`` upstreams).
POOLS = ("main", "client", "media")


@attrs.frozen
class UpstreamRoute:
    """Requests whose ``METHOD /raw/path`` matches ``pattern`` (an nginx regex) go to ``pool``."""

    pattern: str
    pool: str


def upstreams_conf(servers: dict[str, dict[str, list[str]]],
                   routes: tuple[UpstreamRoute, ...] = ()) -> str:
    """The ``${upstreams}`` of the sites template: ``servers[zone][pool]`` = host:port list.

    Each zone gets one upstream per pool and a map ``$lgwan_chat_<zone>_upstream`` choosing the
    pool of a request (first matching route; default the main process). A pool of several
    processes keeps each access token on one of them (sync caches stay warm)."""
    blocks = []
    for zone in ("internet", "lgwan"):
        for pool in POOLS:
            members = servers[zone][pool]
            lines = [f"upstream lgwan_chat_{zone}_{pool} {{"]
            if len(members) > 1:
                lines.append("    hash $http_authorization consistent;")
            lines += [f"    server {member};" for member in members]
            lines += ["    keepalive 16;", "}"]
            blocks.append("\n".join(lines))
        mapping = [f'map "$request_method $lgwan_chat_raw_path" $lgwan_chat_{zone}_upstream {{',
                   f"    default lgwan_chat_{zone}_main;"]
        mapping += [f'    "~{route.pattern}" lgwan_chat_{zone}_{route.pool};' for route in routes]
        mapping.append("}")
        blocks.append("\n".join(mapping))
    return "\n\n".join(blocks) + "\n"


def one_process(internet: str, lgwan: str) -> dict[str, dict[str, list[str]]]:
    """``upstreams_conf`` servers for a Synapse without workers: every pool is that process."""
    return {"internet": {pool: [internet] for pool in POOLS}, "lgwan": {pool: [lgwan] for pool in POOLS}}


class NginxError(RuntimeError):
    pass


class Nginx:
    def __init__(self, spec: NginxSpec):
        self.spec = spec
        self.prefix = Path(spec.prefix)
        self.process: subprocess.Popen | None = None
        self.log_dir = Path(spec.log_dir) if spec.log_dir else self.prefix / "logs"
        for path in (self.log_dir, self.prefix / "tmp", self.prefix / "cache"):
            path.mkdir(parents=True, exist_ok=True)
        self.conf = self.prefix / "nginx.conf"
        if spec.sites_file is not None:
            self.sites_conf = Path(spec.sites_file)
        else:
            self.sites_conf = self.prefix / "lgwan-chat-sites.conf"
            render("nginx/lgwan-chat-sites.conf.template", self.sites_conf, {
                "internet_listen": spec.internet_listen, "lgwan_listen": spec.lgwan_listen,
                "upstreams": upstreams_conf(one_process(spec.synapse_internet, spec.synapse_lgwan)),
                "internet_tls": "", "lgwan_tls": "",
                "upload_page": spec.upload_page, "log_dir": str(self.log_dir),
                "cache_dir": str(self.prefix / "cache")})
        # As root, nginx workers would run as "nobody" and could not use our directory.
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        render("nginx/standalone.conf.template", self.conf,
               {"prefix": str(self.prefix), "log_dir": str(self.log_dir), "sites_conf": str(self.sites_conf),
                "user_directive": user})

    @property
    def error_log(self) -> Path:
        return self.log_dir / "nginx-error.log"

    @property
    def access_log(self) -> Path:
        return self.log_dir / "nginx-access.log"

    def url(self, zone: str) -> str:
        scheme = "https" if self.spec.tls else "http"
        return f"{scheme}://" + {"internet": self.spec.internet_listen, "lgwan": self.spec.lgwan_listen}[zone]

    def start(self, timeout: float = 15.0) -> None:
        binary = nginx_binary()
        if binary is None:
            raise NginxError("nginx is not installed")
        args = [binary, "-p", str(self.prefix), "-c", str(self.conf), "-g", "daemon off;"]
        check = subprocess.run(args + ["-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise NginxError(f"nginx configuration test failed:\n{check.stderr}")
        with open(self.log_dir / "nginx.console.log", "ab") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        for listen in (self.spec.internet_listen, self.spec.lgwan_listen):
            host, port = listen.rsplit(":", 1)
            processes.wait_listening(self.process, host, int(port), deadline, NginxError, "nginx", self.error_log)

    def exit_code(self) -> int | None:
        """nginx's exit code once it has exited; None while it runs (or before it starts)."""
        return self.process.poll() if self.process else None

    def stop(self, timeout: float = 10.0) -> None:
        processes.stop(self.process, timeout, signal.SIGQUIT)  # graceful: finish requests in flight


#: The errors nginx answers itself: status -> (Matrix errcode, message key under ``nginx.``).
#: The sites template holds each body literally (admins copy it as is); a test checks that
#: every body there equals ``error_body(*ERROR_PAGES[status])``.
ERROR_PAGES = {
    400: ("M_UNRECOGNIZED", "bad_request"),
    404: ("M_UNRECOGNIZED", "not_found"),
    405: ("M_UNRECOGNIZED", "method_not_allowed"),
    413: ("M_TOO_LARGE", "too_large"),
    414: ("M_TOO_LARGE", "uri_too_long"),
    500: ("M_UNKNOWN", "server_error"),
    502: ("M_UNKNOWN", "unavailable"),
    503: ("M_UNKNOWN", "unavailable"),
    504: ("M_UNKNOWN", "unavailable"),
}
#: The LGWAN entrance's refusal of a to-device message type not on its allow-list.
TO_DEVICE_REFUSAL = ("M_FORBIDDEN", "to_device_refused")


def error_body(errcode: str, reason: str) -> str:
    """A Matrix error as the suite's modules give it: ``error`` Japanese / English, and each apart."""
    key = f"nginx.{reason}"
    return json.dumps({"errcode": errcode, "error": both(key), "jp.lgwan.reason": reason,
                       "jp.lgwan.message": {lang: t(key, lang) for lang in LANGUAGES}},
                      ensure_ascii=False, separators=(",", ":"))
