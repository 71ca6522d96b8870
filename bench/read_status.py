#!/usr/bin/env python3
"""Read status latency in a big room: 5,000 joined members, 10,000 events, receipts spread.

Builds the room through the real client APIs of a real Synapse with every suite module
(SQLite, and PostgreSQL when reachable), then times
- single queries  GET  /rooms/{room}/read_status/{event}  on events spread over the history,
- batch queries   POST /rooms/{room}/read_status  with 50 consecutive event IDs,
- the same batch as the room's last 50 events (GET ?limit=50),
and prints p50 / p95 per backend. Targets: single p95 < 20 ms, batch of 50 p95 < 100 ms.

    make bench-read-status
    .venv/bin/python bench/read_status.py --members 500 --events 1000   # a quicker look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, run
from lgwan_chat.homeserver import RELAXED_RATE_LIMITS, Homeserver, HomeserverSpec, suite_modules
from lgwan_chat.postgres import PostgresDatabase, postgres_unreachable_reason

PREFIX = "/_synapse/client/lgwan/v1/rooms"


async def call(session, method, url, token, body=None):
    async with session.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        payload = await r.json()
        if r.status != 200:
            raise RuntimeError(f"{method} {url}: {r.status} {payload}")
        return payload


async def bounded(n: int, jobs):
    """Run coroutines with at most ``n`` in flight."""
    semaphore = asyncio.Semaphore(n)

    async def run(job):
        async with semaphore:
            return await job

    return await asyncio.gather(*(run(j) for j in jobs))


async def populate(session, hs: Homeserver, members: int, events: int, seed: int) -> tuple[str, list[str], str]:
    rng = random.Random(seed)
    url = hs.url("internet")
    started = time.perf_counter()
    tokens = [hs.register(f"staff{i:05d}", "bench")["access_token"] for i in range(members)]
    print(f"  registered {members} users in {time.perf_counter() - started:.0f}s", flush=True)
    owner = tokens[0]
    room = (await call(session, "POST", f"{url}/_matrix/client/v3/createRoom", owner,
                       {"preset": "public_chat", "name": "全職員"}))["room_id"]

    async def join(tokens_to_join: list[str]) -> None:
        await bounded(16, [call(session, "POST", f"{url}/_matrix/client/v3/join/{quote(room)}", t, {})
                           for t in tokens_to_join])

    # The history is written while only its writers are members: Synapse evaluates push rules
    # for every member on every message, so sending into a 5,000-member room runs at about
    # 2 messages/s on this machine, and 10,000 messages would take hours to set up. Few writers,
    # too: each keeps push actions for every message, which Synapse revisits on each receipt.
    senders = tokens[1: 1 + max(2, members // 500)]
    await join(senders)
    event_ids: list[str] = []
    roots: list[str] = []
    threaded: set[str] = set()
    started = time.perf_counter()
    for start in range(0, events, 200):
        async def send(n: int) -> tuple[str, bool]:
            content: dict[str, Any] = {"msgtype": "m.text", "body": f"連絡 {n}"}
            in_thread = bool(roots) and rng.random() < 0.05  # some replies in threads
            if in_thread:
                content["m.relates_to"] = {"rel_type": "m.thread", "event_id": rng.choice(roots)}
            token = senders[n % len(senders)]
            sent = await call(session, "PUT", f"{url}/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/b{n}",
                              token, content)
            return sent["event_id"], in_thread
        chunk = await bounded(20, [send(n) for n in range(start, min(events, start + 200))])
        event_ids.extend(e for e, _ in chunk)
        threaded.update(e for e, in_thread in chunk if in_thread)
        roots.extend(e for e, in_thread in chunk[:4] if not in_thread)
    print(f"  {events} events in {time.perf_counter() - started:.0f}s", flush=True)
    started = time.perf_counter()
    await join([t for t in tokens[1:] if t not in set(senders)])
    print(f"  {members} members joined in {time.perf_counter() - started:.0f}s", flush=True)

    started = time.perf_counter()

    async def read(token: str) -> None:
        event = event_ids[min(len(event_ids) - 1, int(len(event_ids) * rng.random() ** 0.5))]  # most read recent
        body = {"thread_id": "main"} if event not in threaded and rng.random() < 0.2 else {}
        await call(session, "POST", f"{url}/_matrix/client/v3/rooms/{quote(room)}/receipt/m.read/{quote(event)}",
                   token, body)

    await bounded(20, [read(t) for t in tokens])
    print(f"  {members} receipts in {time.perf_counter() - started:.0f}s", flush=True)
    return room, event_ids, owner


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def measure(session, hs: Homeserver, room: str, event_ids: list[str], token: str, queries: int,
                  seed: int) -> dict:
    rng = random.Random(seed)
    url = hs.url("internet")  # where the token's device is bound
    single, batch, recent = [], [], []
    for _ in range(queries):
        event = rng.choice(event_ids)
        started = time.perf_counter()
        answer = await call(session, "GET", f"{url}{PREFIX}/{quote(room)}/read_status/{quote(event)}", token)
        single.append(1000 * (time.perf_counter() - started))
        assert answer["read_count"] + answer["unread_count"] > 0
    for _ in range(max(10, queries // 4)):
        start = rng.randrange(0, len(event_ids) - 50)
        started = time.perf_counter()
        await call(session, "POST", f"{url}{PREFIX}/{quote(room)}/read_status", token,
                   {"event_ids": event_ids[start:start + 50]})
        batch.append(1000 * (time.perf_counter() - started))
        started = time.perf_counter()
        await call(session, "GET", f"{url}{PREFIX}/{quote(room)}/read_status?limit=50", token)
        recent.append(1000 * (time.perf_counter() - started))
    return {name: {"p50_ms": statistics.median(v), "p95_ms": percentile(v, 0.95), "n": len(v)}
            for name, v in (("single", single), ("batch_50", batch), ("recent_50", recent))}


async def measure_while_reading(session, hs: Homeserver, room: str, event_ids: list[str], members: int,
                                queries: int, seed: int) -> dict:
    """Single queries in a room that keeps moving: before each, another member sends a read receipt
    (what a busy room looks like), so no answer can come from a view of the room older than that."""
    rng = random.Random(seed + 1)
    url = hs.url("internet")
    tokens = []
    for i in rng.sample(range(1, members), min(20, members - 1)):
        login = await session.post(f"{url}/_matrix/client/v3/login", json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": f"staff{i:05d}"},
            "password": "bench"})
        if login.status == 200:
            tokens.append((await login.json())["access_token"])
    asker = tokens.pop()
    timings = []
    for n in range(queries):
        reader = tokens[n % len(tokens)]
        await call(session, "POST", f"{url}/_matrix/client/v3/rooms/{quote(room)}/receipt/m.read/"
                   f"{quote(event_ids[rng.randrange(len(event_ids) // 2, len(event_ids))])}", reader, {})
        event = rng.choice(event_ids)
        started = time.perf_counter()
        await call(session, "GET", f"{url}{PREFIX}/{quote(room)}/read_status/{quote(event)}", asker)
        timings.append(1000 * (time.perf_counter() - started))
    return {"single_after_receipt": {"p50_ms": statistics.median(timings), "p95_ms": percentile(timings, 0.95),
                                     "n": len(timings)}}


def homeserver(data_dir: Path, database: PostgresDatabase | None, cache_rooms: int) -> Homeserver:
    # Every suite module but stamps: the stamp pack joins each new account to the pack room,
    # which would double the time to set up 5,000 accounts without touching read status.
    modules = [m for m in suite_modules() if not m["module"].startswith("synapse_modules.stamps")]
    for module in modules:
        if module["module"].startswith("synapse_modules.read_status"):
            module["config"] = {**(module.get("config") or {}), "cache_rooms": cache_rooms}
    return Homeserver(HomeserverSpec(
        data_dir=data_dir, access_log_level="WARNING", modules=modules,
        database=database.synapse_config() if database else None,
        extra={**RELAXED_RATE_LIMITS, "bcrypt_rounds": 4}))  # fast password hashing: setup only


async def run_backend(backend: str, args) -> dict:
    kept = args.keep.resolve() / backend if args.keep else None
    state_file = kept / "bench-state.json" if kept else None
    state = json.loads(state_file.read_text()) if state_file and state_file.exists() else None
    if state:
        database = PostgresDatabase(existing=state["database"]) if backend == "postgres" else None
    else:
        database = PostgresDatabase() if backend == "postgres" else None
    result: dict = {}
    with contextlib.ExitStack() as cleanup:
        if kept:
            kept.mkdir(parents=True, exist_ok=True)
            data_dir = kept
        else:
            data_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix=f"lgwan-bench-rs-{backend}-")))
        if database and not kept:
            cleanup.callback(database.drop)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            for cache_rooms in args.cache_rooms:
                # Each setting on a freshly started Synapse: nothing in memory from the previous one.
                hs = homeserver(data_dir, database, cache_rooms)
                hs.start()
                try:
                    if state is None:
                        print(f"{backend}: building a room of {args.members} members and {args.events} events",
                              flush=True)
                        room, event_ids, token = await populate(session, hs, args.members, args.events, args.seed)
                        state = {"room": room, "event_ids": event_ids, "token": token, "members": args.members,
                                 "database": database.name if database else None}
                        if state_file:
                            state_file.write_text(json.dumps(state))
                    elif not result:
                        print(f"{backend}: using the room kept in {kept}", flush=True)
                    room, event_ids, token, members = (state["room"], state["event_ids"], state["token"],
                                                       state["members"])
                    if database:
                        # What autovacuum does in a deployment (it is off on some test machines):
                        # planner statistics that know the room now has 15,000 events.
                        database.analyze()
                    timings = await measure(session, hs, room, event_ids, token, args.queries, args.seed)
                    timings.update(await measure_while_reading(session, hs, room, event_ids, members,
                                                               args.queries, args.seed))
                finally:
                    hs.stop()
                result[f"cache_rooms={cache_rooms}"] = timings
                for name, r in timings.items():
                    print(f"{backend:>8} cache_rooms={cache_rooms:<4} {name:>20}: p50 {r['p50_ms']:6.1f} ms  "
                          f"p95 {r['p95_ms']:6.1f} ms  (n={r['n']})", flush=True)
    if state is not None:  # None only when no --cache-rooms setting was measured
        result["room"] = {"members": state["members"], "events": len(state["event_ids"])}
    return result


async def main(args) -> dict:
    backends = ["sqlite"] + (["postgres"] if postgres_unreachable_reason() is None else [])
    results = {b: await run_backend(b, args) for b in backends}
    summary = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "results": results}
    rooms = {f"{r['room']['members']} members, {r['room']['events']} events" for r in results.values()}
    print(f"\n{summary['date']} | {summary['machine']} | {'; '.join(sorted(rooms))} | "
          f"backends: {', '.join(backends)}")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache-rooms", type=lambda v: [int(x) for x in v.split(",")], default=[0, 200],
                        help="read status module's cache_rooms settings to measure, comma separated "
                             "(default 0,200: without and with the room cache)")
    parser.add_argument("--keep", type=Path,
                        help="keep the homeservers and their room in this folder and use them again on the next "
                             "run (building the room takes most of the time; the room's read receipts move on "
                             "with every run)")
    run(main, parser)
