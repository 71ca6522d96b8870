"""Chat records against a real Synapse: retention purged by Synapse's own purge job, legal holds
that keep a room whole, and exports (HTML, PDF, CSV) that can be verified later.

The homeserver runs with the ``retention:`` block ``lgwan-chat records synapse-config`` writes,
for a city whose department rooms keep their messages ``PERIOD_S`` seconds (an admin writes
5y; the rules are the same) and whose purge job runs every two seconds.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml
from harness import http_get

from lgwan_chat.cli import main as cli
from lgwan_chat.core.configcheck.typed import build
from lgwan_chat.core.http import HttpError
from lgwan_chat.provisioning.apply import Client
from lgwan_chat.records import audit
from lgwan_chat.records.config import HOLD_LIFETIME_MS, Records
from lgwan_chat.records.retention import homeserver_block

SERVER = "lgwan.test"
PERIOD_S = 15
RETENTION = {"departments": f"{PERIOD_S}s", "projects": "5y", "announcement": "forever", "other": "1y",
             "purge_interval": "2s"}
_cities = itertools.count()


@pytest.fixture(scope="module")
def homeserver_modules():
    return []


@pytest.fixture(scope="module")
def homeserver_extra():
    block = homeserver_block(build(Records, {"retention": RETENTION}).retention)
    return {"retention": block}


@pytest.fixture(scope="module")
def files(tmp_path_factory, hs_backend) -> Path:
    path = tmp_path_factory.mktemp(f"records-{hs_backend}")
    key = path / "export.key"
    key.write_bytes(os.urandom(32).hex().encode())
    key.chmod(0o600)
    return path


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class City:
    """A provisioned city: 総務課 (its room keeps PERIOD_S seconds), 土木課, the all-staff room."""

    def __init__(self, hs, files: Path, capsys):
        n = next(_cities)
        self.hs, self.files, self.capsys = hs, files, capsys
        self.muni, self.people = f"rec{n}", f"r{n}"
        self.org_file = files / f"organisation-{n}.yaml"
        self.org_file.write_text(yaml.safe_dump({"organisation": {
            "municipality": {"id": self.muni, "name": {"ja": "南市"}},
            "roles": [{"title": "課長", "power_level": 50}],
            "departments": [{"id": "soumu", "name": {"ja": "総務課"}}, {"id": "doboku", "name": {"ja": "土木課"}}],
            "announcement": {"name": {"ja": "全庁お知らせ"}, "posters": ["課長"]},
            "staff": [{"localpart": f"{self.people}.yamada", "display_name": "山田 太郎", "department": "soumu",
                       "title": "課長"},
                      {"localpart": f"{self.people}.sato", "display_name": "佐藤 健二", "department": "doboku"}],
        }, "records": {"retention": RETENTION, "audit_log": str(files / "audit.log"),
                       "export_key_file": str(files / "export.key")}}, allow_unicode=True), encoding="utf-8")
        (files / "secret").write_text(hs.registration_shared_secret)
        self.yamada = hs.new_user(localpart=f"{self.people}.yamada", displayname="山田 太郎")
        self.sato = hs.new_user(localpart=f"{self.people}.sato", displayname="佐藤 健二")
        code, out, err = self.cli("provision", str(self.org_file), "--homeserver", hs.url("lgwan"),
                                  "--token-file", str(files / "provisioner.token"),
                                  "--shared-secret-file", str(files / "secret"))
        assert code == 0, err
        self.provision_out = out

    def cli(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = cli(list(args))
        out = self.capsys.readouterr()
        return code, out.out, out.err

    @property
    def token(self) -> str:
        return (self.files / "provisioner.token").read_text().strip()

    @property
    def admin(self) -> Client:
        return Client(self.hs.url("lgwan"), self.token)

    def alias(self, key: str) -> str:
        return f"#{self.muni}-{key}:{SERVER}"

    def room_id(self, key: str) -> str:
        return self.admin.call("GET", f"/_matrix/client/v3/directory/room/{q(self.alias(key))}")["room_id"]

    def state(self, key: str, event_type: str) -> dict:
        return self.admin.call("GET", f"/_matrix/client/v3/rooms/{q(self.room_id(key))}/state/{event_type}/")

    def records(self, *args: str) -> tuple[int, str, str]:
        return self.cli("records", *args, "--homeserver", self.hs.url("lgwan"), "--admin-token", self.token)


@pytest.fixture
def city(homeserver, files, capsys):
    return City(homeserver, files, capsys)


def send(hs, user, room_id: str, body: str) -> str:
    client = Client(hs.url("lgwan"), user.access_token)
    txn = hashlib.sha256(f"{body}{time.time()}".encode()).hexdigest()[:16]
    return client.call("PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/{txn}",
                       {"msgtype": "m.text", "body": body})["event_id"]


def stored_bodies(hs, room_id: str) -> list[str]:
    """Bodies of the messages Synapse's database still holds for the room."""
    rows = hs.query("SELECT json FROM event_json WHERE room_id = ?", room_id)
    bodies = []
    for (raw,) in rows:
        ev = json.loads(raw)
        if ev.get("type") == "m.room.message":
            bodies.append(ev["content"].get("body"))
    return bodies


