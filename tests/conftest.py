"""Fixtures: a real Synapse per test module and database backend, users, nio clients.

Every test that uses ``homeserver`` runs once per backend: SQLite always, and
PostgreSQL when reachable (a fresh UTF8/C database per homeserver). Which
backends ran is printed at the start and end of the run, never skipped
silently; with ``CI`` or ``LGWAN_TEST_REQUIRE_POSTGRES`` set, an unreachable
PostgreSQL is an error. In a parallel run (pytest-xdist, ``make test``) the controller decides
the backends once and hands them to every worker.

A test module chooses the modules its homeserver loads by defining its own
``homeserver_modules`` fixture (default: every module of the suite, as
config/modules.yaml), and further Synapse settings with ``homeserver_extra``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from harness import BACKENDS, RunningHomeserver, postgres_unreachable_reason

pytest_plugins = ["pytester", "bots_harness", "scheduling"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backends", default=os.environ.get("LGWAN_TEST_BACKENDS", "auto"),
        help="homeserver database backends: 'auto' (sqlite, plus postgres when reachable) "
             "or a comma-separated list of sqlite,postgres")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "homeserver: talks to a real Synapse (runs once per database backend)")
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the controller chose (see below)
        config.stash[_BACKENDS] = config.workerinput["lgwan_backends"]
        config.stash[_NOTE] = config.workerinput["lgwan_backends_note"]
        return
    choice = config.getoption("--backends")
    required = bool(os.environ.get("CI") or os.environ.get("LGWAN_TEST_REQUIRE_POSTGRES"))
    note = ""
    if choice == "auto":
        reason = postgres_unreachable_reason()
        if reason is None:
            backends = ["sqlite", "postgres"]
        elif required:
            raise pytest.UsageError(f"PostgreSQL is required here (CI) but unreachable: {reason}")
        else:
            backends = ["sqlite"]
            note = f"  (PostgreSQL NOT tested: unreachable: {reason})"
    else:
        backends = [b.strip() for b in choice.split(",") if b.strip()]
        unknown = set(backends) - set(BACKENDS)
        if unknown or not backends:
            raise pytest.UsageError(f"--backends: unknown {sorted(unknown)}; use {BACKENDS}")
        if "postgres" in backends and (reason := postgres_unreachable_reason()):
            raise pytest.UsageError(f"--backends postgres: PostgreSQL unreachable: {reason}")
    config.stash[_BACKENDS] = backends
    config.stash[_NOTE] = note


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: not called in a serial run
def pytest_configure_node(node) -> None:
    """Every worker tests the backends the controller found and printed, no other."""
    node.workerinput["lgwan_backends"] = node.config.stash[_BACKENDS]
    node.workerinput["lgwan_backends_note"] = node.config.stash[_NOTE]


_BACKENDS = pytest.StashKey[list[str]]()
_NOTE = pytest.StashKey[str]()
_LOG_OFFSET = pytest.StashKey[int]()


def _backend_line(config: pytest.Config) -> str:
    backends: list[str] = config.stash[_BACKENDS]
    return "homeserver database backends: " + ", ".join(backends) + config.stash[_NOTE]


def pytest_report_header(config: pytest.Config) -> str:
    return _backend_line(config)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    terminalreporter.write_line(_backend_line(config))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hs_backend" in metafunc.fixturenames:
        # A test module may need a backend (e.g. workers need PostgreSQL): HOMESERVER_BACKENDS = [...]
        wanted = getattr(metafunc.module, "HOMESERVER_BACKENDS", BACKENDS)
        backends = [b for b in metafunc.config.stash[_BACKENDS] if b in wanted]
        metafunc.parametrize("hs_backend", backends, scope="module")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "homeserver" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.homeserver)


@pytest.fixture(scope="module")
def homeserver_modules() -> list | None:
    """The ``modules:`` block; None = every module of the suite."""
    return None


@pytest.fixture(scope="module")
def homeserver_extra() -> dict:
    return {}


@pytest.fixture(scope="module")
def homeserver_spec() -> dict:
    """Further HomeserverSpec fields (e.g. ``x_forwarded``)."""
    return {}


@pytest.fixture(scope="module")
def homeserver(hs_backend: str, homeserver_modules, homeserver_extra, homeserver_spec,
               tmp_path_factory) -> Iterator[RunningHomeserver]:
    """One real Synapse per test module and backend, stopped by pid afterwards."""
    hs = RunningHomeserver(tmp_path_factory.mktemp(f"hs-{hs_backend}"), hs_backend,
                           modules=homeserver_modules, extra=homeserver_extra, spec=homeserver_spec)
    hs.start()
    try:
        yield hs
    finally:
        hs.close()


@pytest.fixture(scope="module")
def nginx_front(homeserver: RunningHomeserver, tmp_path_factory):
    """The suite's nginx (config/nginx) in front of the module's homeserver, one port per zone."""
    from lgwan_chat.homeserver import free_port
    from lgwan_chat.nginx import Nginx, NginxSpec

    spec = homeserver.hs.spec
    nginx = Nginx(NginxSpec(prefix=tmp_path_factory.mktemp("nginx"),
                            internet_listen=f"127.0.0.1:{free_port()}", lgwan_listen=f"127.0.0.1:{free_port()}",
                            synapse_internet=f"127.0.0.1:{spec.internet_port}",
                            synapse_lgwan=f"127.0.0.1:{spec.lgwan_port}",
                            upload_page=f"127.0.0.1:{free_port()}"))
    nginx.start()
    try:
        yield nginx
    finally:
        nginx.stop()


@pytest.fixture
async def login(homeserver: RunningHomeserver):
    """``await login(user, "lgwan")``: a nio client logged in through that zone's listener."""
    yield homeserver.login
    await homeserver.close_clients()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail"):
        # Under CI every tool a test needs is installed (scripts/install-system-deps.sh test): a skip
        # there would hide a missing dependency, so it fails instead, with the skip's reason.
        report.outcome = "failed"
        report.longrepr = f"skipped under CI (a missing dependency?): {report.longrepr}"
    hs = getattr(item, "funcargs", {}).get("homeserver")
    if hs is not None:
        if report.when == "setup":
            item.stash[_LOG_OFFSET] = hs.log_size()
        elif report.failed:
            # The homeserver's side of the story, from this test only.
            report.sections.append(("homeserver log", hs.log_tail(since=item.stash.get(_LOG_OFFSET, 0))))
    return report


@pytest.fixture
async def remote_login(neighbours):
    """``await remote_login(server, prefix)``: a new user logged in on one of the test module's other
    homeservers (its ``neighbours`` fixture, see tests/support/federation.py)."""
    logged_in = []

    async def login(server, prefix):
        client = await server.login(server.new_user(prefix), "internet")
        logged_in.append(server)
        return client

    yield login
    for server in logged_in:
        await server.close_clients()
