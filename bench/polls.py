#!/usr/bin/env python3
"""Polls bot at scale: a survey answered by 2,000 members, and how long after the last vote the
live summary shows all of them; a safety check (安否確認) started in rooms of 50 and 2,000 members,
and how long after the command the poll is there to answer.

A real Synapse (every suite module but stamps, SQLite; ``--backend postgres`` for PostgreSQL) and
the real polls bot as its own process (python -m bots.polls, default options but the summary
interval given). 2,000 users join a room; one makes a survey (!アンケート); all vote at once
(``--concurrency`` in flight), each through the client API as Element does. Measured:

- votes/s accepted by Synapse while everyone votes;
- **latency**: from the moment the last vote was accepted to the moment a client reading the room
  (polling the summary's edits every 20 ms) sees a summary counting every voter. Target: < 1 s.

The bot's own work per vote (record the response, tally, render, edit) is what the latency adds
to Synapse delivering the events to it.

- **safety start**: in a room of N members (``--safety-sizes``, default 50 and 2,000), from sending
  ``!安否確認`` to a client reading the room (every 20 ms) seeing the poll, then the summary. The bot
  has answered other commands just before, as on a working day. Message rate limits are Synapse's
  defaults, as deployed; the bot account is exempt from them as its setup step says
  (bots/runtime/accounts.py; ``--not-exempt`` shows what a bot without it suffers). Target: the
  poll within 2 s in a room of 50.

    make bench-polls
    .venv/bin/python bench/polls.py --members 200    # a quicker look
    .venv/bin/python bench/polls.py --members 50 --safety-sizes 50 --no-survey   # the start only
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, run
from bench.read_status import bounded, call
from bots.polls import events
from bots.runtime.accounts import exempt_from_rate_limits
from lgwan_chat.homeserver import RELAXED_RATE_LIMITS, Homeserver, HomeserverSpec, child_env, suite_modules
from lgwan_chat.postgres import PostgresDatabase


def homeserver(data_dir: Path, database: PostgresDatabase | None, limits: Sequence[str] = ()) -> Homeserver:
    """``limits``: rate limits left at Synapse's defaults (as the deployment template leaves them)."""
    # no stamps module: it joins every new account to the pack room (setup time only)
    modules = [m for m in suite_modules() if not m["module"].startswith("synapse_modules.stamps")]
    return Homeserver(HomeserverSpec(
        data_dir=data_dir, access_log_level="WARNING", modules=modules,
        database=database.synapse_config() if database else None,
        extra={**{k: v for k, v in RELAXED_RATE_LIMITS.items() if k not in limits}, "bcrypt_rounds": 4}))


