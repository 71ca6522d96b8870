#!/usr/bin/env python3
"""LGWAN downloads through the media gate vs the same downloads without it.

One Synapse with the zone module, two nginx in front of its LGWAN listener: the suite's
configuration (config/nginx: every media request asks the gate first, auth_request) and
the same rendered file with the gate's ``auth_request`` line removed. An office PC's
device downloads a file it uploaded itself (trusted) with several parallel clients,
alternating gated and ungated rounds so both see the same machine state. Prints
downloads/s, MB/s, p50 and p95 per round and the ratio gated/ungated of the median
throughputs, per file size. Record results in docs/benchmarks.md.

    make bench-media-gate                                     # 8 clients x 100 downloads, 6 rounds, 2 sizes
    make bench-media-gate BENCH_ARGS=--no-gate-cache         # every download asks the gate (first openings)
    .venv/bin/python bench/media_gate.py --clients 2 --downloads 10 --rounds 1 --sizes 32768
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_average, machine, run
from lgwan_chat.homeserver import RELAXED_RATE_LIMITS, Homeserver, HomeserverSpec, free_port
from lgwan_chat.nginx import Nginx, NginxSpec

GATE_LINE = "        auth_request /_lgwan_chat/gate;\n"
CACHE_LINE = "        proxy_cache lgwan_chat_gate;\n"
ZONES = [{"module": "synapse_modules.zones.ZonePolicyModule", "config": {}}]


def entrance(prefix: Path, hs: Homeserver, gated: bool, gate_cache: bool = True) -> Nginx:
    nginx = Nginx(NginxSpec(prefix=prefix, internet_listen=f"127.0.0.1:{free_port()}",
                            lgwan_listen=f"127.0.0.1:{free_port()}",
                            synapse_internet=f"127.0.0.1:{hs.spec.internet_port}",
                            synapse_lgwan=f"127.0.0.1:{hs.spec.lgwan_port}"))
    text = nginx.sites_conf.read_text(encoding="utf-8")
    assert GATE_LINE in text and CACHE_LINE in text, "the template's gate lines changed: update bench/media_gate.py"
    if not gated:
        nginx.sites_conf.write_text(text.replace(GATE_LINE, ""), encoding="utf-8")
    elif not gate_cache:  # every download asks Synapse, as the first opening of each file does
        nginx.sites_conf.write_text(text.replace(CACHE_LINE, ""), encoding="utf-8")
    return nginx


async def login(session: aiohttp.ClientSession, base: str, user: str, password: str) -> str:
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password}
    async with session.post(f"{base}/_matrix/client/v3/login", json=body) as r:
        r.raise_for_status()
        return (await r.json())["access_token"]


async def upload(session: aiohttp.ClientSession, base: str, token: str, data: bytes) -> str:
    async with session.post(f"{base}/_matrix/media/v3/upload?filename=bench.bin", data=data,
                            headers={"Authorization": f"Bearer {token}",
                                     "Content-Type": "application/octet-stream"}) as r:
        r.raise_for_status()
        return (await r.json())["content_uri"][len("mxc://"):]


async def round_(session: aiohttp.ClientSession, base: str, token: str, media: str, size: int,
                 clients: int, downloads: int) -> dict:
    url = f"{base}/_matrix/client/v1/media/download/{media}"
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []

    async def client() -> None:
        for _ in range(downloads):
            started = time.perf_counter()
            async with session.get(url, headers=headers) as r:
                body = await r.read()
            if r.status != 200 or len(body) != size:
                raise RuntimeError(f"download failed: {r.status} {body[:200]!r}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"downloads": len(latencies), "seconds": elapsed, "per_s": len(latencies) / elapsed,
            "mb_per_s": len(latencies) * size / elapsed / 1e6,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p95_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]}


async def main(args: argparse.Namespace) -> dict:
    summary: dict = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine(),
                     "load": f"{args.clients} clients x {args.downloads} downloads, {args.rounds} rounds"
                             + (", gate verdicts not cached" if args.no_gate_cache else ""),
                     "load_average": {"start": load_average()}, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-media-gate-") as tmp:
        hs = Homeserver(HomeserverSpec(data_dir=Path(tmp) / "hs", modules=ZONES, extra=dict(RELAXED_RATE_LIMITS)))
        nginxes = {"gated": entrance(Path(tmp) / "gated", hs, True, gate_cache=not args.no_gate_cache),
                   "ungated": entrance(Path(tmp) / "ungated", hs, False)}
        hs.start()
        try:
            for nginx in nginxes.values():
                nginx.start()
            hs.register("office", "bench-password-office")
            connector = aiohttp.TCPConnector(limit=args.clients * 2)
            async with aiohttp.ClientSession(connector=connector) as session:
                # The office PC's device logs in on the LGWAN side: it is bound to that zone.
                token = await login(session, nginxes["gated"].url("lgwan"), "office", "bench-password-office")
                for size in args.sizes:
                    media = await upload(session, nginxes["gated"].url("lgwan"), token, os.urandom(size))
                    results: dict[str, list[dict]] = {"gated": [], "ungated": []}
                    for _ in range(args.warmup):
                        for nginx in nginxes.values():
                            await round_(session, nginx.url("lgwan"), token, media, size, args.clients, 10)
                    for r in range(args.rounds):
                        order = ["gated", "ungated"] if r % 2 == 0 else ["ungated", "gated"]
                        for label in order:
                            result = await round_(session, nginxes[label].url("lgwan"), token, media, size,
                                                  args.clients, args.downloads)
                            results[label].append(result)
                            print(f"{size:>9} B round {r + 1} {label:>7}: {result['per_s']:7.1f} downloads/s "
                                  f"{result['mb_per_s']:7.1f} MB/s  p50 {result['p50_ms']:6.1f} ms  "
                                  f"p95 {result['p95_ms']:6.1f} ms", flush=True)
                    medians = {label: {k: statistics.median(x[k] for x in rs)
                                       for k in ("per_s", "mb_per_s", "p50_ms", "p95_ms")}
                               for label, rs in results.items()}
                    ratios = [g["per_s"] / u["per_s"]
                              for g, u in zip(results["gated"], results["ungated"], strict=True)]
                    summary["sizes"][size] = {"median": medians,
                                              "ratio": medians["gated"]["per_s"] / medians["ungated"]["per_s"],
                                              "ratio_range": [min(ratios), max(ratios)], "rounds": results}
        finally:
            for nginx in nginxes.values():
                nginx.stop()
            hs.stop()
    summary["load_average"]["end"] = load_average()
    print(f"\n{summary['date']} | {summary['machine']} | {summary['load']} | load average "
          f"{summary['load_average']['start']:.2f} at start, {summary['load_average']['end']:.2f} at end")
    for size, s in summary["sizes"].items():
        for label, m in s["median"].items():
            print(f"{size:>9} B median {label:>7}: {m['per_s']:7.1f} downloads/s {m['mb_per_s']:7.1f} MB/s  "
                  f"p50 {m['p50_ms']:6.1f} ms  p95 {m['p95_ms']:6.1f} ms")
        print(f"{size:>9} B ratio gated/ungated (downloads/s, median of rounds): {s['ratio']:.3f}  "
              f"(rounds {s['ratio_range'][0]:.3f}-{s['ratio_range'][1]:.3f}; target >= 0.95)")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="parallel downloading clients")
    parser.add_argument("--downloads", type=int, default=100, help="downloads per client and round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=1, help="short rounds before measuring")
    parser.add_argument("--no-gate-cache", action="store_true",
                        help="gated entrance without nginx's cache of final verdicts (every download asks Synapse)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[32768, 1048576],
                        help="file sizes in bytes, comma-separated")
    run(main, parser)
