"""Approved devices (端末認証): a new phone may do nothing until approved, and the bypasses fail.

Real Synapse with the suite's modules, ``device_approval: {internet: self, lgwan: off}`` (the
production default); the clients are plain HTTP calls, as a phone app makes them.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

import pytest
from bots_harness import BotProcess, ask, wait_membership, wait_replies
from harness import User
from nio import RoomCreateResponse

from lgwan_chat import cli
from lgwan_chat.core.i18n import t
from lgwan_chat.core.routes import DEVICE_APPROVALS, DEVICE_APPROVALS_ADMIN, DEVICE_APPROVALS_BOT, DEVICE_STATUS
from lgwan_chat.homeserver import ZONES_MODULE, suite_modules

PENDING = "JP_LGWAN_DEVICE_PENDING"
CLIENT = "/_matrix/client/v3"


MEMO_BOT = "@memo-bot:lgwan.test"


@pytest.fixture(scope="module")
def homeserver_modules() -> list:
    modules = suite_modules()
    zones = next(m for m in modules if m["module"] == ZONES_MODULE)
    zones["config"]["device_approval_bots"] = [MEMO_BOT]
    return modules


@pytest.fixture(scope="module")
def memo_bot(homeserver, tmp_path_factory):
    with BotProcess(homeserver, tmp_path_factory.mktemp("memo-bot"), "memo", entry=["-m", "bots.memo"],
                    zone="lgwan", storage=homeserver.backend) as bot:
        bot.start().wait_ready()
        yield bot
        assert bot.stop() == 0


@pytest.fixture(scope="module")
def homeserver_spec() -> dict:
    return {"device_approval": {"internet": "self", "lgwan": "off"}}


@pytest.fixture(scope="module")
def homeserver_extra() -> dict:
    # m.login.token from an existing session (MSC3882), as Element's "sign in with QR" uses it.
    return {"login_via_existing_session": {"enabled": True, "require_ui_auth": False}}


@pytest.fixture(scope="module")
def admin(homeserver) -> User:
    return homeserver.new_user("admin", admin=True)


def call(url: str, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else (b"" if method in ("POST", "PUT") else None)
    request = urllib.request.Request(url + path, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def http_login(homeserver, user: User, zone: str, **fields: Any) -> dict:
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user.user_id},
            "password": user.password, "initial_device_display_name": "iPhone", **fields}
    status, answer = call(homeserver.url(zone), "POST", CLIENT + "/login", body=body)
    assert status == 200, answer
    # As an app does at once: its first request (here its status) ties the device to its zone.
    assert call(homeserver.url(zone), "GET", DEVICE_STATUS, answer["access_token"])[0] == 200
    return answer


def assert_pending(status: int, answer: dict) -> None:
    """What a phone waiting for approval gets: a 403 saying so in Japanese first, then English."""
    assert status == 403, answer
    assert answer["errcode"] == PENDING, answer
    assert answer["jp.lgwan.reason"] == "device_pending"
    assert answer["error"].startswith("この端末")
    assert answer["jp.lgwan.message"]["en"].startswith("This device")


def sync(homeserver, zone: str, token: str) -> tuple[int, dict]:
    return call(homeserver.url(zone), "GET", CLIENT + "/sync?timeout=0", token)


def pending_of(homeserver, office_token: str) -> dict[str, dict]:
    status, answer = call(homeserver.url("lgwan"), "GET", DEVICE_APPROVALS, office_token)
    assert status == 200, answer
    return {d["device_id"]: d for d in answer["devices"]}


def decide(homeserver, office_token: str, device_id: str, decision: str, zone: str = "lgwan") -> tuple[int, dict]:
    return call(homeserver.url(zone), "POST", DEVICE_APPROVALS, office_token,
                {"device_id": device_id, "decision": decision})


def staff(homeserver) -> tuple[User, str]:
    """A staff member with an office (LGWAN) PC logged in: LGWAN devices need no approval."""
    user = homeserver.new_user("staff")
    return user, http_login(homeserver, user, "lgwan")["access_token"]


def device_cli(homeserver, admin: User, capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["device", "--homeserver", homeserver.url("lgwan"), "--token", admin.access_token, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_new_phone_can_do_nothing_but_log_out_until_approved_from_the_office(homeserver):
    user, office = staff(homeserver)
    phone = http_login(homeserver, user, "internet")
    token, url = phone["access_token"], homeserver.url("internet")
    assert_pending(*sync(homeserver, "internet", token))
    status, room = call(homeserver.url("lgwan"), "POST", CLIENT + "/createRoom", office, {"name": "課内"})
    assert status == 200, room
    assert_pending(*call(url, "PUT", f"{CLIENT}/rooms/{quote(room['room_id'])}/send/m.room.message/t1", token,
                         {"msgtype": "m.text", "body": "現場です"}))
    assert_pending(*call(url, "POST", f"{CLIENT}/keys/upload", token, {"one_time_keys": {}}))
    assert_pending(*call(url, "GET", f"{CLIENT}/account/whoami", token))
    request = urllib.request.Request(url + "/_matrix/media/v3/upload?filename=a.txt", data=b"hello", method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as upload:
        urllib.request.urlopen(request, timeout=30)
    assert_pending(upload.value.code, json.loads(upload.value.read()))
    # Its status: the one route it may call.
    status, answer = call(url, "GET", DEVICE_STATUS, token)
    assert (status, answer["state"], answer["policy"]) == (200, "pending", "self"), answer
    # The office PC sees it (name and first use) and approves it.
    waiting = pending_of(homeserver, office)
    assert waiting[phone["device_id"]]["display_name"] == "iPhone"
    assert waiting[phone["device_id"]]["zone"] == "internet"
    assert decide(homeserver, office, phone["device_id"], "approve")[0] == 200
    assert sync(homeserver, "internet", token)[0] == 200
    assert call(url, "GET", DEVICE_STATUS, token)[1]["state"] == "approved"
    assert phone["device_id"] not in pending_of(homeserver, office)


def test_pending_phone_may_log_out(homeserver):
    user, _ = staff(homeserver)
    phone = http_login(homeserver, user, "internet")
    status, answer = call(homeserver.url("internet"), "POST", CLIENT + "/logout", phone["access_token"], {})
    assert status == 200, answer
    status, answer = sync(homeserver, "internet", phone["access_token"])
    assert (status, answer["errcode"]) == (401, "M_UNKNOWN_TOKEN")


def test_every_new_login_is_a_new_pending_device(homeserver):
    user, office = staff(homeserver)
    first = http_login(homeserver, user, "internet")
    decide(homeserver, office, first["device_id"], "approve")
    second = http_login(homeserver, user, "internet")
    assert second["device_id"] != first["device_id"]
    assert_pending(*sync(homeserver, "internet", second["access_token"]))
    assert sync(homeserver, "internet", first["access_token"])[0] == 200


def test_login_naming_an_approved_device_id_is_refused(homeserver):
    user, office = staff(homeserver)
    phone = http_login(homeserver, user, "internet")
    decide(homeserver, office, phone["device_id"], "approve")
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user.user_id},
            "password": user.password, "device_id": phone["device_id"]}
    status, answer = call(homeserver.url("internet"), "POST", CLIENT + "/login", body=body)
    assert status == 403, answer
    assert answer["jp.lgwan.reason"] == "device_id_in_use"
    assert answer["error"] == t("zones.device_id_in_use", "ja", device=phone["device_id"]) + " / " + \
        t("zones.device_id_in_use", "en", device=phone["device_id"])


def test_refreshed_token_of_a_pending_device_stays_pending(homeserver):
    user, office = staff(homeserver)
    phone = http_login(homeserver, user, "internet", refresh_token=True)
    assert "refresh_token" in phone, phone
    status, refreshed = call(homeserver.url("internet"), "POST", CLIENT + "/refresh",
                             body={"refresh_token": phone["refresh_token"]})
    assert status == 200, refreshed
    assert_pending(*sync(homeserver, "internet", refreshed["access_token"]))
    decide(homeserver, office, phone["device_id"], "approve")
    assert sync(homeserver, "internet", refreshed["access_token"])[0] == 200


def test_login_token_gives_a_new_pending_device(homeserver):
    user, office = staff(homeserver)
    phone = http_login(homeserver, user, "internet")
    url = homeserver.url("internet")
    # A pending device cannot mint a login token for another device.
    assert_pending(*call(url, "POST", "/_matrix/client/v1/login/get_token", phone["access_token"], {}))
    decide(homeserver, office, phone["device_id"], "approve")
    status, minted = call(url, "POST", "/_matrix/client/v1/login/get_token", phone["access_token"], {})
    assert status == 200, minted
    status, other = call(url, "POST", CLIENT + "/login", body={"type": "m.login.token", "token": minted["login_token"]})
    assert status == 200, other
    assert other["device_id"] != phone["device_id"]
    assert_pending(*sync(homeserver, "internet", other["access_token"]))


def test_an_approval_belongs_to_one_user(homeserver):
    alice, alice_office = staff(homeserver)
    bob, bob_office = staff(homeserver)
    alice_phone = http_login(homeserver, alice, "internet")
    decide(homeserver, alice_office, alice_phone["device_id"], "approve")
    # Bob logs in naming Alice's approved device ID: his own new device, waiting.
    bob_phone = http_login(homeserver, bob, "internet", device_id=alice_phone["device_id"])
    assert bob_phone["device_id"] == alice_phone["device_id"]
    assert_pending(*sync(homeserver, "internet", bob_phone["access_token"]))
    # Bob's office PC sees his own device of that ID waiting, Alice's sees nothing waiting.
    assert alice_phone["device_id"] in pending_of(homeserver, bob_office)
    assert pending_of(homeserver, alice_office) == {}
    # Alice's office PC cannot approve Bob's devices.
    bob_new = http_login(homeserver, bob, "internet")
    status, answer = decide(homeserver, alice_office, bob_new["device_id"], "approve")
    assert status == 404, answer
    assert_pending(*sync(homeserver, "internet", bob_new["access_token"]))


def test_only_an_office_device_approves(homeserver):
    user, office = staff(homeserver)
    phone = http_login(homeserver, user, "internet")
    decide(homeserver, office, phone["device_id"], "approve")
    # An approved phone cannot approve another phone: whoever has the password and a phone would.
    second = http_login(homeserver, user, "internet")
    status, answer = decide(homeserver, phone["access_token"], second["device_id"], "approve", zone="internet")
    assert status == 403, answer
    assert answer["jp.lgwan.reason"] == "device_approval_from_lgwan"
    assert_pending(*sync(homeserver, "internet", second["access_token"]))


def test_rejected_phone_is_logged_out_and_its_id_comes_back_pending(homeserver):
    user, office = staff(homeserver)
    phone = http_login(homeserver, user, "internet")
    assert decide(homeserver, office, phone["device_id"], "reject")[0] == 200
    status, answer = sync(homeserver, "internet", phone["access_token"])
    assert (status, answer["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    again = http_login(homeserver, user, "internet", device_id=phone["device_id"])
    assert_pending(*sync(homeserver, "internet", again["access_token"]))


def test_admin_cli_lists_approves_and_revokes(homeserver, admin, capsys):
    user, _ = staff(homeserver)
    phone = http_login(homeserver, user, "internet")
    code, out, err = device_cli(homeserver, admin, capsys, "list", user.localpart)
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith(phone["device_id"]))
    assert "internet" in line and "承認待ち" in line and "iPhone" in line
    code, out, err = device_cli(homeserver, admin, capsys, "approve", user.localpart, phone["device_id"])
    assert code == 0, err
    assert "承認しました" in out
    assert sync(homeserver, "internet", phone["access_token"])[0] == 200
    code, out, err = device_cli(homeserver, admin, capsys, "revoke", user.user_id, phone["device_id"])
    assert code == 0, err
    status, answer = sync(homeserver, "internet", phone["access_token"])
    assert (status, answer["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    # Logging in again with the revoked device's ID: a new device, waiting again.
    again = http_login(homeserver, user, "internet", device_id=phone["device_id"])
    assert_pending(*sync(homeserver, "internet", again["access_token"]))
    # Not an admin: refused, in both languages.
    code, _, err = device_cli(homeserver, User(user.user_id, "", user.localpart, user.access_token), capsys,
                              "list", user.localpart)
    assert code == 1 and "サーバー管理者" in err
    # Every decision is recorded: who, what, how; the log line has no token.
    rows = homeserver.query("SELECT decision, decided_by, via FROM lgwan_device_approval_audit"
                            " WHERE user_id = ? AND device_id = ? ORDER BY ts", user.user_id, phone["device_id"])
    assert rows == [("approved", admin.user_id, "admin"), ("revoked", admin.user_id, "admin")]
    log = homeserver.log_tail(max_chars=2_000_000)
    assert f"device approval: revoked user={user.user_id} device={phone['device_id']}" in log
    assert phone["access_token"] not in log and again["access_token"] not in log


def test_approval_survives_a_restart_and_admin_policy_takes_self_approval_away(homeserver, admin, capsys):
    user, office = staff(homeserver)
    phone = http_login(homeserver, user, "internet")
    decide(homeserver, office, phone["device_id"], "approve")
    homeserver.stop()
    homeserver.hs.reconfigure(device_approval={"internet": "admin", "lgwan": "off"})
    try:
        homeserver.start()
        assert sync(homeserver, "internet", phone["access_token"])[0] == 200
        new = http_login(homeserver, user, "internet")
        assert_pending(*sync(homeserver, "internet", new["access_token"]))
        # admin: the office PC no longer approves; an admin does.
        assert new["device_id"] not in pending_of(homeserver, office)
        assert decide(homeserver, office, new["device_id"], "approve")[0] == 404
        code, _, err = device_cli(homeserver, admin, capsys, "approve", user.localpart, new["device_id"])
        assert code == 0, err
        assert sync(homeserver, "internet", new["access_token"])[0] == 200
    finally:
        homeserver.stop()
        homeserver.hs.reconfigure(device_approval={"internet": "self", "lgwan": "off"})
        homeserver.start()


def test_admin_route_is_for_admins_only(homeserver):
    user, office = staff(homeserver)
    status, answer = call(homeserver.url("lgwan"), "GET", DEVICE_APPROVALS_ADMIN + "?user_id=" + quote(user.user_id),
                          office)
    assert status == 403 and answer["jp.lgwan.reason"] == "not_admin", answer


async def test_memo_bot_dm_offers_and_approves_a_new_phone_from_the_office_pc(homeserver, login, memo_bot):
    user = homeserver.new_user("staff")
    pc = await login(user, "lgwan")
    dm = await pc.room_create(is_direct=True, invite=[memo_bot.user_id])
    assert isinstance(dm, RoomCreateResponse), dm
    await wait_membership(pc, dm.room_id, memo_bot.user_id, "join")
    phone = http_login(homeserver, user, "internet")
    offer = await ask(pc, dm.room_id, "!端末", sender=memo_bot.user_id)
    assert offer.startswith("新しい端末 (iPhone, ")
    assert f"!端末承認 {phone['device_id']}" in offer
    answer = await ask(pc, dm.room_id, f"!端末承認 {phone['device_id']}", sender=memo_bot.user_id)
    assert answer.startswith(f"端末 {phone['device_id']} を承認しました")
    assert sync(homeserver, "internet", phone["access_token"])[0] == 200
    rows = homeserver.query("SELECT decision, decided_by, via FROM lgwan_device_approval_audit"
                            " WHERE user_id = ? AND device_id = ?", user.user_id, phone["device_id"])
    assert rows == [("approved", user.user_id, f"bot:{memo_bot.user_id}")]

    # The approved phone cannot approve the next phone through the bot: the command must be
    # typed on an office PC.
    second = http_login(homeserver, user, "internet")
    status, sent = call(homeserver.url("internet"), "PUT",
                        f"{CLIENT}/rooms/{quote(dm.room_id)}/send/m.room.message/phone-1", phone["access_token"],
                        {"msgtype": "m.text", "body": f"!端末承認 {second['device_id']}"})
    assert status == 200, sent
    reply = (await wait_replies(pc, dm.room_id, sent["event_id"], sender=memo_bot.user_id))[0]["content"]["body"]
    assert reply == t("zones.device_approval_from_lgwan", "ja")
    assert_pending(*sync(homeserver, "internet", second["access_token"]))
    # Nor can anyone call the bots' route with a command of their own choosing.
    status, refused = call(homeserver.url("lgwan"), "POST", DEVICE_APPROVALS_BOT, user.access_token,
                           {"room_id": dm.room_id, "event_id": sent["event_id"], "decision": "list"})
    assert status == 403 and refused["jp.lgwan.reason"] == "not_approval_bot", refused



async def test_admin_approves_another_users_device_from_the_memo_bot_dm(homeserver, login, memo_bot, admin):
    """``device_approval: admin``: a server admin types ``!端末承認 @user DEVICE`` in the memo bot's
    DM on an office PC; a non-admin, or an admin on a phone, is refused."""
    user, _ = staff(homeserver)
    admin_pc = await login(admin, "lgwan")
    admin_dm = await admin_pc.room_create(is_direct=True, invite=[memo_bot.user_id])
    assert isinstance(admin_dm, RoomCreateResponse), admin_dm
    await wait_membership(admin_pc, admin_dm.room_id, memo_bot.user_id, "join")
    other = homeserver.new_user("staff")
    other_pc = await login(other, "lgwan")
    other_dm = await other_pc.room_create(is_direct=True, invite=[memo_bot.user_id])
    assert isinstance(other_dm, RoomCreateResponse), other_dm
    await wait_membership(other_pc, other_dm.room_id, memo_bot.user_id, "join")
    homeserver.stop()
    homeserver.hs.reconfigure(device_approval={"internet": "admin", "lgwan": "off"})
    try:
        homeserver.start()
        phone = http_login(homeserver, user, "internet")
        assert_pending(*sync(homeserver, "internet", phone["access_token"]))
        listed = await ask(admin_pc, admin_dm.room_id, f"!端末 {user.user_id}", sender=memo_bot.user_id, timeout=90)
        line = next(line for line in listed.splitlines() if line.startswith(f"端末 {phone['device_id']}："))
        assert "iPhone" in line and "internet" in line and "承認待ち" in line
        # Not an admin: refused, the phone still waits.
        refused = await ask(other_pc, other_dm.room_id, f"!端末承認 {user.user_id} {phone['device_id']}",
                            sender=memo_bot.user_id)
        assert refused == t("zones.device_not_admin", "ja")
        assert_pending(*sync(homeserver, "internet", phone["access_token"]))
        # The admin on an office PC: approved, audited with the admin as the decider.
        answer = await ask(admin_pc, admin_dm.room_id, f"!端末承認 {user.user_id} {phone['device_id']}",
                           sender=memo_bot.user_id)
        assert answer == t("devices.cli_approved", "ja", user=user.user_id, device=phone["device_id"])
        assert sync(homeserver, "internet", phone["access_token"])[0] == 200
        rows = homeserver.query("SELECT decision, decided_by, via FROM lgwan_device_approval_audit"
                                " WHERE user_id = ? AND device_id = ?", user.user_id, phone["device_id"])
        assert rows == [("approved", admin.user_id, f"admin-bot:{memo_bot.user_id}")]
        # The admin on a phone (approved): refused like self-approval from a phone.
        admin_phone = http_login(homeserver, admin, "internet")
        status, ok = call(homeserver.url("lgwan"), "POST", DEVICE_APPROVALS_ADMIN, admin.access_token,
                          {"user_id": admin.user_id, "device_id": admin_phone["device_id"], "decision": "approve"})
        assert status == 200, ok
        second = http_login(homeserver, user, "internet")
        status, sent = call(homeserver.url("internet"), "PUT",
                            f"{CLIENT}/rooms/{quote(admin_dm.room_id)}/send/m.room.message/admin-phone-1",
                            admin_phone["access_token"],
                            {"msgtype": "m.text", "body": f"!端末承認 {user.user_id} {second['device_id']}"})
        assert status == 200, sent
        reply = (await wait_replies(admin_pc, admin_dm.room_id, sent["event_id"], sender=memo_bot.user_id))[0]
        assert reply["content"]["body"] == t("zones.device_approval_from_lgwan", "ja")
        assert_pending(*sync(homeserver, "internet", second["access_token"]))
        # From the office PC the admin rejects it: logged out.
        answer = await ask(admin_pc, admin_dm.room_id, f"!端末拒否 {user.user_id} {second['device_id']}",
                           sender=memo_bot.user_id)
        assert answer == t("devices.cli_revoked", "ja", user=user.user_id, device=second["device_id"])
        status, gone = sync(homeserver, "internet", second["access_token"])
        assert (status, gone["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    finally:
        homeserver.stop()
        homeserver.hs.reconfigure(device_approval={"internet": "self", "lgwan": "off"})
        homeserver.start()

def test_demo_holds_no_device_and_says_how_to_turn_approval_on(tmp_path):
    import yaml

    from lgwan_chat.demo import demo_device_approval
    from lgwan_chat.templates import config_dir

    modules_yaml = tmp_path / "modules.yaml"
    modules_yaml.write_text((config_dir() / "modules.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    shipped = next(m for m in yaml.safe_load(modules_yaml.read_text(encoding="utf-8"))["modules"]
                   if m["module"] == ZONES_MODULE)["config"]["device_approval"]
    assert shipped == {"internet": "self", "lgwan": "off"}
    demo_device_approval(modules_yaml)
    demo = next(m for m in yaml.safe_load(modules_yaml.read_text(encoding="utf-8"))["modules"]
                if m["module"] == ZONES_MODULE)["config"]["device_approval"]
    assert demo == {"internet": "off", "lgwan": "off"}


@pytest.mark.parametrize("guide", ["admin-guide.ja.md", "admin-guide.en.md"])
def test_the_guides_device_approval_example_passes_check_config(guide, tmp_path):
    import re
    from pathlib import Path

    import yaml

    from lgwan_chat.checkconfig import check_file
    from synapse_modules.zones.config import parse

    text = (Path(__file__).resolve().parent.parent / "docs" / guide).read_text(encoding="utf-8")
    start = text.index("#### 端末認証の設定例" if guide.endswith(".ja.md") else "#### Device approval example")
    [block] = re.findall(r"```yaml\n(.*?)```", text[start:text.index("\n## ", start)], re.S)
    (tmp_path / "modules.yaml").write_text(block, encoding="utf-8")
    assert check_file(tmp_path / "modules.yaml") == []
    config = parse(yaml.safe_load(block)["modules"][0]["config"])
    assert (config.approval_policy("internet"), config.approval_policy("lgwan")) == ("self", "off")
    # The CLI lines of the guide are the CLI's own commands.
    commands = re.findall(r"^lgwan-chat device (\w+) yamada", text[text.index("### 4.12"):start], re.M)
    assert commands == ["list", "approve", "revoke"]


@pytest.mark.parametrize("guide", ["admin-guide.ja.md", "admin-guide.en.md"])
def test_the_guides_admin_bot_commands_are_the_memo_bots(guide):
    import re
    from pathlib import Path

    from bots.memo.app import MemoBot

    text = (Path(__file__).resolve().parent.parent / "docs" / guide).read_text(encoding="utf-8")
    section = text[text.index("### 4.12"):]
    section = section[:section.index("\n## ")]
    typed = re.findall(r"`!(\S+) @yamada:city-a\.lg\.jp(?: ABCDEFGHIJ)?`", section)
    names = {c.ja: c for c in MemoBot().commands()}
    assert typed == ["端末", "端末承認", "端末拒否"]
    # the admin forms parse as the commands take them: the user first, then the device
    assert [len(names[n].args) for n in typed] == [1, 2, 2]
