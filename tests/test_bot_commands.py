"""Bot commands as people type them (IME, phone, office PC), and the invitation policy.

Pure logic, no homeserver: the command set is the real one of a bot (the echo test bot's commands
plus the runtime's built-in ヘルプ / 言語), parsed as the runtime parses a message body.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from echo_bot import EchoBot
from nio import RoomMessagesError, RoomMessagesResponse, SyncResponse
from nio.events.invite_events import InviteEvent

from bots.runtime import Arg, Bot, Command
from bots.runtime.commands import CommandSet, ParseError, parse_int, split_prefix
from bots.runtime.config import InvitePolicy, RuntimeConfig
from bots.runtime.storage import Storage
from lgwan_chat.core.i18n import LANGUAGES, t

PREFIXES = ("!", "！")


def make_bot(**changes) -> Bot:
    config = RuntimeConfig(
        name="echo", homeserver_url="http://127.0.0.1:1", zone="lgwan", user_id="@echo-bot:city.example",
        password="x", device_name="test", sqlite_path=None, postgres_dsn=None, language="ja",
        invites=InvitePolicy(), command_prefixes=PREFIXES, json_logs=False, options={})
    for key, value in changes.items():
        config = __import__("attrs").evolve(config, **{key: value})
    return Bot(config, EchoBot(), storage=Storage())


@pytest.fixture(scope="module")
def commands() -> CommandSet:
    return make_bot().commands


def parse(commands: CommandSet, body: str):
    after = split_prefix(body, PREFIXES)
    assert after is not None, f"{body!r} is not a command"
    invocation = commands.parse(after)
    return invocation.command.en, invocation.args


def parse_error(commands: CommandSet, body: str) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse(commands, body)
    return caught.value


@pytest.mark.parametrize("body, rest", [
    ("!help", "help"), ("！ヘルプ", "ヘルプ"), ("  !こだま やあ ", "こだま やあ"), ("！こだま　やあ", "こだま　やあ"),
])
def test_both_prefixes_start_a_command(body, rest):
    assert split_prefix(body, PREFIXES) == rest


@pytest.mark.parametrize("body", ["help", "! help", "！　ヘルプ", "!", "！", "", "今日は!help"])
def test_other_messages_are_not_commands(body):
    assert split_prefix(body, PREFIXES) is None


@pytest.mark.parametrize("typed, command", [
    ("!ヘルプ", "help"), ("!help", "help"), ("!HELP", "help"), ("!Help", "help"), ("！ＨＥＬＰ", "help"),
    ("!ｈｅｌｐ", "help"), ("!ﾍﾙﾌﾟ", "help"), ("!言語", "language"), ("!LANGUAGE", "language"),
    ("!こだま x", "echo"), ("!ＥＣＨＯ x", "echo"), ("!数 1", "count"), ("!Count 1", "count"),
])
def test_japanese_and_english_names_whatever_the_width_or_case(commands, typed, command):
    assert parse(commands, typed)[0] == command


@pytest.mark.parametrize("typed, first, second", [
    ("!二つ 甲 乙", "甲", "乙"),
    ("!二つ　甲　乙", "甲", "乙"),            # full-width spaces
    ("!二つ 甲、乙", "甲", "乙"),             # Japanese comma
    ("!pair 甲，乙", "甲", "乙"),             # full-width comma
    ("！二つ、甲 、 乙", "甲", "乙"),
    ("!二つ 「甲 乙」 丙", "甲 乙", "丙"),     # kagikakko keep spaces together
    ("!二つ 『甲　乙』、「丙 丁」", "甲　乙", "丙 丁"),
    ('!pair "a b" c', "a b", "c"),
    ("!二つ 甲", "甲", None),                # optional argument left out
])
def test_arguments_split_on_any_space_or_comma_and_quotes_keep_them(commands, typed, first, second):
    assert parse(commands, typed) == ("pair", {"echo_first": first, "echo_second": second})


def test_text_argument_takes_the_rest_of_the_message(commands):
    assert parse(commands, "!こだま 「引用」も、そのまま　全部\n二行目") == (
        "echo", {"echo_text": "「引用」も、そのまま　全部\n二行目"})


@pytest.mark.parametrize("typed", ["!数 12", "!数 １２", "!数 #12", "!数 ＃１２", "!count 12番", "!数　１２"])
def test_numbers_in_any_width_with_hash_or_ban(commands, typed):
    assert parse(commands, typed) == ("count", {"echo_number": 12})


@pytest.mark.parametrize("word", ["abc", "一二", "-3", "1.5", "", "#", "9" * 19, "9" * 5000, "\U00010a40", "٣"])
def test_what_is_not_a_number(word):
    assert parse_int(word) is None


@pytest.mark.parametrize("typed, key, params", [
    ("!数", "bot.missing_arg", {}),
    ("!こだま", "bot.missing_arg", {}),
    ("!こだま　、", "bot.missing_arg", {}),
    ("!数 abc", "bot.not_a_number", {"value": "abc"}),
    ("!数 1 2", "bot.too_many_args", {"extra": "2"}),
    ("!二つ 甲 乙 丙、丁", "bot.too_many_args", {"extra": "丙 丁"}),
    ("!ヘルプ こだま 余分", "bot.too_many_args", {"extra": "余分"}),
    ("!二つ 「甲 乙", "bot.unclosed_quote", {"quote": "「"}),
    ("!ないよ", "bot.unknown_command", {"name": "ないよ"}),
    ("!helpme", "bot.unknown_command", {"name": "helpme"}),
])
def test_mistakes_are_parse_errors_with_the_right_message(commands, typed, key, params):
    error = parse_error(commands, typed)
    assert error.key == key
    assert params.items() <= error.params.items()
    for lang in LANGUAGES:  # a message in both languages, with the usage when the command is known
        text = error.message(lang)
        assert text
        if error.command is not None:
            assert error.command.usage(lang) in text


def test_usage_in_the_message_names_the_argument_in_the_users_language(commands):
    error = parse_error(commands, "!count x")
    assert error.message("ja") == t("bot.not_a_number", "ja", arg=t("bot.arg.echo_number", "ja"), value="x",
                                    usage="!数 <数>")
    assert error.message("en") == t("bot.not_a_number", "en", arg="number", value="x", usage="!count <number>")


def test_unknown_command_suggests_similar_ones_in_the_readers_language(commands):
    assert parse_error(commands, "!こだ").message("ja") == t("bot.unknown_command", "ja", name="こだ",
                                                           suggestion="!こだま")
    assert parse_error(commands, "!ech").message("en") == t("bot.unknown_command", "en", name="ech",
                                                            suggestion="!echo")
    assert parse_error(commands, "!ech").message("ja", "！") == t("bot.unknown_command", "ja", name="ech",
                                                                  suggestion="！こだま")
    assert parse_error(commands, "!zzz").message("en") == t("bot.unknown_command", "en", name="zzz", suggestion="-")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_help_lists_every_command_with_both_names(commands, lang):
    text = commands.help(lang)
    assert text.startswith(t("bot.help_header", lang))
    lines = text.splitlines()
    assert len(commands.commands) == 8  # 6 of the echo bot + ヘルプ + 言語: generated, none forgotten
    for command in commands.commands:
        line = next(line for line in lines if f"!{command.ja}" in line and f"!{command.en}" in line)
        assert t(command.summary, lang) in line
        assert command.usage(lang) in line


def test_help_for_one_command(commands):
    text = commands.help_for(commands.find("ＣＯＵＮＴ"), "ja")
    assert text.startswith("!数 <数> — 数を返します")
    assert t("bot.help_names", "ja", ja="!数", en="!count") in text


def test_two_commands_with_one_name_are_refused():
    async def nothing(ctx):
        pass

    with pytest.raises(ValueError):
        CommandSet([Command("一覧", "list", "bot.cmd.help", nothing),
                    Command("リスト", "ＬＩＳＴ", "bot.cmd.help", nothing)])


def test_commands_of_a_bot_may_not_take_the_builtin_names():
    class Clash(EchoBot):
        def commands(self):
            return [Command("ヘルプ", "assist", "bot.cmd.help", self.echo, (Arg("echo_text", kind="text"),))]

    with pytest.raises(ValueError):
        Bot(make_bot().config, Clash(), storage=Storage())


# --- invitations ---

class _Client:
    def __init__(self):
        self.joined: list[str] = []
        self.left: list[str] = []
        self.rooms: dict = {}

    async def join(self, room_id):
        self.joined.append(room_id)
        return SimpleNamespace(room_id=room_id)

    async def room_leave(self, room_id):
        self.left.append(room_id)


def invite(bot: Bot, inviter: str, direct: bool = False):
    """An invitation's stripped state as nio hands it over from /sync (nio moves the member
    event's content out of ``source``)."""
    stripped = [{"type": "m.room.create", "state_key": "", "sender": inviter, "content": {"creator": inviter}},
                {"type": "m.room.join_rules", "state_key": "", "sender": inviter, "content": {"join_rule": "invite"}},
                {"type": "m.room.member", "state_key": bot.config.user_id, "sender": inviter,
                 "content": {"membership": "invite", **({"is_direct": True} if direct else {})}}]
    return SimpleNamespace(invite_state=[e for e in map(InviteEvent.parse_event, stripped) if e is not None])


