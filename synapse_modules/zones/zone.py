"""Deciding the network zone (LGWAN or internet) of a client request."""

from __future__ import annotations

import ipaddress

from synapse_modules._synapse_internals import RequestOrigin

from .config import ZonesConfig


def zone_of(origin: RequestOrigin, config: ZonesConfig) -> str | None:
    """The zone of a request, or None when no rule matches and ``unmatched: reject``."""
    zone = None
    if config.zone_source in ("listener", "listener_then_ip"):
        zone = config.listener_zones.get(origin.site_tag)
    if zone is None and config.zone_source in ("ip", "listener_then_ip"):
        zone = _zone_of_ip(origin.ip_address, config)
    if zone is None and config.unmatched != "reject":
        zone = config.unmatched
    return zone


def _zone_of_ip(ip: str, config: ZonesConfig) -> str | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    for zone, networks in config.ip_zones:
        if any(address in net for net in networks):
            return zone
    return None
