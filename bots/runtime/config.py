"""What every bot's YAML block holds (``bots: {memo: {...}}``), validated with clear errors.

One schema for the keys every bot shares (homeserver per zone, account, storage, language,
invites, command prefixes); each bot adds its own keys. ``check`` is what ``lgwan-chat
check-config`` calls; ``load`` is what a bot calls at start (the same rules, then typed values).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import yaml

from lgwan_chat.core.configcheck import typed
from lgwan_chat.core.configcheck.issues import ConfigIssue, format_path
from lgwan_chat.core.configcheck.schema import USER_ID, mapping, string, validate
from lgwan_chat.core.configcheck.typed import key, section
from lgwan_chat.core.i18n import LANGUAGES

from . import clock

URL = string(pattern=r"^https?://[^\s/]+(/.*)?$", **{"x-hint": "hint.url"})
ROOM_ID = string(pattern=r"^!.+:.+$", **{"x-hint": "hint.room_id"})


@attrs.frozen
class InvitePolicy:
    """Which invitations the bot accepts."""

    accept_from: str = key("local", {"enum": ["local", "any", "none"]}, name="from")  # local users only
    rooms: str = key("any", {"enum": ["any", "direct_only", "allowed_only"]})
    allowed_rooms: tuple[str, ...] = key([], {"type": "array", "items": ROOM_ID}, convert=tuple)


@attrs.frozen
class RuntimeKeys:
    """The keys every bot's block holds, as written (``RuntimeConfig`` is what the bot runs with)."""

    #: homeserver URL per network zone, e.g. {internet: https://..., lgwan: https://...}
    homeserver: dict[str, str] = key(schema=mapping({"internet": URL, "lgwan": URL}, minProperties=1))
    #: the zone the bot connects through (its device is bound to that zone)
    zone: str = key(schema={"enum": ["internet", "lgwan"]})
    user_id: str = key(schema=USER_ID)
    #: the account's password, or a file holding it (preferred: keeps secrets out of the YAML)
    password: str | None = key(None, string())
    password_file: str | None = key(None, string())
    #: default: "lgwan-chat <bot> bot"
    device_name: str | None = key(None, string())
    #: the name staff see in their client (default: the bot's own, e.g. "無害化"); "" keeps the
    #: account's profile as it is
    display_name: str | None = key(None, {"type": "string", "maxLength": 100})
    #: where the bot keeps its session, sync position and data
    storage: dict[str, str] = key(schema=mapping({"sqlite": string(), "postgres": string()},
                                                 minProperties=1, maxProperties=1))
    #: language of replies unless a user or room chose another
    language: str = key("ja", {"enum": list(LANGUAGES)})
    #: time zone of every time the bot shows or reads (deadlines, expiries, export names)
    timezone: str = key(clock.DEFAULT_TIMEZONE, string())
    #: which invitations the bot accepts
    invites: InvitePolicy = section(InvitePolicy)
    command_prefixes: tuple[str, ...] = key(["!", "！"], {"type": "array", "minItems": 1,
                                                         "items": string(maxLength=3)}, convert=tuple)
    #: log lines as JSON objects (one per line) instead of text (default: LGWAN_CHAT_JSON_LOGS=1)
    json_logs: bool = key(schema={"type": "boolean"},
                          factory=lambda: os.environ.get("LGWAN_CHAT_JSON_LOGS") == "1")
    #: Prometheus metrics on 127.0.0.1:<port> (docs/admin-guide "Monitoring"); none when left out
    metrics_port: int | None = key(None, {"type": "integer", "minimum": 1, "maximum": 65535})


_RUNTIME = typed.schema_of(RuntimeKeys)
#: the shared keys' schemas (a bot's own keys are the others)
RUNTIME_SCHEMA: dict[str, dict] = _RUNTIME["properties"]
REQUIRED = tuple(_RUNTIME["required"])


@attrs.frozen
class RuntimeConfig:
    name: str
    homeserver_url: str
    zone: str
    user_id: str
    password: str | None
    device_name: str
    sqlite_path: Path | None
    postgres_dsn: str | None
    language: str
    invites: InvitePolicy
    command_prefixes: tuple[str, ...]
    json_logs: bool
    #: The bot's own keys, validated by its schema.
    options: dict[str, Any]
    #: time zone of what the bot shows (clock.py)
    timezone: str = clock.DEFAULT_TIMEZONE
    #: Prometheus metrics port on 127.0.0.1 (metrics.py), None: no metrics listener
    metrics_port: int | None = None
    #: the display name set at start; None: the bot's default, "": leave the profile alone
    display_name: str | None = None

    @property
    def server_name(self) -> str:
        return self.user_id.split(":", 1)[1]


