"""``lgwan-chat deploy``: one answers file to a deployment that runs, generated and started here.

The generated files are checked as an admin would (modes, re-runs that keep secrets and edits,
the diff, ``deploy check``, ``nginx -t``, ``systemd-analyze verify``), then started exactly as
written: Synapse and its workers from the systemd units' command lines, nginx from the generated
sites file with TLS from a CA made by the test, a bot from its unit. The test only chooses free
loopback ports, through the answers file.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from bots_harness import answer, send_text, wait_membership
from deployment import (
    Deployment,
    answers_doc,
    deploy,
    deployed_nginx,
    lgwan_chat,
    make_tls,
    unit_command,
    write_answers,
)
from harness import http_get, needs_postgres
from nio import AsyncClient, LoginResponse, RoomCreateResponse, SyncResponse
from test_zone_endpoint import call_zone
from test_zone_media_gate import assert_pending_message, png, upload

from lgwan_chat.core.routes import DEVICE_APPROVALS
from lgwan_chat.nginx import nginx_binary
from lgwan_chat.postgres import PG_SETTINGS, PostgresDatabase

ROOT = Path(__file__).resolve().parent.parent


# --- what the admin prepares (certificates, the answers file) and starting the generated files:
# tests/support/deployment.py, shared with bench/deploy.py -------------------------------------

def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# --- generation ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def workers_answers(tmp_path, tls):
    return write_answers(tmp_path / "answers.yaml", answers_doc(
        tmp_path, tls, "workers", {"postgres": {"host": "127.0.0.1", "user": "synapse", "database": "synapse"}},
        "city.example", ["memo", "sanitizer"], redis={"host": "127.0.0.1"}))


def test_init_writes_a_complete_private_deployment(tmp_path, workers_answers):
    out = tmp_path / "out"
    result = lgwan_chat("deploy", "init", workers_answers, out)
    assert result.returncode == 0, result.stderr
    assert "問題ありません" in result.stdout and "no problems" in result.stdout
    expected = ["synapse/homeserver.yaml", "synapse/deploy.yaml", "synapse/modules.yaml", "synapse/log.config",
                "bots.yaml", "organisation.yaml", "nginx/lgwan-chat-sites.conf", "logrotate/lgwan-chat",
                "systemd/lgwan-chat-synapse.service", "systemd/lgwan-chat-synapse-worker@.service",
                "systemd/lgwan-chat-bot-memo.service", "systemd/lgwan-chat-bot-sanitizer.service",
                "systemd/lgwan-chat.target", "secrets/signing.key", "secrets/registration_shared_secret",
                "secrets/memo-bot.password", "secrets/sanitizer-bot.password", "secrets/backup_manifest_key",
                "systemd/lgwan-chat-records-purge-media.service", "systemd/lgwan-chat-records-purge-media.timer"]
    for name in ["client_internet_1", "client_lgwan_1", "event_persister", "federation_sender", "pusher",
                 "media_repository", "background_worker"]:
        expected.append(f"synapse/workers/{name}.yaml")
    for name in expected:
        assert (out / name).is_file(), name
    for path in [out, *out.rglob("*")]:
        assert mode(path) == (0o700 if path.is_dir() else 0o600), (path, oct(mode(path)))
    assert not (out / "systemd" / "lgwan-chat-bot-polls.service").exists()  # not asked for
    target = (out / "systemd" / "lgwan-chat.target").read_text()
    assert "lgwan-chat-synapse-worker@media_repository.service" in target
    shared = yaml.safe_load((out / "synapse" / "deploy.yaml").read_text())
    assert shared["stream_writers"] == {"events": ["event_persister"]}
    assert shared["enable_media_repo"] is False and shared["run_background_tasks_on"] == "background_worker"
    # the modules name this server's bots (the sanitizer's files trusted, its phone-side device
    # needing no approval, the memo bot passing on approvals), not the demo's
    zones = next(m["config"] for m in yaml.safe_load((out / "synapse" / "modules.yaml").read_text())["modules"]
                 if m["module"] == "synapse_modules.zones.ZonePolicyModule")
    assert zones["trusted_uploaders"] == ["@sanitizer-bot:city.example"]
    assert zones["device_approval_exempt_users"] == ["@sanitizer-bot:city.example", "@doctor:city.example"]
    assert zones["device_approval_bots"] == ["@memo-bot:city.example"]
    # chat records: Synapse purges by the organisation file's records: periods (DMs etc.: "other")
    retention = shared["retention"]
    assert retention["enabled"] is True and retention["purge_jobs"]
    records = yaml.safe_load((out / "organisation.yaml").read_text())["records"]["retention"]
    if records["other"] != "forever":
        assert retention["default_policy"] == {"max_lifetime": records["other"]}
    assert lgwan_chat("deploy", "check", out).returncode == 0


def test_rerun_keeps_secrets_and_admin_edits_and_shows_the_diff(tmp_path, workers_answers):
    out = tmp_path / "out"
    assert lgwan_chat("deploy", "init", workers_answers, out).returncode == 0
    secrets_before = {p.name: p.read_bytes() for p in (out / "secrets").iterdir()}
    homeserver = out / "synapse" / "homeserver.yaml"
    homeserver.write_text(homeserver.read_text() + "\nmax_upload_size: 200M  # the admin's\n")
    sites = out / "nginx" / "lgwan-chat-sites.conf"
    sites.write_text(sites.read_text().replace("keepalive 16;", "keepalive 99;"))

    doc = yaml.safe_load(workers_answers.read_text())
    doc["workers"]["lgwan"] = 2  # the city grows
    write_answers(workers_answers, doc)
    dry = lgwan_chat("deploy", "init", workers_answers, out, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "+    keepalive 16;" in dry.stdout and "-    keepalive 99;" in dry.stdout  # the edit it would undo
    assert "client_lgwan_2" in dry.stdout
    assert "keepalive 99;" in sites.read_text() and not (out / "synapse/workers/client_lgwan_2.yaml").exists()

    again = lgwan_chat("deploy", "init", workers_answers, out)
    assert again.returncode == 0, again.stderr
    assert {p.name: p.read_bytes() for p in (out / "secrets").iterdir()} == secrets_before
    assert "max_upload_size: 200M  # the admin's" in homeserver.read_text()
    assert "keepalive 99;" not in sites.read_text()
    assert (out / "synapse/workers/client_lgwan_2.yaml").is_file()
    assert mode(out / "synapse/workers/client_lgwan_2.yaml") == 0o600


def test_check_reports_what_an_admin_broke_in_japanese_and_english(tmp_path, workers_answers):
    out = tmp_path / "out"
    assert lgwan_chat("deploy", "init", workers_answers, out).returncode == 0
    bots_yaml = out / "bots.yaml"
    bots_yaml.write_text(bots_yaml.read_text().replace("  memo:", "  mmeo:", 1))
    (out / "secrets" / "form_secret").chmod(0o644)
    result = lgwan_chat("deploy", "check", out)
    assert result.returncode == 1
    assert "このスイートに「mmeo」というボットはありません" in result.stderr and "mmeo" in result.stderr
    assert "form_secret" in result.stderr and "0600" in result.stderr
    assert "1 件" not in result.stderr and "2 件のエラーがあります" in result.stderr


def test_bad_answers_are_refused_with_a_clear_message(tmp_path, tls):
    doc = answers_doc(tmp_path, tls, "workers", {"sqlite": str(tmp_path / "hs.db")}, "city.example", ["memo"])
    doc["lgwan"]["listen"] = doc["internet"]["listen"]
    result = lgwan_chat("deploy", "init", write_answers(tmp_path / "a.yaml", doc), tmp_path / "out")
    assert result.returncode == 1
    assert "PostgreSQL が必要です" in result.stderr and "needs PostgreSQL" in result.stderr
    assert "redis" in result.stderr
    assert "同じアドレス" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing half written


def test_bad_turn_answers_are_refused_in_japanese_and_english(tmp_path, tls):
    doc = answers_doc(tmp_path, tls, "single", {"sqlite": str(tmp_path / "hs.db")}, "city.example", ["memo"])
    doc["turn"] = {"min_port": 50000, "max_port": 40000}
    result = lgwan_chat("deploy", "init", write_answers(tmp_path / "a.yaml", doc), tmp_path / "out")
    assert result.returncode == 1
    assert "turn.max_port" in result.stderr and "50000" in result.stderr and "max_port (40000)" in result.stderr
    doc["turn"] = {"listen_ip": "turn.city.example"}
    result = lgwan_chat("deploy", "init", write_answers(tmp_path / "a.yaml", doc), tmp_path / "out")
    assert result.returncode == 1 and "turn.listen_ip" in result.stderr and "IP アドレス" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
def test_generated_nginx_sites_pass_nginx_t(tmp_path, workers_answers):
    out = tmp_path / "out"
    assert lgwan_chat("deploy", "init", workers_answers, out).returncode == 0
    front = deployed_nginx(tmp_path, out, yaml.safe_load(workers_answers.read_text()))
    binary = nginx_binary()
    assert binary, "nginx is not installed"
    check = subprocess.run([binary, "-p", str(front.prefix), "-c", str(front.conf), "-t"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_generated_units_pass_systemd_analyze_verify(tmp_path, workers_answers):
    out = tmp_path / "out"
    assert lgwan_chat("deploy", "init", workers_answers, out).returncode == 0
    units = out / "systemd"
    (units / "lgwan-chat-synapse-worker@pusher.service").symlink_to("lgwan-chat-synapse-worker@.service")
    names = ["lgwan-chat-synapse.service", "lgwan-chat-synapse-worker@pusher.service", "lgwan-chat-coturn.service",
             "lgwan-chat-bot-memo.service", "lgwan-chat-bot-sanitizer.service", "lgwan-chat.target",
             "lgwan-chat-records-purge-media.service", "lgwan-chat-records-purge-media.timer"]
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(units / n) for n in names)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# --- coturn, and the homeserver.yaml keys deploy.yaml overrides ----------------------------------

def coturn_settings(conf: Path) -> list[tuple[str, str]]:
    return [(key.strip(), value.strip()) for key, _, value in
            (line.partition("=") for line in conf.read_text().splitlines() if line and not line.startswith("#"))]


def test_coturn_gets_synapses_secret_and_refuses_internal_peers(tmp_path, workers_answers):
    doc = yaml.safe_load(workers_answers.read_text())
    doc["turn"] = {"host": "turn.city.example", "relay_ip": "127.0.0.1", "external_ip": "203.0.113.7"}
    out = tmp_path / "out"
    assert lgwan_chat("deploy", "init", write_answers(workers_answers, doc), out).returncode == 0
    conf = out / "coturn" / "turnserver.conf"
    assert mode(conf) == 0o600
    settings = coturn_settings(conf)
    synapse_secret = (out / "secrets" / "turn_shared_secret").read_text().strip()
    assert ("static-auth-secret", synapse_secret) in settings and ("use-auth-secret", "") in settings
    assert ("external-ip", "203.0.113.7/127.0.0.1") in settings and ("listening-ip", "127.0.0.1") in settings
    denied = [value for key, value in settings if key == "denied-peer-ip"]
    assert "10.0.0.0-10.255.255.255" in denied and "192.168.0.0-192.168.255.255" in denied
    assert ("allow-loopback-peers", "") not in settings  # production: the host itself is refused too
    hs = yaml.safe_load((out / "synapse" / "deploy.yaml").read_text())
    assert Path(hs["turn_shared_secret_path"]).read_text().strip() == synapse_secret
    assert "lgwan-chat-coturn.service" in (out / "systemd" / "lgwan-chat.target").read_text()

    # An admin who replaced Synapse's secret by hand but not coturn's: calls would fail.
    (out / "secrets" / "turn_shared_secret").write_text("another secret\n")
    result = lgwan_chat("deploy", "check", out)
    assert result.returncode == 1
    assert "static-auth-secret" in result.stderr and "一致しません" in result.stderr and "refused" in result.stderr


def turn_password(secret: str, username: str) -> str:
    """What Synapse's /voip/turnServer hands a phone (synapse/rest/client/voip.py): HMAC-SHA1, base64."""
    import base64
    import hashlib
    import hmac

    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


