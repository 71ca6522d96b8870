import sys

from bots.runtime.cli import main

from .app import PollsBot

sys.exit(main(PollsBot))
