#!/usr/bin/env python3
"""A registration storm with the stamp pack on and off: N new accounts at once, as on the Monday
morning when every member of staff signs in for the first time.

For each mode (pack off, then pack on) a fresh Synapse with every module of the suite (SQLite or
PostgreSQL) gets N accounts registered through the shared-secret admin API (``bcrypt_rounds: 4``
for these bench accounts), CONCURRENCY requests in flight. Reported per mode: the time until every
registration had returned, the time until every account had the pack (joined to ``#stamps:SERVER``,
``im.ponies.emote_rooms`` and the ``m.widgets`` sticker picker in its account data; read from the
database every second), Synapse's CPU seconds, the load average (at the start, the highest seen,
at the end), the pack room's member count; then the ratio pack on / pack off. Record results in
docs/benchmarks.md.

    make bench-stamps                                      # 2,000 accounts, 48 in flight, SQLite
    make bench-stamps BENCH_ARGS="--users 200 --backend postgres"
    .venv/bin/python bench/stamp_pack.py --users 500 --concurrency 100 --modes on
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_average, machine, process_cpu_seconds, run, stop_at_exit
from lgwan_chat.homeserver import (
    REGISTER_PATH,
    RELAXED_RATE_LIMITS,
    Homeserver,
    HomeserverSpec,
    registration_body,
    suite_modules,
)
from lgwan_chat.postgres import PostgresDatabase

STAMPS_MODULE = "synapse_modules.stamps.StampsModule"
#: The bench's accounts (the suite's own, such as @stamps, are left out of the counts).
LOCALPART = "staff"


def modules(pack: bool) -> list[dict]:
    """Every module of the suite; without the pack, the stamps module with no stamps (as
    bench/deploy.py ran it): acknowledgement stamps only."""
    suite = suite_modules()
    if not pack:
        for entry in suite:
            if entry["module"] == STAMPS_MODULE:
                entry["config"]["stamps"] = []
    return suite


class Database:
    """Read-only questions to the homeserver's database while it runs."""

    def __init__(self, hs: Homeserver, postgres: PostgresDatabase | None):
        self._hs = hs
        self._postgres = postgres

    def query(self, sql: str, *args: object) -> list[tuple]:
        if self._postgres is not None:
            return self._postgres.query(sql, *args)
        for attempt in range(10):
            try:
                conn = sqlite3.connect(f"file:{self._hs.data_dir / 'homeserver.db'}?mode=ro", uri=True, timeout=5)
                try:
                    return conn.execute(sql, args).fetchall()
                finally:
                    conn.close()
            except sqlite3.OperationalError:  # locked by a write of Synapse's: ask again
                time.sleep(0.1 * (attempt + 1))
        raise RuntimeError(f"database busy: {sql}")

    def pack_room(self) -> str | None:
        rows = self.query("SELECT room_id FROM room_aliases WHERE room_alias = ?", f"#stamps:{self._hs.server_name}")
        if not rows:
            return None
        published = self.query("SELECT COUNT(*) FROM current_state_events WHERE room_id = ? AND type = ?",
                               rows[0][0], "m.room.image_pack")
        return str(rows[0][0]) if published[0][0] else None

    def members(self, room_id: str) -> int:
        return int(self.query("SELECT COUNT(*) FROM local_current_membership WHERE room_id = ? AND membership = ?",
                              room_id, "join")[0][0])

    def accounts_with_pack(self, room_id: str) -> int:
        """Bench accounts joined to the pack room AND holding both account data entries."""
        return int(self.query(
            "SELECT COUNT(*) FROM local_current_membership m WHERE m.room_id = ? AND m.membership = 'join'"
            " AND m.user_id LIKE ? AND EXISTS (SELECT 1 FROM account_data a WHERE a.user_id = m.user_id"
            " AND a.account_data_type = 'im.ponies.emote_rooms')"
            " AND EXISTS (SELECT 1 FROM account_data w WHERE w.user_id = m.user_id"
            " AND w.account_data_type = 'm.widgets')", room_id, f"@{LOCALPART}%")[0][0])


async def _register(session: aiohttp.ClientSession, hs: Homeserver, users: int, concurrency: int) -> None:
    """``users`` accounts through the shared-secret admin API, ``concurrency`` at a time."""
    url = hs.url("lgwan") + REGISTER_PATH
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            async with session.get(url) as r:
                nonce = (await r.json())["nonce"]
            body = registration_body(hs.registration_shared_secret, nonce, f"{LOCALPART}{i}", f"bench-password-{i}")
            async with session.post(url, json=body) as r:
                if r.status != 200:
                    raise RuntimeError(f"registration {i}: HTTP {r.status} {await r.text()}")

    await asyncio.gather(*(one(i) for i in range(users)))


