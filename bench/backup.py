#!/usr/bin/env python3
"""Backup and restore time and size (``lgwan-chat backup`` / ``restore``) for a deployment of
N users and M messages.

A Synapse with every module of the suite (SQLite or PostgreSQL) gets N users (registered
concurrently through the shared-secret admin API, ``bcrypt_rounds: 4`` for these bench accounts),
rooms of 10 members, M messages sent by the members (48 requests in flight over all rooms, one per
room at a time), every 50th of them a file (40-700 KB, uploaded to the media store); then
``lgwan_chat.operations`` backs it up while Synapse runs and restores the backup into a fresh
folder (and a fresh PostgreSQL database). Prints the time of each step, the backup's size and the
database's, the load average. Record results in docs/benchmarks.md.

    make bench-backup                                          # 200 users, 5,000 messages, SQLite
    make bench-backup BENCH_ARGS="--users 2000 --messages 100000 --backend postgres"
    .venv/bin/python bench/backup.py --users 20 --messages 200 --file-every 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_average, machine, run, stop_at_exit
from lgwan_chat.homeserver import (
    REGISTER_PATH,
    RELAXED_RATE_LIMITS,
    Homeserver,
    HomeserverSpec,
    registration_body,
    suite_modules,
)
from lgwan_chat.operations.backup import backup, load_key
from lgwan_chat.operations.deployment import BACKUP_KEY, find
from lgwan_chat.operations.restore import restore, verify
from lgwan_chat.postgres import PostgresDatabase

#: Members per room. Synapse evaluates push rules for every member on every message, so a
#: 100,000-message fill is sent into many small rooms (a section's room, a project's, a DM-sized
#: one), never into a few big ones.
ROOM_SIZE = 10
#: Requests in flight at once (registrations, joins, sends). Each room has one send in flight at a
#: time, as a conversation: concurrent sends into one room would fork its event graph.
CONCURRENCY = 48
#: Sizes of the files attached to every FILE_EVERY-th message (incompressible, like PDF or xlsx).
FILE_SIZES = (40_000, 150_000, 300_000, 700_000)
PROGRESS_EVERY = 10_000
STAMPS_MODULE = "synapse_modules.stamps.StampsModule"


async def _call(session: aiohttp.ClientSession, method: str, url: str, token: str | None, body: dict | bytes | None,
                content_type: str = "application/json") -> dict:
    """One request, retried on a dropped connection or a 5xx/429 (a send keeps its transaction ID,
    so a retry never makes a second event)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict = {}
    if isinstance(body, dict):
        kwargs["json"] = body
    elif body is not None:
        kwargs["data"] = body
        headers["Content-Type"] = content_type
    for attempt in range(6):
        try:
            async with session.request(method, url, headers=headers, **kwargs) as r:
                payload = await r.json()
                if r.status == 200:
                    return payload
                if r.status < 500 and r.status != 429:
                    raise RuntimeError(f"{method} {url}: HTTP {r.status} {payload}")
                problem = f"HTTP {r.status} {payload}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            problem = repr(e)
        await asyncio.sleep(2 ** attempt)
    raise RuntimeError(f"{method} {url}: {problem}")


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def database_size(hs: Homeserver, database: PostgresDatabase | None) -> int:
    if database is not None:
        return int(database.query("SELECT pg_database_size(current_database())")[0][0])
    return sum(p.stat().st_size for p in hs.data_dir.glob("homeserver.db*"))


async def _register(session: aiohttp.ClientSession, hs: Homeserver, users: int) -> list[str]:
    """``users`` accounts through the shared-secret admin API, CONCURRENCY at a time."""
    url = hs.url("lgwan") + REGISTER_PATH
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> str:
        localpart, password = f"staff{i}", f"bench-password-{i}"
        async with slots:
            nonce = (await _call(session, "GET", url, None, None))["nonce"]
            body = registration_body(hs.registration_shared_secret, nonce, localpart, password)
            try:
                return str((await _call(session, "POST", url, None, body))["access_token"])
            except RuntimeError as e:
                if "M_USER_IN_USE" not in str(e):  # a retried POST whose first try had registered it
                    raise
            login = {"type": "m.login.password", "password": password,
                     "identifier": {"type": "m.id.user", "user": localpart}}
            return str((await _call(session, "POST", hs.url("lgwan") + "/_matrix/client/v3/login", None,
                                    login))["access_token"])

    return list(await asyncio.gather(*(one(i) for i in range(users))))


