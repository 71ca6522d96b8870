"""What every bot's YAML block holds (``bots: {memo: {...}}``), validated with clear errors.

One schema for the keys every bot shares (homeserver per zone, account, storage, language,
invites, command prefixes); each bot adds its own keys. ``check`` is what ``lgwan-chat
check-config`` calls; ``load`` is what a bot calls at start (the same rules, then typed values).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import attrs
import yaml

from lgwan_chat.core.configcheck.issues import ConfigIssue, format_path
from lgwan_chat.core.configcheck.schema import USER_ID, mapping, string, validate
from lgwan_chat.core.i18n import LANGUAGES

from . import clock

URL = string(pattern=r"^https?://[^\s/]+(/.*)?$", **{"x-hint": "hint.url"})
ROOM_ID = string(pattern=r"^!.+:.+$", **{"x-hint": "hint.room_id"})

RUNTIME_SCHEMA: dict[str, dict] = {
    # homeserver URL per network zone, e.g. {internet: https://..., lgwan: https://...}
    "homeserver": mapping({"internet": URL, "lgwan": URL}, minProperties=1),
    # the zone the bot connects through (its device is bound to that zone)
    "zone": {"enum": ["internet", "lgwan"]},
    "user_id": USER_ID,
    # the account's password, or a file holding it (preferred: keeps secrets out of the YAML)
    "password": string(),
    "password_file": string(),
    "device_name": string(),
    # where the bot keeps its session, sync position and data
    "storage": mapping({"sqlite": string(), "postgres": string()}, minProperties=1, maxProperties=1),
    # language of replies unless a user or room chose another
    "language": {"enum": list(LANGUAGES)},
    # time zone of every time the bot shows or reads (deadlines, expiries, export names)
    "timezone": string(),
    # which invitations the bot accepts
    "invites": mapping({
        "from": {"enum": ["local", "any", "none"]},
        "rooms": {"enum": ["any", "direct_only", "allowed_only"]},
        "allowed_rooms": {"type": "array", "items": ROOM_ID},
    }),
    "command_prefixes": {"type": "array", "minItems": 1, "items": string(maxLength=3)},
    # log lines as JSON objects (one per line) instead of text
    "json_logs": {"type": "boolean"},
}
REQUIRED = ("homeserver", "zone", "user_id", "storage")


@attrs.frozen
class InvitePolicy:
    accept_from: str = "local"  # local users only
    rooms: str = "any"
    allowed_rooms: tuple[str, ...] = ()


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

    @property
    def server_name(self) -> str:
        return self.user_id.split(":", 1)[1]


def schema(bot_schema: dict[str, dict]) -> dict:
    return mapping({**RUNTIME_SCHEMA, **bot_schema}, required=REQUIRED)


def check(raw: Any, bot_schema: dict[str, dict]) -> list[ConfigIssue]:
    issues = validate(raw, schema(bot_schema))
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
    return issues


class BotConfigError(Exception):
    """Bad bot configuration; the message names the file, the key and the problem in ja and en."""


def load(path: str | Path, name: str, bot_schema: dict[str, dict],
         check_section: Callable[[Any], list[ConfigIssue]] | None = None) -> RuntimeConfig:
    """The bot ``name``'s configuration from ``path``, checked first with the bot's own rules
    (``check_section``, by default the runtime's keys plus ``bot_schema``): the same rules
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
            own = check_section(raw) if check_section is not None else check(raw, bot_schema)
            issues += [i.with_location(None, ("bots", name)) for i in own]
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
    invites = raw.get("invites") or {}
    storage = raw["storage"]
    own = {k: v for k, v in raw.items() if k not in RUNTIME_SCHEMA}
    return RuntimeConfig(
        name=name, homeserver_url=raw["homeserver"][raw["zone"]].rstrip("/"), zone=raw["zone"],
        user_id=raw["user_id"], password=password, device_name=raw.get("device_name", f"lgwan-chat {name} bot"),
        sqlite_path=Path(storage["sqlite"]) if "sqlite" in storage else None,
        postgres_dsn=storage.get("postgres"),
        language=raw.get("language", "ja"),
        invites=InvitePolicy(invites.get("from", "local"), invites.get("rooms", "any"),
                             tuple(invites.get("allowed_rooms", ()))),
        command_prefixes=tuple(raw.get("command_prefixes", ("!", "！"))),
        json_logs=raw.get("json_logs", os.environ.get("LGWAN_CHAT_JSON_LOGS") == "1"),
        options=own, timezone=raw.get("timezone", clock.DEFAULT_TIMEZONE))
