"""What sanitizing one file gives: the outputs, what was removed, what was lost, or why it was refused.

Every text here is an i18n key with parameters (``Note``), so the same result reads in Japanese or
English: in the bot's reply, on the upload page, in the CLI. The audit log keeps the keys.
"""

from __future__ import annotations

from typing import Any

import attrs

from lgwan_chat.core.i18n import t

from .filetypes import file_type_words


@attrs.frozen
class Note:
    """One thing to tell: ``sanitizer.removed.exif``, ``sanitizer.limit.text_not_selectable``..."""

    key: str
    params: dict[str, Any] = attrs.field(factory=dict)

    def text(self, lang: str) -> str:
        return t(self.key, lang, **self.params)


@attrs.frozen
class Output:
    """A file to deliver in place of the original."""

    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")
    filename: str
    mimetype: str
    pages: int | None = None


class Refusal(Exception):
    """The file cannot be delivered. ``key`` says why (``sanitizer.refused.*``); ``instead`` says what
    to send instead (``sanitizer.instead.*``), both shown to the person who sent it."""

    def __init__(self, key: str, /, instead: str | None = None, **params: Any):
        super().__init__(key)
        self.note = Note(key, params)
        self.instead = Note(instead) if instead else None


@attrs.frozen
class Product:
    """What a type's handler returns to the engine (which checks it before it becomes a Result)."""

    outputs: tuple[Output, ...]
    removed: tuple[Note, ...] = ()
    limitations: tuple[Note, ...] = ()
    pages: int | None = None
    #: per output, what the jailed check (verify.problem) answered when the jailed worker that made the
    #: output checked it in the same request (one round trip less); None: the engine asks for the check
    checks: tuple[dict | None, ...] = ()


@attrs.frozen
class Result:
    verdict: str  # "sanitized" | "refused"
    detected: str  # libmagic's MIME type of the original bytes
    kind: str  # image | pdf | office | text | csv | archive | refused kinds (executable, ...)
    policy: str  # reencode | rasterize | strip-active | text-only | repack | refuse
    outputs: tuple[Output, ...] = ()
    removed: tuple[Note, ...] = ()
    limitations: tuple[Note, ...] = ()
    reason: Note | None = None
    instead: Note | None = None
    pages: int | None = None
    duration_s: float = 0.0
    original_sha256: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == "sanitized"

    def report(self, lang: str) -> str:
        """One line for the person: what it was, what was done, what was removed or lost."""
        kind = t(f"sanitizer.kind.{self.kind}", lang)
        if not self.ok:
            reason = self.reason
            if reason is not None and "mime" in reason.params:  # said in words (the audit keeps the type)
                reason = Note(reason.key, {**reason.params, "mime": file_type_words(str(reason.params["mime"]), lang)})
            text = t("sanitizer.report.refused", lang, kind=kind, reason=reason.text(lang) if reason else "-")
            if self.instead is not None:
                text += t("sanitizer.report.instead", lang, instead=self.instead.text(lang))
            return text
        sep = t("sanitizer.report.sep", lang)
        parts = [t(f"sanitizer.policy.{self.policy.replace('-', '_')}", lang)]
        if self.pages is not None:
            parts.append(t("sanitizer.report.pages", lang, pages=self.pages))
        if self.removed:
            parts.append(t("sanitizer.report.removed", lang, what=sep.join(n.text(lang) for n in self.removed)))
        if self.limitations:
            parts.append(sep.join(n.text(lang) for n in self.limitations))
        return t("sanitizer.report.sanitized", lang, kind=kind, details=t("sanitizer.report.join", lang).join(parts))
