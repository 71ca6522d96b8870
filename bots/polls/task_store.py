"""Tasks (タスク) in the polls bot's database: the task, each assignee's done mark, and the ✅
reactions that made them (a redacted reaction takes its mark back). The tables are the tasks
element of store.MIGRATIONS.

A task is keyed by the command's event id: handling the command again after a crash finds it.
"""

from __future__ import annotations

from typing import NamedTuple

from bots.runtime.storage import Storage

from .store import now_ms


class Assignee(NamedTuple):
    user_id: str
    done_ts: int | None


class Task(NamedTuple):
    task_id: str
    room_id: str
    number: int
    title: str
    created_by: str
    created_ts: int
    due_ts: int | None
    message_event_id: str | None
    message_text: str | None
    edits: int
    assignees: tuple[Assignee, ...]

    @property
    def complete(self) -> bool:
        return all(a.done_ts is not None for a in self.assignees)

    def overdue(self, now: int) -> bool:
        return not self.complete and self.due_ts is not None and self.due_ts <= now

    @property
    def not_done(self) -> list[str]:
        return [a.user_id for a in self.assignees if a.done_ts is None]

    def is_assignee(self, user_id: str) -> bool:
        return any(a.user_id == user_id for a in self.assignees)


_TASK = ("task_id, room_id, number, title, created_by, created_ts, due_ts, message_event_id, message_text,"
         " edits")


class TaskStore:
    def __init__(self, storage: Storage):
        self.storage = storage

    def create(self, task_id: str, room_id: str, title: str, created_by: str, due_ts: int | None,
               assignees: list[str]) -> Task:
        """The task of ``task_id`` (the command's event id): made once, found again after a crash."""
        with self.storage.transaction() as cur:
            cur.execute("SELECT 1 FROM poll_tasks WHERE task_id = ?", (task_id,))
            if cur.fetchone() is None:
                cur.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM poll_tasks WHERE room_id = ?", (room_id,))
                number = cur.fetchone()[0]
                cur.execute(f"INSERT INTO poll_tasks ({_TASK}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, 0)",
                            (task_id, room_id, number, title, created_by, now_ms(), due_ts))
                for position, user_id in enumerate(assignees):
                    cur.execute("INSERT INTO poll_task_assignees (task_id, position, user_id, done_ts)"
                                " VALUES (?, ?, ?, NULL)", (task_id, position, user_id))
        return self.existing_task(task_id)

    def existing_task(self, task_id: str) -> Task:
        """A task this bot made or has just read: missing only if the database lost it."""
        task = self.task(task_id)
        if task is None:
            raise LookupError(f"task {task_id} not found")
        return task

    def task(self, task_id: str) -> Task | None:
        row = self.storage.one(f"SELECT {_TASK} FROM poll_tasks WHERE task_id = ?", (task_id,))
        return self._with_assignees(row) if row else None

    def by_number(self, room_id: str, number: int) -> Task | None:
        row = self.storage.one(f"SELECT {_TASK} FROM poll_tasks WHERE room_id = ? AND number = ?", (room_id, number))
        return self._with_assignees(row) if row else None

    def by_message(self, event_id: str) -> Task | None:
        row = self.storage.one(f"SELECT {_TASK} FROM poll_tasks WHERE message_event_id = ?", (event_id,))
        return self._with_assignees(row) if row else None

    def in_room(self, room_id: str) -> list[Task]:
        return [self._with_assignees(r) for r in self.storage.all(
            f"SELECT {_TASK} FROM poll_tasks WHERE room_id = ? ORDER BY number", (room_id,))]

    def _with_assignees(self, row: tuple) -> Task:
        assignees = tuple(Assignee(*r) for r in self.storage.all(
            "SELECT user_id, done_ts FROM poll_task_assignees WHERE task_id = ? ORDER BY position", (row[0],)))
        return Task._make([*row, assignees])

    def set_message(self, task_id: str, event_id: str, text: str) -> None:
        self.storage.execute("UPDATE poll_tasks SET message_event_id = ?, message_text = ? WHERE task_id = ?",
                             (event_id, text, task_id))

    def edited(self, task_id: str, text: str) -> None:
        """The message now shows ``text``; the next edit gets a new number (its transaction id)."""
        self.storage.execute("UPDATE poll_tasks SET message_text = ?, edits = edits + 1 WHERE task_id = ?",
                             (text, task_id))

    # --- done marks ---

    def mark_done(self, task_id: str, user_id: str, ts: int) -> bool:
        """True when ``user_id`` was not done before."""
        return self.storage.execute("UPDATE poll_task_assignees SET done_ts = ? WHERE task_id = ? AND user_id = ?"
                                    " AND done_ts IS NULL", (ts, task_id, user_id)) == 1

    def mark_not_done(self, task_id: str, user_id: str) -> bool:
        return self.storage.execute("UPDATE poll_task_assignees SET done_ts = NULL WHERE task_id = ? AND user_id = ?"
                                    " AND done_ts IS NOT NULL", (task_id, user_id)) == 1

    def add_reaction(self, event_id: str, task_id: str, user_id: str) -> None:
        self.storage.execute("INSERT INTO poll_task_reactions (event_id, task_id, user_id) VALUES (?, ?, ?)"
                             " ON CONFLICT (event_id) DO NOTHING", (event_id, task_id, user_id))

    def remove_reaction(self, event_id: str) -> tuple[str, str, bool] | None:
        """Forget a redacted ✅: (task, user, whether the user still has another ✅ on it)."""
        row = self.storage.one("SELECT task_id, user_id FROM poll_task_reactions WHERE event_id = ?", (event_id,))
        if row is None:
            return None
        self.storage.execute("DELETE FROM poll_task_reactions WHERE event_id = ?", (event_id,))
        others = self.storage.one("SELECT 1 FROM poll_task_reactions WHERE task_id = ? AND user_id = ?", row)
        return row[0], row[1], others is not None

    # --- reminders ---

    def rearm_jobs(self, task_id: str, now: int) -> None:
        """A reopened task: its reminders still ahead run again (a task's done cancels them)."""
        self.storage.execute("UPDATE poll_jobs SET done_ts = NULL WHERE ref = ? AND due_ts > ?", (task_id, now))
