"""The sanitization engine (無害化エンジン), usable without the bot:

    python -m bots.sanitizer.engine FILE... --out DIR      (or: lgwan-chat sanitize ...)

See engine.py for the flow, policy.py for what can be configured, sandbox.py for how renderers
are jailed.
"""

from .audit import AuditLog
from .engine import Job, Sanitizer
from .policy import Policies
from .result import Note, Output, Product, Refusal, Result

__all__ = ["AuditLog", "Job", "Note", "Output", "Policies", "Product", "Refusal", "Result", "Sanitizer"]
