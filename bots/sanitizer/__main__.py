import sys

from bots.runtime.cli import main

from .app import SanitizerBot

sys.exit(main(SanitizerBot))
