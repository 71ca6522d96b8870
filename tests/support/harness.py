"""Test harness: real Synapse processes on SQLite or PostgreSQL, real users, real clients.

Used by ``conftest.py``; the process control itself is ``lgwan_chat.homeserver``
(shared with the demo and the benchmarks).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import secrets
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import attrs
import pytest
from nio import AsyncClient, LoginResponse

from lgwan_chat.homeserver import RELAXED_RATE_LIMITS, Homeserver, HomeserverSpec, suite_modules
from lgwan_chat.postgres import PostgresDatabase, postgres_unreachable_reason

BACKENDS = ("sqlite", "postgres")

#: for tests that need PostgreSQL whatever --backends says (deployments on workers); under CI an
#: unreachable PostgreSQL is an error before any test runs (conftest), so this never hides one there
needs_postgres = pytest.mark.skipif(postgres_unreachable_reason() is not None, reason="PostgreSQL is not reachable")


def suite_modules_trusting(*uploaders: str) -> list[dict]:
    """The suite's modules as a deployment loads them, with the zone module trusting the files these
    accounts upload (the sanitizer bot's sanitized copies)."""
    modules = suite_modules()
    for module in modules:
        if module["module"].startswith("synapse_modules.zones"):
            module["config"] = {**module["config"], "trusted_uploaders": list(uploaders)}
    return modules


async def eventually(check: Any, timeout: float = 30.0, interval: float = 0.3) -> Any:
    """What is written in the background (the bookmarks feed, bots' answers, Synapse's jobs): call
    ``check`` (plain or async) until it stops raising AssertionError; its last error past ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            return await result if inspect.isawaitable(result) else result
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)

def client_listener(port: int, tag: str) -> dict:
    """A Synapse client listener on loopback with a zone tag (for hand-built listener lists)."""
    return {"port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tag": tag, "x_forwarded": False,
            "resources": [{"names": ["client"], "compress": False}]}


@attrs.define
class User:
    user_id: str
    password: str
    localpart: str
    #: token of the device created at registration
    access_token: str


class RunningHomeserver:
    """A running Synapse for tests: zone URLs, users, clients, direct database look-ups."""

    _users = itertools.count()

    def __init__(self, data_dir: Path, backend: str, modules: list | None = None, extra: dict | None = None,
                 spec: dict | None = None, shipped_rate_limits: tuple[str, ...] = (),
                 device_approval: dict | None = None, existing_database: str | None = None):
        """``shipped_rate_limits``: keys (e.g. ``rc_login``) left as config/homeserver.template.yaml
        has them instead of relaxed for load. ``device_approval``: the zone module's (zone -> off,
        self, admin); default: no device waits for approval. ``existing_database``: a PostgreSQL
        database made by ``PostgresDatabase`` before (e.g. one a backup was restored into) instead of a
        fresh one."""
        self.backend = backend
        self.database = PostgresDatabase(existing_database) if backend == "postgres" else None
        approval: dict[str, Any] = {"device_approval": device_approval} if device_approval is not None else {}
        relaxed = {key: value for key, value in RELAXED_RATE_LIMITS.items() if key not in shipped_rate_limits}
        self.hs = Homeserver(HomeserverSpec(
            data_dir=data_dir,
            database=self.database.synapse_config() if self.database else None,
            modules=modules,
            extra={**relaxed, **(extra or {})},
            **approval,
            **(spec or {}),
        ))
        self._clients: list[AsyncClient] = []

    def __getattr__(self, name: str) -> Any:  # url(), server_name, log_tail(), pid, ...
        return getattr(self.hs, name)

    def start(self) -> RunningHomeserver:
        try:
            self.hs.start()
            self.wait_background_updates()
        except Exception:
            self.close()
            raise
        return self

    def wait_background_updates(self, timeout: float = 120.0) -> None:
        """Until Synapse's background updates of a new database are done: before that its user
        directory does not follow new rooms (a test would see a directory from the past)."""
        deadline = time.monotonic() + timeout
        while self.query("SELECT COUNT(*) FROM background_updates")[0][0]:
            if time.monotonic() > deadline:
                pending = [row[0] for row in self.query("SELECT update_name FROM background_updates")]
                raise TimeoutError(f"Synapse's background updates still pending after {timeout}s: {pending}")
            time.sleep(0.2)

    def close(self) -> None:
        self.hs.stop()
        if self.database is not None:
            self.database.drop()

    def new_user(self, prefix: str = "user", admin: bool = False, displayname: str | None = None,
                 localpart: str | None = None) -> User:
        localpart = localpart or f"{prefix}{next(self._users)}"
        password = secrets.token_urlsafe(12)
        result = self.hs.register(localpart, password, admin=admin, displayname=displayname)
        return User(user_id=result["user_id"], password=password, localpart=localpart,
                    access_token=result["access_token"])

    async def login(self, user: User, zone: str = "internet", device_name: str = "pytest",
                    via: Any = None) -> AsyncClient:
        """A matrix-nio client logged in (a new device) through the listener of ``zone``,
        or through ``via`` (e.g. the nginx in front) when given."""
        client = AsyncClient((via or self).url(zone), user.user_id)
        response = await client.login(user.password, device_name=device_name)
        assert isinstance(response, LoginResponse), response
        self._clients.append(client)
        return client

    async def close_clients(self) -> None:
        while self._clients:
            await self._clients.pop().close()

    def query(self, sql: str, *args: Any) -> list[tuple]:
        """Read Synapse's own database (``?`` placeholders), to check where data really went."""
        if self.database is not None:
            return self.database.query(sql, *args)
        conn = sqlite3.connect(self.hs.data_dir / "homeserver.db")
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()


def http_get(url: str, token: str | None = None, headers: dict | None = None,
             timeout: float = 30) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET, errors included: what a client would see."""
    request = urllib.request.Request(url, headers=headers or {})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


async def download(base_url: str, client: AsyncClient, mxc: str) -> tuple[int, bytes]:
    """Fetch an mxc:// URL as ``client`` through ``base_url`` (authenticated media)."""
    status, _, body = http_get(f"{base_url}/_matrix/client/v1/media/download/{mxc[len('mxc://'):]}",
                               client.access_token)
    return status, body

