"""Commands: ``!一覧`` / ``!list`` style, typed on a phone or an office PC with a Japanese IME.

A command has a Japanese and an English name (both always work), arguments described once
(which also writes ``!ヘルプ`` / ``!help``), and a handler. Parsing accepts what an IME produces:
the full-width prefix ``！``, full-width spaces, Japanese punctuation between arguments
(``、`` ``，``) and 「かぎかっこ」 or "quotes" around an argument with spaces.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

from lgwan_chat.core.i18n import Msg, t

_SEPARATORS = re.compile(r"[\s\u3000、，,]+")
_QUOTES = {"「": "」", "『": "』", '"': '"', "“": "”", "'": "'"}


@attrs.frozen
class Arg:
    name: str  # catalogue key suffix: bot.arg.<name>
    required: bool = True
    #: "int" (full-width digits and #12 accepted), "text" (the rest of the line), or "word"
    kind: str = "word"


@attrs.frozen
class Command:
    ja: str
    en: str
    #: catalogue key of the one-line description
    summary: str
    handler: Callable[..., Awaitable[None]]
    args: tuple[Arg, ...] = ()
    #: catalogue key of examples shown by ``!ヘルプ <command>``
    examples: str | None = None
    #: where it may be used: "any", "direct" (DM with the bot) or "room" (not a DM)
    where: str = "any"

    def names(self) -> tuple[str, str]:
        return self.ja, self.en

    def usage(self, lang: str, prefix: str = "!") -> str:
        parts = [prefix + (self.ja if lang == "ja" else self.en)]
        for arg in self.args:
            label = t(f"bot.arg.{arg.name}", lang)
            parts.append(f"<{label}>" if arg.required else f"[{label}]")
        return " ".join(parts)


class ParseError(Exception):
    """A command typed wrong: the catalogue key of what to tell the user, and for which command."""

    def __init__(self, key: str, command: Command | None = None, suggestions: Sequence[Command] = (),
                 **params: Any):
        super().__init__(key)
        self.key = key
        self.command = command
        #: commands that look like the unknown one typed, named in the reader's language
        self.suggestions = tuple(suggestions)
        self.params = params

    def message(self, lang: str, prefix: str = "!") -> str:
        usage = self.command.usage(lang, prefix) if self.command else ""
        params = dict(self.params)
        if self.key == "bot.unknown_command":
            params.setdefault("suggestion", ", ".join(prefix + (c.ja if lang == "ja" else c.en)
                                                      for c in self.suggestions) or "-")
        return t(self.key, lang, usage=usage, **params)


@attrs.frozen
class Invocation:
    command: Command
    args: dict[str, Any]
    #: what followed the command name, as typed
    raw: str


def split_prefix(body: str, prefixes: Sequence[str]) -> str | None:
    """The text after the command prefix, or None when the message is not a command."""
    text = body.strip()
    for prefix in sorted(prefixes, key=len, reverse=True):
        if text.startswith(prefix) and len(text) > len(prefix) and not text[len(prefix)].isspace():
            return text[len(prefix):]
    return None


def _fold(name: str) -> str:
    """Command names match whatever the width or case typed (ＬＩＳＴ, ｌｉｓｔ, List)."""
    return unicodedata.normalize("NFKC", name).casefold()


class CommandSet:
    def __init__(self, commands: Sequence[Command]):
        self.commands = list(commands)
        self._by_name: dict[str, Command] = {}
        for command in self.commands:
            for name in command.names():
                key = _fold(name)
                if key in self._by_name:
                    raise ValueError(f"two commands named {name!r}")
                self._by_name[key] = command

    def find(self, name: str) -> Command | None:
        return self._by_name.get(_fold(name))

    def parse(self, after_prefix: str) -> Invocation:
        # the name ends at the first space of any width or Japanese punctuation
        match = re.match(r"[^\s\u3000、，,]+", after_prefix.strip())
        name = match.group(0) if match else ""
        rest = after_prefix.strip()[len(name):]
        command = self.find(name)
        if command is None:
            close = [c for c in self.commands if _fold(name) and any(_fold(n).startswith(_fold(name)[:2])
                                                                   for n in c.names())]
            raise ParseError("bot.unknown_command", name=name, suggestions=close[:3])
        return Invocation(command, parse_args(command, rest), rest.strip(" \u3000"))

    def help(self, lang: str, prefix: str = "!") -> str:
        lines = [t("bot.help_header", lang)]
        for command in self.commands:
            other = command.en if lang == "ja" else command.ja
            lines.append(f"{command.usage(lang, prefix)}  ({prefix}{other}) — {t(command.summary, lang)}")
        lines.append(t("bot.help_footer", lang))
        return "\n".join(lines)

    def help_for(self, command: Command, lang: str, prefix: str = "!") -> str:
        lines = [f"{command.usage(lang, prefix)} — {t(command.summary, lang)}",
                 t("bot.help_names", lang, ja=prefix + command.ja, en=prefix + command.en)]
        if command.examples:
            lines.append(t(command.examples, lang))
        return "\n".join(lines)


def tokens(text: str) -> list[str]:
    """Split arguments on spaces of any width and Japanese commas; quotes keep spaces together."""
    out: list[str] = []
    i = 0
    text = text.strip()
    while i < len(text):
        char = text[i]
        if char in _QUOTES:
            end = text.find(_QUOTES[char], i + 1)
            if end == -1:
                raise ParseError("bot.unclosed_quote", quote=char)
            out.append(text[i + 1:end])
            i = end + 1
            continue
        match = _SEPARATORS.match(text, i)
        if match:
            i = match.end()
            continue
        separator = _SEPARATORS.search(text, i)
        stop = separator.start() if separator else len(text)
        out.append(text[i:stop])
        i = stop
    return out


def parse_int(word: str) -> int | None:
    """``12``, ``１２``, ``#12``, ``＃１２``, ``12番`` -> 12."""
    folded = unicodedata.normalize("NFKC", word).strip().lstrip("#").removesuffix("番")
    # ASCII digits only (other scripts' digits may not convert), and at most 18 of them: every
    # value fits a 64-bit database column (memo numbers, pages, seconds)
    return int(folded) if folded.isascii() and folded.isdigit() and len(folded) <= 18 else None