@pytest.mark.parametrize("policy, inviter, direct, room, accepted", [
    (InvitePolicy(), "@yamada:city.example", False, "!a:city.example", True),
    (InvitePolicy(), "@yamada:other.example", False, "!a:other.example", False),   # from: local
    (InvitePolicy(), "@yamada:city.example.evil", False, "!a:city.example.evil", False),
    (InvitePolicy("any"), "@yamada:other.example", False, "!a:other.example", True),
    (InvitePolicy("none"), "@yamada:city.example", True, "!a:city.example", False),
    (InvitePolicy(rooms="direct_only"), "@yamada:city.example", False, "!a:city.example", False),
    (InvitePolicy(rooms="direct_only"), "@yamada:city.example", True, "!a:city.example", True),
    (InvitePolicy(rooms="allowed_only", allowed_rooms=("!ok:city.example",)), "@yamada:city.example", False,
     "!ok:city.example", True),
    (InvitePolicy(rooms="allowed_only", allowed_rooms=("!ok:city.example",)), "@yamada:city.example", False,
     "!no:city.example", False),
])
async def test_invitation_policy(policy, inviter, direct, room, accepted):
    bot = make_bot(invites=policy)
    client: Any = _Client()  # records joins and leaves instead of asking a homeserver
    bot.client = client
    outcome = await bot._on_invite(room, invite(bot, inviter, direct))
    assert outcome == ("joined" if accepted else "declined")
    assert (client.joined, client.left) == (([room], []) if accepted else ([], [room]))
    assert bot.is_direct(room) == (accepted and direct)


