"""Guest accounts for outside contractors (synapse_modules.guests, ``lgwan-chat guest``),
against a real Synapse with the zones module, driven by real nio clients and the real CLI."""

from __future__ import annotations

import asyncio
import datetime
import inspect
import json
import sqlite3
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

import pytest
from harness import User
from nio import (
    AsyncClient,
    JoinError,
    JoinResponse,
    LoginError,
    LoginResponse,
    ProfileGetDisplayNameResponse,
    RoomCreateError,
    RoomCreateResponse,
    RoomInviteError,
    RoomInviteResponse,
    SyncResponse,
)

from lgwan_chat import cli
from lgwan_chat.homeserver import suite_modules
from lgwan_chat.postgres import PG_SETTINGS

NOTICES = "@guest-notices:lgwan.test"
SUFFIX = "（外部）"
JST = datetime.timezone(datetime.timedelta(hours=9))


@pytest.fixture(scope="module")
def homeserver_modules():
    return [*suite_modules(),
            {"module": "synapse_modules.guests.GuestAccountsModule",
             "config": {"notice_sender": NOTICES, "notify_days_before": 3, "check_interval_seconds": 3600}}]


@pytest.fixture(scope="module")
def admin(homeserver) -> User:
    homeserver.new_user(localpart="guest-notices", admin=True)
    return homeserver.new_user("admin", admin=True)


def day(days_from_now: int) -> str:
    return (datetime.datetime.now(JST).date() + datetime.timedelta(days=days_from_now)).isoformat()


def guest_cli(homeserver, admin: User, capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["guest", "--homeserver", homeserver.url("lgwan"), "--token", admin.access_token, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


_guests = iter(range(10_000))


def create_guest(homeserver, admin: User, capsys, *rooms: str, expires: int = 30,
                 name: str = "山田（〇〇建設）") -> User:
    localpart = f"contractor{next(_guests)}"
    code, out, err = guest_cli(homeserver, admin, capsys, "create", localpart, "--name", name,
                               "--expires", day(expires), *[a for r in rooms for a in ("--room", r)])
    assert code == 0, err
    password = out.split("Initial password: ")[1].strip().splitlines()[0]
    return User(user_id=f"@{localpart}:lgwan.test", password=password, localpart=localpart, access_token="")


def write_db(homeserver, sql: str, *args: Any) -> None:
    if homeserver.database is not None:
        import psycopg2

        conn = psycopg2.connect(dbname=homeserver.database.name, **PG_SETTINGS)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), args)
        finally:
            conn.close()
    else:
        db = sqlite3.connect(homeserver.hs.data_dir / "homeserver.db", timeout=30)
        try:
            with db:
                db.execute(sql, args)
        finally:
            db.close()


def http_json(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     method=method)
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def staff_room(client: AsyncClient, alias: str | None = None, public: bool = True,
                     internal: bool = False) -> str:
    from nio import RoomPreset, RoomVisibility

    state = [{"type": "jp.lgwan.room.internal", "state_key": "", "content": {"internal": True}}] if internal else []
    created = await client.room_create(alias=alias, initial_state=state,
                                       visibility=RoomVisibility.public if public else RoomVisibility.private,
                                       preset=RoomPreset.public_chat if public else RoomPreset.private_chat)
    assert isinstance(created, RoomCreateResponse), created
    return created.room_id


async def try_login(homeserver, user: User, zone: str) -> LoginResponse | LoginError:
    client = AsyncClient(homeserver.url(zone), user.user_id)
    try:
        return await client.login(user.password, device_name="pytest")
    finally:
        await client.close()


def refused(response: Any, reason: str) -> None:
    """A 403 M_FORBIDDEN whose message is Japanese first (what Element shows)."""
    assert response.status_code == "M_FORBIDDEN", response
    assert "ゲスト" in response.message, response.message


