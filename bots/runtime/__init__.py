"""The shared runtime of the suite's bots (see ``bot.py``)."""

from .bot import Bot, BotApp, Context
from .commands import Arg, Command
from .errors import InputError

__all__ = ["Arg", "Bot", "BotApp", "Command", "Context", "InputError"]
