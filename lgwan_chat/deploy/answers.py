"""The answers file of ``lgwan-chat deploy init`` (config/deploy-answers.example.yaml documents it).

Read into typed classes after a schema check whose messages are Japanese first, English too
(check-config's catalogue); a file that does not pass is never half used.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

import bots
from lgwan_chat.core.configcheck import ConfigIssue
from lgwan_chat.core.configcheck.schema import SERVER_NAME, mapping, string, validate
from lgwan_chat.core.configcheck.yamlfile import load

ZONES = ("internet", "lgwan")
SIZES = ("single", "workers")

_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_ADDRESS = string(pattern=r"^[A-Za-z0-9.:\[\]-]+:[0-9]{1,5}$", **{"x-hint": "hint.host_port"})
_ABSOLUTE = string(pattern=r"^/", **{"x-hint": "hint.absolute_path"})
_HTTPS_URL = string(pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$", **{"x-hint": "hint.https_url"})

_ENTRANCE = mapping({
    "public_url": _HTTPS_URL,
    "listen": _ADDRESS,
    "tls_certificate": _ABSOLUTE,
    "tls_key": _ABSOLUTE,
}, required=("public_url", "listen", "tls_certificate", "tls_key"))

SCHEMA = mapping({
    "server_name": SERVER_NAME,
    "internet": _ENTRANCE,
    "lgwan": _ENTRANCE,
    "database": {"oneOf": [
        mapping({"sqlite": _ABSOLUTE}, required=("sqlite",)),
        mapping({"postgres": mapping({
            "host": string(), "port": _PORT, "user": string(), "database": string(),
            "password_file": _ABSOLUTE,
        }, required=("host", "user", "database"))}, required=("postgres",)),
    ]},
    "redis": mapping({"host": string(), "port": _PORT, "password_file": _ABSOLUTE}, required=("host",)),
    "size": {"enum": list(SIZES)},
    "workers": mapping({zone: {"type": "integer", "minimum": 1, "maximum": 16} for zone in ZONES}),
    "organisation": _ABSOLUTE,
    "bots": {"type": "array", "items": {"enum": sorted(bots.AVAILABLE)}, "uniqueItems": True},
    "internal_ports": mapping({"first": {"type": "integer", "minimum": 1024, "maximum": 65000}}),
    "turn": mapping({"host": string(), "port": _PORT}),
    "install": mapping({
        "user": string(), "python": _ABSOLUTE,
        "nginx_log_dir": _ABSOLUTE, "nginx_cache_dir": _ABSOLUTE,
    }),
}, required=("server_name", "internet", "lgwan", "database", "size"))


@attrs.frozen
class Entrance:
    public_url: str
    listen: str
    tls_certificate: Path
    tls_key: Path

    @property
    def host(self) -> str:
        return urlsplit(self.public_url).hostname or ""


@attrs.frozen
class Postgres:
    host: str
    user: str
    database: str
    port: int = 5432
    password_file: Path | None = None


@attrs.frozen
class Redis:
    host: str
    port: int = 6379
    password_file: Path | None = None


@attrs.frozen
class Install:
    user: str = "lgwan-chat"
    #: The virtualenv's Python the units run; default: the one running ``deploy init``.
    python: Path = attrs.field(factory=lambda: Path(sys.executable))
    nginx_log_dir: Path = Path("/var/log/nginx")
    nginx_cache_dir: Path = Path("/var/cache/nginx/lgwan-chat")


@attrs.frozen
class Answers:
    server_name: str
    internet: Entrance
    lgwan: Entrance
    size: str
    #: None = PostgreSQL; SQLite only for ``single`` (workers share one PostgreSQL).
    sqlite: Path | None
    postgres: Postgres | None
    redis: Redis | None
    workers: dict[str, int]
    organisation: Path | None
    bots: tuple[str, ...]
    #: Synapse's own listeners (loopback, behind nginx) take ports from here upwards.
    first_internal_port: int
    install: Install
    #: The TURN server (coturn) phones use for calls: host and port in homeserver.yaml's turn_uris.
    turn_host: str = ""
    turn_port: int = 3478

    def entrance(self, zone: str) -> Entrance:
        return {"internet": self.internet, "lgwan": self.lgwan}[zone]


def _entrance(doc: dict) -> Entrance:
    return Entrance(public_url=doc["public_url"].rstrip("/"), listen=doc["listen"],
                    tls_certificate=Path(doc["tls_certificate"]), tls_key=Path(doc["tls_key"]))


def parse(doc: dict) -> Answers:
    """Answers from a document that ``check`` found no problem in."""
    database = doc["database"]
    postgres = database.get("postgres")
    redis = doc.get("redis")
    install = doc.get("install") or {}
    install_args: dict[str, Any] = {key: (Path(value) if key != "user" else value) for key, value in install.items()}
    return Answers(
        server_name=doc["server_name"], internet=_entrance(doc["internet"]), lgwan=_entrance(doc["lgwan"]),
        size=doc["size"],
        sqlite=Path(database["sqlite"]) if "sqlite" in database else None,
        postgres=Postgres(host=postgres["host"], user=postgres["user"], database=postgres["database"],
                          port=postgres.get("port", 5432),
                          password_file=Path(postgres["password_file"]) if "password_file" in postgres else None)
        if postgres else None,
        redis=Redis(host=redis["host"], port=redis.get("port", 6379),
                    password_file=Path(redis["password_file"]) if "password_file" in redis else None)
        if redis else None,
        workers={zone: (doc.get("workers") or {}).get(zone, 1) for zone in ZONES},
        organisation=Path(doc["organisation"]) if doc.get("organisation") else None,
        bots=tuple(doc.get("bots", sorted(bots.AVAILABLE))),
        first_internal_port=(doc.get("internal_ports") or {}).get("first", 8100),
        turn_host=(doc.get("turn") or {}).get("host") or _entrance(doc["internet"]).host,
        turn_port=(doc.get("turn") or {}).get("port", 3478),
        install=Install(**install_args),
    )


def check(doc: Any) -> list[ConfigIssue]:
    """Every problem of an answers document: the schema, then what depends on several answers."""
    issues = validate(doc, SCHEMA)
    if issues:
        return issues
    if doc["size"] == "workers":
        if "postgres" not in doc["database"]:
            issues.append(ConfigIssue(("database",), "deploy.workers_need_postgres"))
        if "redis" not in doc:
            issues.append(ConfigIssue(("redis",), "deploy.workers_need_redis"))
    listens = {zone: doc[zone]["listen"] for zone in ZONES}
    if listens["internet"] == listens["lgwan"]:
        issues.append(ConfigIssue(("lgwan", "listen"), "deploy.same_listen", {"value": listens["lgwan"]}))
    for zone in ZONES:
        for key in ("tls_certificate", "tls_key"):
            if not Path(doc[zone][key]).is_file():
                issues.append(ConfigIssue((zone, key), "deploy.file_missing", {"value": doc[zone][key]}))
    if doc.get("organisation") and not Path(doc["organisation"]).is_file():
        issues.append(ConfigIssue(("organisation",), "deploy.file_missing", {"value": doc["organisation"]}))
    return issues


def load_file(path: Path) -> tuple[Answers | None, list[ConfigIssue]]:
    """(answers, []) or (None, every problem with file and line)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, [ConfigIssue((), "config.file_unreadable", {"problem": e}, file=name)]
    doc, lines, issues = load(text)
    if not issues:
        issues = check(doc)
    if issues:
        return None, [i.with_location(name, lines=lines) if i.line is None else i.with_location(name)
                      for i in issues]
    return parse(doc), []
