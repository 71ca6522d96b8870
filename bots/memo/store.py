"""Memos, their tags, and room notes with every version, in the bot's own database.

Memos are numbered per person (#1, #2, ...) because people refer to them by number in
commands. A memo is keyed by the event it came from, so handling an event twice keeps one memo.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from bots.runtime.storage import Storage

from .search import like_pattern, normalize

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE IF NOT EXISTS memo_items (
            owner TEXT NOT NULL,
            number INTEGER NOT NULL,
            event_id TEXT NOT NULL UNIQUE,
            room_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            body TEXT NOT NULL,
            search_text TEXT NOT NULL,
            mxc TEXT,
            filename TEXT,
            mimetype TEXT,
            size BIGINT,
            info TEXT,
            created_ts BIGINT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (owner, number))""",
        """CREATE TABLE IF NOT EXISTS memo_tags (
            owner TEXT NOT NULL, number INTEGER NOT NULL, tag TEXT NOT NULL,
            PRIMARY KEY (owner, number, tag))""",
        """CREATE TABLE IF NOT EXISTS room_notes (
            room_id TEXT NOT NULL,
            number INTEGER NOT NULL,
            title TEXT NOT NULL,
            event_id TEXT,
            created_by TEXT NOT NULL,
            created_ts BIGINT NOT NULL,
            source_event_id TEXT NOT NULL UNIQUE,
            PRIMARY KEY (room_id, number))""",
        """CREATE TABLE IF NOT EXISTS room_note_versions (
            room_id TEXT NOT NULL,
            number INTEGER NOT NULL,
            version INTEGER NOT NULL,
            body TEXT NOT NULL,
            editor TEXT NOT NULL,
            edited_ts BIGINT NOT NULL,
            source_event_id TEXT NOT NULL UNIQUE,
            PRIMARY KEY (room_id, number, version))""",
    ],
]


class Memo(NamedTuple):
    owner: str
    number: int
    event_id: str
    room_id: str
    kind: str  # text | link | image | file | video | audio
    body: str
    mxc: str | None
    filename: str | None
    mimetype: str | None
    size: int | None
    info: dict
    created_ts: int
    tags: tuple[str, ...] = ()


_COLUMNS = "owner, number, event_id, room_id, kind, body, mxc, filename, mimetype, size, info, created_ts"


class Note(NamedTuple):
    room_id: str
    number: int
    title: str
    event_id: str | None
    created_by: str
    created_ts: int
    version: int
    body: str
    editor: str
    edited_ts: int


