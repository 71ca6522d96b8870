"""Poll groups, their polls, every response and end seen, and scheduled jobs, in the bot's database.

A *group* is what a command made: one native poll (a survey), one yes/no poll per option (multiple
choice), one ○/△/× poll per candidate date (schedule coordination), one poll per room (a safety
check). Groups are keyed by the command's event id, so handling the command again after a crash
finds the same group. Responses are kept as events (sender, time, answers), never as running
counts: a tally is always computed from them, exactly as Element counts.
"""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple

from bots.runtime.storage import Storage

from .tally import Response

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE IF NOT EXISTS poll_groups (
            group_id TEXT NOT NULL PRIMARY KEY,
            room_id TEXT NOT NULL,
            number INTEGER NOT NULL,
            kind TEXT NOT NULL,
            title TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_ts BIGINT NOT NULL,
            deadline_ts BIGINT,
            disclosed INTEGER NOT NULL,
            options TEXT NOT NULL,
            header_event_id TEXT,
            summary_event_id TEXT,
            summary_text TEXT,
            closed_ts BIGINT,
            UNIQUE (room_id, number))""",
        """CREATE TABLE IF NOT EXISTS polls (
            poll_event_id TEXT NOT NULL PRIMARY KEY,
            group_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            room_id TEXT NOT NULL,
            question TEXT NOT NULL,
            answers TEXT NOT NULL,
            max_selections INTEGER NOT NULL,
            UNIQUE (group_id, position))""",
        """CREATE TABLE IF NOT EXISTS poll_responses (
            event_id TEXT NOT NULL PRIMARY KEY,
            poll_event_id TEXT NOT NULL,
            sender TEXT NOT NULL,
            ts BIGINT NOT NULL,
            answers TEXT)""",
        "CREATE INDEX IF NOT EXISTS poll_responses_poll ON poll_responses (poll_event_id)",
        """CREATE TABLE IF NOT EXISTS poll_jobs (
            job_id TEXT NOT NULL PRIMARY KEY,
            due_ts BIGINT NOT NULL,
            kind TEXT NOT NULL,
            ref TEXT NOT NULL,
            done_ts BIGINT)""",
        "CREATE INDEX IF NOT EXISTS poll_jobs_due ON poll_jobs (done_ts, due_ts)",
    ],
    # tasks (tasks.py, task_store.py): a task, its assignees' done marks, the ✅ reactions behind them
    [
        """CREATE TABLE IF NOT EXISTS poll_tasks (
            task_id TEXT NOT NULL PRIMARY KEY,
            room_id TEXT NOT NULL,
            number INTEGER NOT NULL,
            title TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_ts BIGINT NOT NULL,
            due_ts BIGINT,
            message_event_id TEXT,
            message_text TEXT,
            edits INTEGER NOT NULL,
            UNIQUE (room_id, number))""",
        "CREATE INDEX IF NOT EXISTS poll_tasks_message ON poll_tasks (message_event_id)",
        """CREATE TABLE IF NOT EXISTS poll_task_assignees (
            task_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            user_id TEXT NOT NULL,
            done_ts BIGINT,
            PRIMARY KEY (task_id, user_id))""",
        """CREATE TABLE IF NOT EXISTS poll_task_reactions (
            event_id TEXT NOT NULL PRIMARY KEY,
            task_id TEXT NOT NULL,
            user_id TEXT NOT NULL)""",
    ],
    # DM-ness is a room's DM marking, no longer its member count: the DMs the bot made for
    # reminders before (kept per user as polls_dm) are marked as the runtime marks them now
    [
        """INSERT INTO bot_settings (scope, scope_id, key, value)
           SELECT 'room', value, 'direct_with', scope_id FROM bot_settings WHERE scope = 'user' AND key = 'polls_dm'
           ON CONFLICT (scope, scope_id, key) DO NOTHING""",
    ],
]


def now_ms() -> int:
    return int(time.time() * 1000)


class Group(NamedTuple):
    group_id: str
    room_id: str
    number: int
    kind: str
    title: str
    created_by: str
    created_ts: int
    deadline_ts: int | None
    disclosed: bool
    options: dict[str, Any]
    header_event_id: str | None
    summary_event_id: str | None
    summary_text: str | None
    closed_ts: int | None

    @property
    def open(self) -> bool:
        return self.closed_ts is None


class Poll(NamedTuple):
    poll_event_id: str
    group_id: str
    position: int
    room_id: str
    question: str
    answers: list[tuple[str, str]]  # (id, text)
    max_selections: int

    @property
    def answer_ids(self) -> list[str]:
        return [a for a, _ in self.answers]

    def answer_text(self, answer_id: str) -> str:
        return dict(self.answers).get(answer_id, answer_id)


_GROUP = ("group_id, room_id, number, kind, title, created_by, created_ts, deadline_ts, disclosed, options,"
          " header_event_id, summary_event_id, summary_text, closed_ts")
_POLL = "poll_event_id, group_id, position, room_id, question, answers, max_selections"


def _group(row: tuple) -> Group:
    values = list(row)
    values[8] = bool(values[8])
    values[9] = json.loads(values[9])
    return Group(*values)


def _poll(row: tuple) -> Poll:
    values = list(row)
    values[5] = [tuple(a) for a in json.loads(values[5])]
    return Poll(*values)


class PollStore:
    def __init__(self, storage: Storage):
        self.storage = storage

    # --- groups ---

    def create_group(self, group_id: str, room_id: str, kind: str, title: str, created_by: str,
                     deadline_ts: int | None, disclosed: bool, options: dict[str, Any]) -> Group:
        """The group of ``group_id`` (the command's event id): made once, found again after a crash."""
        with self.storage.transaction() as cur:
            cur.execute(f"SELECT {_GROUP} FROM poll_groups WHERE group_id = ?", (group_id,))
            row = cur.fetchone()
            if row:
                return _group(row)
            cur.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM poll_groups WHERE room_id = ?", (room_id,))
            number = cur.fetchone()[0]
            cur.execute(f"INSERT INTO poll_groups ({_GROUP}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL,"
                        " NULL)", (group_id, room_id, number, kind, title, created_by, now_ms(), deadline_ts,
                                   int(disclosed), json.dumps(options, ensure_ascii=False)))
        return self.existing_group(group_id)

    def existing_group(self, group_id: str) -> Group:
        """A group this bot made or has just read: missing only if the database lost it."""
        group = self.group(group_id)
        if group is None:
            raise LookupError(f"poll group {group_id} not found")
        return group

    def group(self, group_id: str) -> Group | None:
        row = self.storage.one(f"SELECT {_GROUP} FROM poll_groups WHERE group_id = ?", (group_id,))
        return _group(row) if row else None

    def group_by_number(self, room_id: str, number: int) -> Group | None:
        row = self.storage.one(f"SELECT {_GROUP} FROM poll_groups WHERE room_id = ? AND number = ?",
                               (room_id, number))
        return _group(row) if row else None

    def groups_in_room(self, room_id: str, kind: str | None = None, open_only: bool = False) -> list[Group]:
        sql = f"SELECT {_GROUP} FROM poll_groups WHERE room_id = ?"
        args: list[Any] = [room_id]
        if kind:
            sql += " AND kind = ?"
            args.append(kind)
        if open_only:
            sql += " AND closed_ts IS NULL"
        return [_group(r) for r in self.storage.all(sql + " ORDER BY number", args)]

    def open_groups(self) -> list[Group]:
        return [_group(r) for r in self.storage.all(
            f"SELECT {_GROUP} FROM poll_groups WHERE closed_ts IS NULL ORDER BY created_ts")]

    def set_group(self, group_id: str, **values: Any) -> None:
        allowed = {"header_event_id", "summary_event_id", "summary_text", "closed_ts", "deadline_ts", "options"}
        assert set(values) <= allowed, values
        if "options" in values:
            values["options"] = json.dumps(values["options"], ensure_ascii=False)
        assignments = ", ".join(f"{k} = ?" for k in values)
        self.storage.execute(f"UPDATE poll_groups SET {assignments} WHERE group_id = ?", (*values.values(), group_id))

    def close_group(self, group_id: str, ts: int) -> bool:
        """Mark closed; False when it already was (the close is done once)."""
        return self.storage.execute("UPDATE poll_groups SET closed_ts = ? WHERE group_id = ? AND closed_ts IS NULL",
                                    (ts, group_id)) == 1

    # --- polls ---

    def add_poll(self, poll_event_id: str, group_id: str, position: int, room_id: str, question: str,
                 answers: list[tuple[str, str]], max_selections: int) -> None:
        self.storage.execute(f"INSERT INTO polls ({_POLL}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                             (poll_event_id, group_id, position, room_id, question,
                              json.dumps(answers, ensure_ascii=False), max_selections))

    def polls(self, group_id: str) -> list[Poll]:
        return [_poll(r) for r in self.storage.all(
            f"SELECT {_POLL} FROM polls WHERE group_id = ? ORDER BY position", (group_id,))]

    def poll(self, poll_event_id: str) -> Poll | None:
        row = self.storage.one(f"SELECT {_POLL} FROM polls WHERE poll_event_id = ?", (poll_event_id,))
        return _poll(row) if row else None

    # --- responses ---

    def add_response(self, event_id: str, poll_event_id: str, sender: str, ts: int,
                     answers: list[str] | None) -> bool:
        """Keep one response event; False when it was already kept."""
        return self.storage.execute(
            "INSERT INTO poll_responses (event_id, poll_event_id, sender, ts, answers) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (event_id) DO NOTHING",
            (event_id, poll_event_id, sender, ts, json.dumps(answers) if answers is not None else None)) == 1

    def forget_response(self, event_id: str) -> str | None:
        """A redacted response no longer counts; returns its poll."""
        row = self.storage.one("SELECT poll_event_id FROM poll_responses WHERE event_id = ?", (event_id,))
        if row:
            self.storage.execute("DELETE FROM poll_responses WHERE event_id = ?", (event_id,))
        return row[0] if row else None

    def responses(self, poll_event_id: str) -> list[Response]:
        return [Response(sender, ts, event_id, tuple(json.loads(answers)) if answers is not None else None)
                for event_id, sender, ts, answers in self.storage.all(
                    "SELECT event_id, sender, ts, answers FROM poll_responses WHERE poll_event_id = ?",
                    (poll_event_id,))]

    # --- jobs: each runs once ---

    def schedule(self, job_id: str, due_ts: int, kind: str, ref: str) -> None:
        """A job (deadline, reminder) that runs once at ``due_ts``; scheduling it again moves it."""
        self.storage.execute("INSERT INTO poll_jobs (job_id, due_ts, kind, ref, done_ts) VALUES (?, ?, ?, ?, NULL)"
                             " ON CONFLICT (job_id) DO UPDATE SET due_ts = excluded.due_ts",
                             (job_id, due_ts, kind, ref))

    def due_jobs(self, now: int) -> list[tuple[str, str, str]]:
        return [tuple(r) for r in self.storage.all(
            "SELECT job_id, kind, ref FROM poll_jobs WHERE done_ts IS NULL AND due_ts <= ? ORDER BY due_ts", (now,))]

    def job_done(self, job_id: str) -> None:
        self.storage.execute("UPDATE poll_jobs SET done_ts = ? WHERE job_id = ?", (now_ms(), job_id))

    def cancel_jobs(self, ref: str) -> None:
        self.storage.execute("UPDATE poll_jobs SET done_ts = ? WHERE ref = ? AND done_ts IS NULL", (now_ms(), ref))
