"""The shared runtime of the suite's bots (see ``bot.py``)."""

from .bot import Bot, BotApp, Context
from .commands import Arg, Command

__all__ = ["Arg", "Bot", "BotApp", "Command", "Context"]