# --- sync: a gap that cannot be fetched is fetched again, never skipped ---

def _message(event_id: str, body: str) -> dict:
    return {"type": "m.room.message", "event_id": event_id, "sender": "@yamada:city.example",
            "origin_server_ts": 1, "content": {"msgtype": "m.text", "body": body}}


class _SyncClient:
    """/sync answers a cut-short timeline; /messages fails once (a server error), then works."""

    def __init__(self, bot: Bot):
        self.bot = bot
        self.since: list[str | None] = []
        self.failures_left = 1
        self.rooms: dict = {}
        self.device_id = "BOTDEVICE"

    async def sync(self, timeout, since, full_state, sync_filter):
        self.since.append(since)
        if len(self.since) > 2:  # seen enough: stop the bot
            self.bot.stop()
            await asyncio.sleep(10)
        return SyncResponse.from_dict({"next_batch": "s2", "rooms": {"invite": {}, "leave": {}, "join": {
            "!r:city.example": {"timeline": {"events": [_message("$late", "最後")], "limited": True,
                                             "prev_batch": "p1"}}}}})

    async def room_messages(self, room_id, start, end, direction, limit):
        if self.failures_left:
            self.failures_left -= 1
            return RoomMessagesError("M_UNKNOWN: server error")
        return RoomMessagesResponse.from_dict({"chunk": [_message("$missed", "取りこぼし")], "start": start}, room_id)


async def test_a_gap_that_could_not_be_filled_is_fetched_again(monkeypatch):
    bot = make_bot()
    bot.storage.put("next_batch", "s1")
    client: Any = _SyncClient(bot)
    bot.client = client
    seen: list[str] = []

    async def on_message(ctx):
        seen.append(ctx.event_id)

    async def no_wait(*args, **kwargs):
        pass

    monkeypatch.setattr(bot.app, "on_message", on_message)
    monkeypatch.setattr(bot, "_backoff", no_wait)
    await bot._sync_forever()
    assert client.since[:2] == ["s1", "s1"]  # the batch was asked for again, from the same position
    assert seen == ["$missed", "$late"]  # the gap first, each once
    assert bot.storage.get("next_batch") == "s2"
