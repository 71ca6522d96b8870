"""A tiny bot for the runtime's tests (not a product bot): ``python tests/support/echo_bot.py --config X``.

Commands (Japanese and English names, as product bots have):

- ``!こだま <text>`` / ``!echo <text>``: replies with the text (a text argument);
- ``!数 <n>`` / ``!count <n>``: replies with the number (an int argument);
- ``!二つ <first> [second]`` / ``!pair``: two word arguments (quotes, separators);
- ``!失敗`` / ``!fail``: raises, to show a failing handler never ends the bot;
- ``!遅い <s>`` / ``!slow <s>``: sleeps, then replies (kill it in the middle of the work);
- ``!余韻 <s>`` / ``!linger <s>``: replies, then sleeps (kill it after the reply went out: the
  event is handled again after a restart and the reply must not appear twice).

Every other message is recorded in its table ``echo_seen`` with its event id, one row per
handling (no unique key: a message handled twice shows up twice). Its texts are test strings
added to the catalogues in memory only, never to the product's ja.yaml / en.yaml.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

if __name__ == "__main__":  # run as a script: the checkout must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bots.runtime import Arg, BotApp, Command, Context
from bots.runtime import config as runtime_config
from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.configcheck.schema import string
from lgwan_chat.core.i18n import catalogue

log = logging.getLogger("echo_bot")

STRINGS = {
    "ja": {
        "bot.arg.echo_text": "テキスト",
        "bot.arg.echo_number": "数",
        "bot.arg.echo_first": "1つ目",
        "bot.arg.echo_second": "2つ目",
        "bot.arg.echo_seconds": "秒数",
        "bot.echo_test.cmd.echo": "テキストをそのまま返します",
        "bot.echo_test.cmd.count": "数を返します",
        "bot.echo_test.cmd.pair": "2つの語を返します",
        "bot.echo_test.cmd.fail": "わざと失敗します",
        "bot.echo_test.cmd.slow": "待ってから返信します",
        "bot.echo_test.cmd.linger": "返信してから待ちます",
        "bot.echo_test.count": "数は {n} です",
        "bot.echo_test.pair": "1つ目「{first}」2つ目「{second}」",
        "bot.echo_test.slow": "{seconds} 秒待ってから返信しました",
        "bot.echo_test.linger": "返信しました（このあと {seconds} 秒の後処理）",
    },
    "en": {
        "bot.arg.echo_text": "text",
        "bot.arg.echo_number": "number",
        "bot.arg.echo_first": "first",
        "bot.arg.echo_second": "second",
        "bot.arg.echo_seconds": "seconds",
        "bot.echo_test.cmd.echo": "replies with the text",
        "bot.echo_test.cmd.count": "replies with the number",
        "bot.echo_test.cmd.pair": "replies with two words",
        "bot.echo_test.cmd.fail": "fails on purpose",
        "bot.echo_test.cmd.slow": "waits, then replies",
        "bot.echo_test.cmd.linger": "replies, then waits",
        "bot.echo_test.count": "The number is {n}",
        "bot.echo_test.pair": "first '{first}', second '{second}'",
        "bot.echo_test.slow": "replied after waiting {seconds} s",
        "bot.echo_test.linger": "replied (then {seconds} s of work)",
    },
}
for _lang, _entries in STRINGS.items():
    for _key, _text in _entries.items():
        catalogue(_lang).setdefault(_key, _text)

SCHEMA: dict[str, dict] = {
    # put in front of every echoed text (to see a bot's own option arrive)
    "echo_prefix": string(),
}


def check(raw: Any) -> list[ConfigIssue]:
    """What check-config would run for ``bots: echo:`` if the echo bot were registered."""
    return runtime_config.check(raw, SCHEMA)


class EchoBot(BotApp):
    name = "echo"
    display_name = "こだま"
    schema = SCHEMA
    migrations: ClassVar[list[list[str]]] = [[
        """CREATE TABLE echo_seen (event_id TEXT NOT NULL, room_id TEXT NOT NULL, sender TEXT NOT NULL,
                                   body TEXT, seen_ts BIGINT NOT NULL)""",
    ]]

    async def start(self, bot) -> None:
        self.bot = bot

    def commands(self) -> Sequence[Command]:
        return [
            Command("こだま", "echo", "bot.echo_test.cmd.echo", self.echo, (Arg("echo_text", kind="text"),)),
            Command("数", "count", "bot.echo_test.cmd.count", self.count, (Arg("echo_number", kind="int"),)),
            Command("二つ", "pair", "bot.echo_test.cmd.pair", self.pair,
                    (Arg("echo_first"), Arg("echo_second", required=False))),
            Command("失敗", "fail", "bot.echo_test.cmd.fail", self.fail),
            Command("遅い", "slow", "bot.echo_test.cmd.slow", self.slow, (Arg("echo_seconds", kind="int"),)),
            Command("余韻", "linger", "bot.echo_test.cmd.linger", self.linger, (Arg("echo_seconds", kind="int"),)),
        ]

    async def echo(self, ctx: Context, echo_text: str) -> None:
        await ctx.reply_text(ctx.bot.config.options.get("echo_prefix", "") + echo_text)

    async def count(self, ctx: Context, echo_number: int) -> None:
        await ctx.reply("bot.echo_test.count", n=echo_number)

    async def pair(self, ctx: Context, echo_first: str, echo_second: str | None) -> None:
        await ctx.reply("bot.echo_test.pair", first=echo_first, second=echo_second or "-")

    async def fail(self, ctx: Context) -> None:
        raise RuntimeError("failing on purpose (!fail)")

    async def slow(self, ctx: Context, echo_seconds: int) -> None:
        log.info("slow: started", extra={"event_id": ctx.event_id})
        await asyncio.sleep(echo_seconds)
        await ctx.reply("bot.echo_test.slow", seconds=echo_seconds)

    async def linger(self, ctx: Context, echo_seconds: int) -> None:
        await ctx.reply("bot.echo_test.linger", seconds=echo_seconds)
        log.info("linger: replied", extra={"event_id": ctx.event_id})
        await asyncio.sleep(echo_seconds)

    async def on_message(self, ctx: Context) -> None:
        ctx.bot.storage.execute(
            "INSERT INTO echo_seen (event_id, room_id, sender, body, seen_ts) VALUES (?, ?, ?, ?, ?)",
            (ctx.event_id, ctx.room_id, ctx.sender, ctx.content.get("body"), int(time.time() * 1000)))


if __name__ == "__main__":
    from bots.runtime.cli import main

    sys.exit(main(EchoBot))
