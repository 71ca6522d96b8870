"""Growing a deployment from ``single`` (SQLite) to ``workers`` (PostgreSQL + Redis), as the admin
guide's steps say, keeps what staff had: the suite's own records (a photo from a phone that LGWAN
must not get, an acknowledgement stamp) as well as Synapse's. ``synapse_port_db`` copies only the
tables that exist on both sides, so the main process starts once on PostgreSQL first (it creates
the modules' tables); without that step the record of untrusted files would be lost.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from harness import http_get
from nio import AsyncClient, RoomCreateResponse
from test_deploy import Deployment, deploy, login, tls_env, unit_command, wait_health, write_answers  # noqa: F401
from test_zone_media_gate import assert_pending_message, png, upload

from lgwan_chat.core.routes import room_route
from lgwan_chat.homeserver import child_env
from lgwan_chat.nginx import nginx_binary
from lgwan_chat.postgres import PG_SETTINGS, PostgresDatabase, postgres_unreachable_reason


def modules_migrated(database: PostgresDatabase) -> set[str]:
    try:
        return {module for (module,) in database.query("SELECT module FROM lgwan_schema_versions")}
    except Exception:  # the table is not there yet
        return set()


def cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lgwan_chat.cli", *map(str, args)], capture_output=True, text=True,
                          env=child_env(), timeout=300)


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
@pytest.mark.skipif(postgres_unreachable_reason() is not None, reason="PostgreSQL is not reachable")
async def test_growing_from_single_to_workers_keeps_the_suites_records(tmp_path, tls_env):  # noqa: F811
    server = f"grow-{secrets.token_hex(3)}.example"
    sqlite = tmp_path / "out" / "homeserver.db"
    single = deploy(tmp_path, tls_env, "single", {"sqlite": str(sqlite)}, ["memo"], server_name=server)
    clients: list[AsyncClient] = []
    try:
        single.start_synapse()
        single.start_nginx()
        assert cli("deploy", "accounts", single.out).returncode == 0
        single.register("kacho", "pw-kacho-1234")
        single.register("sato", "pw-sato-1234")
        pc = await login(single, f"@kacho:{server}", "pw-kacho-1234", "lgwan")
        phone = await login(single, f"@sato:{server}", "pw-sato-1234", "internet")
        clients += [pc, phone]
        room = await pc.room_create(name="総務課", invite=[phone.user_id])
        assert isinstance(room, RoomCreateResponse), room
        await phone.join(room.room_id)
        notice = await pc.room_send(room.room_id, "m.room.message", {"msgtype": "m.text", "body": "明朝9時集合"})
        await phone.room_send(room.room_id, "m.reaction", {"m.relates_to": {
            "rel_type": "m.annotation", "event_id": notice.event_id, "key": "了解"}})
        server_part, photo = await upload(phone, png())
        # synapse_port_db refuses a database with pending background updates: wait for them, as the guide says.
        deadline = time.monotonic() + 300
        while sqlite3.connect(sqlite).execute("SELECT COUNT(*) FROM background_updates").fetchone() != (0,):
            assert time.monotonic() < deadline, "Synapse's background updates did not finish"
            time.sleep(1)
    finally:
        for client in clients:
            await client.close()
        single.stop()

    # The guide's steps: PostgreSQL and Redis in the answers, deploy init again on the same OUTDIR.
    database = PostgresDatabase()
    postgres = {"host": PG_SETTINGS["host"], "port": PG_SETTINGS["port"], "user": PG_SETTINGS["user"],
                "database": database.name}
    if "password" in PG_SETTINGS:
        (tmp_path / "pg.password").write_text(PG_SETTINGS["password"])
        postgres["password_file"] = str(tmp_path / "pg.password")
    doc = dict(single.doc, database={"postgres": postgres}, size="workers", redis={"host": "127.0.0.1"},
               workers={"internet": 1, "lgwan": 1})
    result = cli("deploy", "init", write_answers(tmp_path / "answers.yaml", doc), single.out)
    assert result.returncode == 0, result.stderr
    grown = Deployment(tmp_path, single.out, doc)
    clients = []
    try:
        # The main process once on PostgreSQL (Synapse's and the modules' tables), then stopped.
        main, log = grown._start(unit_command(grown.out, "lgwan-chat-synapse.service"), "main-once")
        wait_health(grown.synapse_url("lgwan"), main, log)
        deadline = time.monotonic() + 60
        while not {"zones", "stamps", "bookmarks"} <= modules_migrated(database):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        main.terminate()
        main.wait(30)
        # The data: synapse_port_db with homeserver.yaml and deploy.yaml as one file (it reads one).
        port_config = grown.out / "synapse" / "port.yaml"
        port_config.write_text("".join((grown.out / "synapse" / name).read_text()
                                       for name in ("homeserver.yaml", "deploy.yaml")))
        port_config.chmod(0o600)
        ported = subprocess.run([str(Path(sys.executable).parent / "synapse_port_db"), "--sqlite-database",
                                 str(sqlite), "--postgres-config", str(port_config)],
                                capture_output=True, text=True, env=child_env(), timeout=600, cwd=tmp_path)
        assert ported.returncode == 0, ported.stdout[-3000:] + ported.stderr[-3000:]
        port_config.unlink()
        assert database.query("SELECT COUNT(*) FROM lgwan_untrusted_media WHERE media_id = ?", photo) == [(1,)]

        grown.start_synapse()
        grown.start_nginx()
        grown.start_bot("memo")
        pc = await login(grown, f"@kacho:{server}", "pw-kacho-1234", "lgwan")
        phone = await login(grown, f"@sato:{server}", "pw-sato-1234", "internet")
        clients += [pc, phone]
        # The phone's photo is still refused to the office PC; the stamp is still counted.
        path = f"/_matrix/client/v1/media/download/{server_part}/{photo}"
        assert_pending_message(*http_get(grown.url("lgwan") + path, pc.access_token)[::2])
        assert http_get(grown.url("internet") + path, phone.access_token)[::2] == (200, png())
        status, _, body = http_get(grown.url("lgwan") + room_route(room.room_id, "stamps", notice.event_id),
                                   pc.access_token)
        stamps = {s["key"]: s for s in json.loads(body)["stamps"]}
        assert status == 200 and [u["user_id"] for u in stamps["了解"]["users"]] == [phone.user_id]

        doctor = subprocess.run([sys.executable, "-m", "lgwan_chat.cli", "doctor", grown.url("lgwan"),
                                 grown.url("internet"), "--deployment", str(grown.out), "--tls-days", "1"],
                                capture_output=True, text=True, env=grown.env, timeout=600)
        assert doctor.returncode == 0 and "✗" not in doctor.stdout, doctor.stdout + doctor.stderr
        assert yaml.safe_load((grown.out / "synapse" / "deploy.yaml").read_text())["database"]["name"] == "psycopg2"
    finally:
        for client in clients:
            await client.close()
        grown.stop()
        database.drop()
