#!/usr/bin/env python3
"""Monolith vs workers on PostgreSQL, in the same run: the deployments ``lgwan-chat deploy init``
writes (``size: single`` and ``size: workers``), started from their own files as tests/test_deploy.py
starts them (tests/support/deployment.py), reached through the generated nginx with TLS.

Both deployments run side by side. One room per deployment grows through the member counts given
(default 500, 1000, 2000); at each size, with the order of the two rotating,
(a) sends: ``--senders`` members send ``--messages`` messages in all into the room, at once;
    messages/s, send latency p50/p95, and the CPU time per message of every Synapse process
    together, of the PostgreSQL backends serving the deployment's database, and of nginx
    (``/proc``, as bench/send_throughput.py: CPU time is less sensitive to other load than wall time);
(b) sync: ``--sync-clients`` members hold ``/sync`` (long-polling, lazy-loaded members) while
    ``--sync-senders`` others send ``--sync-messages`` each: send latency p50/p95 and the sync
    delivery delay (send started -> a holding client has it), p50/p95/max over every
    (message, client) pair, and the deliveries missed within ``--deliver-timeout`` seconds.
The joins that grow the room are timed too (a join is an event every member's push rules see).

The bench's own client (aiohttp, one process) shares the machine: with 500 sync clients it is
part of the load. Record results in docs/benchmarks.md.

    make bench-deploy                                       # 500/1000/2000 members, 500 sync clients
    make bench-deploy BENCH_ARGS="--members 200,400 --sync-clients 100 --messages 60"   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import ssl
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import psycopg2
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

from deployment import Deployment, deploy, deployed_nginx, make_tls  # tests/support

from bench.common import load_average, machine, process_cpu_seconds, run, stop_at_exit
from lgwan_chat.homeserver import RELAXED_RATE_LIMITS
from lgwan_chat.postgres import PG_SETTINGS, PostgresDatabase, postgres_unreachable_reason

#: After the last answer, Synapse still works for the events (notifier, push actions, stats):
#: their CPU time is counted up to this many seconds later.
SETTLE_S = 1.5

#: What a client on a big room asks /sync for: members lazy-loaded (Element does the same), a
#: timeline of ``--timeline-limit`` events (more since the last sync: the answer is ``limited``, a gap a
#: client fills by paginating; counted as ``limited_syncs``, its messages as missed), no presence.
def sync_filter(timeline_limit: int) -> dict:
    return {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": timeline_limit}},
            "presence": {"types": []}, "account_data": {"types": []}}


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def bounded(n: int, jobs: list) -> list:
    semaphore = asyncio.Semaphore(n)

    async def one(job: Any) -> Any:
        async with semaphore:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs))


async def call(session: aiohttp.ClientSession, method: str, url: str, token: str | None = None,
               body: dict | None = None, timeout: float = 300) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for attempt in range(5):
        async with session.request(method, url, json=body, headers=headers,
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            payload = await r.json(content_type=None)
            if r.status == 200:
                return payload
            if r.status not in (429, 502, 503, 504) or attempt == 4:
                raise RuntimeError(f"{method} {url}: HTTP {r.status} {payload}")
        await asyncio.sleep(1 + attempt)
    raise AssertionError("unreachable")


def cpu_of(pids: list[int]) -> dict[int, float]:
    seconds = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):  # ended meanwhile
            seconds[pid] = process_cpu_seconds(pid)
    return seconds


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Target:
    """One generated deployment (``single`` or ``workers``) with its users and its room."""

    def __init__(self, size: str, tmp: Path):
        self.size = size
        tmp.mkdir(parents=True)
        self.tls = make_tls(tmp / "tls")  # where Deployment looks for the CA its processes trust
        tls = self.tls
        self.database = PostgresDatabase()
        stop_at_exit(self.database.drop)
        postgres: dict[str, Any] = {"host": PG_SETTINGS["host"], "port": PG_SETTINGS["port"],
                                    "user": PG_SETTINGS["user"], "database": self.database.name}
        if "password" in PG_SETTINGS:
            (tmp / "pg.password").write_text(PG_SETTINGS["password"])
            (tmp / "pg.password").chmod(0o600)
            postgres["password_file"] = str(tmp / "pg.password")
        self.deployment: Deployment = deploy(
            tmp, tls, size, {"postgres": postgres}, [],
            redis={"host": "127.0.0.1"} if size == "workers" else None,
            server_name=f"bench-{size}-{secrets.token_hex(3)}.example")
        self.tokens: list[tuple[str, str]] = []  # (entrance url, access token)
        self.room_id = ""
        self.joined = 0

    def start(self) -> None:
        d = self.deployment
        # What the admin edits in the seeded homeserver.yaml for a load test: no rate limits (every
        # simulated member sits behind the same address), fast password hashing for 2,000 accounts.
        homeserver = d.out / "synapse" / "homeserver.yaml"
        config = yaml.safe_load(homeserver.read_text())
        config.update({**RELAXED_RATE_LIMITS, "bcrypt_rounds": 4})
        homeserver.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
        # No stamp pack: a registration would also join the pack room, a second room growing to
        # every member (as costly as the measured room's joins, doubling the set-up of 2,000 accounts).
        # The measured room, its sends and its syncs do not involve the pack room.
        modules = d.out / "synapse" / "modules.yaml"
        suite = yaml.safe_load(modules.read_text())
        for entry in suite["modules"]:
            if entry["module"] == "synapse_modules.stamps.StampsModule":
                entry["config"]["stamps"] = []
            # Internet-side devices need approval (§4.12) before anything else: the bench's are
            # taken as approved, i.e. not checked (an approved device's check is a cached lookup).
            if entry["module"] == "synapse_modules.zones.ZonePolicyModule":
                entry["config"]["device_approval"] = {"internet": "off", "lgwan": "off"}
        modules.write_text(yaml.safe_dump(suite, allow_unicode=True, sort_keys=False))
        # PostgreSQL's connections are shared with the machine's other work (max_connections 100 on
        # a default Debian install): each process opens 1 at start, workers' processes at most 4 each.
        shared = d.out / "synapse" / "deploy.yaml"
        wiring = yaml.safe_load(shared.read_text())
        wiring["database"]["args"].update({"cp_min": 1, "cp_max": 4 if self.size == "workers" else 10})
        shared.write_text(yaml.safe_dump(wiring, allow_unicode=True, sort_keys=False))
        self.monitor = psycopg2.connect(dbname=self.database.name, **PG_SETTINGS)  # before the load
        self.monitor.autocommit = True
        stop_at_exit(self.monitor.close)
        stop_at_exit(d.stop)
        d.start_synapse()
        # A production host's nginx.conf: enough connections for every held /sync and its upstream.
        d.nginx = deployed_nginx(d.tmp, d.out, d.doc)
        d.nginx.conf.write_text(d.nginx.conf.read_text().replace("worker_connections 512;",
                                                                   "worker_connections 8192;"))
        d.nginx.start()

    @property
    def processes(self) -> int:
        return len(self.deployment.processes)

    def synapse_pids(self) -> list[int]:
        return [p.pid for p in self.deployment.processes if p.poll() is None]

    def nginx_pids(self) -> list[int]:
        nginx = self.deployment.nginx
        if nginx is None or nginx.process is None:
            return []
        return [nginx.process.pid, *children(nginx.process.pid)]

    def postgres_pids(self) -> list[int]:
        with self.monitor.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid()")
            return [pid for (pid,) in cur.fetchall()]

    def cpu_sample(self) -> dict[str, dict[int, float]]:
        return {"synapse": cpu_of(self.synapse_pids()), "postgres": cpu_of(self.postgres_pids()),
                "nginx": cpu_of(self.nginx_pids())}

    @staticmethod
    def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
        return {kind: sum(seconds - before[kind].get(pid, 0.0) for pid, seconds in after[kind].items())
                for kind in after}

    def per_process_cpu(self) -> dict[str, float]:
        d = self.deployment
        names = ["main", *sorted(p.stem for p in (d.out / "synapse" / "workers").glob("*.yaml"))]
        return {name: process_cpu_seconds(p.pid) for name, p in zip(names, d.processes, strict=False)
                if p.poll() is None}

    async def register(self, session: aiohttp.ClientSession, count: int) -> None:
        d = self.deployment
        secret = (d.out / "secrets" / "registration_shared_secret").read_text().strip()
        zones = ["lgwan", "internet"]
        registered = [len(self.tokens)]

        async def one(i: int) -> tuple[str, str]:
            zone = zones[i % 2]  # a device stays in the zone it logged in from
            url = d.synapse_url(zone) + "/_synapse/admin/v1/register"
            nonce = (await call(session, "GET", url))["nonce"]
            localpart, password = f"staff{i:05d}", f"bench-{i}"
            mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
            mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), b"notadmin"]))
            body = await call(session, "POST", url, body={"nonce": nonce, "username": localpart,
                                                          "password": password, "admin": False,
                                                          "mac": mac.hexdigest()})
            registered[0] += 1
            if registered[0] % 500 == 0:  # progress: this part is long and not measured
                print(f"  {self.size}: {registered[0]} accounts registered", flush=True)
            return d.url(zone), body["access_token"]

        self.tokens += await bounded(16, [one(i) for i in range(len(self.tokens), count)])

    async def grow(self, session: aiohttp.ClientSession, members: int) -> dict:
        """Join members until the room has ``members``; the time and CPU the joins took."""
        if not self.room_id:
            base, owner = self.tokens[0]
            self.room_id = (await call(session, "POST", f"{base}/_matrix/client/v3/createRoom", owner,
                                       {"preset": "public_chat", "name": "全職員 / all staff"}))["room_id"]
            self.joined = 1
        joining = self.tokens[self.joined:members]
        before, started = self.cpu_sample(), time.perf_counter()
        await bounded(16, [call(session, "POST", f"{url}/_matrix/client/v3/join/{quote(self.room_id)}", token, {})
                           for url, token in joining])
        elapsed = time.perf_counter() - started
        await asyncio.sleep(SETTLE_S)
        cpu = self.cpu_used(before, self.cpu_sample())
        self.joined = members
        return {"joins": len(joining), "joins_per_s": len(joining) / elapsed if joining else None,
                "synapse_cpu_ms_per_join": 1000 * cpu["synapse"] / len(joining) if joining else None}

    async def sends(self, session: aiohttp.ClientSession, senders: int, messages: int, tag: str) -> dict:
        latencies: list[float] = []
        per_sender = max(1, messages // senders)

        async def sender(index: int, url: str, token: str) -> None:
            for n in range(per_sender):
                path = (f"{url}/_matrix/client/v3/rooms/{quote(self.room_id)}/send/m.room.message/"
                        f"{tag}-{index}-{n}")
                started = time.perf_counter()
                await call(session, "PUT", path, token, {"msgtype": "m.text", "body": f"連絡 {n} / notice {n}"})
                latencies.append(time.perf_counter() - started)

        load = load_average()
        before, started = self.cpu_sample(), time.perf_counter()
        await asyncio.gather(*(sender(i, url, token) for i, (url, token) in enumerate(self.tokens[1:1 + senders])))
        elapsed = time.perf_counter() - started
        await asyncio.sleep(SETTLE_S)
        cpu = self.cpu_used(before, self.cpu_sample())
        sent = len(latencies)
        return {"messages": sent, "seconds": elapsed, "msgs_per_s": sent / elapsed,
                "p50_ms": 1000 * percentile(latencies, 0.5), "p95_ms": 1000 * percentile(latencies, 0.95),
                **{f"{kind}_cpu_ms_per_msg": 1000 * seconds / sent for kind, seconds in cpu.items()},
                "load_1min": load}

    async def sync_under_sends(self, session: aiohttp.ClientSession, clients: int, senders: int,
                               messages_each: int, deliver_timeout: float, tag: str,
                               timeline_limit: int = 50) -> dict:
        """``clients`` members hold /sync while ``senders`` others send; the delay until each has each."""
        readers = self.tokens[1 + senders: 1 + senders + clients]
        writers = self.tokens[1: 1 + senders]
        sent_at: dict[str, float] = {}
        delays: list[float] = []
        seen: list[set[str]] = [set() for _ in readers]
        expected = senders * messages_each
        stop = asyncio.Event()
        filter_param = quote(json.dumps(sync_filter(timeline_limit), separators=(",", ":")))
        limited = [0]

        async def initial(index: int) -> str:
            url, token = readers[index]
            body = await call(session, "GET", f"{url}/_matrix/client/v3/sync?filter={filter_param}&timeout=0",
                              token, timeout=600)
            return body["next_batch"]

        started = time.perf_counter()
        since = await bounded(20, [initial(i) for i in range(len(readers))])
        initial_s = time.perf_counter() - started
        held = asyncio.Event()
        holding = [0]

        async def hold(index: int) -> None:
            url, token = readers[index]
            position = since[index]
            first = True
            while not stop.is_set():
                request = call(session, "GET", f"{url}/_matrix/client/v3/sync?filter={filter_param}"
                                               f"&timeout=30000&since={quote(position)}", token, timeout=120)
                if first:
                    first = False
                    holding[0] += 1
                    if holding[0] == len(readers):
                        held.set()
                try:
                    body = await request
                except asyncio.CancelledError:
                    return
                now = time.perf_counter()
                position = body["next_batch"]
                room = body.get("rooms", {}).get("join", {}).get(self.room_id, {})
                if room.get("timeline", {}).get("limited") and sent_at:
                    limited[0] += 1
                for event in room.get("timeline", {}).get("events", []):
                    txn = event.get("content", {}).get("body", "")
                    if txn in sent_at and txn not in seen[index]:
                        seen[index].add(txn)
                        delays.append(now - sent_at[txn])
                if len(seen[index]) == expected:
                    return

        loops = [asyncio.create_task(hold(i)) for i in range(len(readers))]
        await held.wait()
        await asyncio.sleep(2)  # every reader's request has reached Synapse and waits there
        latencies: list[float] = []

        async def sender(index: int, url: str, token: str) -> None:
            for n in range(messages_each):
                txn = f"{tag}-{index}-{n}"
                sent_at[txn] = time.perf_counter()
                await call(session, "PUT", f"{url}/_matrix/client/v3/rooms/{quote(self.room_id)}/send/"
                                           f"m.room.message/{txn}", token, {"msgtype": "m.text", "body": txn})
                latencies.append(time.perf_counter() - sent_at[txn])

        load = load_average()
        before, sending = self.cpu_sample(), time.perf_counter()
        await asyncio.gather(*(sender(i, url, token) for i, (url, token) in enumerate(writers)))
        send_s = time.perf_counter() - sending
        done, pending = await asyncio.wait(loops, timeout=deliver_timeout)
        all_delivered_s = time.perf_counter() - sending
        stop.set()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        cpu = self.cpu_used(before, self.cpu_sample())
        missed = expected * len(readers) - len(delays)
        return {"clients": len(readers), "senders": senders, "messages": len(latencies),
                "initial_sync_s": initial_s, "send_seconds": send_s, "msgs_per_s": len(latencies) / send_s,
                "send_p50_ms": 1000 * percentile(latencies, 0.5), "send_p95_ms": 1000 * percentile(latencies, 0.95),
                "delivery_p50_ms": 1000 * percentile(delays, 0.5), "delivery_p95_ms": 1000 * percentile(delays, 0.95),
                "delivery_max_ms": 1000 * max(delays, default=float("nan")), "deliveries": len(delays),
                "missed": missed, "limited_syncs": limited[0],
                "timeline_limit": timeline_limit, "until_all_delivered_s": all_delivered_s,
                **{f"{kind}_cpu_s": seconds for kind, seconds in cpu.items()}, "load_1min": load}


def show(kind: str, size: str, members: int, r: dict) -> None:
    if kind == "join":
        if r["joins"]:
            print(f"  {members:>5} {size:>7} joins: {r['joins']} at {r['joins_per_s']:.1f}/s, "
                  f"Synapse CPU {r['synapse_cpu_ms_per_join']:.1f} ms/join", flush=True)
    elif kind == "send":
        print(f"  {members:>5} {size:>7} (a) sends: {r['msgs_per_s']:6.2f} msgs/s  p50 {r['p50_ms']:7.1f} ms  "
              f"p95 {r['p95_ms']:7.1f} ms  CPU/msg Synapse {r['synapse_cpu_ms_per_msg']:6.1f} ms, "
              f"PostgreSQL {r['postgres_cpu_ms_per_msg']:5.1f} ms, nginx {r['nginx_cpu_ms_per_msg']:4.1f} ms  "
              f"load {r['load_1min']:.2f}", flush=True)
    else:
        print(f"  {members:>5} {size:>7} (b) {r['clients']} syncing, {r['senders']} sending: "
              f"{r['msgs_per_s']:5.2f} msgs/s  send p50 {r['send_p50_ms']:7.1f} p95 {r['send_p95_ms']:7.1f} ms  "
              f"delivery p50 {r['delivery_p50_ms']:7.1f} p95 {r['delivery_p95_ms']:7.1f} "
              f"max {r['delivery_max_ms']:7.1f} ms  missed {r['missed']} ({r['limited_syncs']} limited syncs)  "
              f"initial syncs {r['initial_sync_s']:.0f}s  "
              f"CPU Synapse {r['synapse_cpu_s']:.1f}s PostgreSQL {r['postgres_cpu_s']:.1f}s  load {r['load_1min']:.2f}",
              flush=True)


async def main(args: argparse.Namespace) -> dict:
    reason = postgres_unreachable_reason()
    if reason:
        raise SystemExit(f"PostgreSQL is needed (workers run on it only): {reason}")
    sizes = sorted(int(m) for m in args.members.split(","))
    needed = sizes[-1]
    smallest_sync = sizes[0] if args.sync_every_size else sizes[-1]
    if sizes[0] < 1 + args.senders or smallest_sync < 1 + args.sync_senders + args.sync_clients:
        raise SystemExit("the room must hold the senders and the syncing clients: raise --members "
                         "or lower --senders / --sync-clients / --sync-senders")
    load_at_start = load_average()
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lgwan-bench-deploy-") as tmp_name:
        tmp = Path(tmp_name)
        targets = [Target(size, tmp / size) for size in ("single", "workers")]
        context = ssl.create_default_context()
        for target in targets:
            context.load_verify_locations(cafile=str(target.tls["ca"]))
        connector = aiohttp.TCPConnector(limit=0, ssl=context)
        async with aiohttp.ClientSession(connector=connector) as session:
            for target in targets:
                target.start()
            started = time.perf_counter()
            # Both at once: each registration also runs the suite's callbacks (the stamp pack room,
            # the organisation's rooms), slow on a loaded machine; this part is not measured.
            await asyncio.gather(*(target.register(session, needed) for target in targets))
            for target in targets:
                print(f"{target.size}: {target.processes} Synapse processes, {needed} accounts "
                      f"({time.perf_counter() - started:.0f}s)", flush=True)
            for step, members in enumerate(sizes):
                order = targets if step % 2 == 0 else targets[::-1]  # neither always goes first
                for target in order:
                    grown = await target.grow(session, members)
                    show("join", target.size, members, grown)
                    results.append({"kind": "join", "size": target.size, "members": members, **grown})
                    if args.warmup:
                        await target.sends(session, args.senders, args.warmup, f"w{members}")
                    sent = await target.sends(session, args.senders, args.messages, f"a{members}")
                    show("send", target.size, members, sent)
                    results.append({"kind": "send", "size": target.size, "members": members, **sent})
                    if members == sizes[-1] or args.sync_every_size:
                        synced = await target.sync_under_sends(session, args.sync_clients, args.sync_senders,
                                                               args.sync_messages, args.deliver_timeout,
                                                               f"b{members}", args.timeline_limit)
                        show("sync", target.size, members, synced)
                        results.append({"kind": "sync", "size": target.size, "members": members, **synced})
            per_process = {t.size: t.per_process_cpu() for t in targets}
        for target in targets:
            target.deployment.stop()
    summary: dict[str, Any] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
               "parameters": {"members": sizes, "senders": args.senders, "messages": args.messages,
                              "sync_clients": args.sync_clients, "sync_senders": args.sync_senders,
                              "sync_messages": args.sync_messages, "database": "PostgreSQL",
                              "workers": "1 internet + 1 LGWAN client worker, event persister, federation "
                                         "sender, pusher, media repository, background worker",
                              "connection_pools": "single: 1-10; workers: 1-4 per process"},
               "load_average": {"start": load_at_start, "end": load_average(),
                                "median": statistics.median(r["load_1min"] for r in results if "load_1min" in r)},
               "results": results, "cpu_seconds_per_process_total": per_process}
    loads = summary["load_average"]
    print(f"\n{summary['date']} | {summary['machine']} | load average {load_at_start:.2f} at start, "
          f"{loads['median']:.2f} median of measurements, {loads['end']:.2f} at end")
    for members in sizes:
        by = {r["size"]: r for r in results if r["kind"] == "send" and r["members"] == members}
        single, workers = by["single"], by["workers"]
        print(f"  {members:>5} members: workers/single throughput {workers['msgs_per_s'] / single['msgs_per_s']:.2f}, "
              f"Synapse CPU per message {workers['synapse_cpu_ms_per_msg'] / single['synapse_cpu_ms_per_msg']:.2f}")
    for size, cpu in per_process.items():
        print(f"  {size} CPU seconds by process over the run: "
              + ", ".join(f"{name} {seconds:.0f}" for name, seconds in cpu.items()))
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", default="500,1000,2000", help="room sizes, comma-separated (the room grows)")
    parser.add_argument("--senders", type=int, default=20, help="(a) members sending at once")
    parser.add_argument("--messages", type=int, default=100, help="(a) messages in all, per size and deployment")
    parser.add_argument("--warmup", type=int, default=20, help="(a) unmeasured messages first")
    parser.add_argument("--sync-clients", type=int, default=500, help="(b) members holding /sync")
    parser.add_argument("--sync-senders", type=int, default=20, help="(b) members sending meanwhile")
    parser.add_argument("--sync-messages", type=int, default=5, help="(b) messages per sender")
    parser.add_argument("--sync-every-size", action="store_true", help="(b) at every room size, not only the last")
    parser.add_argument("--timeline-limit", type=int, default=50,
                        help="(b) events per room in a sync answer (more = a limited answer, a gap)")
    parser.add_argument("--deliver-timeout", type=float, default=120.0,
                        help="(b) seconds after the last send for every client to have every message")
    run(main, parser)