async def test_cli_creates_a_guest_held_to_the_internet_zone(homeserver, admin, login, capsys):
    staff = await login(homeserver.new_user("staff"), "lgwan")
    room_id = await staff_room(staff, alias="project-a")
    guest = create_guest(homeserver, admin, capsys, "#project-a:lgwan.test")

    client = await login(guest, "internet")
    synced = await client.sync(timeout=0)
    assert isinstance(synced, SyncResponse), synced
    # joined to the room it was given, at creation, and to nothing else (not the stamp pack room of all staff)
    assert set(synced.rooms.join) == {room_id}, synced.rooms.join
    name = await client.get_displayname()
    assert isinstance(name, ProfileGetDisplayNameResponse) and name.displayname == "山田（〇〇建設）" + SUFFIX

    # From the LGWAN listener it cannot log in...
    refused_login = await try_login(homeserver, guest, "lgwan")
    assert isinstance(refused_login, LoginError), refused_login
    assert refused_login.status_code == "M_FORBIDDEN" and "インターネット" in refused_login.message, refused_login
    # ...and its internet token is refused there too
    status, body = http_json("GET", homeserver.url("lgwan") + "/_matrix/client/v3/account/whoami",
                             client.access_token)
    assert status == 403 and "インターネット" in body["error"], body
    # An ordinary staff account is not held like that (the rule is for guests).
    assert isinstance(await (await login(homeserver.new_user("staff"), "lgwan")).sync(timeout=0), SyncResponse)

    code, out, _ = guest_cli(homeserver, admin, capsys, "list")
    assert code == 0 and guest.user_id in out and day(30) in out and "有効" in out and room_id in out


async def test_cli_refuses_existing_accounts_and_bad_dates(homeserver, admin, capsys):
    existing = homeserver.new_user("staff")
    code, _, err = guest_cli(homeserver, admin, capsys, "create", existing.localpart, "--name", "x",
                             "--expires", day(10))
    assert code == 1 and "すでに存在します" in err
    code, _, err = guest_cli(homeserver, admin, capsys, "create", "newguest", "--name", "x", "--expires", day(-1))
    assert code == 1 and "もう過ぎています" in err
    code, _, err = guest_cli(homeserver, admin, capsys, "create", "newguest", "--name", "x", "--expires", "12/31")
    assert code == 1 and "読めません" in err


async def test_internal_room_cannot_be_given_and_leaves_no_account(homeserver, admin, login, capsys):
    staff = await login(homeserver.new_user("staff"), "lgwan")
    await staff_room(staff, alias="internal-a", internal=True)
    code, _, err = guest_cli(homeserver, admin, capsys, "create", "leftover", "--name", "x",
                             "--expires", day(10), "--room", "#internal-a:lgwan.test")
    assert code == 1 and "組織内専用" in err
    assert isinstance(await try_login(homeserver, User("@leftover:lgwan.test", "", "leftover", ""), "internet"),
                      LoginError)
    assert homeserver.query("SELECT count(*) FROM users WHERE name = ?", "@leftover:lgwan.test") == [(0,)]
    code, out, _ = guest_cli(homeserver, admin, capsys, "list")
    assert "@leftover:" not in out


async def test_only_admins_manage_guests(homeserver, capsys):
    staff = homeserver.new_user("staff")
    code, _, err = guest_cli(homeserver, staff, capsys, "list")
    assert code == 1 and "403" in err and "サーバー管理者だけ" in err


async def test_guest_cannot_create_rooms_or_direct_chats(homeserver, admin, login, capsys):
    guest = await login(create_guest(homeserver, admin, capsys), "internet")
    answer = await guest.room_create(name="勝手な部屋")
    assert isinstance(answer, RoomCreateError)
    refused(answer, "guest_create_room")
    assert "作成できません" in answer.message
    staff = homeserver.new_user("staff")
    answer = await guest.room_create(is_direct=True, invite=[staff.user_id])
    assert isinstance(answer, RoomCreateError)
    refused(answer, "guest_create_room")


