"""Configuration of the zone policy module (``config:`` of its ``modules:`` entry).

Every key is documented in ``config/modules.yaml`` and the admin guide.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import attrs

from lgwan_chat.core.configcheck import typed
from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.configcheck.schema import CIDR, LISTENER_TAG, SERVER_NAME, USER_ID, mapping, string
from lgwan_chat.core.configcheck.typed import key, section
from lgwan_chat.core.i18n import Msg

ZONES = ("lgwan", "internet")
_ZONE = {"enum": list(ZONES)}
#: who approves a new device (device_approval): nobody, the user from an LGWAN device, an admin
DEVICE_APPROVAL_POLICIES = ("off", "self", "admin")
#: production defaults: phones (internet side) wait for approval, LGWAN PCs do not
DEVICE_APPROVAL_DEFAULTS = {"internet": "self", "lgwan": "off"}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(ip_zones: Any) -> tuple[tuple[str, tuple[Network, ...]], ...]:
    if isinstance(ip_zones, tuple):  # already typed (attrs.evolve)
        return ip_zones
    return tuple((zone, tuple(ipaddress.ip_network(c, strict=False) for c in cidrs))
                 for zone, cidrs in ip_zones.items())


@attrs.frozen
class FailedLoginLimit:
    """Wrong logins (password or user name) from one client address, whatever the account: a burst,
    then one more every ``1 / per_second`` seconds. Successful logins are never counted."""

    #: failed logins one address gets back per second (0.05: one every 20 seconds, 180 an hour)
    per_second: float = key(0.05, {"type": "number", "exclusiveMinimum": 0, "maximum": 1000})
    #: failed logins one address may make in a row before it waits
    burst_count: int = key(100, {"type": "integer", "minimum": 1, "maximum": 1000000})


@attrs.frozen
class ZonesConfig:
    #: How a request's zone is decided: by the listener it arrived on, by the
    #: client IP (single listener behind a proxy), or listener first then IP.
    zone_source: str = key("listener", {"enum": ["listener", "ip", "listener_then_ip"]})
    #: listener tag -> zone
    listener_zones: dict[str, str] = key({"lgwan": "lgwan", "internet": "internet"},
                                         {"type": "object", "propertyNames": LISTENER_TAG,
                                          "additionalProperties": _ZONE}, convert=dict)
    #: zone -> CIDR ranges of its clients
    ip_zones: tuple[tuple[str, tuple[Network, ...]], ...] = key(
        {}, mapping({zone: {"type": "array", "items": CIDR} for zone in ZONES}), convert=_networks)
    #: what a request that matches no rule is: refused, or one of the zones
    unmatched: str = key("reject", {"enum": ["reject", *ZONES]})
    #: a device keeps the zone of its first request; other zones are refused
    bind_devices: bool = key(True, {"type": "boolean"})
    #: the only zone guest accounts may use (null: any)
    guest_zone: str | None = key("internet", {"enum": [*ZONES, None]})
    #: voice/video calls cannot be started or joined from LGWAN devices
    refuse_calls_from_lgwan: bool = key(True, {"type": "boolean"})
    #: honour the jp.lgwan.room.zone {"lgwan_only": true} room marker: no calls at all there
    lgwan_only_rooms: bool = key(True, {"type": "boolean"})
    #: allow end-to-end encryption (m.room.encryption, m.room.encrypted); off: content must
    #: stay inspectable. Also decides io.element.e2ee in /.well-known/matrix/client.
    allow_encryption: bool = key(False, {"type": "boolean"})
    #: widget URL prefixes LGWAN devices (and anyone in an LGWAN-only room) may add;
    #: null: only the suite's own pages on this homeserver (public_baseurl/_synapse/client/lgwan/)
    allowed_widget_urls: tuple[str, ...] | None = key(
        None, {"type": ["array", "null"], "items": string(pattern=r"^https?://[^\s]+$", **{"x-hint": "hint.url"})},
        convert=lambda urls: None if urls is None else tuple(urls))
    #: media uploaded from the internet side is untrusted: LGWAN devices cannot fetch it
    untrusted_internet_media: bool = key(True, {"type": "boolean"})
    #: users whose uploads are trusted from any zone (the sanitization bot)
    trusted_uploaders: frozenset[str] = key([], {"type": "array", "items": USER_ID}, convert=frozenset)
    #: other homeservers whose media LGWAN devices may fetch (LGWAN-side municipalities)
    trusted_remote_servers: frozenset[str] = key([], {"type": "array", "items": SERVER_NAME}, convert=frozenset)
    #: zone -> the map style URL Element uses for location sharing (MapLibre style.json), served
    #: in that entrance's /.well-known/matrix/client (m.tile_server); null: no map in that zone
    map_style_urls: dict[str, str] = key(
        {}, mapping({zone: {"type": ["string", "null"], "pattern": r"^https?://[^\s]+$", "x-hint": "hint.url"}
                     for zone in ZONES}),
        convert=lambda urls: {zone: url for zone, url in urls.items() if url})
    #: LiveKit SFUs for group calls (Element Call / MatrixRTC), served as
    #: org.matrix.msc4143.rtc_foci at the internet entrance only (calls stay refused on LGWAN)
    rtc_foci: tuple[dict[str, str], ...] = key(
        [], {"type": "array", "items": mapping(
            {"type": {"enum": ["livekit"]},
             "livekit_service_url": string(pattern=r"^https?://[^\s]+$", **{"x-hint": "hint.url"})},
            required=["type", "livekit_service_url"])},
        convert=lambda foci: tuple(dict(focus) for focus in foci))
    #: zone -> who approves a new device before it may do anything (端末認証): off (nobody, no
    #: approval), self (the same user, from an already approved LGWAN device), admin (a server
    #: admin: lgwan-chat device approve). A zone left out keeps its default.
    #: (YAML reads an unquoted off as false: taken as "off".)
    device_approval: dict[str, str] = key(
        DEVICE_APPROVAL_DEFAULTS,
        mapping({zone: {"enum": [*DEVICE_APPROVAL_POLICIES, False]} for zone in ZONES}),
        convert=lambda policies: {**DEVICE_APPROVAL_DEFAULTS,
                                  **{zone: "off" if policy is False else policy for zone, policy in policies.items()}})
    #: users whose devices need no approval in any zone (bots that connect from the internet
    #: side, e.g. the sanitization bot)
    device_approval_exempt_users: frozenset[str] = key([], {"type": "array", "items": USER_ID}, convert=frozenset)

    #: bots that carry a user's approval command (e.g. the memo bot's !端末承認 in a DM): they pass
    #: the user's command message, which must come from that user's approved LGWAN device
    device_approval_bots: frozenset[str] = key([], {"type": "array", "items": USER_ID}, convert=frozenset)
    #: failed logins per client address (password spraying: one guess at each of many accounts from
    #: one address); Synapse's rc_login limits per account, and every attempt per address
    failed_logins_per_address: FailedLoginLimit = section(FailedLoginLimit)

    def approval_policy(self, zone: str) -> str:
        """off, self or admin: who approves a new device of ``zone``."""
        return self.device_approval.get(zone, "off")


check, parse = typed.module_functions(ZonesConfig)


def check_with_homeserver(raw: dict, homeserver: dict) -> list[ConfigIssue]:
    """In a full homeserver.yaml: every zone's listener tag must exist, and nothing in it
    contradicts ``allow_encryption``."""
    config, _ = typed.checked(ZonesConfig, raw)
    if config is None:  # check() reports what is wrong with the block itself
        return []
    return [*_listener_issues(config, homeserver), *_encryption_issues(config, homeserver),
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
    config, _ = typed.checked(ZonesConfig, raw)
    if config is None or not config.rtc_foci:
        return []
    return [ConfigIssue(("rtc_foci",), "config.zone_note_group_calls",
                        {"refused": Msg("config.zone_note_refused" if config.refuse_calls_from_lgwan
                                        else "config.zone_note_not_refused")})]


def _listener_issues(config: ZonesConfig, homeserver: dict) -> list[ConfigIssue]:
    if config.zone_source == "ip" or not isinstance(homeserver.get("listeners"), list):
        return []
    tags = {lst.get("tag") for lst in homeserver["listeners"] if isinstance(lst, dict)}
    return [ConfigIssue(("listener_zones", tag), "config.zone_listener_missing", {"zone": zone, "tag": tag})
            for tag, zone in config.listener_zones.items() if tag not in tags]


def _encryption_issues(config: ZonesConfig, homeserver: dict) -> list[ConfigIssue]:
    issues = []
    # One source for io.element.e2ee: the module sets it from allow_encryption (zones/__init__.py).
    well_known = homeserver.get("extra_well_known_client_content")
    if isinstance(well_known, dict) and "io.element.e2ee" in well_known:
        issues.append(ConfigIssue(("allow_encryption",), "config.zone_well_known_e2ee", {}))
    # Synapse adds m.room.encryption to new rooms itself with this, past every module callback.
    if not config.allow_encryption and homeserver.get("encryption_enabled_by_default_for_room_type",
                                                      "off") != "off":
        issues.append(ConfigIssue(("allow_encryption",), "config.zone_encryption_by_default", {}))
    return issues
