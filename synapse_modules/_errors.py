"""Refusals that a person understands, whatever client they use.

Every refusal is a 403 with a ``synapse.api.errors.Codes`` errcode (what
clients branch on), ``error`` in Japanese then English (what stock clients
show), and the suite's own fields: ``jp.lgwan.reason`` (machine-readable) and
``jp.lgwan.message`` (each language apart, for clients that pick one).
"""

from __future__ import annotations

import math
from typing import Any

from synapse.api.errors import Codes, SynapseError

from lgwan_chat.core.i18n import LANGUAGES, both, t
from synapse_modules._metrics import REFUSALS, zone_label
from synapse_modules._synapse_internals import current_request_origin

REASON_FIELD = "jp.lgwan.reason"
MESSAGE_FIELD = "jp.lgwan.message"


def refusal_fields(reason: str, message_key: str, **params: Any) -> dict[str, Any]:
    """The fields of every refusal of the suite: also where refusals are counted (``_metrics.REFUSALS``)."""
    origin = current_request_origin()
    REFUSALS.labels(reason, zone_label(origin)).inc()
    return {"error": both(message_key, **params), REASON_FIELD: reason,
            MESSAGE_FIELD: {lang: t(message_key, lang, **params) for lang in LANGUAGES}}


def refusal(reason: str, message_key: str, errcode: str = Codes.FORBIDDEN, **params: Any) -> SynapseError:
    """To raise from a servlet or a third-party-rules callback."""
    fields = refusal_fields(reason, message_key, **params)
    return SynapseError(403, fields.pop("error"), errcode, additional_fields=fields)


def limit_exceeded(reason: str, message_key: str, retry_after_ms: int, **params: Any) -> SynapseError:
    """A 429 ``M_LIMIT_EXCEEDED`` as Synapse's own limits answer it (``retry_after_ms``, the
    ``Retry-After`` header), with the suite's refusal fields."""
    fields = refusal_fields(reason, message_key, **params)
    return SynapseError(429, fields.pop("error"), Codes.LIMIT_EXCEEDED,
                        additional_fields={**fields, "retry_after_ms": retry_after_ms},
                        headers={"Retry-After": str(max(1, math.ceil(retry_after_ms / 1000)))})


def refusal_reason(err: SynapseError) -> str | None:
    """The ``jp.lgwan.reason`` of a refusal made here; None for any other error."""
    reason = err.error_dict(None).get(REASON_FIELD)
    return reason if isinstance(reason, str) else None


def error(code: int, errcode: str, message_key: str, **params: Any) -> SynapseError:
    """Any other error a person reads (e.g. a malformed parameter: 400), in Japanese and English."""
    return SynapseError(code, both(message_key, **params), errcode,
                        additional_fields={MESSAGE_FIELD: {lang: t(message_key, lang, **params) for lang in LANGUAGES}})


def spam_verdict(reason: str, message_key: str, errcode: str = Codes.FORBIDDEN,
                 **params: Any) -> tuple[str, dict[str, Any]]:
    """To return from a spam-checker callback: Synapse merges the dict into its 403, ``error`` included."""
    return errcode, refusal_fields(reason, message_key, **params)
