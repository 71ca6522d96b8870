"""``lgwan-chat doctor``: a deployment generated and started as in test_deploy.py, probed from outside.

First everything is right and every line is ✓; then an admin's mistakes, each seen as the ✗ line
that names it: a bot stopped, a module's table missing, a federation server down, the admin API
exposed and the gate removed by editing nginx, an expired certificate from the municipality's
CA, the two entrances given the wrong way round. Also through the deployment: the stamps module
and the memo, polls and sanitizer bots answering (the end-to-end subset of issue #17).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from deployment import Deployment, deploy
from harness import http_get
from nio import RoomCreateResponse
from test_deploy import login, tls_env  # noqa: F401 (tls_env: the fixture)

from lgwan_chat.core.routes import room_route
from lgwan_chat.homeserver import child_env
from lgwan_chat.ports import free_port

PASSWORD_ENV = "LGWAN_CHAT_DOCTOR_PASSWORD"


def doctor(deployment: Deployment, *args: str, password: str | None = None, swapped: bool = False
           ) -> subprocess.CompletedProcess:
    urls = [deployment.url("lgwan"), deployment.url("internet")]
    env = {**child_env(), **({PASSWORD_ENV: password} if password else {})}
    env.pop("SSL_CERT_FILE", None)  # the CA is given as an admin would: --ca-file
    return subprocess.run([sys.executable, "-m", "lgwan_chat.cli", "doctor", *(urls[::-1] if swapped else urls),
                           "--ca-file", str(deployment.tmp / "tls" / "ca.crt"), *args],
                          capture_output=True, text=True, env=env, timeout=600)


def lines(result: subprocess.CompletedProcess, mark: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(mark + " ")]


def one(result: subprocess.CompletedProcess, mark: str, *words: str) -> str:
    """The one ``mark`` line holding every word (ja and en), else the whole output in the failure."""
    found = [line for line in lines(result, mark) if all(w in line for w in words)]
    assert len(found) == 1, (mark, words, result.stdout, result.stderr)
    return found[0]


def expired_certificate(tls_dir: Path) -> None:
    """The server certificate replaced by one the test CA signed, valid until yesterday."""
    ca_key = serialization.load_pem_private_key((tls_dir / "ca.key").read_bytes(), password=None)
    ca = x509.load_pem_x509_certificate((tls_dir / "ca.crt").read_bytes())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME,
                                                                                  "127.0.0.1")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    (tls_dir / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tls_dir / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                                           serialization.NoEncryption()))


def restart_nginx(deployment: Deployment) -> None:
    assert deployment.nginx is not None
    deployment.nginx.stop()
    deployment.start_nginx()


async def test_doctor_on_a_single_deployment_then_each_mistake(tmp_path, tls_env):  # noqa: F811
    bots = ["memo", "polls", "sanitizer"]
    deployment = deploy(tmp_path, tls_env, "single", {"sqlite": str(tmp_path / "out" / "homeserver.db")}, bots)
    federation = tmp_path / "federation.yaml"
    lgwan_entrance = deployment.doc["lgwan"]["listen"]  # federation reaches the suite over LGWAN
    federation.write_text(yaml.safe_dump({"federation": {"servers": [
        {"name": lgwan_entrance, "label": {"ja": "自分"}, "role": "municipality"}]}}))
    # More monitoring accounts, exempt from device approval as the admin guide says doctor's must be
    # (with device_approval: self its phone-side device would wait for approval).
    modules = deployment.out / "synapse" / "modules.yaml"
    server_name = deployment.doc["server_name"]
    exempt = f'"@doctor:{server_name}"]'
    assert exempt in modules.read_text()
    checkers = ", ".join(f'"@checker{n}:{server_name}"' for n in (1, 2, 3))
    modules.write_text(modules.read_text().replace(exempt, f'"@doctor:{server_name}", {checkers}]', 1))
    clients = []
    try:
        deployment.start_synapse()
        deployment.start_nginx()
        accounts = subprocess.run([sys.executable, "-m", "lgwan_chat.cli", "deploy", "accounts", str(deployment.out)],
                                  capture_output=True, text=True, env=child_env(), timeout=120)
        assert accounts.returncode == 0 and "doctor" in accounts.stdout, accounts.stderr
        for bot in bots:
            deployment.start_bot(bot)
        server = deployment.doc["server_name"]

        # Everything right: every line ✓, exit 0, in Japanese and English.
        healthy = doctor(deployment, "--deployment", str(deployment.out), "--federation", str(federation),
                         "--bot-timeout", "90", "--tls-days", "1")
        assert healthy.returncode == 0 and not lines(healthy, "✗"), healthy.stdout + healthy.stderr
        one(healthy, "✓", "TLS 証明書は有効です", deployment.url("lgwan"), "days left")
        one(healthy, "✓", "TLS 証明書は有効です", deployment.url("internet"))
        one(healthy, "✓", "LGWAN 系の入口", "the LGWAN entrance", "answers")
        one(healthy, "✓", deployment.url("lgwan"), "「LGWAN 系」と判定", "in the LGWAN zone")
        one(healthy, "✓", deployment.url("internet"), "「インターネット系」と判定", "in the internet zone")
        one(healthy, "✓", "ゲートが拒否", "the gate holds")
        one(healthy, "✓", "管理 API はどちらの入口からも届きません", "reachable through neither entrance")
        one(healthy, "✓", "zones, bookmarks, read_status, stamps", "tables exist")
        for bot in bots:
            one(healthy, "✓", f"@{bot}-bot:{server}", "DM に応答しました", "answered in a direct chat")
        one(healthy, "✓", f"連合先 {lgwan_entrance} に接続できます", "Synapse")
        assert "すべて問題ありません / everything is fine" in healthy.stdout
        # The doctor's devices are logged out again.
        devices = sqlite3.connect(deployment.out / "homeserver.db").execute(
            "SELECT COUNT(*) FROM devices WHERE user_id = ? AND device_id LIKE 'LGWANCHATDOCTOR%'",
            (f"@doctor:{server}",)).fetchone()
        assert devices == (0,)

        # Stamps through the deployment: an acknowledgement from the phone, counted for the office PC.
        deployment.register("kacho", "pw-kacho-1234")
        deployment.register("sato", "pw-sato-1234")
        pc = await login(deployment, f"@kacho:{server}", "pw-kacho-1234", "lgwan")
        phone = await login(deployment, f"@sato:{server}", "pw-sato-1234", "internet")
        clients += [pc, phone]
        room = await pc.room_create(name="総務課", invite=[phone.user_id])
        assert isinstance(room, RoomCreateResponse), room
        await phone.join(room.room_id)
        notice = await pc.room_send(room.room_id, "m.room.message", {"msgtype": "m.text", "body": "明朝9時集合"})
        await phone.room_send(room.room_id, "m.reaction", {"m.relates_to": {
            "rel_type": "m.annotation", "event_id": notice.event_id, "key": "了解"}})
        status, _, body = http_get(deployment.url("lgwan") + room_route(room.room_id, "stamps", notice.event_id),
                                   pc.access_token)
        stamps = {s["key"]: s for s in json.loads(body)["stamps"]}
        assert status == 200 and [u["user_id"] for u in stamps["了解"]["users"]] == [phone.user_id]

        # Mistakes inside: a bot stopped, a module's table gone, a federation server down.
        polls = next(p for p in deployment.processes if "bots.polls" in str(p.args))
        polls.terminate()
        polls.wait(30)
        db = sqlite3.connect(deployment.out / "homeserver.db")
        db.execute("DROP TABLE lgwan_bookmarks")
        db.commit()
        db.close()
        dead = f"127.0.0.1:{free_port()}"
        federation.write_text(yaml.safe_dump({"federation": {"servers": [
            {"name": lgwan_entrance, "label": {"ja": "自分"}, "role": "municipality"},
            {"name": dead, "label": {"ja": "停止中"}, "role": "municipality"}]}}))
        deployment.register("checker1", "pw-checker-1")  # approval-exempt (modules.yaml edited above)
        broken = doctor(deployment, "--user", "checker1", "--bot", "memo", "--bot", "polls", "--federation",
                        str(federation), "--bot-timeout", "15", "--tls-days", "1", password="pw-checker-1")
        assert broken.returncode == 1, broken.stdout + broken.stderr
        one(broken, "✗", f"@polls-bot:{server}", "DM の招待に参加しません", "did not join the direct chat")
        one(broken, "✓", f"@memo-bot:{server}", "answered")
        one(broken, "✗", "モジュール「bookmarks」", "the bookmarks module", "HTTP 500")
        one(broken, "✗", f"連合先 {dead} に接続できません", "not reachable", "Connection")
        one(broken, "✓", f"連合先 {lgwan_entrance}")
        assert len(lines(broken, "✗")) == 3 and "問題が 3 件あります" in broken.stdout

        # Mistakes in nginx: the admin API exposed, the LGWAN gate removed, an expired certificate.
        sites = deployment.out / "nginx" / "lgwan-chat-sites.conf"
        text = sites.read_text()
        exposed = text.replace("    location = /_lgwan_chat/error {", "    location /_synapse/admin/ {\n"
                               "        proxy_pass http://lgwan_chat_internet_main;\n    }\n\n"
                               "    location = /_lgwan_chat/error {", 1)
        assert exposed != text and "auth_request /_lgwan_chat/gate;" in exposed
        sites.write_text(exposed.replace("auth_request /_lgwan_chat/gate;", ""))
        certificate = {name: (deployment.tmp / "tls" / name).read_bytes() for name in ("server.crt", "server.key")}
        expired_certificate(deployment.tmp / "tls")
        restart_nginx(deployment)
        deployment.register("checker2", "pw-checker-2")
        nginx_broken = doctor(deployment, "--user", "checker2", "--tls-days", "1", password="pw-checker-2")
        assert nginx_broken.returncode == 1, nginx_broken.stdout + nginx_broken.stderr
        for zone in ("lgwan", "internet"):
            one(nginx_broken, "✗", deployment.url(zone), "期限が切れています", "expired on", "CN=127.0.0.1")
        admin = one(nginx_broken, "✗", "管理 API に入口から届きます", "do not expose /_synapse/admin")
        assert deployment.url("internet") + "/_synapse/admin/" in admin
        assert not any(deployment.url("lgwan") + "/_synapse/admin" in line for line in lines(nginx_broken, "✗"))
        one(nginx_broken, "✗", "LGWAN 系の端末にそのまま渡されました", "served to the LGWAN device")
        # The rest was still checked (without verifying the certificate, said once above).
        one(nginx_broken, "✓", deployment.url("lgwan"), "in the LGWAN zone")

        # The two entrances the wrong way round: the zones say so.
        sites.write_text(text)
        for name, content in certificate.items():
            (deployment.tmp / "tls" / name).write_bytes(content)
        restart_nginx(deployment)
        deployment.register("checker3", "pw-checker-3")
        swapped = doctor(deployment, "--user", "checker3", password="pw-checker-3", swapped=True)
        assert swapped.returncode == 1
        # The test CA's certificates last two days: the default warning period (21 days) flags them.
        one(swapped, "✗", deployment.url("lgwan"), "で期限が切れます（21 日以内）", "within 21 days); renew it")
        one(swapped, "✗", deployment.url("internet"), "「LGWAN 系」ではなく「インターネット系」",
            "put in the internet zone instead of LGWAN")
        one(swapped, "✗", deployment.url("lgwan"), "「インターネット系」ではなく「LGWAN 系」")
    finally:
        for client in clients:
            await client.close()
        deployment.stop()


def test_doctor_without_a_test_account_says_what_it_did_not_check(tmp_path):
    """Nothing listening and no account: every entrance is ✗ with the reason, exit 1, nothing hangs."""
    ports = [free_port(), free_port()]
    result = subprocess.run([sys.executable, "-m", "lgwan_chat.cli", "doctor", *(f"https://127.0.0.1:{p}"
                                                                                 for p in ports)],
                            capture_output=True, text=True, env=child_env(), timeout=120)
    assert result.returncode == 1
    one(result, "✗", f"LGWAN 系の入口 https://127.0.0.1:{ports[0]} が応答しません", "does not answer", "refused")
    one(result, "✗", f"インターネット系の入口 https://127.0.0.1:{ports[1]}")
    plain = subprocess.run([sys.executable, "-m", "lgwan_chat.cli", "doctor", f"http://127.0.0.1:{ports[0]}",
                            f"https://127.0.0.1:{ports[1]}"], capture_output=True, text=True, env=child_env(),
                           timeout=120)
    one(plain, "✗", "TLS（https）ではありません", "must be https")



@pytest.mark.parametrize(("guide", "heading"), [("admin-guide.ja.md", "#### 稼働の確認"),
                                                ("admin-guide.en.md", "#### Checking a running deployment")])
def test_the_guides_doctor_commands_are_what_the_cli_takes(guide, heading):
    """The commands the admin guide shows parse with doctor's own options, and its count of admin-API
    spellings is the one doctor tries."""
    import argparse
    import re
    import shlex

    from lgwan_chat.deploy.cli import add_doctor_arguments
    from lgwan_chat.deploy.doctor import admin_probes

    text = (Path(__file__).resolve().parent.parent / "docs" / guide).read_text(encoding="utf-8")
    section = text[text.index(heading):text.index("####", text.index(heading) + 5)]
    [block] = re.findall(r"```sh\n(.*?)```", section, re.S)
    commands = [line for line in block.replace("\\\n", " ").splitlines() if " doctor " in line]
    assert len(commands) == 2
    parser = argparse.ArgumentParser()
    add_doctor_arguments(parser)
    for command in commands:
        args = parser.parse_args(shlex.split(command.split(" doctor ", 1)[1]))
        assert args.lgwan_url.startswith("https://") and args.internet_url.startswith("https://")
        assert ".lg.jp" in args.lgwan_url and ".lg.jp" not in args.internet_url  # LGWAN first
    assert f"{len(admin_probes('city.example'))} " in section
