"""Interop: Element's own libraries from npm (matrix-js-sdk, matrix-widget-api) drive the running
suite as Element would. One homeserver (with the suite's nginx and bots) per backend is shared by
the Node scripts of ``tests/interop/``; each script is a pytest test, and every failing
``node:test`` case inside it is named in the failure with its error.

The Node project is installed from its committed lockfile (``npm ci``) when ``node_modules`` is
missing or older than the lockfile; after that it runs offline. Which client behaviour each script
pins is listed in docs/architecture.md ("Interop tests").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bots_harness import BotProcess

INTEROP = Path(__file__).resolve().parent / "interop"
#: script -> what it needs besides the homeserver, and how many fresh users
SCRIPTS = {
    "zones": {"users": 4},
    "read_status": {"users": 4},
    "polls": {"users": 4, "bots": ["polls"]},
    "bookmarks": {"users": 2},
    "memo": {"users": 1, "bots": ["memo"]},
    "image_packs": {"users": 1},
}
BOTS = {
    # As shipped (config/bots.template.yaml): the summary's pace is what staff see in Element.
    "polls": {"entry": ["-m", "bots.polls"], "options": {}, "zone": "lgwan"},
    "memo": {"entry": ["-m", "bots.memo"], "options": {}, "zone": "lgwan"},
}
#: A whole script may take this long on a busy 2-core machine before it is stopped.
SCRIPT_TIMEOUT_S = 900


def node_command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: run `bash scripts/install-system-deps.sh test` as root "
                    "(Debian packages nodejs, npm) / node がありません", pytrace=False)
    return [node, "--import", str(INTEROP / "lib" / "polyfills.mjs")]


@pytest.fixture(scope="session")
def node_project() -> Path:
    """tests/interop with its packages installed exactly as locked."""
    installed = INTEROP / "node_modules" / ".package-lock.json"
    lock = INTEROP / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is missing: run `bash scripts/install-system-deps.sh test` as root", pytrace=False)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=INTEROP, check=True,
                       timeout=600)
    return INTEROP


@pytest.fixture(scope="module")
def interop_bots(homeserver, tmp_path_factory):
    """The bots the scripts talk to, started once per homeserver."""
    started = {}
    try:
        for name, spec in BOTS.items():
            bot = BotProcess(homeserver, tmp_path_factory.mktemp(f"interop-{name}"), name, entry=spec["entry"],
                             options=spec["options"], zone=spec["zone"], storage=homeserver.backend)
            started[name] = bot
            bot.start().wait_ready()
        yield started
    finally:
        for bot in started.values():
            bot.close()


def tap_results(tap: str) -> list[tuple[bool, str, str]]:
    """(passed, name, details) of the top-level tests of a node:test TAP report."""
    results: list[tuple[bool, str, str]] = []
    lines = tap.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO).*)?$", line)
        if not match:
            continue
        details = []
        for follow in lines[i + 1:]:
            if re.match(r"(not ok|ok) \d+ - ", follow) or follow.startswith("# Subtest"):
                break
            details.append(follow)
        name = match.group(2).replace("\\#", "#").replace("\\\\", "\\")
        results.append((match.group(1) == "ok" and not match.group(3), name, "\n".join(details)))
    return results


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_interop(script, homeserver, nginx_front, interop_bots, node_project, tmp_path):
    spec = SCRIPTS[script]
    context = {
        "server_name": homeserver.server_name,
        "urls": {zone: homeserver.url(zone) for zone in ("internet", "lgwan")},
        "nginx": {zone: nginx_front.url(zone) for zone in ("internet", "lgwan")},
        "users": [{"user_id": u.user_id, "password": u.password}
                  for u in (homeserver.new_user(script.replace("_", "")) for _ in range(spec["users"]))],
        "bots": {name: interop_bots[name].user_id for name in spec.get("bots", [])},
    }
    context_file = tmp_path / "context.json"
    context_file.write_text(json.dumps(context, ensure_ascii=False), encoding="utf-8")
    context_file.chmod(0o600)  # user passwords
    run = subprocess.run(  # noqa: PLW1510 (the exit code is checked below, with the report)
        [*node_command(), "--test", "--test-reporter=tap", str(node_project / f"{script}.test.mjs")],
        cwd=node_project, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S,
        env={**os.environ, "INTEROP_CONTEXT": str(context_file)})
    results = tap_results(run.stdout)
    failed = [f"✗ {name}\n{details}" for passed, name, details in results if not passed]
    summary = "\n".join(f"{'✓' if passed else '✗'} {name}" for passed, name, _ in results)
    assert results, f"no test results from {script}.test.mjs (exit {run.returncode}):\n{run.stdout}\n{run.stderr}"
    assert not failed and run.returncode == 0, (
        f"{script}.test.mjs: {len(failed)} of {len(results)} failed (exit {run.returncode})\n{summary}\n\n"
        + "\n\n".join(failed) + f"\n\nstderr:\n{run.stderr[-5000:]}")
