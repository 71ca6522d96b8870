"""``lgwan-chat deploy move-to-postgres``: a ``single`` deployment on SQLite grows to ``workers`` on PostgreSQL.

One deployment, generated and started from its files as in tests/test_deploy.py, used by staff
(a photo from a phone, an approved phone, a message read and acknowledged with a stamp, a
bookmark, a guest); then the admin guide's procedure: ``deploy init`` with the new answers, stop,
``deploy move-to-postgres``, start the ``workers`` deployment. What staff and the admin see must be
what they saw before: above all, the photo from the internet is still refused to LGWAN PCs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import secrets
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from deployment import Deployment, answers_doc, lgwan_chat, make_tls, write_answers
from harness import eventually, http_get, needs_postgres
from nio import AsyncClient, RoomCreateResponse
from test_deploy import login
from test_zone_media_gate import assert_pending_message, png, upload

from lgwan_chat.core.http import HttpError, http_json
from lgwan_chat.core.routes import BOOKMARKS, media_status_route, room_route
from lgwan_chat.deploy.move_to_postgres import copied_tables, uncovered
from lgwan_chat.homeserver import child_env
from lgwan_chat.postgres import PG_SETTINGS, PostgresDatabase
from synapse_modules._storage import VERSION_TABLE
from synapse_modules.schemas import MODULE_SCHEMAS

#: The module's deployment lives in one event loop (its clients, its fixture).
in_module_loop = pytest.mark.asyncio(loop_scope="module")
#: The tests of the moved deployment (PostgreSQL: under CI an unreachable one is an error, tests/conftest.py).

PASSWORD = "pw-tanaka-1234"


def sqlite_rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def write_sqlite(path: Path, sql: str) -> None:
    """Closed again at once: the command refuses while any process has the file open."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(sql)
    finally:
        conn.close()


def move(out: Path, sqlite: Path) -> subprocess.CompletedProcess:
    """The admin's command (synapse_port_db runs Synapse's background updates on PostgreSQL: minutes)."""
    return subprocess.run([sys.executable, "-m", "lgwan_chat.cli", "deploy", "move-to-postgres", str(out),
                           "--sqlite-database", str(sqlite)], capture_output=True, text=True, env=child_env(),
                          timeout=900, stdin=subprocess.DEVNULL)


def get_json(url: str, token: str) -> tuple[int, dict]:
    status, _, body = http_get(url, token)
    return status, json.loads(body)


def enable_guests(out: Path, server: str) -> None:
    """The admin enables the guest accounts module (off in the seed) by editing modules.yaml."""
    path = out / "synapse" / "modules.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["modules"].append({"module": "synapse_modules.guests.GuestAccountsModule",
                           "config": {"notice_sender": f"@admin:{server}", "check_interval_seconds": 3600}})
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


class Story:
    """What happened before the move, and what each run of the command answered."""

    single: Deployment
    workers: Deployment | None
    sqlite: Path
    database: PostgresDatabase
    server: str
    tokens: dict[str, str]
    device_ids: dict[str, str]
    room_id: str
    message: str
    photo: tuple[str, str]
    guest: str
    seen: dict[str, tuple[int, dict]]
    sqlite_tables: set[str]
    pg_tables: set[str]
    #: PostgreSQL's tables when the move stopped on a table nobody declares
    pg_tables_when_refused: set[str]
    #: module table -> (rows on SQLite, rows on PostgreSQL right after the move)
    moved: dict[str, tuple[list[tuple], list[tuple]]]
    runs: dict[str, subprocess.CompletedProcess]


def user_views(story: Story) -> dict[str, tuple[int, dict]]:
    """What staff read through the entrances: read status, stamps, bookmarks, the photo's state."""
    lgwan, internet = story.single.url("lgwan"), story.single.url("internet")
    pc, phone = story.tokens["pc"], story.tokens["phone"]
    return {
        "read_status": get_json(lgwan + room_route(story.room_id, "read_status", story.message), pc),
        "stamps": get_json(lgwan + room_route(story.room_id, "stamps", story.message), pc),
        "bookmarks": get_json(internet + BOOKMARKS, phone),
        "media_status": get_json(lgwan + media_status_route(*story.photo), pc),
    }