class MemoStore:
    def __init__(self, storage: Storage):
        self._db = storage

    # --- memos ---

    def add(self, owner: str, event_id: str, room_id: str, kind: str, body: str, created_ts: int,
            mxc: str | None = None, filename: str | None = None, mimetype: str | None = None,
            size: int | None = None, info: dict | None = None) -> Memo:
        """The memo of this event, made now or found (an event is kept once)."""
        search = normalize(" ".join(x for x in (body, filename or "") if x))
        with self._db.transaction() as cur:
            cur.execute(
                f"INSERT INTO memo_items ({_COLUMNS}, search_text)"
                " SELECT ?, COALESCE(MAX(number), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM memo_items"
                " WHERE owner = ? ON CONFLICT (event_id) DO NOTHING",
                (owner, event_id, room_id, kind, body, mxc, filename, mimetype, size, json.dumps(info or {}),
                 created_ts, search, owner))
        found = self._one("event_id = ?", (event_id,))
        assert found is not None
        return found

    def get(self, owner: str, number: int) -> Memo | None:
        return self._one("owner = ? AND number = ? AND deleted = 0", (owner, number))

    def page(self, owner: str, page: int, size: int, tag: str | None = None) -> tuple[list[Memo], int]:
        """Newest first; also the number of memos in all."""
        where, args = "m.owner = ? AND m.deleted = 0", [owner]
        if tag:
            where += (" AND EXISTS (SELECT 1 FROM memo_tags t"
                      " WHERE t.owner = m.owner AND t.number = m.number AND t.tag = ?)")
            args.append(normalize(tag))
        total = (self._db.one(f"SELECT COUNT(*) FROM memo_items m WHERE {where}", args) or (0,))[0]
        rows = self._db.all(f"SELECT {_prefixed('m')} FROM memo_items m WHERE {where}"
                            " ORDER BY m.number DESC LIMIT ? OFFSET ?", [*args, size, (page - 1) * size])
        return self._with_tags(rows), total

    def search(self, owner: str, words: list[str], limit: int) -> list[Memo]:
        """Memos holding every word (substring, width/kana/case insensitive), newest first."""
        where = " AND ".join(["m.search_text LIKE ? ESCAPE '\\'"] * len(words))
        rows = self._db.all(f"SELECT {_prefixed('m')} FROM memo_items m WHERE m.owner = ? AND m.deleted = 0 AND {where}"
                            " ORDER BY m.number DESC LIMIT ?", [owner, *(like_pattern(w) for w in words), limit])
        return self._with_tags(rows)

    def all(self, owner: str) -> list[Memo]:
        rows = self._db.all(f"SELECT {_prefixed('m')} FROM memo_items m WHERE m.owner = ? AND m.deleted = 0"
                            " ORDER BY m.number", (owner,))
        return self._with_tags(rows)

    def delete(self, owner: str, number: int) -> bool:
        return self._db.execute("UPDATE memo_items SET deleted = 1 WHERE owner = ? AND number = ? AND deleted = 0",
                                (owner, number)) > 0

    def delete_by_event(self, owner: str, event_id: str) -> int | None:
        """The memo of a message its sender deleted (redacted), deleted too; its number or None."""
        row = self._db.one("SELECT number FROM memo_items WHERE owner = ? AND event_id = ? AND deleted = 0",
                           (owner, event_id))
        if row is None:
            return None
        self.delete(owner, row[0])
        return row[0]

    def tag(self, owner: str, number: int, add: list[str], remove: list[str]) -> tuple[str, ...]:
        with self._db.transaction() as cur:
            for tag in add:
                cur.execute("INSERT INTO memo_tags (owner, number, tag) VALUES (?, ?, ?)"
                            " ON CONFLICT (owner, number, tag) DO NOTHING", (owner, number, normalize(tag)))
            for tag in remove:
                cur.execute("DELETE FROM memo_tags WHERE owner = ? AND number = ? AND tag = ?",
                            (owner, number, normalize(tag)))
        return self._tags(owner, [number]).get(number, ())

    def tag_counts(self, owner: str) -> list[tuple[str, int]]:
        return [(r[0], r[1]) for r in self._db.all(
            "SELECT t.tag, COUNT(*) FROM memo_tags t JOIN memo_items m ON m.owner = t.owner AND m.number = t.number"
            " WHERE t.owner = ? AND m.deleted = 0 GROUP BY t.tag ORDER BY COUNT(*) DESC, t.tag", (owner,))]

    def _one(self, where: str, args: tuple) -> Memo | None:
        rows = self._db.all(f"SELECT {_prefixed('m')} FROM memo_items m WHERE {where}", args)
        found = self._with_tags(rows)
        return found[0] if found else None

    def _with_tags(self, rows: list[tuple]) -> list[Memo]:
        if not rows:
            return []
        owner = rows[0][0]
        tags = self._tags(owner, [r[1] for r in rows])
        return [Memo._make([*r[:10], json.loads(r[10] or "{}"), r[11], tags.get(r[1], ())]) for r in rows]

    def _tags(self, owner: str, numbers: list[int]) -> dict[int, tuple[str, ...]]:
        found: dict[int, list[str]] = {}
        for start in range(0, len(numbers), 500):
            chunk = numbers[start:start + 500]
            for number, tag in self._db.all(
                    f"SELECT number, tag FROM memo_tags WHERE owner = ? AND number IN ({','.join('?' * len(chunk))})"
                    " ORDER BY tag", [owner, *chunk]):
                found.setdefault(number, []).append(tag)
        return {n: tuple(t) for n, t in found.items()}

    # --- room notes ---

    def add_note(self, room_id: str, title: str, body: str, author: str, ts: int, source_event_id: str) -> Note:
        with self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO room_notes (room_id, number, title, created_by, created_ts, source_event_id)"
                " SELECT ?, COALESCE(MAX(number), 0) + 1, ?, ?, ?, ? FROM room_notes WHERE room_id = ?"
                " ON CONFLICT (source_event_id) DO NOTHING",
                (room_id, title, author, ts, source_event_id, room_id))
            cur.execute("SELECT number FROM room_notes WHERE source_event_id = ?", (source_event_id,))
            number = cur.fetchone()[0]
            cur.execute(
                "INSERT INTO room_note_versions (room_id, number, version, body, editor, edited_ts, source_event_id)"
                " VALUES (?, ?, 1, ?, ?, ?, ?) ON CONFLICT (source_event_id) DO NOTHING",
                (room_id, number, body, author, ts, source_event_id))
        return self._written_note(room_id, number)

    def set_note_event(self, room_id: str, number: int, event_id: str) -> None:
        self._db.execute("UPDATE room_notes SET event_id = ? WHERE room_id = ? AND number = ?",
                         (event_id, room_id, number))

    def edit_note(self, room_id: str, number: int, body: str, editor: str, ts: int, source_event_id: str) -> Note:
        with self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO room_note_versions (room_id, number, version, body, editor, edited_ts, source_event_id)"
                " SELECT ?, ?, MAX(version) + 1, ?, ?, ?, ? FROM room_note_versions WHERE room_id = ? AND number = ?"
                " ON CONFLICT (source_event_id) DO NOTHING",
                (room_id, number, body, editor, ts, source_event_id, room_id, number))
        return self._written_note(room_id, number)

    def _written_note(self, room_id: str, number: int) -> Note:
        """The note just written in a committed transaction: it exists."""
        note = self.note(room_id, number)
        if note is None:
            raise LookupError(f"note {number} of {room_id} not found after writing it")
        return note

    def note(self, room_id: str, number: int, version: int | None = None) -> Note | None:
        rows = self._db.all(
            _NOTE_SELECT +
            " WHERE n.room_id = ? AND n.number = ?" + (" AND v.version = ?" if version else "")
            + " ORDER BY v.version DESC LIMIT 1", (room_id, number, *((version,) if version else ())))
        return Note(*rows[0]) if rows else None

    def notes(self, room_id: str) -> list[Note]:
        rows = self._db.all(
            _NOTE_SELECT +
            " WHERE n.room_id = ? AND v.version = (SELECT MAX(version) FROM room_note_versions w"
            " WHERE w.room_id = n.room_id AND w.number = n.number) ORDER BY n.number", (room_id,))
        return [Note(*r) for r in rows]

    def note_history(self, room_id: str, number: int) -> list[tuple[int, str, int, str]]:
        """(version, editor, time, body), oldest first."""
        return [tuple(r) for r in self._db.all(
            "SELECT version, editor, edited_ts, body FROM room_note_versions WHERE room_id = ? AND number = ?"
            " ORDER BY version", (room_id, number))]


_NOTE_SELECT = ("SELECT n.room_id, n.number, n.title, n.event_id, n.created_by, n.created_ts,"
                " v.version, v.body, v.editor, v.edited_ts"
                " FROM room_notes n JOIN room_note_versions v ON v.room_id = n.room_id AND v.number = n.number")


def _prefixed(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in _COLUMNS.split(","))
