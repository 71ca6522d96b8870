"""What the core layer gives everyone: a bot's start checks its own section with its own rules,
one organisation loader that follows the file, and the suite's routes built in one place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bots.memo.app import MemoBot
from bots.polls.app import PollsBot
from bots.runtime.config import BotConfigError, load
from bots.sanitizer.app import SanitizerBot
from lgwan_chat.core import organisation as org
from lgwan_chat.core.routes import ROOMS, media_status_route, room_route
from synapse_modules.zones.rest.media_status import parse_path

ROOT = Path(__file__).resolve().parent.parent

BOTS = """\
bots:
  memo:
    homeserver: {lgwan: "http://127.0.0.1:8018"}
    zone: lgwan
    user_id: "@memo-bot:city.example"
    password: x
    storage: {sqlite: /tmp/m.sqlite3}
  polls:
    homeserver: {lgwan: "http://127.0.0.1:8018"}
    zone: lgwan
    user_id: "@polls-bot:city.example"
    password: x
    storage: {sqlite: /tmp/p.sqlite3}
    remind_via: email
  sanitizer:
    homeserver: {internet: "http://127.0.0.1:8008"}
    zone: internet
    user_id: "@sanitizer-bot:city.example"
    password: x
    storage: {sqlite: /tmp/s.sqlite3}
    upload: {max_mb: 50}
"""


def start(bot, path: Path):
    """What ``python -m bots.<name> --config`` does before connecting (bots/runtime/cli.py)."""
    return load(path, bot.name, bot.schema, bot.check_config)


def test_a_bot_starts_when_a_neighbour_section_is_wrong_and_not_with_its_own(tmp_path):
    path = tmp_path / "bots.yaml"
    path.write_text(BOTS, encoding="utf-8")
    assert start(MemoBot(), path).user_id == "@memo-bot:city.example"
    with pytest.raises(BotConfigError) as polls:
        start(PollsBot(), path)
    assert f"{path}:14: bots.polls.remind_via:" in str(polls.value)
    assert "bots.sanitizer" not in str(polls.value)


def test_a_bot_start_runs_the_bots_own_rules_not_only_its_schema(tmp_path):
    # max_mb: 50 alone leaves the default of 100 MB above it: a cross-field rule of the sanitizer's
    # check(), which a start checking only the schema would let through
    path = tmp_path / "bots.yaml"
    path.write_text(BOTS, encoding="utf-8")
    with pytest.raises(BotConfigError) as sanitizer:
        start(SanitizerBot(), path)
    assert f"{path}:21: bots.sanitizer.upload.max_mb: default_max_mb（100）が max_mb（50）" in str(sanitizer.value)


def test_the_bot_command_exits_2_on_its_own_section(tmp_path):
    path = tmp_path / "bots.yaml"
    path.write_text(BOTS, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "bots.sanitizer", "--config", str(path)], capture_output=True,
                            text=True, timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result
    assert "bots.sanitizer.upload.max_mb:" in result.stderr and "bots.polls" not in result.stderr


ORGANISATION = """\
organisation:
  municipality: {{id: demo-city, name: {{ja: デモ市}}}}
  departments:
    - {{id: soumu, name: {{ja: {name}}}}}
  staff:
    - {{localpart: yamada, display_name: 山田, department: soumu}}
"""


def test_the_organisation_file_follows_changes_and_keeps_the_last_good_version(tmp_path):
    path = tmp_path / "organisation.yaml"
    path.write_text(ORGANISATION.format(name="総務課"), encoding="utf-8")
    assert org.load(path).department("soumu").name.ja == "総務課"
    file = org.OrganisationFile(path)
    assert file.refresh() is True
    assert file.organisation is not None and file.organisation.department("soumu").name.ja == "総務課"
    assert file.refresh() is False  # unchanged: not read again

    path.write_text(ORGANISATION.format(name="総務部"), encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a new modification time even on a coarse clock
    assert file.refresh() is True
    assert file.organisation is not None and file.organisation.department("soumu").name.ja == "総務部"

    path.write_text(ORGANISATION.format(name="総務部").replace("department: soumu", "department: nosuch"),
                    encoding="utf-8")
    os.utime(path, ns=(2, 2))
    with pytest.raises(ValueError, match="nosuch"):
        file.refresh()
    assert file.organisation.department("soumu").name.ja == "総務部"  # the last good one
    assert file.refresh() is False  # the same broken version is not reported again

    path.unlink()
    with pytest.raises(OSError):
        file.refresh()
    assert file.organisation is not None


def test_routes_are_quoted_as_the_modules_read_them():
    assert room_route("!abc:city.example", "read_status", "$ev/1") == \
        f"{ROOMS}/%21abc%3Acity.example/read_status/%24ev%2F1"
    assert parse_path(media_status_route("city.example:8448", "AbC_1-2")) == ("city.example:8448", "AbC_1-2")


def test_no_module_bot_or_tool_spells_a_suite_route_itself():
    # docstrings may name a route; code takes it from lgwan_chat/core/routes.py
    import ast

    found = []
    for package in ("lgwan_chat", "bots", "synapse_modules"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "lgwan_chat" / "core" / "routes.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                          if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                          and node.body and isinstance(node.body[0], ast.Expr)}
            found += [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
                      if isinstance(node, ast.Constant) and isinstance(node.value, str)
                      and "/_synapse/client/lgwan/v1" in node.value and id(node) not in docstrings]
    assert found == []