def parse_args(command: Command, rest: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    remaining = rest
    for arg in command.args:
        if arg.kind == "text":  # the rest of the message, newlines kept
            text = remaining.strip(" \u3000、，,")
            if not text and arg.required:
                raise ParseError("bot.missing_arg", command, arg=Msg(f"bot.arg.{arg.name}"))
            values[arg.name] = text or None
            remaining = ""
            continue
        words = tokens(remaining.split("\n", 1)[0]) if remaining.strip() else []
        if not words:
            if arg.required:
                raise ParseError("bot.missing_arg", command, arg=Msg(f"bot.arg.{arg.name}"))
            values[arg.name] = None
            continue
        word = words[0]
        if arg.kind == "int":
            number = parse_int(word)
            if number is None:
                raise ParseError("bot.not_a_number", command, arg=Msg(f"bot.arg.{arg.name}"), value=word)
            values[arg.name] = number
        else:
            values[arg.name] = word
        remaining = _after_first_token(remaining)
    if remaining.strip(" \u3000、，,\n") and (not command.args or command.args[-1].kind != "text"):
        extra = tokens(remaining)
        if extra:
            raise ParseError("bot.too_many_args", command, extra=" ".join(extra))
    return values


def _after_first_token(text: str) -> str:
    stripped = text.lstrip(" \u3000、，,")
    if stripped[:1] in _QUOTES:
        end = stripped.find(_QUOTES[stripped[0]], 1)
        return stripped[end + 1:] if end != -1 else ""
    match = _SEPARATORS.search(stripped)
    return stripped[match.start():] if match else ""
