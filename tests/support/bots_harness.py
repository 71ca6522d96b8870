"""Bots as real OS processes against the test homeserver, and what a user sees of them.

A pytest plugin (``pytest_plugins`` in conftest.py): the ``bot_process`` fixture, and the log of
every bot a test ran attached to the report of a failing test (like the homeserver's log).

    async def test_x(homeserver, login, bot_process):
        bot = bot_process("memo", ["-m", "bots.memo"], options={"page_size": 5})
        bot.start()
        bot.wait_ready()                   # logged in and synced once
        ...                                # talk to it through nio clients (helpers below)
        bot.stop()                         # SIGTERM: must exit 0, quickly
        bot.start(); bot.wait_ready()      # same account, same storage: a restart
        bot.kill()                         # SIGKILL, e.g. in the middle of a command

``BotProcess`` registers the bot's account (``@<name>-bot``, a suffix when taken) with a password
file, writes a ``bots.yaml`` with the shared keys (homeserver URL per zone, zone, user_id,
password_file, storage) plus ``options``, and runs ``python <entry> --config bots.yaml``. A bot in
zone ``lgwan`` talks to the lgwan listener: its device is bound to the zone of its first request.
Storage ``sqlite`` is a file in the bot's folder; ``postgres`` a fresh database (dropped at close).

Processes never outlive the test that made them through ``bot_process`` (killed at teardown),
nor pytest (killed at exit, and by the kernel if pytest dies: PR_SET_PDEATHSIG). A module-scoped
bot made with ``BotProcess`` directly must be closed by its fixture (``with BotProcess(...)``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import itertools
import json
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from nio import AsyncClient, RoomMessagesResponse, RoomSendResponse

from lgwan_chat.core import SOURCE_ROOT
from lgwan_chat.homeserver import HttpError, child_env
from lgwan_chat.postgres import PG_SETTINGS, PostgresDatabase

REPO = Path(__file__).resolve().parents[2]
_CREATED: list[BotProcess] = []
_READY = re.compile(r'(: ready( |$))|("msg": "ready")', re.M)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class BotProcess:
    """One bot: its account, configuration, storage and (re)started processes."""

    _folders = itertools.count()

    def __init__(self, homeserver: Any, tmp_path: Path, name: str, entry: Sequence[str] | str | Path,
                 options: dict | None = None, zone: str = "lgwan", storage: str = "sqlite",
                 localpart: str | None = None, env: dict[str, str] | None = None):
        self.homeserver = homeserver
        #: added to the bot process's environment (e.g. a PATH with a test's stand-in for a tool)
        self.env = dict(env or {})
        self.name = name
        self.entry = [str(entry)] if isinstance(entry, (str, Path)) else [str(e) for e in entry]
        self.zone = zone
        self.storage = storage
        self.dir = Path(tmp_path) / f"bot-{name}-{next(self._folders)}"
        self.dir.mkdir(parents=True)
        self.config_path = self.dir / "bots.yaml"
        self.log_path = self.dir / "bot.log"
        self.process: subprocess.Popen | None = None
        self._start_offset = 0
        self.database: PostgresDatabase | None = None
        self.password = secrets.token_urlsafe(12)
        self.user_id = self._register(localpart or f"{name}-bot")
        self.password_file = password_file = self.dir / "password"
        password_file.write_text(self.password + "\n", encoding="utf-8")
        password_file.chmod(0o600)
        if storage == "sqlite":
            self.sqlite_path: Path | None = self.dir / "store.sqlite3"
            self.postgres_dsn: str | None = None
            store: dict = {"sqlite": str(self.sqlite_path)}
        elif storage == "postgres":
            self.database = PostgresDatabase()
            self.sqlite_path = None
            self.postgres_dsn = " ".join(f"{k}={v}" for k, v in {**PG_SETTINGS, "dbname": self.database.name}.items())
            store = {"postgres": self.postgres_dsn}
        else:
            raise ValueError(f"storage: sqlite or postgres, not {storage!r}")
        block = {"homeserver": {z: homeserver.url(z) for z in ("internet", "lgwan")}, "zone": zone,
                 "user_id": self.user_id, "password_file": str(password_file), "storage": store}
        for key, value in (options or {}).items():  # a value of None removes a shared key
            if value is None:
                block.pop(key, None)
            else:
                block[key] = value
        self.config = {"bots": {name: block}}
        self.write_config()
        _CREATED.append(self)

    def _register(self, localpart: str) -> str:
        for attempt in itertools.count(1):
            candidate = localpart if attempt == 1 else f"{localpart}-{attempt}"
            try:
                result = self.homeserver.register(candidate, self.password)
            except HttpError as e:
                if isinstance(e.body, dict) and e.body.get("errcode") == "M_USER_IN_USE" and attempt < 50:
                    continue
                raise
            # The registration's own device is not the bot's: log it out, so the account's
            # device list shows exactly what the bot did.
            request = urllib.request.Request(self.homeserver.url("lgwan") + "/_matrix/client/v3/logout",
                                             data=b"{}", method="POST")
            request.add_header("Authorization", f"Bearer {result['access_token']}")
            request.add_header("Content-Type", "application/json")
            urllib.request.urlopen(request, timeout=30).close()
            return result["user_id"]
        raise AssertionError("unreachable")

    def write_config(self) -> None:
        """(Re)write bots.yaml from ``self.config`` (edit it between restarts)."""
        self.config_path.write_text(yaml.safe_dump(self.config, allow_unicode=True, sort_keys=False),
                                    encoding="utf-8")

    # --- process ---

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> BotProcess:
        assert not self.running, f"{self.name} is already running"
        self._start_offset = self.log_size()
        with open(self.log_path, "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [sys.executable, *self.entry, "--config", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # TZ=UTC: a bot runs as on a server, whatever this machine's zone; a time shown in
                # the host's zone instead of the configured one (Asia/Tokyo) fails the tests
                cwd=SOURCE_ROOT or REPO, env={**child_env(), "PYTHONUNBUFFERED": "1", "TZ": "UTC", **self.env},
                start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        return self

    def wait_ready(self, timeout: float = 60) -> BotProcess:
        """Until this start has logged in and synced once (the runtime logs ``ready``)."""
        self.wait_log(_READY, timeout=timeout, what="ready")
        return self

    def wait_log(self, pattern: str | re.Pattern, count: int = 1, timeout: float = 60,
                 since_start: bool = True, what: str | None = None) -> str:
        """Until the log (of this start, or of all starts) matches ``pattern`` ``count`` times."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text(since_start)
            if len(regex.findall(text)) >= count:
                return text
            if not self.running:
                raise AssertionError(f"bot {self.name} exited ({self.returncode}) before {what or regex.pattern!r}:"
                                     f"\n{self.log_text()[-20000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"bot {self.name}: no {what or regex.pattern!r} ({count}x) in {timeout} s:"
                                     f"\n{self.log_text()[-20000:]}")
            time.sleep(0.1)

    async def await_log(self, pattern: str | re.Pattern, count: int = 1, timeout: float = 60,
                        since_start: bool = True) -> str:
        """``wait_log`` for async tests that keep other things going meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.wait_log(pattern, count, timeout=0, since_start=since_start)
            except AssertionError:
                if not self.running or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)

    def stop(self, timeout: float = 10, check: bool = True) -> int:
        """SIGTERM; the bot must exit within ``timeout`` (and with 0 when ``check``)."""
        assert self.process is not None, "never started"
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"bot {self.name} did not exit within {timeout} s of SIGTERM:\n"
                                     f"{self.log_text()[-20000:]}") from None
        if check:
            assert self.process.returncode == 0, (f"bot {self.name} exited with {self.process.returncode}:\n"
                                                  f"{self.log_text()[-20000:]}")
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL (kill -9): no clean-up at all in the bot."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.process is not None, "never started"
        return self.process.wait(timeout)

    @property
    def returncode(self) -> int | None:
        return self.process.poll() if self.process else None

    def close(self) -> None:
        self.kill()
        if self.database is not None:
            self.database.drop()
            self.database = None

    def __enter__(self) -> BotProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- what it logged and stored ---

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_text(self, since_start: bool = False, since: int | None = None) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self._start_offset if since_start else (since or 0))
            return f.read().decode("utf-8", "replace")

    def query(self, sql: str, *args: Any) -> list[tuple]:
        """Read the bot's own database (``?`` placeholders), as an admin would."""
        if self.postgres_dsn is not None:
            import psycopg2

            conn = psycopg2.connect(self.postgres_dsn)
            try:
                with conn.cursor() as cur:
                    cur.execute(sql.replace("?", "%s"), args)
                    return [tuple(r) for r in cur.fetchall()]
            finally:
                conn.close()
        db = sqlite3.connect(str(self.sqlite_path))
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def execute(self, sql: str, *args: Any) -> int:
        """Change the bot's own database (e.g. move a deadline into the past); rows changed."""
        if self.postgres_dsn is not None:
            import psycopg2

            conn = psycopg2.connect(self.postgres_dsn)
            try:
                with conn, conn.cursor() as cur:
                    cur.execute(sql.replace("?", "%s"), args)
                    return cur.rowcount
            finally:
                conn.close()
        db = sqlite3.connect(str(self.sqlite_path))
        try:
            with db:
                return db.execute(sql, args).rowcount
        finally:
            db.close()

    def stored(self, key: str) -> str | None:
        """A value the runtime keeps in ``bot_session`` (access_token, device_id, next_batch)."""
        rows = self.query("SELECT value FROM bot_session WHERE key = ?", key)
        return rows[0][0] if rows else None


