"""``python -m bots.<name> --config bots.yaml``: load the config, set up logs, run until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable

from . import metrics
from .bot import Bot, BotApp
from .config import BotConfigError, load

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class _Structured(logging.Formatter):
    """``extra=`` fields kept as fields: JSON lines, or ``key=value`` after the text."""

    def __init__(self, as_json: bool):
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if self.as_json:
            line = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                    "logger": record.name, "msg": record.getMessage(), **fields}
            if record.exc_info:
                line["exc"] = self.formatException(record.exc_info)
            return json.dumps(line, ensure_ascii=False, default=str)
        text = f"{self.formatTime(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def main(app_factory: Callable[[], BotApp], argv: list[str] | None = None) -> int:
    app = app_factory()
    parser = argparse.ArgumentParser(prog=f"python -m bots.{app.name}")
    parser.add_argument("--config", required=True, help="YAML with a bots: section")
    args = parser.parse_args(argv)
    try:
        config = load(args.config, app.name, app.schema, app.check_config)
    except BotConfigError as e:
        print(str(e), file=sys.stderr)
        return 2
    try:
        metrics.serve(config.metrics_port)
    except OSError as e:
        print(f"{args.config}: bots.{app.name}.metrics_port: メトリクスのポート {config.metrics_port} を開けません"
              f" / cannot listen on metrics port {config.metrics_port} ({e})", file=sys.stderr)
        return 2
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Structured(config.json_logs))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("nio").setLevel(logging.WARNING)

    async def run() -> None:
        bot = Bot(config, app)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, bot.stop)
        await bot.run()

    asyncio.run(run())
    return 0
