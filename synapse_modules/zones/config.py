"""Configuration of the zone policy module (``config:`` of its ``modules:`` entry).

Every key is documented in ``config/modules.yaml`` and the admin guide.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import attrs

from lgwan_chat.core.configcheck.issues import ConfigIssue, raise_config_error
from lgwan_chat.core.configcheck.schema import CIDR, LISTENER_TAG, SERVER_NAME, USER_ID, mapping, string, validate
from lgwan_chat.core.i18n import Msg

ZONES = ("lgwan", "internet")
_ZONE = {"enum": list(ZONES)}

SCHEMA = mapping(
    {
        # How a request's zone is decided: by the listener it arrived on, by the
        # client IP (single listener behind a proxy), or listener first then IP.
        "zone_source": {"enum": ["listener", "ip", "listener_then_ip"]},
        # listener tag -> zone
        "listener_zones": {"type": "object", "propertyNames": LISTENER_TAG,
                           "additionalProperties": _ZONE},
        # zone -> CIDR ranges of its clients
        "ip_zones": mapping({zone: {"type": "array", "items": CIDR} for zone in ZONES}),
        # what a request that matches no rule is: refused, or one of the zones
        "unmatched": {"enum": ["reject", *ZONES]},
        # a device keeps the zone of its first request; other zones are refused
        "bind_devices": {"type": "boolean"},
        # the only zone guest accounts may use (null: any)
        "guest_zone": {"enum": [*ZONES, None]},
        # voice/video calls cannot be started or joined from LGWAN devices
        "refuse_calls_from_lgwan": {"type": "boolean"},
        # honour the jp.lgwan.room.zone {"lgwan_only": true} room marker: no calls at all there
        "lgwan_only_rooms": {"type": "boolean"},
        # allow end-to-end encryption (m.room.encryption, m.room.encrypted); off: content must
        # stay inspectable. Also decides io.element.e2ee in /.well-known/matrix/client.
        "allow_encryption": {"type": "boolean"},
        # widget URL prefixes LGWAN devices (and anyone in an LGWAN-only room) may add;
        # null: only the suite's own pages on this homeserver (public_baseurl/_synapse/client/lgwan/)
        "allowed_widget_urls": {"type": ["array", "null"],
                                "items": string(pattern=r"^https?://[^\s]+$", **{"x-hint": "hint.url"})},
        # media uploaded from the internet side is untrusted: LGWAN devices cannot fetch it
        "untrusted_internet_media": {"type": "boolean"},
        # users whose uploads are trusted from any zone (the sanitization bot)
        "trusted_uploaders": {"type": "array", "items": USER_ID},
        # other homeservers whose media LGWAN devices may fetch (LGWAN-side municipalities)
        "trusted_remote_servers": {"type": "array", "items": SERVER_NAME},
        # zone -> the map style URL Element uses for location sharing (MapLibre style.json), served
        # in that entrance's /.well-known/matrix/client (m.tile_server); null: no map in that zone
        "map_style_urls": mapping({zone: {"type": ["string", "null"], "pattern": r"^https?://[^\s]+$",
                                          "x-hint": "hint.url"} for zone in ZONES}),
        # LiveKit SFUs for group calls (Element Call / MatrixRTC), served as
        # org.matrix.msc4143.rtc_foci at the internet entrance only (calls stay refused on LGWAN)
        "rtc_foci": {"type": "array", "items": mapping(
            {"type": {"enum": ["livekit"]},
             "livekit_service_url": string(pattern=r"^https?://[^\s]+$", **{"x-hint": "hint.url"})},
            required=["type", "livekit_service_url"])},
    },
)

DEFAULTS: dict[str, Any] = {
    "zone_source": "listener",
    "listener_zones": {"lgwan": "lgwan", "internet": "internet"},
    "ip_zones": {},
    "unmatched": "reject",
    "bind_devices": True,
    "guest_zone": "internet",
    "refuse_calls_from_lgwan": True,
    "lgwan_only_rooms": True,
    "allow_encryption": False,
    "allowed_widget_urls": None,
    "untrusted_internet_media": True,
    "trusted_uploaders": [],
    "trusted_remote_servers": [],
    "map_style_urls": {},
    "rtc_foci": [],
}


@attrs.frozen
class ZonesConfig:
    zone_source: str
    listener_zones: dict[str, str]
    ip_zones: tuple[tuple[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...]
    unmatched: str
    bind_devices: bool
    guest_zone: str | None
    refuse_calls_from_lgwan: bool
    lgwan_only_rooms: bool
    allow_encryption: bool
    allowed_widget_urls: tuple[str, ...] | None
    untrusted_internet_media: bool
    trusted_uploaders: frozenset[str]
    trusted_remote_servers: frozenset[str]
    #: zone -> map style URL (zones without one get no tile server)
    map_style_urls: dict[str, str]
    rtc_foci: tuple[dict[str, str], ...]


def check(raw: Any) -> list[ConfigIssue]:
    return validate(raw, SCHEMA)


def check_with_homeserver(raw: dict, homeserver: dict) -> list[ConfigIssue]:
    """In a full homeserver.yaml: every zone's listener tag must exist, and nothing in it
    contradicts ``allow_encryption``."""
    merged = {**DEFAULTS, **raw}
    return [*_listener_issues(merged, homeserver), *_encryption_issues(merged, homeserver),
            *_per_entrance_well_known_issues(homeserver)]


#: Well-known keys the module serves per entrance (zones/well_known.py): homeserver.yaml's
#: extra_well_known_client_content would give them to both entrances, LGWAN included.
PER_ENTRANCE_WELL_KNOWN = {"m.tile_server": "map_style_urls", "org.matrix.msc3488.tile_server": "map_style_urls",
                           "org.matrix.msc4143.rtc_foci": "rtc_foci"}


def _per_entrance_well_known_issues(homeserver: dict) -> list[ConfigIssue]:
    well_known = homeserver.get("extra_well_known_client_content")
    if not isinstance(well_known, dict):
        return []
    return [ConfigIssue((PER_ENTRANCE_WELL_KNOWN[key],), "config.zone_well_known_per_entrance",
                        {"key": key, "setting": PER_ENTRANCE_WELL_KNOWN[key]})
            for key in PER_ENTRANCE_WELL_KNOWN if key in well_known]


def notes(raw: Any) -> list[ConfigIssue]:
    """What check-config tells the admin about a valid configuration (not errors)."""
    merged = {**DEFAULTS, **(raw or {})}
    found = []
    if merged["rtc_foci"]:
        found.append(ConfigIssue(("rtc_foci",), "config.zone_note_group_calls",
                                 {"refused": Msg("config.zone_note_refused" if merged["refuse_calls_from_lgwan"]
                                                 else "config.zone_note_not_refused")}))
    return found


def _listener_issues(merged: dict, homeserver: dict) -> list[ConfigIssue]:
    if merged["zone_source"] == "ip" or not isinstance(homeserver.get("listeners"), list):
        return []
    tags = {lst.get("tag") for lst in homeserver["listeners"] if isinstance(lst, dict)}
    return [ConfigIssue(("listener_zones", tag), "config.zone_listener_missing", {"zone": zone, "tag": tag})
            for tag, zone in merged["listener_zones"].items() if tag not in tags]


def _encryption_issues(merged: dict, homeserver: dict) -> list[ConfigIssue]:
    issues = []
    # One source for io.element.e2ee: the module sets it from allow_encryption (zones/__init__.py).
    well_known = homeserver.get("extra_well_known_client_content")
    if isinstance(well_known, dict) and "io.element.e2ee" in well_known:
        issues.append(ConfigIssue(("allow_encryption",), "config.zone_well_known_e2ee", {}))
    # Synapse adds m.room.encryption to new rooms itself with this, past every module callback.
    if not merged["allow_encryption"] and homeserver.get("encryption_enabled_by_default_for_room_type",
                                                         "off") != "off":
        issues.append(ConfigIssue(("allow_encryption",), "config.zone_encryption_by_default", {}))
    return issues


def parse(raw: Any) -> ZonesConfig:
    raw = raw or {}
    raise_config_error(check(raw))
    merged = {**DEFAULTS, **raw}
    return ZonesConfig(
        zone_source=merged["zone_source"],
        listener_zones=dict(merged["listener_zones"]),
        ip_zones=tuple((zone, tuple(ipaddress.ip_network(c, strict=False) for c in cidrs))
                       for zone, cidrs in merged["ip_zones"].items()),
        unmatched=merged["unmatched"],
        bind_devices=merged["bind_devices"],
        guest_zone=merged["guest_zone"],
        refuse_calls_from_lgwan=merged["refuse_calls_from_lgwan"],
        lgwan_only_rooms=merged["lgwan_only_rooms"],
        allow_encryption=merged["allow_encryption"],
        allowed_widget_urls=(None if merged["allowed_widget_urls"] is None
                             else tuple(merged["allowed_widget_urls"])),
        untrusted_internet_media=merged["untrusted_internet_media"],
        trusted_uploaders=frozenset(merged["trusted_uploaders"]),
        trusted_remote_servers=frozenset(merged["trusted_remote_servers"]),
        map_style_urls={zone: url for zone, url in merged["map_style_urls"].items() if url},
        rtc_foci=tuple(dict(focus) for focus in merged["rtc_foci"]),
    )