@atexit.register
def _kill_leftovers() -> None:
    for bot in _CREATED:
        with contextlib.suppress(Exception):
            bot.kill()


# --- pytest plugin: fixture, logs of failing tests, no leaks ---

_LOG_OFFSETS = pytest.StashKey[dict]()


@pytest.fixture
def bot_process(homeserver, tmp_path):
    """``bot_process(name, entry, options=..., zone=..., storage=...)``: a BotProcess, killed at teardown."""
    made: list[BotProcess] = []

    def make(name: str, entry: Sequence[str] | str | Path, **kwargs: Any) -> BotProcess:
        bot = BotProcess(homeserver, tmp_path, name, entry, **kwargs)
        made.append(bot)
        return bot

    try:
        yield make
    finally:
        for bot in made:
            bot.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "setup":
        item.stash[_LOG_OFFSETS] = {id(bot): bot.log_size() for bot in _CREATED}
    if report.failed:
        offsets = item.stash.get(_LOG_OFFSETS, {})
        for bot in _CREATED:
            start = offsets.get(id(bot), 0)
            if bot.log_size() > start:
                report.sections.append((f"bot log: {bot.name} ({bot.user_id})", bot.log_text(since=start)[-20000:]))
    return report


# --- what a user sees: nio helpers ---

async def send_text(client: AsyncClient, room_id: str, body: str) -> str:
    """Send a text message; its event id."""
    sent = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})
    assert isinstance(sent, RoomSendResponse), sent
    return sent.event_id


