import sys

from bots.runtime.cli import main

from .app import MemoBot

sys.exit(main(MemoBot))
