"""The answers file of ``lgwan-chat deploy init`` (config/deploy-answers.example.yaml documents it).

Typed config classes (``lgwan_chat.core.configcheck.typed``, docs/architecture.md "How
configuration is declared"): each answer is declared once, with its default and schema; the
schema and the checks across answers give Japanese-first, English-too messages (check-config's
catalogue), and a file that does not pass is never half used.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs

import bots
from lgwan_chat.core.configcheck import ConfigIssue
from lgwan_chat.core.configcheck.schema import SERVER_NAME, mapping, string
from lgwan_chat.core.configcheck.typed import checked, key, schema_of, section, structure
from lgwan_chat.core.configcheck.yamlfile import load

ZONES = ("internet", "lgwan")
SIZES = ("single", "workers")

T = TypeVar("T")

_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_ADDRESS = string(pattern=r"^[A-Za-z0-9.:\[\]-]+:[0-9]{1,5}$", **{"x-hint": "hint.host_port"})
_ABSOLUTE = string(pattern=r"^/", **{"x-hint": "hint.absolute_path"})
_IP = string(pattern=r"^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9A-Fa-f:]+)$", **{"x-hint": "hint.ip_address"})
_HTTPS_URL = string(pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$", **{"x-hint": "hint.https_url"})


def _optional_path(value: Any) -> Path | None:
    return None if value is None else Path(value)


def _typed(cls: type[T]) -> Callable[[Any], T | None]:
    """The converter of a nested mapping given as a key (required, or absent = None)."""
    return lambda value: value if value is None or isinstance(value, cls) else structure(cls, value)


def _missing_file(path: tuple, value: Path | None) -> list[ConfigIssue]:
    if value is None or value.is_file():
        return []
    return [ConfigIssue(path, "deploy.file_missing", {"value": value})]


@attrs.frozen
class Entrance:
    """One zone's nginx entrance."""

    public_url: str = key(schema=_HTTPS_URL, convert=lambda url: url.rstrip("/"))
    listen: str = key(schema=_ADDRESS)  # the address:port nginx listens on
    tls_certificate: Path = key(schema=_ABSOLUTE, convert=Path)
    tls_key: Path = key(schema=_ABSOLUTE, convert=Path)

    @property
    def host(self) -> str:
        return urlsplit(self.public_url).hostname or ""

    @property
    def listen_ip(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    def config_issues(self, written: frozenset[str]) -> list[ConfigIssue]:
        return [*_missing_file(("tls_certificate",), self.tls_certificate),
                *_missing_file(("tls_key",), self.tls_key)]


@attrs.frozen
class Postgres:
    host: str = key(schema=string())
    user: str = key(schema=string())
    database: str = key(schema=string())
    port: int = key(5432, _PORT)
    #: Read at deploy time into deploy.yaml: the password is never written in the answers.
    password_file: Path | None = key(None, _ABSOLUTE, convert=_optional_path)


@attrs.frozen
class Database:
    #: None = PostgreSQL; SQLite only for ``single`` (workers share one PostgreSQL).
    sqlite: Path | None = None
    postgres: Postgres | None = None


def _database(value: Any) -> Database:
    if isinstance(value, Database):
        return value
    if "sqlite" in value:
        return Database(sqlite=Path(value["sqlite"]))
    return Database(postgres=structure(Postgres, value["postgres"]))


_DATABASE = {"oneOf": [mapping({"sqlite": _ABSOLUTE}, required=("sqlite",)),
                       mapping({"postgres": schema_of(Postgres)}, required=("postgres",))]}


@attrs.frozen
class Redis:
    host: str = key(schema=string())
    port: int = key(6379, _PORT)
    password_file: Path | None = key(None, _ABSOLUTE, convert=_optional_path)


_WORKERS = {"type": "integer", "minimum": 1, "maximum": 16}


@attrs.frozen
class InternalPorts:
    #: Synapse's own listeners (loopback, behind nginx) take ports from here upwards.
    first: int = key(8100, {"type": "integer", "minimum": 1024, "maximum": 65000})


@attrs.frozen
class Turn:
    """coturn for phones' calls: where phones reach it, where it listens, the relay's addresses."""

    host: str | None = key(None, string())  # in turn_uris; None: the internet entrance's host
    port: int = key(3478, _PORT)
    listen_ip: str | None = key(None, _IP)  # None: the internet entrance's address
    relay_ip: str | None = key(None, _IP)  # None: listen_ip
    external_ip: str | None = key(None, _IP)  # the relay's public address behind 1:1 NAT
    min_port: int = key(49160, _PORT)
    max_port: int = key(49200, _PORT)

    def config_issues(self, written: frozenset[str]) -> list[ConfigIssue]:
        if self.min_port > self.max_port:
            where = "max_port" if "max_port" in written else "min_port"
            return [ConfigIssue((where,), "deploy.turn_port_range", {"min": self.min_port, "max": self.max_port})]
        return []


@attrs.frozen
class Install:
    user: str = key("lgwan-chat", string())  # the service user every unit runs as
    #: The virtualenv's Python the units run; default: the one running ``deploy init``.
    python: Path = key(None, _ABSOLUTE, convert=lambda p: Path(sys.executable) if p is None else Path(p))
    nginx_log_dir: Path = key("/var/log/nginx", _ABSOLUTE, convert=Path)
    nginx_cache_dir: Path = key("/var/cache/nginx/lgwan-chat", _ABSOLUTE, convert=Path)


@attrs.frozen
class Answers:
    server_name: str = key(schema=SERVER_NAME)
    internet: Entrance = key(schema=schema_of(Entrance), convert=_typed(Entrance))
    lgwan: Entrance = key(schema=schema_of(Entrance), convert=_typed(Entrance))
    database: Database = key(schema=_DATABASE, convert=_database)
    size: str = key(schema={"enum": list(SIZES)})
    redis: Redis | None = key(None, schema_of(Redis), convert=_typed(Redis))
    #: Client workers per zone (``size: workers``).
    workers: dict[str, int] = key({}, mapping({zone: _WORKERS for zone in ZONES}),
                                  convert=lambda given: {zone: given.get(zone, 1) for zone in ZONES})
    #: Copied into OUTDIR on the first run; None: config/organisation.yaml.
    organisation: Path | None = key(None, _ABSOLUTE, convert=_optional_path)
    #: Which bots get a unit.
    bots: tuple[str, ...] = key(sorted(bots.AVAILABLE),
                                {"type": "array", "items": {"enum": sorted(bots.AVAILABLE)}, "uniqueItems": True},
                                convert=tuple)
    internal_ports: InternalPorts = section(InternalPorts)
    #: The TURN server (coturn) phones use for calls (its config and unit are generated too).
    turn: Turn = section(Turn)
    install: Install = section(Install)

    def entrance(self, zone: str) -> Entrance:
        return {"internet": self.internet, "lgwan": self.lgwan}[zone]

    @property
    def sqlite(self) -> Path | None:
        return self.database.sqlite

    @property
    def postgres(self) -> Postgres | None:
        return self.database.postgres

    @property
    def first_internal_port(self) -> int:
        return self.internal_ports.first

    @property
    def turn_host(self) -> str:
        return self.turn.host or self.internet.host

    @property
    def turn_port(self) -> int:
        return self.turn.port

    @property
    def turn_listen_ip(self) -> str:
        return self.turn.listen_ip or self.internet.listen_ip

    def config_issues(self, written: frozenset[str]) -> list[ConfigIssue]:
        """What depends on several answers, and the files they name."""
        issues = []
        if self.size == "workers":
            if self.postgres is None:
                issues.append(ConfigIssue(("database",), "deploy.workers_need_postgres"))
            if self.redis is None:
                issues.append(ConfigIssue(("redis",), "deploy.workers_need_redis"))
        if self.internet.listen == self.lgwan.listen:
            issues.append(ConfigIssue(("lgwan", "listen"), "deploy.same_listen", {"value": self.lgwan.listen}))
        for zone in ZONES:  # typed.config_issues runs only a section's hook: these are keys
            issues += [i.with_location(None, (zone,)) for i in self.entrance(zone).config_issues(written)]
        return issues + _missing_file(("organisation",), self.organisation)


def load_file(path: Path) -> tuple[Answers | None, list[ConfigIssue]]:
    """(answers, []) or (None, every problem with file and line)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, [ConfigIssue((), "config.file_unreadable", {"problem": e}, file=name)]
    doc, lines, issues = load(text)
    answers = None
    if not issues:
        answers, issues = checked(Answers, doc)
    if issues:
        return None, [i.with_location(name, lines=lines) if i.line is None else i.with_location(name)
                      for i in issues]
    return answers, []