@pytest.mark.skipif(shutil.which("turnserver") is None, reason="coturn is not installed")
async def test_generated_coturn_allocates_for_synapses_credentials_only(tmp_path, workers_answers):
    from aioice.stun import TransactionFailed
    from aioice.turn import create_turn_endpoint

    doc = yaml.safe_load(workers_answers.read_text())
    first = int(doc["internet"]["listen"].rsplit(":", 1)[1])
    doc["turn"] = {"listen_ip": "127.0.0.1", "port": first + 30, "min_port": first + 31, "max_port": first + 39}
    out = tmp_path / "out"
    assert lgwan_chat("deploy", "init", write_answers(workers_answers, doc), out).returncode == 0
    process = subprocess.Popen(unit_command(out, "lgwan-chat-coturn.service"), cwd=out, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while socket.socket().connect_ex(("127.0.0.1", first + 30)) != 0:
            assert process.poll() is None and time.monotonic() < deadline, (out / "logs" / "coturn.log").read_text()
            time.sleep(0.05)
        secret = (out / "secrets" / "turn_shared_secret").read_text().strip()
        username = f"{int(time.time()) + 3600}:@yamada:city.example"
        transport, _ = await create_turn_endpoint(asyncio.DatagramProtocol, ("127.0.0.1", first + 30), username,
                                                  turn_password(secret, username))
        relayed = transport.get_extra_info("sockname")
        transport.close()
        assert relayed[0] == "127.0.0.1" and first + 31 <= relayed[1] <= first + 39
        with pytest.raises(TransactionFailed):
            await create_turn_endpoint(asyncio.DatagramProtocol, ("127.0.0.1", first + 30), username,
                                       turn_password("not synapse's secret", username))
    finally:
        process.terminate()
        process.wait(10)


def test_check_warns_when_homeserver_yaml_sets_what_deploy_yaml_overrides(tmp_path, workers_answers):
    out = tmp_path / "out"
    first = lgwan_chat("deploy", "init", workers_answers, out)
    assert first.returncode == 0 and "警告" not in first.stderr, first.stderr  # the seed sets none of them
    homeserver = out / "synapse" / "homeserver.yaml"
    homeserver.write_text(homeserver.read_text() + "\nmedia_store_path: /data/media  # the admin's\n")
    result = lgwan_chat("deploy", "check", out)
    assert result.returncode == 0, result.stderr  # a warning, not an error: Synapse still starts
    assert "media_store_path" in result.stderr and "deploy.yaml" in result.stderr
    assert "無視されます" in result.stderr and "is ignored" in result.stderr and "警告 1 件" in result.stderr


# --- starting what was generated ---------------------------------------------------------------

def assert_metrics_only_on_loopback(deployment: Deployment, processes: int) -> None:
    """Every Synapse process answers Prometheus on its own loopback port, with the suite's metrics;
    neither entrance serves them (they name rooms' activity and the server's internals)."""
    ports = deployment.metrics_ports()
    assert len(ports) == processes and len(set(ports.values())) == processes, ports
    for name, port in ports.items():
        status, _, body = http_get(f"http://127.0.0.1:{port}/_synapse/metrics")
        assert status == 200 and b"lgwan_chat_refusals_total" in body and b"synapse_http_server" in body, name
    for zone in ("internet", "lgwan"):
        for path in ("/_synapse/metrics", "/metrics", "/_synapse/metrics/"):
            status, _, body = http_get(deployment.url(zone) + path)
            assert status == 404 and b"lgwan_chat_" not in body, (zone, path, status)




async def login(deployment: Deployment, user_id: str, password: str, zone: str) -> AsyncClient:
    """A client of ``user_id`` through an entrance. A phone (internet) is approved the way staff do it
    under the production default (``device_approval: self``): from their own office PC."""
    context = ssl.create_default_context(cafile=str(deployment.tmp / "tls" / "ca.crt"))
    # nio hands ssl to aiohttp, which takes a context; nio's annotation says bool only
    client = AsyncClient(deployment.url(zone), user_id, ssl=context)  # type: ignore[arg-type]
    response = await client.login(password, device_name=f"deploy-{zone}")
    assert isinstance(response, LoginResponse), response
    if zone == "internet":
        await client.whoami()  # the phone's first request binds it to its zone: pending until approved
        pc = await login(deployment, user_id, password, "lgwan")
        request = urllib.request.Request(deployment.url("lgwan") + DEVICE_APPROVALS, method="POST",
                                         data=json.dumps({"device_id": client.device_id,
                                                          "decision": "approve"}).encode())
        request.add_header("Authorization", f"Bearer {pc.access_token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30, context=context) as approved:
            assert approved.status == 200
        await pc.close()
    return client


@pytest.fixture
def tls_env(tmp_path, monkeypatch):
    """The test CA, trusted by this process's urllib (what a municipality installs on its PCs)."""
    tls = make_tls(tmp_path / "tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(tls["ca"]))
    return tls


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
async def test_single_deployment_runs_from_the_generated_files(tmp_path, tls_env):
    deployment = deploy(tmp_path, tls_env, "single", {"sqlite": str(tmp_path / "out" / "homeserver.db")}, ["memo"])
    clients: list[AsyncClient] = []
    try:
        deployment.start_synapse()
        deployment.start_nginx()
        server = deployment.doc["server_name"]
        # The admin's and the bots' accounts: the step after starting Synapse; a second run changes nothing.
        accounts = lgwan_chat("deploy", "accounts", deployment.out)
        assert accounts.returncode == 0, accounts.stderr
        assert "アカウントを登録しました: memo-bot" in accounts.stdout and "registered: admin" in accounts.stdout
        again = lgwan_chat("deploy", "accounts", deployment.out)
        assert again.returncode == 0 and "登録済みです: memo-bot" in again.stdout, again.stderr
        assert mode(deployment.out / "secrets" / "admin.password") == 0o600
        # The daily purge-media job, run as its unit says: it reaches Synapse's admin API with its
        # own admin's token and writes what it saw where the backup keeps it.
        assert mode(deployment.out / "secrets" / "records.token") == 0o600
        purge = subprocess.run(unit_command(deployment.out, "lgwan-chat-records-purge-media.service"),
                               cwd=deployment.out, env=deployment.env, umask=0o077, capture_output=True, text=True,
                               timeout=120, stdin=subprocess.DEVNULL)
        assert purge.returncode == 0 and "0 件削除しました" in purge.stdout and "0 file(s)" in purge.stdout, \
            purge.stdout + purge.stderr
        assert mode(deployment.out / "records" / "media-state.json") == 0o600
        exempt = sqlite3.connect(deployment.out / "homeserver.db").execute(
            "SELECT user_id, messages_per_second FROM ratelimit_override").fetchall()
        assert exempt == [(f"@memo-bot:{server}", 0)]  # a busy bot never waits out the message limit
        deployment.start_bot("memo")
        deployment.register("tanaka", "pw-tanaka-1234")
        phone = await login(deployment, f"@tanaka:{server}", "pw-tanaka-1234", "internet")
        pc = await login(deployment, f"@tanaka:{server}", "pw-tanaka-1234", "lgwan")
        clients += [phone, pc]
        for client, zone in ((phone, "internet"), (pc, "lgwan")):
            status, body = call_zone(deployment.url(zone), client.access_token)
            assert status == 200 and body["zone"] == zone, body

        # The LGWAN gate: a photo from the phone is refused to the office PC, served to the phone.
        server_part, media_id = await upload(phone, png())
        path = f"/_matrix/client/v1/media/download/{server_part}/{media_id}"
        assert_pending_message(*http_get(deployment.url("lgwan") + path, pc.access_token)[::2])
        assert http_get(deployment.url("internet") + path, phone.access_token)[0] == 200

        # The admin API is not reachable through either entrance.
        for zone in ("internet", "lgwan"):
            assert http_get(deployment.url(zone) + "/_synapse/admin/v1/server_version")[0] == 404
        assert_metrics_only_on_loopback(deployment, processes=1)

        dm = await pc.room_create(is_direct=True, invite=[f"@memo-bot:{server}"])
        assert isinstance(dm, RoomCreateResponse), dm
        await wait_membership(pc, dm.room_id, f"@memo-bot:{server}", "join")
        reply = await answer(pc, dm.room_id, "!ヘルプ", sender=f"@memo-bot:{server}", timeout=90)
        assert "!検索" in reply["body"]
    finally:
        for client in clients:
            await client.close()
        deployment.stop()


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
@needs_postgres
async def test_workers_deployment_runs_from_the_generated_files(tmp_path, tls_env):
    database = PostgresDatabase()
    postgres = {"host": PG_SETTINGS["host"], "port": PG_SETTINGS["port"], "user": PG_SETTINGS["user"],
                "database": database.name}
    if "password" in PG_SETTINGS:
        (tmp_path / "pg.password").write_text(PG_SETTINGS["password"])
        postgres["password_file"] = str(tmp_path / "pg.password")
    # Its own server name: deployments sharing this machine's Redis do not hear each other.
    # Two client workers per zone: a busy town hall's size, as the answers file says it.
    deployment = deploy(tmp_path, tls_env, "workers", {"postgres": postgres}, ["memo"],
                        redis={"host": "127.0.0.1"}, server_name=f"workers-{secrets.token_hex(3)}.example",
                        workers={"internet": 2, "lgwan": 2})
    clients: list[AsyncClient] = []
    try:
        deployment.start_synapse()
        deployment.start_nginx()
        server = deployment.doc["server_name"]
        started = {name for name, _ in deployment.started}
        for zone in ("internet", "lgwan"):
            assert {n for n in started if n.startswith(f"client_{zone}_")} == \
                {f"client_{zone}_{n}" for n in range(1, deployment.doc["workers"][zone] + 1)}
        # nginx spreads the zone's clients over its workers (one access token stays on one worker):
        # thirty tokens reach both of them.
        for n in range(30):
            http_get(deployment.url("lgwan") + "/_matrix/client/v3/account/whoami", f"token-{n}")
        for name in ("client_lgwan_1", "client_lgwan_2"):
            log = (deployment.out / "logs" / f"synapse-{name}.log").read_text()
            assert "/_matrix/client/v3/account/whoami" in log, name
        deployment.register("kacho", "pw-kacho-1234")
        deployment.register("tanaka", "pw-tanaka-1234")
        pc = await login(deployment, f"@kacho:{server}", "pw-kacho-1234", "lgwan")
        phone = await login(deployment, f"@tanaka:{server}", "pw-tanaka-1234", "internet")
        clients += [pc, phone]
        room = await pc.room_create(name="防災", invite=[phone.user_id])
        assert isinstance(room, RoomCreateResponse), room
        joined = await phone.join(room.room_id)
        assert not hasattr(joined, "status_code"), joined
        sent = await send_text(pc, room.room_id, "避難所の開設準備をお願いします")

        # Read on the internet side: the message went through the event persister to the other zone.
        deadline = time.monotonic() + 60
        seen = False
        while not seen and time.monotonic() < deadline:
            sync = await phone.sync(timeout=3000)
            assert isinstance(sync, SyncResponse), sync
            timeline = sync.rooms.join.get(room.room_id)
            seen = timeline is not None and any(e.event_id == sent for e in timeline.timeline.events)
        assert seen, "the LGWAN message never reached the internet side"
        persisted = database.query("SELECT instance_name FROM events WHERE event_id = ?", sent)
        assert persisted == [("event_persister",)]
        # The main process migrated every module's tables (the workers only use them).
        from synapse_modules.zones.store import MIGRATIONS as ZONES

        versions = dict(database.query("SELECT module, version FROM lgwan_schema_versions"))
        assert versions.get("zones") == len(ZONES) and {"stamps", "bookmarks"} <= set(versions), versions

        # Read status (a module endpoint, on the client workers): the phone's receipt counts.
        status_path = f"/_synapse/client/lgwan/v1/rooms/{quote(room.room_id)}/read_status/{quote(sent)}"

        def read_count() -> int:
            status, _, body = http_get(deployment.url("lgwan") + status_path, pc.access_token)
            assert status == 200, body
            return json.loads(body)["read_count"]

        before = read_count()
        await phone.room_read_markers(room.room_id, sent, sent)
        deadline = time.monotonic() + 30
        while read_count() != before + 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        assert read_count() == before + 1

        # Media: served by the media worker, the LGWAN gate still deciding.
        server_part, photo = await upload(phone, png())
        path = f"/_matrix/client/v1/media/download/{server_part}/{photo}"
        assert_pending_message(*http_get(deployment.url("lgwan") + path, pc.access_token)[::2])
        assert http_get(deployment.url("internet") + path, phone.access_token)[:3:2] == (200, png())
        server_part, memo = await upload(pc, png((10, 120, 10)), name="回覧.png")
        status, _, body = http_get(f"{deployment.url('lgwan')}/_matrix/client/v1/media/download/{server_part}/{memo}",
                                   pc.access_token)
        assert (status, body) == (200, png((10, 120, 10)))
        media_log = (deployment.out / "logs" / "synapse-media_repository.log").read_text()
        assert f"/_matrix/client/v1/media/download/{server_part}/{photo}" in media_log
        main_log = (deployment.out / "logs" / "synapse-main.log").read_text()
        assert "/media/download/" not in main_log and "/media/upload" not in main_log

        workers = list((deployment.out / "synapse" / "workers").glob("*.yaml"))
        assert_metrics_only_on_loopback(deployment, processes=1 + len(workers))

        # A bot works on workers as on one process.
        assert lgwan_chat("deploy", "accounts", deployment.out).returncode == 0
        deployment.start_bot("memo")
        dm = await phone.room_create(is_direct=True, invite=[f"@memo-bot:{server}"])
        assert isinstance(dm, RoomCreateResponse), dm
        await wait_membership(phone, dm.room_id, f"@memo-bot:{server}", "join")
        reply = await answer(phone, dm.room_id, "!ヘルプ", sender=f"@memo-bot:{server}", timeout=90)
        assert "!検索" in reply["body"]

        # lgwan-chat doctor from outside: every line ✓ on workers too (the test CA's certificates
        # last two days, hence --tls-days 1).
        doctor = subprocess.run([sys.executable, "-m", "lgwan_chat.cli", "doctor", deployment.url("lgwan"),
                                 deployment.url("internet"), "--deployment", str(deployment.out), "--tls-days", "1"],
                                capture_output=True, text=True, env=deployment.env, timeout=600)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "✗" not in doctor.stdout and doctor.stdout.count("✓") >= 9, doctor.stdout
        assert f"✓ @memo-bot:{server} が DM に応答しました" in doctor.stdout
    finally:
        for client in clients:
            await client.close()
        deployment.stop()
        database.drop()


@pytest.mark.parametrize(("method", "path", "pool"), [
    ("GET", "/_matrix/client/v3/sync", "client"),
    ("PUT", "/_matrix/client/v3/rooms/!r:city.example/send/m.room.message/t1", "client"),
    ("POST", "/_matrix/client/v3/login", "client"),
    ("GET", "/_synapse/client/lgwan/v1/rooms/!r/read_status/$e", "client"),
    ("POST", "/_matrix/federation/v1/send/123", "client"),
    ("GET", "/_matrix/client/v1/media/download/city.example/abc", "media"),
    ("POST", "/_matrix/media/v3/upload", "media"),
    ("GET", "/_matrix/federation/v1/media/download/abc", "media"),
    ("GET", "/_matrix/client/v3/pushrules/", "client"),
    ("PUT", "/_matrix/client/v3/pushrules/global/override/x", "main"),  # stream writer: main
    ("POST", "/_matrix/client/v3/rooms/!r/receipt/m.read/$e", "main"),
    ("PUT", "/_matrix/client/v3/sendToDevice/m.room.encrypted/t1", "main"),
    ("GET", "/_matrix/client/v3/rooms/!r/messages", "main"),  # pagination of a room: one process
    ("GET", "/_matrix/client/v3/some_future_endpoint", "main"),  # not listed: main has everything
])
def test_routing_table_sends_each_request_where_synapse_serves_it(method, path, pool):
    from lgwan_chat.deploy.routing import pool_of

    assert pool_of(method, path) == pool


def test_the_documented_example_answers_make_a_deployment(tmp_path, tls):
    """config/deploy-answers.example.yaml as an admin fills it in: only the file paths change."""
    text = (ROOT / "config" / "deploy-answers.example.yaml").read_text(encoding="utf-8")
    (tmp_path / "postgres.password").write_text("secret\n")
    for documented, real in (("/etc/ssl/lgwan-chat/internet.crt", tls["cert"]),
                             ("/etc/ssl/lgwan-chat/lgwan.crt", tls["cert"]),
                             ("/etc/ssl/lgwan-chat/internet.key", tls["key"]),
                             ("/etc/ssl/lgwan-chat/lgwan.key", tls["key"]),
                             ("/etc/lgwan-chat/postgres.password", tmp_path / "postgres.password"),
                             ("/etc/lgwan-chat/organisation.yaml", ROOT / "config" / "organisation.yaml")):
        assert documented in text
        text = text.replace(documented, str(real))
    answers = tmp_path / "answers.yaml"
    answers.write_text(text, encoding="utf-8")
    result = lgwan_chat("deploy", "init", answers, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    units = sorted(p.name for p in (tmp_path / "out" / "systemd").iterdir())
    assert units == ["lgwan-chat-bot-memo.service", "lgwan-chat-bot-polls.service",
                     "lgwan-chat-bot-sanitizer.service", "lgwan-chat-coturn.service",
                     "lgwan-chat-records-purge-media.service", "lgwan-chat-records-purge-media.timer",
                     "lgwan-chat-synapse-worker@.service", "lgwan-chat-synapse.service", "lgwan-chat.target"]
    workers = sorted(p.stem for p in (tmp_path / "out" / "synapse" / "workers").glob("*.yaml"))
    assert workers == ["background_worker", "client_internet_1", "client_lgwan_1", "client_lgwan_2",
                       "event_persister", "federation_sender", "media_repository", "pusher"]


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate is not installed")
def test_generated_logrotate_file_is_read_without_errors(tmp_path, workers_answers):
    out = tmp_path / "out"
    assert lgwan_chat("deploy", "init", workers_answers, out).returncode == 0
    config = out / "logrotate" / "lgwan-chat"
    result = subprocess.run(["logrotate", "--debug", "--state", str(tmp_path / "state"), str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "error:" not in result.stderr + result.stdout, result.stderr
    assert "sanitizer-audit.jsonl" in result.stderr + result.stdout  # the audit log is rotated, not skipped
    assert str(out / "logs" / "coturn.log") in result.stderr + result.stdout  # and coturn's (phones' addresses)