async def test_guest_joins_only_its_rooms(homeserver, admin, login, capsys):
    staff = await login(homeserver.new_user("staff"), "lgwan")
    given = await staff_room(staff, alias="given-b")
    private_given = await staff_room(staff, public=False)
    other = await staff_room(staff, alias="other-b")
    user = create_guest(homeserver, admin, capsys, "#given-b:lgwan.test", private_given)
    guest = await login(user, "internet")

    answer = await guest.join(other)  # a public room, but not given
    assert isinstance(answer, JoinError)
    refused(answer, "guest_room_not_allowed")
    assert "指定したルームにだけ" in answer.message
    # the private room it was given: not joinable without an invite, fine once invited
    assert isinstance(await staff.room_invite(private_given, user.user_id), RoomInviteResponse)
    assert isinstance(await guest.join(private_given), JoinResponse)
    # a staff invite into a room not given is refused too
    answer = await staff.room_invite(other, user.user_id)
    assert isinstance(answer, RoomInviteError)
    refused(answer, "guest_room_not_allowed")
    synced = await guest.sync(timeout=0)
    assert set(synced.rooms.join) >= {given, private_given} and other not in synced.rooms.join


async def test_guest_cannot_be_invited_into_internal_rooms(homeserver, admin, login, capsys):
    staff = await login(homeserver.new_user("staff"), "lgwan")
    internal = await staff_room(staff, public=False, internal=True)
    not_internal = await staff_room(staff, public=False,)
    user = create_guest(homeserver, admin, capsys, not_internal)
    answer = await staff.room_invite(internal, user.user_id)
    assert isinstance(answer, RoomInviteError)
    refused(answer, "guest_internal_room")
    assert "組織内専用" in answer.message
    # the marker set after the room was given: still no invite
    sent = await staff.room_put_state(not_internal, "jp.lgwan.room.internal", {"internal": True})
    assert not hasattr(sent, "status_code"), sent
    answer = await staff.room_invite(not_internal, user.user_id)
    assert isinstance(answer, RoomInviteError) and "組織内専用" in answer.message


def directory_log(homeserver) -> str:
    """What Synapse logged about its user directory updater (why a search may be stale)."""
    text = homeserver.hs.log_path.read_text(errors="replace") if homeserver.hs.log_path.exists() else ""
    return "\n".join(line for line in text.splitlines()
                     if "user_dir" in line or "Traceback" in line or " ERROR " in line)[-5000:]


async def test_directory_search_finds_only_co_members(homeserver, admin, login, capsys):
    colleague = await login(homeserver.new_user("staff", displayname="佐藤 共有"), "lgwan")
    stranger = await login(homeserver.new_user("staff", displayname="佐藤 無関係"), "lgwan")
    shared = await staff_room(colleague, public=False)
    await staff_room(stranger, alias="public-c")  # a public room: Synapse's default directory shows its members
    user = create_guest(homeserver, admin, capsys, shared)
    guest = await login(user, "internet")
    assert isinstance(await colleague.room_invite(shared, user.user_id), RoomInviteResponse)
    assert isinstance(await guest.join(shared), JoinResponse)

    other_staff = await login(homeserver.new_user("staff"), "lgwan")
    nudge_room = await staff_room(other_staff, public=False)

    async def search(client: AsyncClient, zone: str, term: str, wanted: str | None) -> set[str]:
        found: set[str] = set()
        # The directory is updated in the background (minutes on a machine busy with the whole suite):
        # wait for what must appear; what must not appear is asked once the directory has caught up.
        # Synapse's updater runs only when an event is persisted, and a wake-up can come before the
        # stream position it reads has moved: an event now and then wakes it up again.
        deadline = time.monotonic() + 300
        last_nudge = time.monotonic()
        while True:
            if wanted is not None and time.monotonic() - last_nudge > 5:
                await other_staff.room_send(nudge_room, "m.room.message", {"msgtype": "m.text", "body": "."})
                last_nudge = time.monotonic()
            request = urllib.request.Request(homeserver.url(zone) + "/_matrix/client/v3/user_directory/search",
                                             data=json.dumps({"search_term": term, "limit": 50}).encode(),
                                             method="POST")
            request.add_header("Authorization", f"Bearer {client.access_token}")
            with urllib.request.urlopen(request, timeout=30) as r:
                found = {result["user_id"] for result in json.loads(r.read())["results"]}
            if wanted is None or wanted in found or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.2)

    # staff find the stranger through its public room (Synapse's default directory)...
    found = await search(other_staff, "lgwan", "佐藤", stranger.user_id)
    assert stranger.user_id in found, (found, directory_log(homeserver))
    # ...a guest finds only the colleague it shares a room with
    found = await search(guest, "internet", "佐藤", colleague.user_id)
    assert colleague.user_id in found and stranger.user_id not in found
    # (the stranger is in the directory: other staff found them above)
    assert stranger.user_id not in await search(guest, "internet", "無関係", None)