#: A bot's own keys: a config class (configcheck.typed), or a JSON schema per key.
BotKeys = type | dict[str, dict]


def _bot_properties(bot_keys: BotKeys) -> dict[str, dict]:
    return typed.schema_of(bot_keys)["properties"] if isinstance(bot_keys, type) else bot_keys


def schema(bot_keys: BotKeys) -> dict:
    return mapping({**RUNTIME_SCHEMA, **_bot_properties(bot_keys)}, required=REQUIRED)


def own_keys(raw: dict) -> dict[str, Any]:
    """The bot's own keys of its block (the others are the runtime's)."""
    return {k: v for k, v in raw.items() if k not in RUNTIME_SCHEMA}


def check(raw: Any, bot_keys: BotKeys) -> list[ConfigIssue]:
    issues = validate(raw, schema(bot_keys))
    if isinstance(raw, dict):  # also next to other errors: the admin fixes everything in one go
        zone, urls = raw.get("zone"), raw.get("homeserver")
        if zone in ("internet", "lgwan") and isinstance(urls, dict) and zone not in urls:
            issues.append(ConfigIssue(("zone",), "config.bot_zone_without_url", {"zone": zone}))
        if "password" not in raw and "password_file" not in raw:
            issues.append(ConfigIssue(("password",), "config.bot_password_missing"))
        tz = raw.get("timezone")
        if isinstance(tz, str):
            try:
                clock.zone(tz)
            except Exception:  # ValueError, ZoneInfoNotFoundError, or a path-like name
                issues.append(ConfigIssue(("timezone",), "config.bot_timezone_unknown", {"value": tz}))
        if not issues and isinstance(bot_keys, type):
            # checks across the bot's keys, on the merged value (a key left out counts with its default)
            issues += typed.check(bot_keys, own_keys(raw))
    return issues


class BotConfigError(Exception):
    """Bad bot configuration; the message names the file, the key and the problem in ja and en."""


def load(path: str | Path, name: str, bot_keys: BotKeys,
         check_section: Callable[[Any], list[ConfigIssue]] | None = None) -> RuntimeConfig:
    """The bot ``name``'s configuration from ``path``, checked first with the bot's own rules
    (``check_section``, by default the runtime's keys plus ``bot_keys``): the same rules
    check-config runs on that section. Only this bot's section is checked, so a bot imports
    no other bot and starts even when a neighbour's section has a mistake."""
    from lgwan_chat.core.configcheck import load_file, locate

    doc, lines, issues = load_file(path)
    if doc is not None or not issues:
        # YAML problems (duplicate keys) of other sections are theirs to report
        issues = [i for i in issues if i.path[:2] == ("bots", name) or len(i.path) < 2]
        if not isinstance(doc, dict):
            issues.append(ConfigIssue((), "config.not_mapping"))
        elif "bots" in doc:
            issues += [i.with_location(None, ("bots",)) for i in validate(doc["bots"], {"type": "object"})]
        raw = (doc.get("bots") or {}).get(name) if isinstance(doc, dict) and isinstance(doc.get("bots"), dict) else None
        if raw is not None:
            own_issues = check_section(raw) if check_section is not None else check(raw, bot_keys)
            issues += [i.with_location(None, ("bots", name)) for i in own_issues]
        issues = locate(issues, path, lines)
    if issues:
        raise BotConfigError("\n".join(i.format() for i in issues))
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    raw = (doc.get("bots") or {}).get(name)
    if raw is None:
        raise BotConfigError(f"{path}: {format_path(('bots', name))}: "
                             f"ボット {name} の設定がありません / no configuration for bot {name}")
    password = raw.get("password")
    if raw.get("password_file"):
        try:
            password = Path(raw["password_file"]).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise BotConfigError(f"{path}: bots.{name}.password_file: "
                                 f"パスワードファイルを読めません / cannot read the password file ({e})") from e
    own = own_keys(raw)
    keys = typed.build(RuntimeKeys, {k: v for k, v in raw.items() if k not in own})
    return RuntimeConfig(
        name=name, homeserver_url=keys.homeserver[keys.zone].rstrip("/"), zone=keys.zone,
        user_id=keys.user_id, password=password, device_name=keys.device_name or f"lgwan-chat {name} bot",
        sqlite_path=Path(keys.storage["sqlite"]) if "sqlite" in keys.storage else None,
        postgres_dsn=keys.storage.get("postgres"), language=keys.language, invites=keys.invites,
        command_prefixes=keys.command_prefixes, json_logs=keys.json_logs, options=own, timezone=keys.timezone,
        metrics_port=keys.metrics_port, display_name=keys.display_name)
