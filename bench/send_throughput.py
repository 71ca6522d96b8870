#!/usr/bin/env python3
"""Message-send throughput: stock Synapse vs Synapse with every suite module.

The same load (N users each sending M messages into a fresh room, all at once,
half through the LGWAN listener and half through the internet listener) runs
against every homeserver in turn, for several rounds in one run, rotating which
goes first, so all see the same machine state. Prints per round msgs/s, p50,
p95 and the CPU time the Synapse process used per message, then the ratios
against stock: throughput (wall time) and messages per CPU second (less
sensitive to other load on the machine). Record results in docs/benchmarks.md.

    make bench                                   # 20 users x 50 messages, 6 rounds each
    make bench BENCH_ARGS="--attribute"          # also the suite without each module in turn
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
from urllib.parse import quote

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_average, machine, process_cpu_seconds, run, stop_at_exit
from lgwan_chat.homeserver import RELAXED_RATE_LIMITS, Homeserver, HomeserverSpec, suite_modules

#: After a round's last answer, Synapse still finishes work for the round's events (notifier,
#: stats and user directory updates): their CPU time is counted up to this many seconds later.
SETTLE_S = 1.0


def short_name(module: dict) -> str:
    """``synapse_modules.zones.ZonePolicyModule`` -> ``zones`` (the name ``--without`` takes)."""
    path = module["module"]
    return path.split(".")[1] if path.startswith("synapse_modules.") else path


def leave_out(modules: list[dict], names: list[str]) -> list[dict]:
    """The modules without those named (short name, or a prefix of the module path)."""
    def named(module: dict, name: str) -> bool:
        return short_name(module) == name or module["module"].startswith(name + ".") or module["module"] == name

    unknown = [n for n in names if not any(named(m, n) for m in modules)]
    if unknown:
        raise SystemExit(f"--without {', '.join(unknown)}: not a module of the suite "
                         f"(modules: {', '.join(short_name(m) for m in modules)})")
    return [m for m in modules if not any(named(m, n) for n in names)]


class Target:
    """One homeserver with its users, sending into a fresh room each round."""

    def __init__(self, label: str, data_dir: Path, modules: list):
        self.label = label
        self.modules = [short_name(m) for m in modules]
        self.hs = Homeserver(HomeserverSpec(data_dir=data_dir, modules=modules, extra=dict(RELAXED_RATE_LIMITS)))
        self.tokens: list[tuple[str, str]] = []  # (base url, access token)
        self.room_id = ""

    async def prepare(self, session: aiohttp.ClientSession, users: int) -> None:
        stop_at_exit(self.hs.stop)
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

        load = load_average()
        pid = self.hs.pid
        if pid is None:
            raise RuntimeError(f"{self.label}: Synapse is not running")
        cpu_before = process_cpu_seconds(pid)
        started = time.perf_counter()
        await asyncio.gather(*(sender(i, url, token) for i, (url, token) in enumerate(self.tokens)))
        elapsed = time.perf_counter() - started
        await asyncio.sleep(SETTLE_S)
        cpu = process_cpu_seconds(pid) - cpu_before
        latencies.sort()
        return {"label": self.label, "messages": len(latencies), "seconds": elapsed,
                "msgs_per_s": len(latencies) / elapsed,
                "p50_ms": 1000 * latencies[len(latencies) // 2],
                "p95_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))],
                "cpu_s": cpu, "cpu_ms_per_msg": 1000 * cpu / len(latencies), "load_1min": load}


async def _call(session: aiohttp.ClientSession, method: str, url: str, token: str, body: dict) -> dict:
    async with session.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        payload = await r.json()
        if r.status != 200:
            raise RuntimeError(f"{method} {url}: HTTP {r.status} {payload}")
        return payload


def make_targets(tmp: Path, args: argparse.Namespace) -> list[Target]:
    suite = leave_out(suite_modules(), args.without)
    targets = [Target("stock", tmp / "stock", []), Target("suite", tmp / "suite", suite)]
    if args.attribute:
        for name in (short_name(m) for m in suite):
            targets.append(Target(f"without {name}", tmp / f"without-{name}", leave_out(suite, [name])))
    return targets


def _ratio(numerators: list[float], denominators: list[float]) -> dict | None:
    """Per-round ratios, their median and range (rounds where a value is 0 are left out)."""
    rounds = [a / b for a, b in zip(numerators, denominators, strict=True) if a > 0 and b > 0]
    if not rounds:
        return None
    return {"median": statistics.median(rounds), "min": min(rounds), "max": max(rounds), "rounds": rounds}


def summarise(results: list[dict], targets: list[Target]) -> dict:
    by_label = {t.label: [r for r in results if r["label"] == t.label] for t in targets}
    stock = by_label["stock"]
    summary: dict = {"targets": {t.label: t.modules for t in targets}}
    for label, mine in by_label.items():
        entry = {key: statistics.median(r[key] for r in mine)
                 for key in ("msgs_per_s", "p50_ms", "p95_ms", "cpu_ms_per_msg")}
        # All rounds together: with the order rotating, every homeserver met the same mix of
        # machine load over the run, so the totals compare even when single rounds do not.
        entry["cpu_ms_per_msg_all_rounds"] = 1000 * sum(r["cpu_s"] for r in mine) / sum(r["messages"] for r in mine)
        if label != "stock":
            # Each round runs every homeserver back to back: the ratio within a round cancels slow
            # drift of the machine; the median over rounds and its range show how much noise there is.
            entry["throughput_ratio"] = _ratio([r["msgs_per_s"] for r in mine], [r["msgs_per_s"] for r in stock])
            # Messages per CPU second relative to stock (stock CPU / this CPU per message): the same
            # direction as the throughput ratio, 0.97 = this costs 3 % more CPU per message.
            entry["cpu_ratio"] = _ratio([r["cpu_ms_per_msg"] for r in stock], [r["cpu_ms_per_msg"] for r in mine])
            entry["cpu_ratio_all_rounds"] = (summary["stock"]["cpu_ms_per_msg_all_rounds"]
                                             / entry["cpu_ms_per_msg_all_rounds"]
                                             if entry["cpu_ms_per_msg_all_rounds"] > 0 else None)
        if label.startswith("without "):
            # What the module left out adds to the suite: suite CPU / CPU without it, minus 1.
            cost = _ratio([r["cpu_ms_per_msg"] for r in by_label["suite"]], [r["cpu_ms_per_msg"] for r in mine])
            entry["module_cpu_cost"] = cost and {k: v - 1 if k != "rounds" else [x - 1 for x in v]
                                                 for k, v in cost.items()}
            if cost and entry["cpu_ms_per_msg_all_rounds"] > 0:
                entry["module_cpu_cost"]["all_rounds"] = (summary["suite"]["cpu_ms_per_msg_all_rounds"]
                                                          / entry["cpu_ms_per_msg_all_rounds"] - 1)
        summary[label] = entry
    summary["round_ratios"] = summary["suite"]["throughput_ratio"]["rounds"]
    summary["ratio"] = summary["suite"]["throughput_ratio"]["median"]
    return summary


async def main(args: argparse.Namespace) -> dict:
    load_at_start = load_average()
    with tempfile.TemporaryDirectory(prefix="lgwan-bench-") as tmp:
        targets = make_targets(Path(tmp), args)
        results: list[dict] = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            try:
                for target in targets:
                    await target.prepare(session, args.users)
                    if args.warmup:
                        await target.round(session, args.warmup, "warmup")
                for r in range(args.rounds):
                    # Rotate which goes first so none always gets the warmer (or quieter) machine.
                    shift = r % len(targets)
                    for target in targets[shift:] + targets[:shift]:
                        result = await target.round(session, args.messages, f"r{r}")
                        results.append(result)
                        print(f"round {r + 1} {result['label']:>20}: {result['msgs_per_s']:7.1f} msgs/s  "
                              f"p50 {result['p50_ms']:6.1f} ms  p95 {result['p95_ms']:6.1f} ms  "
                              f"CPU {result['cpu_ms_per_msg']:5.2f} ms/msg  load {result['load_1min']:.2f}",
                              flush=True)
            finally:
                for target in targets:
                    target.hs.stop()
    summary = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine(),
               "load": f"{args.users} users x {args.messages} messages, {args.rounds} rounds, SQLite",
               "load_average": {"start": load_at_start, "end": load_average(),
                                "rounds_median": statistics.median(r["load_1min"] for r in results)},
               "rounds": results, **summarise(results, targets)}
    print(f"\n{summary['date']} | {summary['machine']} | {summary['load']} | load average "
          f"{load_at_start:.2f} at start, {summary['load_average']['rounds_median']:.2f} median of rounds")
    for target in targets:
        s = summary[target.label]
        line = (f"median {target.label:>20}: {s['msgs_per_s']:7.1f} msgs/s  p50 {s['p50_ms']:6.1f} ms  "
                f"p95 {s['p95_ms']:6.1f} ms  CPU {s['cpu_ms_per_msg']:5.2f} ms/msg")
        for key, name in (("throughput_ratio", "throughput"), ("cpu_ratio", "msgs per CPU s")):
            if s.get(key):
                line += f"  {name} {s[key]['median']:.3f} ({s[key]['min']:.3f}-{s[key]['max']:.3f})"
        if s.get("cpu_ratio_all_rounds"):
            line += f"  all rounds {s['cpu_ratio_all_rounds']:.3f}"
        if s.get("module_cpu_cost"):
            c = s["module_cpu_cost"]
            line += f"  module adds {100 * c['median']:+.1f} % CPU ({100 * c['min']:+.1f}..{100 * c['max']:+.1f}"
            line += f"; all rounds {100 * c['all_rounds']:+.1f} %)" if "all_rounds" in c else ")"
        print(line)
    cpu = summary["suite"]["cpu_ratio"]
    print(f"ratio suite/stock (throughput, median of rounds): {summary['ratio']:.3f}  "
          f"(rounds {min(summary['round_ratios']):.3f}-{max(summary['round_ratios']):.3f}; target >= 0.97)")
    if cpu:
        print(f"ratio suite/stock (messages per CPU second, median of rounds): {cpu['median']:.3f}  "
              f"(rounds {cpu['min']:.3f}-{cpu['max']:.3f}; all rounds together "
              f"{summary['suite']['cpu_ratio_all_rounds']:.3f})")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=50, help="messages per user per round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per homeserver")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured messages per user first")
    parser.add_argument("--without", action="append", default=[], metavar="MODULE",
                        help="leave a suite module out (short name: zones, read_status, stamps, bookmarks; "
                             "or its module path), to see what it costs")
    parser.add_argument("--attribute", action="store_true",
                        help="also run the suite without each of its modules in turn, in the same rotating rounds")
    run(main, parser)