# --- retention and legal hold -------------------------------------------------------------------


def test_provisioning_sets_each_kind_retention_that_only_admins_change(city, homeserver):
    assert city.state("soumu", "m.room.retention") == {"max_lifetime": PERIOD_S * 1000}
    assert city.state("all-staff", "m.room.retention") == {"max_lifetime": HOLD_LIFETIME_MS}
    assert "保存期間" in city.provision_out and "retention set" in city.provision_out
    # 課長 (power level 50) cannot shorten or lengthen the period of their department's room
    yamada = Client(homeserver.url("lgwan"), city.yamada.access_token)
    with pytest.raises(HttpError) as refused:
        yamada.call("PUT", f"/_matrix/client/v3/rooms/{q(city.room_id('soumu'))}/state/m.room.retention/",
                    {"max_lifetime": 1000})
    assert refused.value.status == 403
    # a second run changes nothing
    code, out, _ = city.cli("records", "apply", str(city.org_file), "--homeserver", homeserver.url("lgwan"),
                            "--admin-token", city.token, "--dry-run")
    assert code == 0 and out == ""


def send_file(hs, user, room_id: str, data: bytes, name: str) -> str:
    mxc = upload(hs, user, data, name)
    Client(hs.url("lgwan"), user.access_token).call(
        "PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/{hashlib.sha256(data).hexdigest()[:12]}",
        {"msgtype": "m.file", "body": name, "url": mxc, "info": {"mimetype": "text/plain"}})
    return mxc


def media_status(hs, user, mxc: str) -> int:
    return http_get(f"{hs.url('lgwan')}/_matrix/client/v1/media/download/{mxc[len('mxc://'):]}",
                    user.access_token)[0]