async def room_events(client: AsyncClient, room_id: str, limit: int = 1000) -> list[dict]:
    """The room's timeline as ``client`` reads it, oldest first (up to ``limit`` events)."""
    events: list[dict] = []
    start = None
    while len(events) < limit:
        page = await client.room_messages(room_id, start=start, limit=min(100, limit - len(events)))
        assert isinstance(page, RoomMessagesResponse), page
        events.extend(e.source for e in page.chunk)
        if not page.chunk or not page.end or page.end == start:
            break
        start = page.end
    return list(reversed(events))


def reply_target(event: dict) -> str | None:
    relates = (event.get("content") or {}).get("m.relates_to") or {}
    return (relates.get("m.in_reply_to") or {}).get("event_id")


async def replies(client: AsyncClient, room_id: str, event_id: str, sender: str | None = None) -> list[dict]:
    """Every reply to ``event_id`` in the room (from ``sender`` only when given), oldest first."""
    return [e for e in await room_events(client, room_id)
            if reply_target(e) == event_id and (sender is None or e.get("sender") == sender)]


async def wait_replies(client: AsyncClient, room_id: str, event_id: str, count: int = 1,
                       sender: str | None = None, timeout: float = 30) -> list[dict]:
    """Until there are at least ``count`` replies to ``event_id``; all of them."""
    deadline = time.monotonic() + timeout
    while True:
        found = await replies(client, room_id, event_id, sender)
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(found)} replies to {event_id} after {timeout} s, expected {count}: "
                                 f"{json.dumps(found, ensure_ascii=False)[:2000]}")
        await asyncio.sleep(0.2)


async def answer(client: AsyncClient, room_id: str, message: str | dict, sender: str | None = None,
                 timeout: float = 30) -> dict:
    """Send a text (or a whole message content); the content of the (first) reply to it."""
    if isinstance(message, str):
        event_id = await send_text(client, room_id, message)
    else:
        sent = await client.room_send(room_id, "m.room.message", message)
        assert isinstance(sent, RoomSendResponse), sent
        event_id = sent.event_id
    return (await wait_replies(client, room_id, event_id, sender=sender, timeout=timeout))[0]["content"]


async def ask(client: AsyncClient, room_id: str, body: str, sender: str | None = None,
              timeout: float = 30) -> str:
    """Send ``body``; the text of the (first) reply to it."""
    return (await answer(client, room_id, body, sender, timeout))["body"]


async def membership(client: AsyncClient, room_id: str, user_id: str) -> str | None:
    state = await client.room_get_state_event(room_id, "m.room.member", user_id)
    content = getattr(state, "content", None)
    return content.get("membership") if isinstance(content, dict) else None


async def wait_membership(client: AsyncClient, room_id: str, user_id: str, wanted: str,
                          timeout: float = 30) -> None:
    """Until ``user_id``'s membership in the room is ``wanted`` (e.g. a bot joined or declined)."""
    deadline = time.monotonic() + timeout
    while True:
        now = await membership(client, room_id, user_id)
        if now == wanted:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{user_id} in {room_id}: {now}, not {wanted}, after {timeout} s")
        await asyncio.sleep(0.2)
