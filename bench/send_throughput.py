#!/usr/bin/env python3
"""Message-send throughput: stock Synapse vs Synapse with every suite module.

The same load (N users each sending M messages into one room, all at once,
half through the LGWAN listener and half through the internet listener) runs
against both homeservers, alternating, for several rounds in one run, so both
see the same machine state. Prints msgs/s, p50, p95 per round and the ratio
suite/stock of the median throughputs. Record results in docs/benchmarks.md.

    make bench                                   # 20 users x 50 messages, 6 rounds each
    .venv/bin/python bench/send_throughput.py --users 5 --messages 10 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, run
from lgwan_chat.homeserver import RELAXED_RATE_LIMITS, Homeserver, HomeserverSpec, suite_modules


class Target:
    """One homeserver with its users joined to one room."""

    def __init__(self, label: str, data_dir: Path, modules: list | None):
        self.label = label
        self.hs = Homeserver(HomeserverSpec(data_dir=data_dir, modules=modules, extra=dict(RELAXED_RATE_LIMITS)))
        self.tokens: list[tuple[str, str]] = []  # (base url, access token)
        self.room_id = ""

    async def prepare(self, session: aiohttp.ClientSession, users: int) -> None:
        self.hs.start()
        registered = [self.hs.register(f"sender{i}", f"bench-password-{i}") for i in range(users)]
        zones = ["lgwan", "internet"]
        self.tokens = [(self.hs.url(zones[i % 2]), r["access_token"]) for i, r in enumerate(registered)]

    async def new_room(self, session: aiohttp.ClientSession) -> None:
        """A fresh room per round: a long-used room slows every homeserver down as its
        event graph grows, which would make later rounds incomparable with earlier ones."""
        base, owner = self.tokens[0]
        body = await _call(session, "POST", f"{base}/_matrix/client/v3/createRoom", owner,
                           {"preset": "public_chat", "name": "bench"})
        self.room_id = body["room_id"]
        for url, token in self.tokens[1:]:
            await _call(session, "POST", f"{url}/_matrix/client/v3/join/{quote(self.room_id)}", token, {})

    async def round(self, session: aiohttp.ClientSession, messages: int, tag: str) -> dict:
        await self.new_room(session)
        latencies: list[float] = []

        async def sender(index: int, url: str, token: str) -> None:
            for n in range(messages):
                txn = f"{tag}-{index}-{n}"
                path = f"{url}/_matrix/client/v3/rooms/{quote(self.room_id)}/send/m.room.message/{txn}"
                started = time.perf_counter()
                await _call(session, "PUT", path, token, {"msgtype": "m.text", "body": f"報告 {n} / report {n}"})
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(sender(i, url, token) for i, (url, token) in enumerate(self.tokens)))
        elapsed = time.perf_counter() - started
        latencies.sort()
        return {"label": self.label, "messages": len(latencies), "seconds": elapsed,
                "msgs_per_s": len(latencies) / elapsed,
                "p50_ms": 1000 * latencies[len(latencies) // 2],
                "p95_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]}


async def _call(session: aiohttp.ClientSession, method: str, url: str, token: str, body: dict) -> dict:
    async with session.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        payload = await r.json()
        if r.status != 200:
            raise RuntimeError(f"{method} {url}: HTTP {r.status} {payload}")
        return payload


async def main(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="lgwan-bench-") as tmp:
        targets = [Target("stock", Path(tmp) / "stock", modules=[]),
                   Target("suite", Path(tmp) / "suite",
                          modules=[m for m in suite_modules() if not m["module"].startswith(tuple(args.without))])]
        results: list[dict] = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            try:
                for target in targets:
                    await target.prepare(session, args.users)
                    if args.warmup:
                        await target.round(session, args.warmup, "warmup")
                for r in range(args.rounds):
                    # Alternate which goes first so neither always gets the warmer machine.
                    for target in (targets if r % 2 == 0 else targets[::-1]):
                        result = await target.round(session, args.messages, f"r{r}")
                        results.append(result)
                        print(f"round {r + 1} {result['label']:>5}: {result['msgs_per_s']:7.1f} msgs/s  "
                              f"p50 {result['p50_ms']:6.1f} ms  p95 {result['p95_ms']:6.1f} ms", flush=True)
            finally:
                for target in targets:
                    target.hs.stop()
    summary: dict[str, Any] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine(),
               "load": f"{args.users} users x {args.messages} messages, {args.rounds} rounds, SQLite",
               "rounds": results}
    for label in ("stock", "suite"):
        mine = [r for r in results if r["label"] == label]
        summary[label] = {key: statistics.median(r[key] for r in mine) for key in ("msgs_per_s", "p50_ms", "p95_ms")}
    # Each round runs both back to back: the ratio within a round cancels slow drift of the
    # machine; the median over rounds and its range show how much noise there is.
    stocks, suites = ([r for r in results if r["label"] == label] for label in ("stock", "suite"))
    per_round = [suite["msgs_per_s"] / stock["msgs_per_s"] for stock, suite in zip(stocks, suites, strict=True)]
    summary["round_ratios"] = per_round
    summary["ratio"] = statistics.median(per_round)
    print(f"\n{summary['date']} | {summary['machine']} | {summary['load']}")
    for label in ("stock", "suite"):
        s = summary[label]
        print(f"median {label:>5}: {s['msgs_per_s']:7.1f} msgs/s  p50 {s['p50_ms']:6.1f} ms  p95 {s['p95_ms']:6.1f} ms")
    print(f"ratio suite/stock (throughput, median of rounds): {summary['ratio']:.3f}  "
          f"(rounds {min(per_round):.3f}-{max(per_round):.3f}; target >= 0.97)")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=50, help="messages per user per round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per homeserver")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured messages per user first")
    parser.add_argument("--without", action="append", default=[], metavar="MODULE",
                        help="leave a suite module out (e.g. synapse_modules.bookmarks), to see what it costs")
    run(main, parser)