async def test_display_name_suffix_is_kept(homeserver, admin, login, capsys):
    staff = await login(homeserver.new_user("staff"), "lgwan")
    room_id = await staff_room(staff)
    user = create_guest(homeserver, admin, capsys, room_id, name="鈴木")
    guest = await login(user, "internet")
    assert (await guest.get_displayname()).displayname == "鈴木" + SUFFIX

    assert not hasattr(await guest.set_displayname("鈴木 一郎"), "status_code")
    for _ in range(50):
        name = (await guest.get_displayname()).displayname
        if name == "鈴木 一郎" + SUFFIX:
            break
        await asyncio.sleep(0.1)
    assert name == "鈴木 一郎" + SUFFIX
    # ...and the room sees the suffixed name
    for _ in range(50):
        member = await staff.room_get_state_event(room_id, "m.room.member", user.user_id)
        if member.content.get("displayname") == "鈴木 一郎" + SUFFIX:
            break
        await asyncio.sleep(0.1)
    assert member.content.get("displayname") == "鈴木 一郎" + SUFFIX
    # a room nickname without the suffix is refused
    status, body = http_json("PUT", homeserver.url("internet") + "/_matrix/client/v3/rooms/" + quote(room_id)
                             + "/state/m.room.member/" + quote(user.user_id), guest.access_token,
                             {"membership": "join", "displayname": "鈴木"})
    # (Synapse takes only an errcode from this callback: its own English text is shown)
    assert status == 403 and body["errcode"] == "M_FORBIDDEN", body
    member = await staff.room_get_state_event(room_id, "m.room.member", user.user_id)
    assert member.content.get("displayname") == "鈴木 一郎" + SUFFIX
    # an emptied name gets the suffix back on the registered name
    await guest.set_displayname("")
    for _ in range(50):
        name = (await guest.get_displayname()).displayname
        if name and name.endswith(SUFFIX):
            break
        await asyncio.sleep(0.1)
    assert name == "鈴木" + SUFFIX


async def test_guest_is_told_before_expiry_then_deactivated(homeserver, admin, login, capsys):
    user = create_guest(homeserver, admin, capsys, expires=2)
    later = create_guest(homeserver, admin, capsys, expires=30)
    guest = await login(user, "internet")
    code, out, _ = guest_cli(homeserver, admin, capsys, "check")
    assert code == 0 and user.user_id in out.split("通知: ")[1].split("、")[0]
    assert later.user_id not in out

    synced = await guest.sync(timeout=0, full_state=True)
    notices = [e for room in synced.rooms.join.values() for e in room.timeline.events
               if getattr(e, "sender", None) == NOTICES and hasattr(e, "body")]
    assert notices and day(2) in notices[0].body and "有効期限" in notices[0].body, notices
    # told once
    code, out, _ = guest_cli(homeserver, admin, capsys, "check")
    assert user.user_id not in out

    write_db(homeserver, "UPDATE lgwan_guests SET expires_ts = ? WHERE user_id = ?",
             int(time.time() * 1000) - 1000, user.user_id)
    code, out, _ = guest_cli(homeserver, admin, capsys, "check")
    assert code == 0 and user.user_id in out.split("無効化: ")[1]
    assert isinstance(await try_login(homeserver, user, "internet"), LoginError)
    assert not isinstance(await guest.sync(timeout=0), SyncResponse)  # its token no longer works
    assert isinstance(await try_login(homeserver, later, "internet"), LoginResponse)
    code, out, _ = guest_cli(homeserver, admin, capsys, "list")
    line = next(line for line in out.splitlines() if line.startswith(user.user_id))
    assert "期限切れで無効" in line


