"""One-time upload links for outside contractors: made by staff in a room, used from a browser.

Only a hash of each token is stored: the database alone cannot rebuild a working link. A link is
used up at the moment a submission starts (one conditional UPDATE), so two browsers racing with a
single-use link cannot both get in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import unicodedata
from typing import NamedTuple

from bots.runtime.errors import InputError
from bots.runtime.storage import Storage

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE IF NOT EXISTS sanitizer_upload_links (
            token_hash TEXT NOT NULL PRIMARY KEY,
            number INTEGER NOT NULL,
            room_id TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_ts BIGINT NOT NULL,
            expires_ts BIGINT NOT NULL,
            max_uses INTEGER,
            uses INTEGER NOT NULL DEFAULT 0,
            max_mb INTEGER NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0,
            source_event_id TEXT NOT NULL UNIQUE)""",
        """CREATE TABLE IF NOT EXISTS sanitizer_uploads (
            token_hash TEXT NOT NULL,
            received_ts BIGINT NOT NULL,
            uploader_name TEXT NOT NULL,
            uploader_org TEXT NOT NULL,
            remote_addr TEXT,
            files INTEGER NOT NULL,
            delivered INTEGER NOT NULL)""",
    ],
]

TOKEN_BYTES = 32
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{40,64}$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class Link(NamedTuple):
    number: int
    room_id: str
    created_by: str
    created_ts: int
    expires_ts: int
    max_uses: int | None
    uses: int
    max_mb: int
    revoked: bool

    def state(self, now_ms: int) -> str:
        """open | expired | used | revoked"""
        if self.revoked:
            return "revoked"
        if self.expires_ts <= now_ms:
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "used"
        return "open"


_COLUMNS = "number, room_id, created_by, created_ts, expires_ts, max_uses, uses, max_mb, revoked"


def _link(row: tuple) -> Link:
    return Link._make([*row[:8], bool(row[8])])


class LinkStore:
    def __init__(self, storage: Storage):
        self.storage = storage

    def create(self, room_id: str, created_by: str, hours: int, max_uses: int | None, max_mb: int,
               source_event_id: str) -> tuple[str, Link]:
        """A new link. Handling the same command again (after a restart) makes a fresh token for the
        same row: the first token was never shown, since the reply did not go out."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = int(time.time() * 1000)
        with self.storage.transaction() as cur:
            cur.execute("DELETE FROM sanitizer_upload_links WHERE source_event_id = ?", (source_event_id,))
            cur.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM sanitizer_upload_links WHERE room_id = ?",
                        (room_id,))
            number = cur.fetchone()[0]
            cur.execute(f"INSERT INTO sanitizer_upload_links (token_hash, {_COLUMNS}, source_event_id)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, 0, ?)",
                        (token_hash(token), number, room_id, created_by, now, now + hours * 3600_000,
                         max_uses, max_mb, source_event_id))
        link = self.by_number(room_id, number)
        if link is None:  # written in the committed transaction above
            raise LookupError(f"upload link {number} of {room_id} not found after writing it")
        return token, link

    def find(self, token: str) -> Link | None:
        if not _TOKEN.match(token or ""):
            return None
        row = self.storage.one(f"SELECT {_COLUMNS} FROM sanitizer_upload_links WHERE token_hash = ?",
                               (token_hash(token),))
        return _link(row) if row else None

    def use(self, token: str) -> Link | None:
        """Take one use of the link; None when it is not (or no longer) open."""
        if not _TOKEN.match(token or ""):
            return None
        now = int(time.time() * 1000)
        changed = self.storage.execute(
            "UPDATE sanitizer_upload_links SET uses = uses + 1 WHERE token_hash = ? AND revoked = 0"
            " AND expires_ts > ? AND (max_uses IS NULL OR uses < max_uses)", (token_hash(token), now))
        return self.find(token) if changed == 1 else None

    def by_number(self, room_id: str, number: int) -> Link | None:
        row = self.storage.one(f"SELECT {_COLUMNS} FROM sanitizer_upload_links WHERE room_id = ? AND number = ?",
                               (room_id, number))
        return _link(row) if row else None

    def in_room(self, room_id: str) -> list[Link]:
        return [_link(r) for r in self.storage.all(
            f"SELECT {_COLUMNS} FROM sanitizer_upload_links WHERE room_id = ? ORDER BY number", (room_id,))]

    def revoke(self, room_id: str, number: int) -> bool:
        return self.storage.execute("UPDATE sanitizer_upload_links SET revoked = 1 WHERE room_id = ? AND number = ?",
                                    (room_id, number)) == 1

    def record_upload(self, token: str, name: str, org: str, remote: str | None, files: int, delivered: int) -> None:
        self.storage.execute(
            "INSERT INTO sanitizer_uploads (token_hash, received_ts, uploader_name, uploader_org, remote_addr,"
            " files, delivered) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (token_hash(token), int(time.time() * 1000), name, org, remote, files, delivered))


class LinkTerms(NamedTuple):
    hours: int
    max_uses: int | None  # None: any number of submissions until it expires
    max_mb: int


class TermsError(InputError):
    """A word of ``!アップロードURL`` not understood: ``key`` and ``params`` say which and why."""


_HOURS = re.compile(r"^(\d+)(時間|h|hours?|日|d|days?|週間|w|weeks?)$")
_USES = re.compile(r"^(\d+)(回|uses?|times?)$")
_MB = re.compile(r"^(\d+)(mb|メガ)$")
_UNIT_HOURS = {"時間": 1, "h": 1, "hour": 1, "hours": 1, "日": 24, "d": 24, "day": 24, "days": 24,
               "週間": 168, "w": 168, "week": 168, "weeks": 168}
_ONCE = {"1回", "一回", "単回", "once", "single"}
_MANY = {"複数", "複数回", "何度でも", "multi", "multiple", "many"}


def parse_terms(words: str | None, default_hours: int, max_hours: int, default_mb: int, max_mb: int) -> LinkTerms:
    """``3日 複数 200MB`` / ``24h once 50mb``, in any order; what is left out takes the defaults
    (single use)."""
    hours, mb = default_hours, default_mb
    uses: int | None = 1
    for word in unicodedata.normalize("NFKC", words or "").casefold().replace("、", " ").split():
        if word in _ONCE:
            uses = 1
        elif word in _MANY:
            uses = None
        elif m := _HOURS.match(word):
            hours = int(m.group(1)) * _UNIT_HOURS[m.group(2)]
            if not 1 <= hours <= max_hours:
                raise TermsError("sanitizer.upload_terms_hours", value=word, max_hours=max_hours)
        elif m := _USES.match(word):
            uses = int(m.group(1))
            if uses < 1:
                raise TermsError("sanitizer.upload_terms_unknown", value=word)
        elif m := _MB.match(word):
            mb = int(m.group(1))
            if not 1 <= mb <= max_mb:
                raise TermsError("sanitizer.upload_terms_mb", value=word, max_mb=max_mb)
        else:
            raise TermsError("sanitizer.upload_terms_unknown", value=word)
    return LinkTerms(hours, uses, mb)
