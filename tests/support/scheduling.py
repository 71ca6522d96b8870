"""Test modules in the order that finishes a parallel run soonest: longest first.

A pytest plugin (``pytest_plugins`` in conftest.py). ``make test`` runs the modules on several
pytest-xdist workers (``--dist loadfile``: a module and its module-scoped homeservers stay in one
worker) and hands them out in collection order (``--no-loadscope-reorder``). This plugin sorts the
modules by their recorded duration, longest first, so the run does not end with one long module
alone on one worker while the others idle. Within a module the order is untouched.

Durations come from ``tests/durations.json`` (seconds per module, all backends). A module not in
it is estimated from its number of tests. ``--update-durations`` records this run's durations
there (for the modules that ran); commit the file after a full run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS = Path(__file__).resolve().parent.parent / "durations.json"
#: Estimates for a module without a recorded duration, per test.
_HOMESERVER_TEST_SECONDS = 10.0  # 10 modules, serial, both backends: 11 s a test on average
_OTHER_TEST_SECONDS = 0.5

#: Seconds per module measured in this run (in a parallel run: in the controller, from every worker).
_measured: dict[str, float] = defaultdict(float)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-durations", action="store_true",
                     help=f"record each module's duration in {DURATIONS.name} (module order of parallel runs)")


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def recorded_durations() -> dict[str, float]:
    try:
        return json.loads(DURATIONS.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


@pytest.hookimpl(trylast=True)  # after pytest grouped the tests by their fixtures
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    recorded = recorded_durations()
    estimate: dict[str, float] = defaultdict(float)
    for item in items:
        homeserver = "homeserver" in getattr(item, "fixturenames", ())
        estimate[_module(item.nodeid)] += _HOMESERVER_TEST_SECONDS if homeserver else _OTHER_TEST_SECONDS
    # The sort is stable: the tests of one module keep their order and stay together.
    items.sort(key=lambda item: -recorded.get(_module(item.nodeid), estimate[_module(item.nodeid)]))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _measured[_module(report.nodeid)] += report.duration  # setup, call and teardown


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if not config.getoption("--update-durations") or hasattr(config, "workerinput"):
        return  # only the controller (or a serial run) writes the file
    durations = {**recorded_durations(), **{m: round(s, 1) for m, s in _measured.items()}}
    DURATIONS.write_text(json.dumps(dict(sorted(durations.items())), indent=1) + "\n", encoding="utf-8")