async def test_extend_and_revoke(homeserver, admin, login, capsys):
    user = create_guest(homeserver, admin, capsys, expires=2)
    code, out, _ = guest_cli(homeserver, admin, capsys, "check")
    assert user.user_id in out.split("通知: ")[1].split("、")[0]
    code, out, _ = guest_cli(homeserver, admin, capsys, "extend", user.localpart, "--expires", day(60))
    assert code == 0 and day(60) in out
    code, out, _ = guest_cli(homeserver, admin, capsys, "list")
    assert day(60) in next(line for line in out.splitlines() if line.startswith(user.user_id))
    # the expiry moved: a check now neither tells nor deactivates
    code, out, _ = guest_cli(homeserver, admin, capsys, "check")
    assert user.user_id not in out
    assert isinstance(await try_login(homeserver, user, "internet"), LoginResponse)

    code, out, _ = guest_cli(homeserver, admin, capsys, "revoke", user.localpart)
    assert code == 0 and "無効にしました" in out
    assert isinstance(await try_login(homeserver, user, "internet"), LoginError)
    code, out, _ = guest_cli(homeserver, admin, capsys, "list")
    assert "取り消し済み" in next(line for line in out.splitlines() if line.startswith(user.user_id))
    code, _, err = guest_cli(homeserver, admin, capsys, "extend", user.localpart, "--expires", day(90))
    assert code == 1 and "延長はできません" in err
    code, _, err = guest_cli(homeserver, admin, capsys, "revoke", "nobody-here")
    assert code == 1 and "ゲストアカウントではありません" in err


def test_deactivation_helper_matches_synapse():
    """_synapse_internals.deactivate_user calls this Synapse method with these arguments."""
    from synapse.handlers.deactivate_account import DeactivateAccountHandler

    params = inspect.signature(DeactivateAccountHandler.deactivate_account).parameters
    assert list(params)[:4] == ["self", "user_id", "erase_data", "requester"] and "by_admin" in params


def test_config_errors_name_the_key():
    from synapse.config import ConfigError

    from synapse_modules.guests import GuestAccountsModule

    with pytest.raises(ConfigError) as e:
        GuestAccountsModule.parse_config({"notice_sender": "system"})
    assert "notice_sender" in str(e.value)
    with pytest.raises(ConfigError) as e:
        GuestAccountsModule.parse_config({"notify_days_before": -1})
    assert "notify_days_before" in str(e.value)
    assert GuestAccountsModule.parse_config({}).display_suffix == SUFFIX


def test_check_config_names_bad_guest_keys(tmp_path, capsys):
    path = tmp_path / "modules.yaml"
    path.write_text("modules:\n  - module: synapse_modules.guests.GuestAccountsModule\n    config:\n"
                    "      display_suffix: \"\"\n      notice_sender: system\n", encoding="utf-8")
    assert cli.main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "display_suffix" in err and "notice_sender" in err and ":5" in err, err
    path.write_text("modules:\n  - module: synapse_modules.guests.GuestAccountsModule\n    config:\n"
                    "      notice_sender: \"@system:city.example.lg.jp\"\n", encoding="utf-8")
    assert cli.main(["check-config", str(path)]) == 0
