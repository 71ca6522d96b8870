"""A logging filter for Synapse's log (``log.config``): no token from a query string in a log line.

Synapse redacts ``access_token`` and ``client_secret`` in the URIs it logs; every other
parameter (``token`` of a registration-token check, ``loginToken``, ...) would be written as
sent. This filter keeps only the values of the parameters on the suite's allow-list
(``lgwan_chat.core.logged_queries``), in every record of every logger.
"""

from __future__ import annotations

import logging

from lgwan_chat.core.logged_queries import redact_queries


class QueryRedactionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        redacted = redact_queries(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