def start_bot(hs: Homeserver, folder: Path, interval: float, exempt: bool = True) -> subprocess.Popen:
    password = "bench-bot"
    hs.register("polls-bot", password)
    if exempt:  # the bot account's setup step (admin guide 4.6), as the demo does it
        admin = hs.register("bench-admin", "bench-admin", admin=True)["access_token"]
        exempt_from_rate_limits(hs.url("lgwan"), admin, f"@polls-bot:{hs.server_name}")
    config = {"bots": {"polls": {
        "homeserver": {"lgwan": hs.url("lgwan")}, "zone": "lgwan", "user_id": f"@polls-bot:{hs.server_name}",
        "password": password, "storage": {"sqlite": str(folder / "polls.sqlite3")},
        "summary_interval_s": interval, "remind_before_minutes": 0}}}
    (folder / "bots.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    with open(folder / "bot.log", "wb") as log:  # the child keeps its own copy
        process = subprocess.Popen([sys.executable, "-m", "bots.polls", "--config", str(folder / "bots.yaml")],
                                   stdout=log, stderr=subprocess.STDOUT, env=child_env(), cwd=folder)
    deadline = time.monotonic() + 60
    while b"ready" not in (folder / "bot.log").read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the bot did not start:\n" + (folder / "bot.log").read_text(errors="replace"))
        time.sleep(0.2)
    return process


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(30)


async def messages(session, url: str, token: str, room: str, limit: int = 50) -> list[dict]:
    page = await call(session, "GET", f"{url}/_matrix/client/v3/rooms/{quote(room)}/messages?dir=b&limit={limit}",
                      token)
    return page["chunk"]


async def latest_summary(session, url: str, token: str, room: str, summary: str) -> str:
    """The summary as a client shows it: its latest edit (or the original)."""
    page = await call(session, "GET", f"{url}/_matrix/client/v1/rooms/{quote(room)}/relations/{quote(summary)}"
                      "/m.replace?dir=b&limit=1", token)
    if page["chunk"]:
        return page["chunk"][0]["content"]["m.new_content"]["body"]
    return ""


async def safety_start(session, hs: Homeserver, url: str, tokens: list[str], size: int, bot_user: str) -> dict:
    """A room of ``size`` members (the first is the starter, its creator), a few commands the bot
    answers, then ``!安否確認``: seconds until a client sees the poll, then the summary."""
    owner = tokens[0]
    room = (await call(session, "POST", f"{url}/_matrix/client/v3/createRoom", owner,
                       {"preset": "public_chat", "name": f"災害対策 {size}", "invite": [bot_user]}))["room_id"]
    await bounded(16, [call(session, "POST", f"{url}/_matrix/client/v3/join/{quote(room)}", t, {})
                       for t in tokens[1:size]])
    deadline = time.monotonic() + 300
    while True:  # the bot joined (it accepts the invite on its next sync)
        members = await call(session, "GET", f"{url}/_matrix/client/v3/rooms/{quote(room)}/joined_members", owner)
        if bot_user in members["joined"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    # a working day: the bot has answered people before the emergency (several people: each
    # person's own message limit is Synapse's default too)
    askers = tokens[1:size] or [owner]
    for n in range(8):
        await call(session, "PUT", f"{url}/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/warm{n}",
                   askers[n % len(askers)], {"msgtype": "m.text", "body": "!投票一覧"})
    await asyncio.sleep(3)  # the bot has caught up with the room (its replies sent)
    started = time.perf_counter()
    sent = await call(session, "PUT", f"{url}/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/safety",
                      owner, {"msgtype": "m.text", "body": "!安否確認 訓練"})
    poll_s = summary_s = None
    while poll_s is None or summary_s is None:
        page = await call(session, "GET", f"{url}/_matrix/client/v3/rooms/{quote(room)}/messages?dir=b&limit=20",
                          owner)
        for event in page["chunk"]:
            if event["event_id"] == sent["event_id"]:
                break
            if event["sender"] != bot_user:
                continue
            if event["type"] == events.START and poll_s is None:
                poll_s = time.perf_counter() - started
            elif "回答 0 /" in (event["content"].get("body") or "") and summary_s is None:
                summary_s = time.perf_counter() - started
        if time.perf_counter() - started > 300:
            raise RuntimeError(f"the safety check did not appear in the room of {size}")
        await asyncio.sleep(0.02)
    return {"members": size, "poll_visible_s": round(poll_s, 3), "summary_visible_s": round(summary_s, 3)}


async def run_backend(backend: str, args) -> dict:
    database = PostgresDatabase() if backend == "postgres" else None
    result: dict = {}
    with contextlib.ExitStack() as cleanup:
        folder = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix=f"lgwan-bench-polls-{backend}-")))
        if database:
            cleanup.callback(database.drop)
        hs = homeserver(folder, database, args.deployment_limits)
        hs.start()
        cleanup.callback(hs.stop)
        url = hs.url("lgwan")
        members = max([args.members if args.survey else 0, *args.safety_sizes])
        started = time.perf_counter()
        tokens = [hs.register(f"staff{i:05d}", "bench")["access_token"] for i in range(members)]
        print(f"{backend}: registered {members} users in {time.perf_counter() - started:.0f} s", flush=True)
        bot = start_bot(hs, folder, args.summary_interval, args.exempt_bot)
        if args.bot_log:  # kept for profiling (the folder is removed)
            cleanup.callback(shutil.copy, folder / "bot.log", args.bot_log)
        cleanup.callback(stop_process, bot)
        bot_user = f"@polls-bot:{hs.server_name}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            if args.survey:
                result["survey"] = await survey(session, hs, url, tokens[:args.members], args, backend)
            result["safety_start"] = []
            for size in args.safety_sizes:
                measured = await safety_start(session, hs, url, tokens, size, bot_user)
                result["safety_start"].append(measured)
                print(f"{backend}: safety check in a room of {size}: poll visible {measured['poll_visible_s']:.2f} s "
                      f"after the command (target < 2 s for 50), summary {measured['summary_visible_s']:.2f} s",
                      flush=True)
        return result