async def staff_use_the_single_deployment(s: Story, tmp: Path, tls: dict) -> dict:
    """The ``single`` deployment on SQLite, used; then the guide's order: the new answers given to
    ``deploy init`` while it runs (the command refuses then), and stopped. Returns the new answers."""
    doc = answers_doc(tmp, tls, "single", {"sqlite": str(s.sqlite)}, s.server, ["memo"])
    out = tmp / "out"
    assert lgwan_chat("deploy", "init", write_answers(tmp / "answers.yaml", doc), out).returncode == 0
    enable_guests(out, s.server)
    s.single = Deployment(tmp, out, doc)
    clients: list[AsyncClient] = []
    try:
        s.single.start_synapse()
        s.single.start_nginx()
        assert lgwan_chat("deploy", "accounts", out).returncode == 0
        admin_password = (out / "secrets" / "admin.password").read_text().strip()
        admin = http_json("POST", s.single.synapse_url("lgwan") + "/_matrix/client/v3/login", {
            "type": "m.login.password", "password": admin_password,
            "identifier": {"type": "m.id.user", "user": "admin"}})["access_token"]

        s.single.register("tanaka", PASSWORD)
        user = f"@tanaka:{s.server}"
        phone = await login(s.single, user, PASSWORD, "internet")  # approved from the office PC
        pc = await login(s.single, user, PASSWORD, "lgwan")
        s.single.register("suzuki", PASSWORD)
        colleague = await login(s.single, f"@suzuki:{s.server}", PASSWORD, "lgwan")
        clients += [phone, pc, colleague]
        s.tokens = {"phone": phone.access_token, "pc": pc.access_token}
        assert phone.device_id is not None
        s.device_ids = {"phone": phone.device_id}

        # A photo from the phone: untrusted, refused to the PC until sanitized.
        s.photo = await upload(phone, png())
        download = f"/_matrix/client/v1/media/download/{s.photo[0]}/{s.photo[1]}"
        assert_pending_message(*http_get(s.single.url("lgwan") + download, pc.access_token)[::2])

        # A message read from the phone, acknowledged with a stamp (了解), bookmarked.
        room = await colleague.room_create(name="防災", invite=[user])
        assert isinstance(room, RoomCreateResponse), room
        s.room_id = room.room_id
        assert not hasattr(await phone.join(room.room_id), "status_code")
        sent = await colleague.room_send(room.room_id, "m.room.message",
                                         {"msgtype": "m.text", "body": "避難所の開設準備をお願いします"})
        s.message = sent.event_id
        await phone.room_read_markers(room.room_id, s.message, s.message)
        for key in ("了解", "🔖"):
            await phone.room_send(room.room_id, "m.reaction", {"m.relates_to": {
                "rel_type": "m.annotation", "event_id": s.message, "key": key}})

        # A contractor's guest account, created by the admin.
        expires = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
        created = lgwan_chat("guest", "--homeserver", s.single.synapse_url("lgwan"), "--token", admin, "create",
                             "contractor1", "--name", "山田（〇〇建設）", "--expires", expires)
        assert created.returncode == 0, created.stderr
        s.guest = created.stdout.split("Initial password: ")[1].strip().splitlines()[0]

        def seen_everything() -> dict:
            views = user_views(s)
            assert [b["event_id"] for b in views["bookmarks"][1]["bookmarks"]] == [s.message], views
            assert views["read_status"][1]["read_count"] >= 1, views
            return views

        s.seen = await eventually(seen_everything)

        def updates_done() -> None:  # what the admin waits for before stopping (Synapse's own pace)
            pending = sqlite_rows(s.sqlite, "SELECT update_name FROM background_updates")
            assert pending == [], pending

        await eventually(updates_done, timeout=300)

        postgres = {"host": PG_SETTINGS["host"], "port": PG_SETTINGS["port"], "user": PG_SETTINGS["user"],
                    "database": s.database.name}
        if "password" in PG_SETTINGS:
            (tmp / "pg.password").write_text(PG_SETTINGS["password"])
            postgres["password_file"] = str(tmp / "pg.password")
        grown = {**doc, "size": "workers", "database": {"postgres": postgres}, "redis": {"host": "127.0.0.1"},
                 "workers": {"internet": 1, "lgwan": 1}}
        init = lgwan_chat("deploy", "init", write_answers(tmp / "answers.yaml", grown), out)
        assert init.returncode == 0, init.stderr
        s.runs["running"] = move(out, s.sqlite)
    finally:
        for client in clients:
            await client.close()
        s.single.stop()
    return grown


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def story(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("move")
    tls = make_tls(tmp / "tls")
    old_cert_env = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(tls["ca"])  # the test CA, trusted here as on the town's PCs
    s = Story()
    s.server = f"move-{secrets.token_hex(3)}.example"  # its own: deployments share this machine's Redis
    s.sqlite = tmp / "out" / "homeserver.db"
    s.runs = {}
    s.workers = None
    s.database = PostgresDatabase()
    try:
        grown = await staff_use_the_single_deployment(s, tmp, tls)
        out = s.single.out
        # Synapse's background updates pending: as if Synapse had been stopped in the middle of one.
        write_sqlite(s.sqlite, "INSERT INTO background_updates (update_name, progress_json)"
                               " VALUES ('lgwan_test', '{}')")
        s.runs["background_updates"] = move(out, s.sqlite)
        write_sqlite(s.sqlite, "DELETE FROM background_updates WHERE update_name = 'lgwan_test'")
        # A table nobody declares (e.g. a module newer than this tool): its rows would be lost. The
        # move stops after Synapse's port, before the module tables; run again, it goes on from there.
        write_sqlite(s.sqlite, "CREATE TABLE lgwan_future_feature (x TEXT)")
        write_sqlite(s.sqlite, "INSERT INTO lgwan_future_feature VALUES ('行')")
        s.runs["undeclared"] = move(out, s.sqlite)
        s.pg_tables_when_refused = {row[0] for row in s.database.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        write_sqlite(s.sqlite, "DROP TABLE lgwan_future_feature")
        s.sqlite_tables = {row[0] for row in sqlite_rows(s.sqlite, "SELECT name FROM sqlite_master "
                                                                   "WHERE type = 'table'")}

        s.runs["move"] = move(out, s.sqlite)
        s.runs["again"] = move(out, s.sqlite)
        # The single deployment started again after the move: one more message, in Synapse's tables only.
        used_again = tmp / "used-again.db"
        with contextlib.closing(sqlite3.connect(s.sqlite)) as src, \
                contextlib.closing(sqlite3.connect(used_again)) as dst:
            src.backup(dst)
        event_columns = [r[1] for r in sqlite_rows(used_again, "PRAGMA table_info(events)")]
        values = ", ".join({"event_id": "'$used-again'", "stream_ordering": "stream_ordering + 1"}.get(n, n)
                           for n in event_columns)
        write_sqlite(used_again, f"INSERT INTO events ({', '.join(event_columns)}) SELECT {values} FROM events"
                                 " ORDER BY stream_ordering DESC LIMIT 1")
        s.runs["used_again"] = move(out, used_again)
        # What PostgreSQL holds right after the move (the workers write their own rows later).
        s.pg_tables = {row[0] for row in s.database.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
        s.moved = {}
        for table in set(copied_tables()) & s.pg_tables & s.sqlite_tables:
            names = ", ".join(r[1] for r in sqlite_rows(s.sqlite, f"PRAGMA table_info({table})"))
            s.moved[table] = (sorted(sqlite_rows(s.sqlite, f"SELECT {names} FROM {table}"), key=repr),
                              sorted(s.database.query(f"SELECT {names} FROM {table}"), key=repr))
        s.workers = Deployment(tmp, out, grown)
        yield s
    finally:
        if s.workers is not None:
            s.workers.stop()
        s.database.drop()
        if old_cert_env is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = old_cert_env


@needs_postgres
def test_refused_while_the_deployment_runs(story):
    result = story.runs["running"]
    assert result.returncode == 1
    assert "稼働中です" in result.stderr and "is running" in result.stderr, result.stderr
    assert "lgwan-chat.target を停止" in result.stderr


@needs_postgres
def test_refused_while_synapses_background_updates_are_pending(story):
    result = story.runs["background_updates"]
    assert result.returncode == 1
    assert "バックグラウンド更新が 1 件" in result.stderr and "lgwan_test" in result.stderr, result.stderr
    assert "background updates are still pending" in result.stderr


@needs_postgres
def test_refused_when_sqlite_holds_a_table_nobody_declares(story):
    result = story.runs["undeclared"]
    assert result.returncode == 1
    assert "SQLite の表 lgwan_future_feature は" in result.stderr, result.stderr
    assert "SQLite tables lgwan_future_feature are neither Synapse's" in result.stderr, result.stderr
    # stopped before any module table (the move that followed ran from the interrupted port)
    assert "events" in story.pg_tables_when_refused  # Synapse's port ran
    assert not set(copied_tables()) & story.pg_tables_when_refused


@needs_postgres
def test_the_move_copies_every_module_table_and_says_so(story):
    result = story.runs["move"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "移行が完了しました" in result.stdout and "start lgwan-chat.target" in result.stdout
    for table in copied_tables():
        count = sqlite_rows(story.sqlite, f"SELECT COUNT(*) FROM {table}")[0][0] \
            if table in story.sqlite_tables else 0
        assert f"モジュールの表 {table}: {count} 行を写し" in result.stdout, (table, result.stdout)
    assert "lgwan_untrusted_media: 1 行" in result.stdout  # the photo (the stamp images are trusted)
    # The temporary config synapse_port_db read (database password inside) is gone.
    assert not list((story.single.out / "synapse").glob(".move-to-postgres-*"))
    log = story.single.out / "logs" / "move-to-postgres.log"
    assert log.stat().st_mode & 0o777 == 0o600


@needs_postgres
def test_every_table_the_modules_made_is_copied(story):
    """A module table not in synapse_modules.schemas would be lost: the deployment ran every
    module that keeps tables (guests enabled), so its SQLite has them all."""
    modules = {row[0] for row in sqlite_rows(story.sqlite, f"SELECT module FROM {VERSION_TABLE}")}
    assert modules == set(MODULE_SCHEMAS)
    assert {t for t in story.sqlite_tables if t.startswith("lgwan_")} == {*copied_tables(), VERSION_TABLE}
    synapse_tables = story.pg_tables - set(copied_tables())
    conn = sqlite3.connect(f"file:{story.sqlite}?mode=ro", uri=True)
    try:
        assert uncovered(conn, synapse_tables) == []
    finally:
        conn.close()
    assert set(story.moved) == story.sqlite_tables & set(copied_tables())
    for table, (on_sqlite, on_postgres) in story.moved.items():
        assert on_postgres == on_sqlite, table


@needs_postgres
def test_run_again_right_after_changes_nothing(story):
    result = story.runs["again"]
    assert result.returncode == 0, result.stderr
    assert "移行済みです" in result.stdout and "Nothing changed" in result.stdout


@needs_postgres
def test_whichever_module_table_differs_on_postgresql_the_move_is_not_called_done(story):
    """Run again onto a database whose module tables are not SQLite's (used since, or another
    deployment's): each table in turn loses its rows on PostgreSQL (rolled back), and the move
    refuses, naming it, instead of answering "already moved"."""
    import psycopg2

    from lgwan_chat.deploy.move_to_postgres import check_target
    from lgwan_chat.operations.deployment import DeploymentError

    with_rows = sorted(table for table, (on_sqlite, _) in story.moved.items() if on_sqlite)
    assert {"lgwan_untrusted_media", "lgwan_bookmarks", "lgwan_device_approvals"} <= set(with_rows)
    source = sqlite3.connect(f"file:{story.sqlite}?mode=ro", uri=True)
    target = psycopg2.connect(dbname=story.database.name, **PG_SETTINGS)
    try:
        with target.cursor() as cur:
            assert check_target(cur, source, story.database.name) is True  # as moved: done
        target.rollback()
        for table in with_rows:
            with target.cursor() as cur:
                cur.execute(f"DELETE FROM {table}")
                with pytest.raises(DeploymentError) as refused:
                    check_target(cur, source, story.database.name)
            target.rollback()
            assert refused.value.key == "deploy.move_target_not_empty", table
            assert f"{table} (0/" in refused.value.params["tables"], (table, refused.value.params)
    finally:
        target.close()
        source.close()


@needs_postgres
def test_refused_when_sqlite_was_used_after_the_move(story):
    """Module tables equal, but SQLite has a newer message: "already moved" would lose it."""
    result = story.runs["used_again"]
    assert result.returncode == 1, result.stdout
    assert "SQLite に移行後のデータがあります" in result.stderr and "events $used-again" in result.stderr
    assert "started again after the move" in result.stderr, result.stderr


async def room_for_the_workers_pools(processes: int, timeout: float = 300) -> None:
    """This machine's PostgreSQL is shared by parallel test runs: wait (bounded) until its
    max_connections leaves room for each Synapse process's pool (cp_min 5), then start anyway."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        import psycopg2

        conn = psycopg2.connect(dbname="postgres", **PG_SETTINGS)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT current_setting('max_connections')::int - COUNT(*) FROM pg_stat_activity")
                [(free,)] = cur.fetchall()
        finally:
            conn.close()
        if free >= 5 * processes + 5:
            return
        await asyncio.sleep(2)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def workers_running(story):
    """The ``workers`` deployment started from its files, on the moved database."""
    assert story.workers is not None and story.runs["move"].returncode == 0, story.runs["move"].stderr
    await room_for_the_workers_pools(1 + len(list((story.workers.out / "synapse" / "workers").glob("*.yaml"))))
    story.workers.start_synapse()
    story.workers.start_nginx()
    return story


def started(story: Story) -> Deployment:
    assert story.workers is not None
    return story.workers


@needs_postgres
@in_module_loop
async def test_staff_see_on_workers_what_they_saw_before(workers_running):
    story = workers_running
    workers = started(story)
    assert {name for name, _ in workers.started} > {"main", "media_repository"}
    # The photo from the internet is still refused to the office PC (the gate, now on the media worker).
    download = f"/_matrix/client/v1/media/download/{story.photo[0]}/{story.photo[1]}"
    assert_pending_message(*http_get(workers.url("lgwan") + download, story.tokens["pc"])[::2])
    assert http_get(workers.url("internet") + download, story.tokens["phone"])[:3:2] == (200, png())
    # Read status, the 了解 stamp, the bookmark, the photo's state: as before.
    assert user_views(story) == story.seen
    # The approved phone needs no new approval; its binding to the internet zone holds.
    status, body = get_json(workers.url("internet") + "/_matrix/client/v3/account/whoami", story.tokens["phone"])
    assert status == 200 and body["device_id"] == story.device_ids["phone"], body
    status, _ = get_json(workers.url("lgwan") + "/_matrix/client/v3/account/whoami", story.tokens["phone"])
    assert status == 403


@needs_postgres
def test_the_guest_is_still_a_guest(workers_running):
    story = workers_running
    """Held to the internet zone: the LGWAN entrance refuses its login (without the module's
    record it would be an ordinary account there)."""
    with pytest.raises(HttpError) as refused:
        http_json("POST", started(story).url("lgwan") + "/_matrix/client/v3/login", {
            "type": "m.login.password", "password": story.guest,
            "identifier": {"type": "m.id.user", "user": "contractor1"}})
    assert refused.value.status == 403 and "インターネット" in refused.value.body["error"], refused.value
    rows = story.database.query("SELECT user_id, display_name FROM lgwan_guests")
    # the module keeps the name with its suffix; what SQLite had, moved as it was
    assert [tuple(r) for r in rows] == [(f"@contractor1:{story.server}", "山田（〇〇建設）（外部）")]
    assert [tuple(r) for r in sqlite_rows(story.sqlite, "SELECT user_id, display_name FROM lgwan_guests")] == \
        [tuple(r) for r in rows]


@needs_postgres
@in_module_loop
async def test_moving_again_onto_a_used_database_is_refused(workers_running):
    story = workers_running
    """PostgreSQL used since (a new photo from the phone): a second run would overwrite it."""
    workers = started(story)
    context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    phone = AsyncClient(workers.url("internet"), f"@tanaka:{story.server}", ssl=context)  # type: ignore[arg-type]
    phone.restore_login(f"@tanaka:{story.server}", story.device_ids["phone"], story.tokens["phone"])
    try:
        await upload(phone, png((10, 200, 10)))
    finally:
        await phone.close()
    running = move(workers.out, story.sqlite)
    assert running.returncode == 1 and "稼働中です" in running.stderr, running.stderr
    workers.stop()
    result = move(workers.out, story.sqlite)
    assert result.returncode == 1, result.stdout
    assert "SQLite と一致しない行があります" in result.stderr and "not SQLite's" in result.stderr, result.stderr
    assert "lgwan_untrusted_media (2/1)" in result.stderr
    assert len(story.database.query("SELECT media_id FROM lgwan_untrusted_media")) == 2  # untouched


def test_a_table_nobody_declares_would_stop_the_move(tmp_path):
    """The guard against losing a table: SQLite's own and the full-text indexes' shadow tables
    are not data; a table neither Synapse nor a module declares is named."""
    conn = sqlite3.connect(tmp_path / "hs.db")
    conn.execute("CREATE TABLE events (event_id TEXT)")
    conn.execute("CREATE VIRTUAL TABLE event_search USING fts4 (value)")
    conn.execute("CREATE TABLE lgwan_untrusted_media (media_id TEXT)")
    conn.execute("CREATE TABLE lgwan_future_feature (x TEXT)")
    conn.execute("CREATE TABLE sessions (x INTEGER PRIMARY KEY AUTOINCREMENT)")  # makes sqlite_sequence
    conn.execute("INSERT INTO sessions DEFAULT VALUES")
    assert uncovered(conn, {"events", "event_search", "sessions"}) == ["lgwan_future_feature"]
    conn.close()


def test_refused_when_the_deployment_does_not_name_postgresql_yet(tmp_path):
    tls = make_tls(tmp_path / "tls")
    doc = answers_doc(tmp_path, tls, "single", {"sqlite": str(tmp_path / "out" / "homeserver.db")},
                      "city.example", ["memo"])
    assert lgwan_chat("deploy", "init", write_answers(tmp_path / "answers.yaml", doc), tmp_path / "out").returncode == 0
    result = move(tmp_path / "out", tmp_path / "out" / "homeserver.db")
    assert result.returncode == 1
    assert "PostgreSQL ではありません" in result.stderr and "deploy init first" in result.stderr, result.stderr


def test_every_table_any_module_declares_is_moved():
    """Modules off in the generated modules.yaml (guests, ...) make no table in the deployment
    above: read every CREATE TABLE in synapse_modules/ instead."""
    import ast
    import re

    root = Path(__file__).resolve().parent.parent / "synapse_modules"
    declared = set()
    stores = set()
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                declared |= set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(?!IF\b)(\w+)", node.value, re.I))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ModuleStore":
                stores.add(ast.literal_eval(node.args[1]))
    assert declared == set(copied_tables())  # lgwan_schema_versions: made by _storage.migrate itself
    assert stores == set(MODULE_SCHEMAS)