async def measure(args: argparse.Namespace, pack: bool, tmp: Path) -> dict:
    postgres = PostgresDatabase() if args.backend == "postgres" else None
    database_block = None
    if postgres is not None:
        stop_at_exit(postgres.drop)
        database_block = postgres.synapse_config()
        database_block["args"]["cp_max"] = 10
    hs = Homeserver(HomeserverSpec(data_dir=tmp / ("on" if pack else "off"), modules=modules(pack),
                                   database=database_block, extra={**RELAXED_RATE_LIMITS, "bcrypt_rounds": 4},
                                   access_log_level="WARNING"))
    stop_at_exit(hs.stop)
    hs.start()
    db = Database(hs, postgres)
    room_id = None
    try:
        if pack:  # the pack is published in the background at startup: measure the storm, not that
            deadline = time.monotonic() + 120
            while (room_id := db.pack_room()) is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("the stamp pack was not published within 2 minutes")
                await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # let the startup's own work (backfill, background updates) settle
        load_at_start = load_average()
        cpu_at_start = process_cpu_seconds(hs.pid) if hs.pid else float("nan")
        peak = load_at_start
        started = time.perf_counter()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency * 2),
                                         timeout=aiohttp.ClientTimeout(total=args.give_up)) as session:
            storm = asyncio.ensure_future(_register(session, hs, args.users, args.concurrency))
            registered_s = None
            with_pack = 0
            last_report = started
            while True:
                await asyncio.sleep(1)
                now = time.perf_counter()
                peak = max(peak, load_average())
                if storm.done() and registered_s is None:
                    storm.result()  # a failed registration stops the bench
                    registered_s = now - started
                    print(f"  all {args.users} registrations returned after {registered_s:.1f} s", flush=True)
                if room_id is not None:
                    with_pack = await asyncio.to_thread(db.accounts_with_pack, room_id)
                if registered_s is not None and (room_id is None or with_pack >= args.users):
                    break
                if now - started > args.give_up:
                    storm.cancel()
                    print(f"  gave up after {args.give_up} s", flush=True)
                    break
                if now - last_report >= 15:
                    last_report = now
                    progress = f"{with_pack} accounts have the pack" if pack else "registering"
                    print(f"  {now - started:.0f} s: {progress}, load {load_average():.1f}", flush=True)
            pack_s = time.perf_counter() - started if (room_id is None or with_pack >= args.users) else None
        cpu = (process_cpu_seconds(hs.pid) if hs.pid else float("nan")) - cpu_at_start
        members = db.members(room_id) if room_id else 0
        load_at_end = load_average()
    finally:
        hs.stop()
        if postgres is not None:
            postgres.drop()
    return {"pack": pack, "registered_s": registered_s, "all_have_pack_s": pack_s if pack else registered_s,
            "accounts_with_pack": with_pack if pack else None, "pack_room_members": members if pack else None,
            "synapse_cpu_s": cpu, "load_1min_at_start": load_at_start, "load_1min_peak": peak,
            "load_1min_at_end": load_at_end}


def _ratio(on: float | None, off: float | None) -> float | None:
    return on / off if on is not None and off else None


async def main(args: argparse.Namespace) -> dict:
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="lgwan-bench-stamps-") as tmp:
        for mode in args.modes:
            print(f"{args.users} registrations, {args.concurrency} in flight, pack {mode} ({args.backend})", flush=True)
            r = results[mode] = await measure(args, mode == "on", Path(tmp))
            members = f", pack room {r['pack_room_members']} members" if r["pack"] else ""
            print(f"  pack {mode}: registered in {r['registered_s'] or float('nan'):.1f} s, every account has the "
                  f"pack after {r['all_have_pack_s'] or float('nan'):.1f} s{members}; Synapse CPU "
                  f"{r['synapse_cpu_s']:.0f} s; load {r['load_1min_at_start']:.1f} -> peak {r['load_1min_peak']:.1f}",
                  flush=True)
    summary: dict = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine(),
                     "load": f"{args.users} registrations, {args.concurrency} in flight, {args.backend}", **results}
    if "on" in results and "off" in results:
        on, off = results["on"], results["off"]
        summary["ratio"] = {key: _ratio(on[key], off[key]) for key in ("registered_s", "all_have_pack_s",
                                                                         "synapse_cpu_s")}
        print("pack on / off: " + ", ".join(f"{k} {v:.2f}" if v is not None else f"{k} -"
                                            for k, v in summary["ratio"].items()))
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=48, help="registrations in flight at once")
    parser.add_argument("--modes", nargs="+", choices=("off", "on"), default=["off", "on"])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--give-up", type=float, default=1200, help="seconds after which a mode is reported unfinished")
    run(main, parser)