def test_purge_removes_what_is_older_than_the_period_and_a_held_room_keeps_everything(city, homeserver, files):
    soumu, doboku = city.room_id("soumu"), city.room_id("doboku")
    code, out, err = city.records("hold", city.alias("doboku"), "--reason", "情報公開請求 第12号",
                                  "--config", str(city.org_file))
    assert code == 0, err
    assert "ホールドしました" in out
    old = ["古い連絡 1", "古い連絡 2", "古い連絡 3"]
    for body in old:
        send(homeserver, city.yamada, soumu, body)
        send(homeserver, city.sato, doboku, body)
    old_file = send_file(homeserver, city.yamada, soumu, f"{city.muni} 古い資料".encode(), "old.txt")
    held_file = send_file(homeserver, city.sato, doboku, f"{city.muni} 保全する資料".encode(), "held.txt")
    never_sent = upload(homeserver, city.yamada, f"{city.muni} 送信前".encode(), "draft.txt")
    # Synapse purges up to the room's last event before the cutoff and keeps that one (it is the purge
    # point) until a later message ages out too; clients no longer see it either way
    send(homeserver, city.yamada, soumu, "古い連絡 境目")
    purge_media = ("purge-media", "--config", str(city.org_file), "--state", str(files / f"{city.muni}.media"))
    assert city.records(*purge_media)[0] == 0  # sees the files in their rooms
    time.sleep(PERIOD_S + 1)  # the old messages are now older than the period
    send(homeserver, city.yamada, soumu, "新しい連絡")
    send(homeserver, city.sato, doboku, "新しい連絡")
    new_file = send_file(homeserver, city.yamada, soumu, f"{city.muni} 新しい資料".encode(), "new.txt")
    deadline = time.monotonic() + 240  # the purge job runs every few seconds; far later on a loaded CI machine
    # the job purges up to the last event before its cutoff: the old messages and the old file may go in
    # two runs (the file was sent a moment later), so wait for all of them
    while any(b in stored_bodies(homeserver, soumu) for b in old + ["old.txt"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    remaining = stored_bodies(homeserver, soumu)
    assert not [b for b in old + ["old.txt"] if b in remaining], remaining
    assert "新しい連絡" in remaining and "new.txt" in remaining
    seen = Client(homeserver.url("lgwan"), city.yamada.access_token).call(
        "GET", f"/_matrix/client/v3/rooms/{q(soumu)}/messages?dir=b&limit=100")["chunk"]
    shown = [ev["content"].get("body") for ev in seen if ev["type"] == "m.room.message"]
    assert shown == ["new.txt", "新しい連絡"], shown
    # the held room: nothing purged, though its period (departments) is the same
    assert sorted(stored_bodies(homeserver, doboku)) == sorted(old + ["held.txt", "新しい連絡"])
    # the files: only the purged message's file goes
    code, out, err = city.records(*purge_media)
    assert code == 0, err
    assert "1 件削除" in out
    assert media_status(homeserver, city.yamada, old_file) == 404
    for kept in (held_file, new_file, never_sent):
        assert media_status(homeserver, city.yamada, kept) == 200, kept
    assert [e["files"] for e in audit.read(files / "audit.log") if e["action"] == "purge_media"][-1] == [old_file]


def test_holds_are_listed_audited_and_lifted(city, homeserver, files):
    log = files / "audit.log"
    code, _, err = city.records("hold", city.alias("soumu"), "--reason", "監査対応", "--config", str(city.org_file))
    assert code == 0, err
    assert city.state("soumu", "m.room.retention") == {"max_lifetime": HOLD_LIFETIME_MS}
    # provisioning again leaves a held room's retention alone
    code, out, _ = city.cli("records", "apply", str(city.org_file), "--homeserver", homeserver.url("lgwan"),
                            "--admin-token", city.token)
    assert code == 0 and "ホールド中" in out
    assert city.state("soumu", "m.room.retention") == {"max_lifetime": HOLD_LIFETIME_MS}
    code, out, _ = city.records("holds")
    listed = [json.loads(line) for line in out.splitlines()]
    mine = [h for h in listed if h["room_id"] == city.room_id("soumu")]
    assert mine and mine[0]["reason"] == "監査対応" and mine[0]["by"].startswith("@provisioner:")
    # a member of staff cannot lift it
    yamada = Client(homeserver.url("lgwan"), city.yamada.access_token)
    with pytest.raises(HttpError):
        yamada.call("PUT", f"/_matrix/client/v3/rooms/{q(city.room_id('soumu'))}/state/jp.lgwan.records.hold/",
                    {"held": False})
    code, _, err = city.records("hold", city.alias("soumu"), "--reason", "二回目", "--config", str(city.org_file))
    assert code == 1 and "すでにホールド中" in err and "already under legal hold" in err
    code, out, err = city.records("unhold", city.alias("soumu"), "--reason", "開示完了", "--config",
                                  str(city.org_file))
    assert code == 0, err
    assert city.state("soumu", "m.room.retention") == {"max_lifetime": PERIOD_S * 1000}
    code, out, _ = city.records("holds")
    assert city.room_id("soumu") not in out
    entries = [e for e in audit.read(log) if e.get("room") == city.alias("soumu")]
    assert [(e["action"], e["reason"]) for e in entries] == [("hold", "監査対応"), ("unhold", "開示完了")]
    assert audit.verify_chain(log) is None


def test_a_dm_the_admin_is_not_in_is_held_through_the_admin_api_without_joining(city, homeserver, files):
    """A DM between two members of staff: the admin is not in it and does not join it. The hold is
    written through the admin API (state read there; the events sent with the admin API's login as a
    member, logged out at once), listed, audited with the member it was sent as, and lifted."""
    yamada = Client(homeserver.url("lgwan"), city.yamada.access_token)
    dm = yamada.call("POST", "/_matrix/client/v3/createRoom", {
        "preset": "trusted_private_chat", "is_direct": True, "invite": [city.sato.user_id]})["room_id"]
    Client(homeserver.url("lgwan"), city.sato.access_token).call("POST", f"/_matrix/client/v3/join/{q(dm)}", {})
    admin = city.admin

    def members() -> list[str]:
        return sorted(admin.call("GET", f"/_synapse/admin/v1/rooms/{q(dm)}/members")["members"])

    def state() -> dict:
        return {(ev["type"], ev["state_key"]): ev for ev in
                admin.call("GET", f"/_synapse/admin/v1/rooms/{q(dm)}/state")["state"]}

    def yamada_devices() -> list[str]:
        return sorted(d["device_id"] for d in yamada.call("GET", "/_matrix/client/v3/devices")["devices"])

    staff = sorted([city.yamada.user_id, city.sato.user_id])
    assert members() == staff
    devices = yamada_devices()
    code, out, err = city.records("hold", dm, "--reason", "情報公開請求 第13号", "--config", str(city.org_file))
    assert code == 0, err
    assert "ホールドしました" in out and "legal hold" in out
    held = state()
    marker = held[("jp.lgwan.records.hold", "")]
    assert marker["content"]["held"] is True and marker["content"]["reason"] == "情報公開請求 第13号"
    assert marker["content"]["by"].startswith("@provisioner:") and marker["content"]["sent_as"] in staff
    assert marker["sender"] == marker["content"]["sent_as"]
    assert held[("m.room.retention", "")]["content"] == {"max_lifetime": HOLD_LIFETIME_MS}
    levels = held[("m.room.power_levels", "")]["content"]["events"]
    assert levels["jp.lgwan.records.hold"] == 100 and levels["m.room.retention"] == 100
    assert members() == staff  # the admin never joined
    assert yamada_devices() == devices  # no device left behind by the login as a member
    code, out, _ = city.records("holds")
    assert dm in [json.loads(line)["room_id"] for line in out.splitlines()]
    entries = [e for e in audit.read(files / "audit.log") if e.get("room_id") == dm]
    assert [(e["action"], e["by"].split(":")[0], e["sent_as"]) for e in entries] == [
        ("hold", "@provisioner", marker["content"]["sent_as"])]
    code, out, err = city.records("unhold", dm, "--reason", "開示完了", "--config", str(city.org_file))
    assert code == 0, err
    lifted = state()
    assert lifted[("m.room.retention", "")]["content"] == {}  # the DM had none: Synapse's default again
    assert lifted[("jp.lgwan.records.hold", "")]["content"]["held"] is False
    assert members() == staff
    code, out, _ = city.records("holds")
    assert dm not in out
    assert audit.verify_chain(files / "audit.log") is None


# --- export ---------------------------------------------------------------------------------------


def upload(hs, user, data: bytes, name: str) -> str:
    import urllib.request

    request = urllib.request.Request(f"{hs.url('lgwan')}/_matrix/media/v3/upload?filename={q(name)}", data=data,
                                     method="POST", headers={"Authorization": f"Bearer {user.access_token}",
                                                             "Content-Type": "text/plain"})
    with urllib.request.urlopen(request) as r:
        return json.loads(r.read())["content_uri"]


@pytest.fixture
def talk(homeserver, city):
    """A room (default policy: kept a year) with what an archive must show."""
    hs = homeserver
    yamada, sato = (Client(hs.url("lgwan"), u.access_token) for u in (city.yamada, city.sato))
    room_id = yamada.call("POST", "/_matrix/client/v3/createRoom",
                          {"name": "道路補修の相談", "invite": [city.sato.user_id]})["room_id"]
    sato.call("POST", f"/_matrix/client/v3/join/{q(room_id)}", {})
    original = send(hs, city.yamada, room_id, "会議は午後3時からです")
    yamada.call("PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/edit1", {
        "msgtype": "m.text", "body": "* 会議は午後4時からです",
        "m.new_content": {"msgtype": "m.text", "body": "会議は午後4時からです"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": original}})
    secret = send(hs, city.sato, room_id, "間違えて送った個人情報")
    sato.call("PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/redact/{q(secret)}/r1", {})
    data = "補修箇所の一覧\n国道1号\n".encode()
    mxc = upload(hs, city.sato, data, "list.txt")
    sato.call("PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/f1", {
        "msgtype": "m.file", "body": "補修箇所.txt", "url": mxc, "info": {"mimetype": "text/plain"}})
    poll = yamada.call("PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/send/org.matrix.msc3381.poll.start/p1", {
        "org.matrix.msc1767.text": "現地確認の日程",
        "org.matrix.msc3381.poll.start": {
            "kind": "org.matrix.msc3381.poll.disclosed", "max_selections": 1,
            "question": {"org.matrix.msc1767.text": "現地確認の日程"},
            "answers": [{"id": "a1", "org.matrix.msc1767.text": "月曜日"},
                        {"id": "a2", "org.matrix.msc1767.text": "火曜日"}]}})["event_id"]
    for client, answer, txn in ((yamada, "a1", "v1"), (sato, "a2", "v2"), (sato, "a1", "v3")):
        client.call("PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/send/org.matrix.msc3381.poll.response/{txn}", {
            "org.matrix.msc3381.poll.response": {"answers": [answer]},
            "m.relates_to": {"rel_type": "m.reference", "event_id": poll}})
    return {"room_id": room_id, "data": data}


def test_export_html_shows_names_jst_edits_redactions_files_polls_and_verifies(city, talk, files, tmp_path):
    out = tmp_path / "html"
    code, _, err = city.records("export", talk["room_id"], "--format", "html", "--out", str(out),
                                     "--config", str(city.org_file))
    assert code == 0, err
    page = (out / "archive.html").read_text(encoding="utf-8")
    for text in ("道路補修の相談", "山田 太郎", "佐藤 健二", "会議は午後4時からです", "会議は午後3時からです",
                 "編集履歴", "削除されました", "補修箇所.txt", hashlib.sha256(talk["data"]).hexdigest(),
                 "月曜日: 2 票", "火曜日: 0 票", " JST"):
        assert text in page, text
    assert "間違えて送った個人情報" not in page
    copied = [p for p in (out / "files").iterdir()]
    assert [p.read_bytes() for p in copied] == [talk["data"]]
    # verified as exported; any change is found
    assert city.cli("records", "verify", str(out), "--config", str(city.org_file))[0] == 0
    copied[0].write_bytes(b"changed")
    code, _, err = city.cli("records", "verify", str(out), "--config", str(city.org_file))
    assert code == 1 and copied[0].name in err and "変更されています" in err
    copied[0].write_bytes(talk["data"])
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["messages"] += 1
    (out / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = city.cli("records", "verify", str(out), "--config", str(city.org_file))
    assert code == 1 and "署名が一致しません" in err
    exports = [e for e in audit.read(files / "audit.log") if e["action"] == "export"]
    assert exports[-1]["room_id"] == talk["room_id"] and exports[-1]["format"] == "html"
    assert exports[-1]["by"].startswith("@provisioner:")
    assert oct(os.stat(files / "audit.log").st_mode & 0o777) == "0o600"


def test_export_pdf_renders_japanese(city, talk, tmp_path):
    out = tmp_path / "pdf"
    code, _, err = city.records("export", talk["room_id"], "--format", "pdf", "--out", str(out),
                                "--config", str(city.org_file))
    assert code == 0, err
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(out / "archive.pdf"), "-"], capture_output=True,
                          check=True).stdout.decode()
    for expected in ("会議は午後4時からです", "削除されました", "山田 太郎", "月曜日"):
        assert expected in text.replace("\u3000", " "), (expected, text[:2000])
    assert city.cli("records", "verify", str(out), "--config", str(city.org_file))[0] == 0


def test_export_csv_opens_in_excel_and_keeps_the_period(city, talk, tmp_path):
    out = tmp_path / "csv"
    code, _, err = city.records("export", talk["room_id"], "--format", "csv", "--out", str(out),
                                "--config", str(city.org_file), "--from", "2000-01-01", "--to", "2000-12-31")
    assert code == 0, err
    with open(out / "archive.csv", encoding="utf-8-sig", newline="") as f:
        assert len(list(csv.reader(f))) == 1  # the header: nothing in that year
    out = tmp_path / "csv2"
    code, _, err = city.records("export", talk["room_id"], "--format", "csv", "--out", str(out),
                                "--config", str(city.org_file))
    assert (out / "archive.csv").read_bytes().startswith("\ufeff".encode())
    with open(out / "archive.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    bodies = [r["内容"] for r in rows]
    assert "会議は午後4時からです" in bodies and "削除されました" in bodies
    assert any("会議は午後3時からです" in r["編集履歴"] for r in rows)


def test_export_needs_a_server_admin_and_says_so(city, talk, homeserver, tmp_path):
    out = tmp_path / "refused"
    code, _, err = city.cli("records", "export", talk["room_id"], "--out", str(out), "--homeserver",
                            homeserver.url("lgwan"), "--admin-token", city.yamada.access_token,
                            "--config", str(city.org_file))
    assert code == 1
    assert "サーバー管理者ではありません" in err and "not a server admin" in err
    assert not out.exists()


# --- configuration (pure) ---------------------------------------------------------------------------


def test_check_config_reports_bad_periods_and_unknown_rooms_in_both_languages(tmp_path):
    path = tmp_path / "organisation.yaml"
    path.write_text(yaml.safe_dump({
        "organisation": {"municipality": {"id": "x", "name": {"ja": "x"}}, "departments": [
            {"id": "soumu", "name": {"ja": "総務課"}}]},
        "records": {"retention": {"departments": "5years", "rooms": {"bousai": "10y", "soumu": "10y"}}},
    }, allow_unicode=True), encoding="utf-8")
    from lgwan_chat.checkconfig import check_file

    issues = check_file(path)
    assert [i.path for i in issues] == [("records", "retention", "departments")]
    assert "5y" in issues[0].message("ja") and "形式" in issues[0].message("ja")
    raw = yaml.safe_load(path.read_text())
    raw["records"]["retention"]["departments"] = "5y"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    issues = check_file(path)
    assert [i.path for i in issues] == [("records", "retention", "rooms", "bousai")]
    assert "組織 YAML にありません" in issues[0].message("ja") and "not in the organisation" in issues[0].message("en")


def test_shipped_organisation_file_is_valid_and_gives_synapse_its_retention_block():
    from lgwan_chat.checkconfig import check_file
    from lgwan_chat.records.config import load

    shipped = Path(__file__).resolve().parent.parent / "config" / "organisation.yaml"
    assert check_file(shipped) == []
    records = load(shipped)
    assert records is not None
    block = homeserver_block(records.retention)
    assert block["default_policy"] == {"max_lifetime": "1y"}
    assert block["allowed_lifetime_min"] == 365 * 86_400_000


@pytest.mark.parametrize("guide", ["admin-guide.ja.md", "admin-guide.en.md"])
def test_the_guides_records_example_is_valid(guide):
    from lgwan_chat.core.configcheck.typed import check

    text = (Path(__file__).resolve().parent.parent / "docs" / guide).read_text(encoding="utf-8")
    block = text.split("<!-- records-example -->\n```yaml\n", 1)[1].split("```", 1)[0]
    raw = yaml.safe_load(block)["records"]
    assert check(Records, raw) == []
    assert build(Records, raw).retention.lifetime_ms("departments", "bousai") == 10 * 365 * 86_400_000
