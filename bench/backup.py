#!/usr/bin/env python3
"""Backup and restore time and size (``lgwan-chat backup`` / ``restore``) for a deployment of
N users and M messages.

A Synapse with every module of the suite (SQLite or PostgreSQL) gets N users (registered through
the admin API), rooms of up to 100 members, M text messages sent concurrently by the members and
a few files in the media store; then ``lgwan_chat.operations`` backs it up while Synapse runs and
restores the backup into a fresh folder (and a fresh PostgreSQL database). Prints the time of each
step, the backup's size and the database's, the load average. Record results in docs/benchmarks.md.

    make bench-backup                                              # 200 users, 5,000 messages, SQLite
    make bench-backup BENCH_ARGS="--users 2000 --messages 100000 --backend postgres"
    .venv/bin/python bench/backup.py --users 20 --messages 200 --media 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_average, machine, run, stop_at_exit
from lgwan_chat.homeserver import RELAXED_RATE_LIMITS, Homeserver, HomeserverSpec, suite_modules
from lgwan_chat.operations.backup import backup
from lgwan_chat.operations.deployment import find
from lgwan_chat.operations.restore import restore, verify
from lgwan_chat.postgres import PostgresDatabase

ROOM_SIZE = 100
SENDERS = 16


async def _call(session: aiohttp.ClientSession, method: str, url: str, token: str, body: dict | bytes,
                content_type: str = "application/json") -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    kwargs: dict = {"json": body} if isinstance(body, dict) else {"data": body}
    if not isinstance(body, dict):
        headers["Content-Type"] = content_type
    async with session.request(method, url, headers=headers, **kwargs) as r:
        payload = await r.json()
        if r.status != 200:
            raise RuntimeError(f"{method} {url}: HTTP {r.status} {payload}")
        return payload


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def database_size(hs: Homeserver, database: PostgresDatabase | None) -> int:
    if database is not None:
        return int(database.query("SELECT pg_database_size(current_database())")[0][0])
    return sum(p.stat().st_size for p in hs.data_dir.glob("homeserver.db*"))


async def fill(hs: Homeserver, users: int, messages: int, media: int) -> dict:
    started = time.perf_counter()
    tokens = [hs.register(f"staff{i}", f"bench-password-{i}")["access_token"] for i in range(users)]
    registered = time.perf_counter()
    base = hs.url("lgwan")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=SENDERS * 2)) as session:
        rooms: list[tuple[str, list[str]]] = []
        for first in range(0, users, ROOM_SIZE):
            members = tokens[first:first + ROOM_SIZE]
            room = await _call(session, "POST", f"{base}/_matrix/client/v3/createRoom", members[0],
                               {"preset": "public_chat", "name": f"課 {first // ROOM_SIZE}"})
            rooms.append((room["room_id"], members))
        joins = asyncio.Semaphore(SENDERS)

        async def join(room_id: str, token: str) -> None:
            async with joins:
                await _call(session, "POST", f"{base}/_matrix/client/v3/join/{quote(room_id)}", token, {})

        await asyncio.gather(*(join(room_id, t) for room_id, members in rooms for t in members[1:]))
        joined = time.perf_counter()
        plan = [(rooms[n % len(rooms)][0], rooms[n % len(rooms)][1][(n // len(rooms)) % len(rooms[n % len(rooms)][1])])
                for n in range(messages)]

        async def sender(worker: int) -> None:
            for n in range(worker, messages, SENDERS):
                room_id, token = plan[n]
                await _call(session, "PUT", f"{base}/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/"
                            f"b{n}", token, {"msgtype": "m.text", "body": f"業務連絡 {n}: 本日の会議資料を共有します"})

        await asyncio.gather(*(sender(w) for w in range(SENDERS)))
        sent = time.perf_counter()
        for n in range(media):
            data = os.urandom(200 * 1024)
            await _call(session, "POST", f"{base}/_matrix/media/v3/upload?filename=f{n}.bin", tokens[n % users],
                        data, "application/octet-stream")
    return {"register_s": registered - started, "join_s": joined - registered, "send_s": sent - joined,
            "msgs_per_s": messages / max(sent - joined, 1e-9)}


async def main(args: argparse.Namespace) -> dict:
    load_at_start = load_average()
    databases: list[PostgresDatabase] = []
    with tempfile.TemporaryDirectory(prefix="lgwan-bench-backup-") as tmp:
        root = Path(tmp) / "deployment"
        source_db = PostgresDatabase() if args.backend == "postgres" else None
        if source_db is not None:
            databases.append(source_db)
            stop_at_exit(source_db.drop)
        hs = Homeserver(HomeserverSpec(data_dir=root, modules=suite_modules(),
                                       database=source_db.synapse_config() if source_db else None,
                                       extra={**RELAXED_RATE_LIMITS, "bcrypt_rounds": 4}))
        stop_at_exit(hs.stop)
        hs.start()
        try:
            print(f"filling: {args.users} users, {args.messages} messages, {args.media} files ({args.backend})",
                  flush=True)
            filled = await fill(hs, args.users, args.messages, args.media)
            print(f"  registered in {filled['register_s']:.0f} s, joined in {filled['join_s']:.0f} s, "
                  f"sent in {filled['send_s']:.0f} s ({filled['msgs_per_s']:.0f} msgs/s)", flush=True)
            db_bytes = database_size(hs, source_db)
            load = load_average()
            began = time.perf_counter()
            manifest = backup(find(root), Path(tmp) / "backup")  # Synapse running, as in production
            backup_s = time.perf_counter() - began
        finally:
            hs.stop()
        backup_bytes = dir_size(Path(tmp) / "backup")
        began = time.perf_counter()
        verify(Path(tmp) / "backup")
        verify_s = time.perf_counter() - began
        target_db = PostgresDatabase() if args.backend == "postgres" else None
        if target_db is not None:
            databases.append(target_db)
            stop_at_exit(target_db.drop)
        began = time.perf_counter()
        restore(Path(tmp) / "backup", Path(tmp) / "restored", postgres_database=target_db.name if target_db else None)
        restore_s = time.perf_counter() - began  # includes verifying the backup first
        shutil.rmtree(root, ignore_errors=True)
    for database in databases:
        database.drop()
    summary = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine(),
        "load": f"{args.users} users, {args.messages} messages, {args.media} files of 200 KB, {args.backend}",
        "load_1min_at_start": load_at_start, "load_1min_at_backup": load, **filled,
        "database_mb": db_bytes / 1e6, "backup_mb": backup_bytes / 1e6, "files": len(manifest["files"]),
        "backup_s": backup_s, "verify_s": verify_s, "restore_s": restore_s,
    }
    print(f"database {summary['database_mb']:.1f} MB; backup {summary['backup_mb']:.1f} MB in "
          f"{summary['files']} files")
    print(f"backup {backup_s:.1f} s, verify {verify_s:.1f} s, restore (verify included) {restore_s:.1f} s; "
          f"load average {load:.2f} at the backup")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--media", type=int, default=20, help="files of 200 KB in the media store")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    run(main, parser)