async def survey(session, hs: Homeserver, url: str, tokens: list[str], args, backend: str) -> dict:
    owner = tokens[0]
    room = (await call(session, "POST", f"{url}/_matrix/client/v3/createRoom", owner,
                       {"preset": "public_chat", "name": "全職員", "invite": [f"@polls-bot:{hs.server_name}"]}
                       ))["room_id"]
    started = time.perf_counter()
    await bounded(16, [call(session, "POST", f"{url}/_matrix/client/v3/join/{quote(room)}", t, {})
                       for t in tokens[1:]])
    print(f"{backend}: {args.members} members joined in {time.perf_counter() - started:.0f} s", flush=True)
    await call(session, "PUT", f"{url}/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/survey",
               owner, {"msgtype": "m.text", "body": "!アンケート 防災訓練に参加できますか / 参加 / 不参加 / 未定"})
    poll = summary = None
    deadline = time.monotonic() + 120  # the bot first works through 2,000 joins
    while poll is None or summary is None:
        for event in await messages(session, url, owner, room):
            if event["type"] == events.START:
                poll = event
            elif event["type"] == "m.room.message" and "回答 0 人" in event["content"].get("body", ""):
                summary = event["event_id"]
        if time.monotonic() > deadline:
            raise RuntimeError("the survey did not appear")
        await asyncio.sleep(0.2)
    answers = [a["id"] for a in poll["content"][events.START]["answers"]]

    async def vote(n: int, token: str) -> float:
        await call(session, "PUT", f"{url}/_matrix/client/v3/rooms/{quote(room)}/send/{events.RESPONSE}/v{n}",
                   token, events.response_content(poll["event_id"], [answers[n % len(answers)]]))
        return time.perf_counter()

    started = time.perf_counter()
    accepted = await bounded(args.concurrency, [vote(n, t) for n, t in enumerate(tokens)])
    last_vote = max(accepted)
    voting_s = last_vote - started
    wanted = f"回答 {args.members} 人"
    while wanted not in await latest_summary(session, url, owner, room, summary):
        if time.perf_counter() - last_vote > 120:
            raise RuntimeError("the summary never counted every voter")
        await asyncio.sleep(0.02)
    latency = time.perf_counter() - last_vote
    result = {"members": args.members, "votes_per_s": round(args.members / voting_s, 1),
              "voting_s": round(voting_s, 1), "summary_after_last_vote_s": round(latency, 3),
              "summary_interval_s": args.summary_interval}
    print(f"{backend}: {args.members} votes in {voting_s:.1f} s ({result['votes_per_s']}/s); summary counted "
          f"everyone {latency:.3f} s after the last vote (target < 1 s)", flush=True)
    return result


async def main(args) -> dict:
    args.backend = args.backend or ["sqlite"]
    print(f"# Polls benchmark\n\n{machine()}\n", flush=True)
    return {"machine": machine(), **{b: await run_backend(b, args) for b in args.backend}}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32, help="votes in flight at once")
    parser.add_argument("--summary-interval", type=float, default=1.0,
                        help="the bot's summary_interval_s (the shipped default: 1.0)")
    parser.add_argument("--safety-sizes", type=lambda v: [int(x) for x in v.split(",")], default=[50, 2000],
                        help="room sizes of the safety-check start measurement (default: 50,2000)")
    parser.add_argument("--deployment-limits", type=lambda v: [x for x in v.split(",") if x], default=["rc_message"],
                        help="rate limits kept at Synapse's defaults (default: rc_message, as deployed; '' for none)")
    parser.add_argument("--bot-log", type=Path, help="keep the bot's log (timestamps) here")
    parser.add_argument("--not-exempt", dest="exempt_bot", action="store_false",
                        help="leave the bot account subject to the message rate limit (skipping its setup step)")
    parser.add_argument("--no-survey", dest="survey", action="store_false", help="the safety-check start only")
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgres"),
                        help="repeat for both (default: sqlite)")
    run(main, parser)
