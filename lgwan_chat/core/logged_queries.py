"""Which query-string parameters may appear in a log: an allow-list, the rest is redacted.

Tokens travel in query strings more often than one would hope (``access_token`` on media
links, ``token`` when Element checks a registration token, ``loginToken`` after SSO, the
upload page's links). Synapse hides only ``access_token`` and ``client_secret`` in its logs, so
both the nginx access log (``config/nginx/lgwan-chat-sites.conf.template``) and Synapse's own
log (``synapse_modules._log_redaction``) keep a parameter's value only when its name is here.
"""

from __future__ import annotations

import re

#: Harmless parameters of the Client-Server and media APIs (paging, sizes, flags, server names).
LOGGED_QUERY_PARAMETERS: tuple[str, ...] = (
    "width", "height", "method", "animated", "allow_redirect", "allow_remote", "timeout", "timeout_ms",
    "since", "full_state", "set_presence", "filter", "from", "to", "dir", "limit", "ts", "via",
    "server_name", "user_id",
)

#: What replaces the value of any other parameter.
REDACTED = "<redacted>"

#: A query string inside a log line: from "?" up to whitespace or a quote.
_QUERY = re.compile(r"\?([^\s\"']+)")
_ALLOWED = frozenset(LOGGED_QUERY_PARAMETERS)


def nginx_alternatives() -> str:
    """The list as the alternatives of an nginx regex (``width|height|...``), for the template."""
    return "|".join(LOGGED_QUERY_PARAMETERS)


def _redact_query(match: re.Match[str]) -> str:
    parts = []
    for pair in match.group(1).split("&"):
        name, sep, _value = pair.partition("=")
        parts.append(pair if name in _ALLOWED else f"{name}{sep}{REDACTED}" if sep else REDACTED)
    return "?" + "&".join(parts)


def redact_queries(text: str) -> str:
    """``text`` with the value of every query parameter not on the list replaced by ``<redacted>``."""
    return _QUERY.sub(_redact_query, text) if "?" in text else text