async def fill(hs: Homeserver, users: int, messages: int, file_every: int,
               during: Callable[[int], Coroutine[Any, Any, None]] | None = None,
               at: frozenset[int] = frozenset()) -> dict:
    """Registrations, rooms, joins, then the messages; ``during(sent)`` runs beside the sends
    (they go on) when ``sent`` reaches each count in ``at``."""
    started = time.perf_counter()
    beside: list[asyncio.Task] = []
    base = hs.url("lgwan")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY * 2),
                                     timeout=aiohttp.ClientTimeout(total=600)) as session:
        tokens = await _register(session, hs, users)
        registered = time.perf_counter()
        slots = asyncio.Semaphore(CONCURRENCY)

        async def create(first: int) -> tuple[str, list[str]]:
            members = tokens[first:first + ROOM_SIZE]
            async with slots:
                room = await _call(session, "POST", f"{base}/_matrix/client/v3/createRoom", members[0],
                                   {"preset": "public_chat", "name": f"係 {first // ROOM_SIZE}"})
            return room["room_id"], members

        rooms = await asyncio.gather(*(create(first) for first in range(0, users, ROOM_SIZE)))

        async def join(room_id: str, token: str) -> None:
            async with slots:
                await _call(session, "POST", f"{base}/_matrix/client/v3/join/{quote(room_id)}", token, {})

        await asyncio.gather(*(join(room_id, t) for room_id, members in rooms for t in members[1:]))
        joined = time.perf_counter()
        sent = 0
        files = 0
        file_bytes = 0

        async def message(n: int, token: str) -> dict:
            body = f"業務連絡 {n}: 本日の会議資料を共有します"
            if not file_every or n % file_every:
                return {"msgtype": "m.text", "body": body}
            nonlocal files, file_bytes
            size = FILE_SIZES[(n // file_every) % len(FILE_SIZES)]
            upload = await _call(session, "POST", f"{base}/_matrix/media/v3/upload?filename=doc{n}.pdf", token,
                                 os.urandom(size), "application/pdf")
            files += 1
            file_bytes += size
            return {"msgtype": "m.file", "body": f"資料{n}.pdf", "url": upload["content_uri"],
                    "info": {"size": size, "mimetype": "application/pdf"}}

        async def conversation(index: int, room_id: str, members: list[str]) -> None:
            nonlocal sent
            # Message n goes to room n % len(rooms), from the room's members in turn.
            for turn, n in enumerate(range(index, messages, len(rooms))):
                token = members[turn % len(members)]
                async with slots:
                    content = await message(n, token)
                    await _call(session, "PUT", f"{base}/_matrix/client/v3/rooms/{quote(room_id)}/send/"
                                f"m.room.message/b{n}", token, content)
                sent += 1
                if during is not None and sent in at:
                    beside.append(asyncio.create_task(during(sent)))
                if sent % PROGRESS_EVERY == 0:
                    elapsed = time.perf_counter() - joined
                    print(f"  {sent} messages in {elapsed:.0f} s ({sent / elapsed:.0f} msgs/s, "
                          f"load {load_average():.1f})", flush=True)

        await asyncio.gather(*(conversation(i, room_id, members) for i, (room_id, members) in enumerate(rooms)))
        done = time.perf_counter()
        await asyncio.gather(*beside)
    return {"register_s": registered - started, "join_s": joined - registered, "send_s": done - joined,
            "msgs_per_s": messages / max(done - joined, 1e-9), "rooms": len(rooms), "media_files": files,
            "file_mb": file_bytes / 1e6, "fill_s": done - started}


def message_count(data_dir: Path, database: PostgresDatabase | None) -> int:
    """Messages in the deployment's database (PostgreSQL, or SQLite's homeserver.db in its folder)."""
    sql = "SELECT COUNT(*) FROM events WHERE type = 'm.room.message'"
    if database is not None:
        return int(database.query(sql)[0][0])
    conn = sqlite3.connect(f"file:{data_dir / 'homeserver.db'}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def backup_and_restore(hs: Homeserver, source_db: PostgresDatabase | None, work: Path) -> dict:
    """``lgwan-chat backup`` of the running deployment, then verify and restore it into a fresh
    folder (and PostgreSQL database); the times, sizes and what the restored database holds."""
    root = hs.data_dir
    before = message_count(root, source_db)
    load = load_average()
    began = time.perf_counter()
    manifest = backup(find(root), work / "backup")  # Synapse running, as in production
    backup_s = time.perf_counter() - began
    after = message_count(root, source_db)
    backup_bytes = dir_size(work / "backup")
    key = load_key(root / BACKUP_KEY)  # the admin's copy of the key, kept off the backup
    began = time.perf_counter()
    verify(work / "backup", key)
    verify_s = time.perf_counter() - began
    target_db = PostgresDatabase() if source_db is not None else None
    if target_db is not None:
        stop_at_exit(target_db.drop)
    try:
        began = time.perf_counter()
        restore(work / "backup", work / "restored", key, postgres_database=target_db.name if target_db else None)
        restore_s = time.perf_counter() - began  # includes verifying the backup first
        restored = message_count(work / "restored", target_db)
    finally:
        if target_db is not None:
            target_db.drop()
        shutil.rmtree(work, ignore_errors=True)
    result = {"messages_before": before, "messages_after": after, "messages_restored": restored,
              "database_mb": database_size(hs, source_db) / 1e6, "media_mb": dir_size(root / "media_store") / 1e6,
              "backup_mb": backup_bytes / 1e6, "files": len(manifest["files"]), "backup_s": backup_s,
              "verify_s": verify_s, "restore_s": restore_s, "load_1min_at_backup": load,
              "load_1min_at_end": load_average()}
    print(f"  backup of {before}-{after} messages ({result['database_mb']:.0f} MB database, "
          f"{result['media_mb']:.0f} MB media): {backup_s:.1f} s, {result['backup_mb']:.0f} MB in "
          f"{result['files']} files; verify {verify_s:.1f} s; restore {restore_s:.1f} s "
          f"({restored} messages restored); load {load:.1f}", flush=True)
    if not before <= restored <= after:
        raise RuntimeError(f"the restore holds {restored} messages, the backup began at {before} and ended at {after}")
    return result


async def main(args: argparse.Namespace) -> dict:
    load_at_start = load_average()
    with tempfile.TemporaryDirectory(prefix="lgwan-bench-backup-") as tmp:
        root = Path(tmp) / "deployment"
        source_db = PostgresDatabase() if args.backend == "postgres" else None
        if source_db is not None:
            stop_at_exit(source_db.drop)
        database_block = source_db.synapse_config() if source_db else None
        if database_block is not None:  # 48 requests in flight: more than the default 5 connections
            database_block["args"]["cp_max"] = 10
        # No access-log line per request: at ~100 requests/s the fill's logging is not what is measured.
        # No stamp pack: each registration would also join the pack room, one room growing to all
        # 2,000 accounts at once (the set-up would be measured, not the backup; see bench/deploy.py).
        modules = [{**m, "config": {**m["config"], "stamps": []}} if m["module"] == STAMPS_MODULE else m
                   for m in suite_modules()]
        hs = Homeserver(HomeserverSpec(data_dir=root, modules=modules, database=database_block,
                                       extra={**RELAXED_RATE_LIMITS, "bcrypt_rounds": 4},
                                       access_log_level="WARNING"))
        stop_at_exit(hs.stop)
        hs.start()
        during: list[dict] = []

        async def backup_during_the_fill(sent: int) -> None:
            print(f"  {sent} messages sent: a backup while the fill goes on", flush=True)
            during.append(await asyncio.to_thread(backup_and_restore, hs, source_db, Path(tmp) / f"during-{sent}"))

        try:
            print(f"filling: {args.users} users, {args.messages} messages, a file every {args.file_every} "
                  f"({args.backend})", flush=True)
            filled = await fill(hs, args.users, args.messages, args.file_every, backup_during_the_fill,
                                frozenset(args.backup_during))
            print(f"  registered in {filled['register_s']:.0f} s, {filled['rooms']} rooms joined in "
                  f"{filled['join_s']:.0f} s, sent in {filled['send_s']:.0f} s ({filled['msgs_per_s']:.0f} msgs/s; "
                  f"{filled['media_files']} files, {filled['file_mb']:.0f} MB); fill {filled['fill_s']:.0f} s",
                  flush=True)
            after_the_fill = backup_and_restore(hs, source_db, Path(tmp) / "after")
        finally:
            hs.stop()
            if source_db is not None:
                source_db.drop()
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine(),
        "load": f"{args.users} users, {args.messages} messages, a file every {args.file_every}, {args.backend}",
        "load_1min_at_start": load_at_start, **filled, **after_the_fill, "during_the_fill": during,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--file-every", type=int, default=50, help="every Nth message is a file (0: none)")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--backup-during", type=int, nargs="*", default=[], metavar="SENT",
                        help="also back up and restore while the fill goes on, when SENT messages are sent")
    run(main, parser)
