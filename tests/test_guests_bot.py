"""Guest accounts managed by authorised staff through the sanitizer bot (!ゲスト作成 etc.), and the
guests module's ``managers`` (accounts other than server admins that may use its route), against a
real Synapse with the zones and guests modules, a real sanitizer bot process and real nio users."""

from __future__ import annotations

import datetime
import re
from urllib.parse import quote

import pytest
from bots_harness import BotProcess, ask, wait_membership
from harness import User
from nio import JoinedRoomsResponse, LoginError, LoginResponse, RoomCreateResponse, RoomVisibility
from test_guests import http_json, try_login

BOT = "sanitizer"
BOT_USER = f"@{BOT}-bot:lgwan.test"
DESK = "guest-desk"  # a manager of the guests module that is not a server admin
GUESTS = "/_synapse/client/lgwan/v1/guests"
JST = datetime.timezone(datetime.timedelta(hours=9))


@pytest.fixture(scope="module")
def homeserver_modules():
    from lgwan_chat.homeserver import suite_modules

    return [*suite_modules(),
            {"module": "synapse_modules.guests.GuestAccountsModule",
             "config": {"check_interval_seconds": 3600, "managers": [BOT_USER, f"@{DESK}:lgwan.test"]}}]


@pytest.fixture(scope="module")
def manager_staff(homeserver) -> User:
    """The member of staff listed in the bot's guest_managers."""
    return homeserver.new_user("manager")


@pytest.fixture(scope="module")
def sanitizer_bot(homeserver, manager_staff, tmp_path_factory):
    folder = tmp_path_factory.mktemp("guests-bot")
    with BotProcess(homeserver, folder, BOT, entry=["-m", "bots.sanitizer"],
                    options={"work_dir": str(folder / "work"), "upload": {"enabled": False},
                             "guest_managers": [manager_staff.user_id]},
                    zone="internet", storage=homeserver.backend) as bot:
        assert bot.user_id == BOT_USER
        bot.start().wait_ready()
        yield bot
        assert bot.stop() == 0


def day(days_from_now: int) -> datetime.date:
    return datetime.datetime.now(JST).date() + datetime.timedelta(days=days_from_now)


async def dm_with_bot(client, bot) -> str:
    dm = await client.room_create(is_direct=True, invite=[bot.user_id])
    assert isinstance(dm, RoomCreateResponse), dm
    await wait_membership(client, dm.room_id, bot.user_id, "join")
    return dm.room_id


def guest_record(homeserver, admin_token: str, user_id: str) -> tuple[int, dict]:
    return http_json("GET", homeserver.url("lgwan") + GUESTS + "/" + quote(user_id, safe=""), admin_token)


def password_in(reply: str) -> str:
    match = re.search(r"初期パスワード: (\S+)", reply)
    assert match, reply
    return match.group(1)


async def test_a_manager_of_the_module_may_use_the_route_another_user_may_not(homeserver):
    desk = homeserver.new_user(localpart=DESK)
    other = homeserver.new_user("staff")
    url = homeserver.url("lgwan") + GUESTS
    expires = int(datetime.datetime.combine(day(10), datetime.time(23, 59), JST).timestamp() * 1000)
    status, body = http_json("GET", url, desk.access_token)
    assert status == 200 and isinstance(body["guests"], list), body
    for method, path, payload in (("GET", "", None), ("POST", "/create", {
            "user_id": "@sneaky:lgwan.test", "display_name": "x", "expires_ts": expires})):
        status, body = http_json(method, url + path, other.access_token, payload)
        assert status == 403 and body["errcode"] == "M_FORBIDDEN", body
        assert "サーバー管理者だけ" in body["error"], body
    assert homeserver.query("SELECT count(*) FROM users WHERE name = ?", "@sneaky:lgwan.test") == [(0,)]
    # The manager creates a guest in one call: account, password, suffixed name.
    status, body = http_json("POST", url + "/create", desk.access_token,
                             {"user_id": "@desk-guest:lgwan.test", "display_name": "佐藤", "expires_ts": expires})
    assert status == 200, body
    assert body["display_name"] == "佐藤（外部）" and len(body["password"]) >= 12, body
    guest = User("@desk-guest:lgwan.test", body["password"], "desk-guest", "")
    assert isinstance(await try_login(homeserver, guest, "internet"), LoginResponse)
    assert isinstance(await try_login(homeserver, guest, "lgwan"), LoginError)  # a guest: internet zone only
    # An existing account cannot become a guest, and nothing is left marked.
    status, body = http_json("POST", url + "/create", desk.access_token,
                             {"user_id": other.user_id, "display_name": "x", "expires_ts": expires})
    assert status == 409 and body["errcode"] == "M_USER_IN_USE", body
    status, _ = http_json("GET", url + "/" + quote(other.user_id, safe=""), desk.access_token)
    assert status == 404


async def test_authorised_staff_manage_a_guest_from_a_dm(homeserver, login, manager_staff, sanitizer_bot):
    admin = homeserver.new_user("admin", admin=True)
    staff = await login(manager_staff, "lgwan")
    room = await staff.room_create(alias="koji-project", name="工事プロジェクト", visibility=RoomVisibility.public)
    assert isinstance(room, RoomCreateResponse), room
    dm = await dm_with_bot(staff, sanitizer_bot)
    bot = sanitizer_bot.user_id

    # Bad input is explained, nothing created.
    reply = await ask(staff, dm, "!ゲスト作成 kensetsu-yamada 山田", bot)
    assert "有効期限を指定してください" in reply and "例: !ゲスト作成" in reply, reply
    reply = await ask(staff, dm, "!ゲスト作成 kensetsu-yamada 山田 2020-01-01", bot)
    assert "もう過ぎています" in reply, reply
    reply = await ask(staff, dm, "!ゲスト作成 Kensetsu_山田 山田 12/31", bot)
    assert "使えません" in reply, reply
    assert homeserver.query("SELECT count(*) FROM users WHERE name = ?", "@kensetsu-yamada:lgwan.test") == [(0,)]

    expiry = day(30)
    reply = await ask(staff, dm, f"!ゲスト作成 kensetsu-yamada 山田（〇〇建設） {expiry.isoformat()} "
                                 "#koji-project:lgwan.test", bot)
    assert "ゲスト @kensetsu-yamada:lgwan.test を作成しました" in reply, reply
    assert "山田（〇〇建設）（外部）" in reply and f"{expiry.isoformat()} まで" in reply, reply
    assert "参加させたルーム: " + room.room_id in reply, reply
    password = password_in(reply)

    # The guest logs in from the internet side with that password and is in the room.
    guest = User("@kensetsu-yamada:lgwan.test", password, "kensetsu-yamada", "")
    client = await login(guest, "internet")
    joined = await client.joined_rooms()
    assert isinstance(joined, JoinedRoomsResponse) and room.room_id in joined.rooms, joined
    assert isinstance(await try_login(homeserver, guest, "lgwan"), LoginError)
    status, record = guest_record(homeserver, admin.access_token, guest.user_id)
    assert status == 200 and record["created_by"] == bot and record["rooms"] == [room.room_id], record

    # Again: the account exists now.
    reply = await ask(staff, dm, f"!ゲスト作成 kensetsu-yamada 山田 {expiry.isoformat()}", bot)
    assert "できませんでした" in reply and "すでにあります" in reply, reply

    # The list shows it.
    reply = await ask(staff, dm, "!ゲスト一覧", bot)
    assert "@kensetsu-yamada:lgwan.test" in reply and f"{expiry.isoformat()} まで" in reply and "[有効]" in reply, reply
    assert room.room_id in reply, reply

    # Extend, with the short date form.
    later = day(60)
    reply = await ask(staff, dm, f"!ゲスト延長 kensetsu-yamada {later.month}/{later.day}", bot)
    assert f"{later.isoformat()} までに変更しました" in reply, reply
    status, record = guest_record(homeserver, admin.access_token, guest.user_id)
    end = datetime.datetime.combine(later + datetime.timedelta(days=1), datetime.time(), JST)
    assert status == 200 and record["expires_ts"] == int(end.timestamp() * 1000), record
    reply = await ask(staff, dm, "!ゲスト延長 nobody-here 12/31", bot)
    assert "できませんでした" in reply and "ゲストアカウントではありません" in reply, reply

    # Revoke: the guest can no longer log in.
    reply = await ask(staff, dm, "!ゲスト取消 kensetsu-yamada", bot)
    assert "@kensetsu-yamada:lgwan.test を無効にしました" in reply, reply
    assert isinstance(await try_login(homeserver, guest, "internet"), LoginError)
    reply = await ask(staff, dm, "!ゲスト一覧", bot)
    assert "[取り消し済み]" in reply, reply


async def test_staff_not_listed_are_refused_and_the_password_never_goes_to_a_room(homeserver, login, manager_staff,
                                                                                   sanitizer_bot):
    bot = sanitizer_bot.user_id
    colleague = await login(homeserver.new_user("colleague"), "lgwan")
    dm = await dm_with_bot(colleague, sanitizer_bot)
    for command in ("!ゲスト作成 intruder-guest 侵入 12/31", "!ゲスト一覧", "!ゲスト延長 desk-guest 12/31",
                    "!ゲスト取消 desk-guest", "!guest-create intruder-guest x 12/31"):
        reply = await ask(colleague, dm, command, bot)
        assert "許可された職員" in reply and "guest_managers" in reply, (command, reply)
    assert homeserver.query("SELECT count(*) FROM users WHERE name = ?", "@intruder-guest:lgwan.test") == [(0,)]
    # Even authorised staff: only in a DM with the bot, so that the password is not shown in a room.
    staff = await login(manager_staff, "lgwan")
    shared = await staff.room_create(name="総務課", invite=[bot, colleague.user_id])
    assert isinstance(shared, RoomCreateResponse), shared
    await colleague.join(shared.room_id)
    await wait_membership(staff, shared.room_id, bot, "join")
    reply = await ask(staff, shared.room_id, "!ゲスト作成 room-guest 鈴木 12/31", bot)
    assert "ダイレクトメッセージでのみ使えます" in reply, reply
    assert homeserver.query("SELECT count(*) FROM users WHERE name = ?", "@room-guest:lgwan.test") == [(0,)]


def test_config_managers_and_guest_managers_must_be_user_ids():
    from synapse.config import ConfigError

    from bots.sanitizer import config as sanitizer_config
    from synapse_modules.guests import GuestAccountsModule

    with pytest.raises(ConfigError) as e:
        GuestAccountsModule.parse_config({"managers": ["sanitizer-bot"]})
    assert "managers" in str(e.value)
    assert GuestAccountsModule.parse_config({"managers": [BOT_USER]}).managers == frozenset({BOT_USER})
    assert GuestAccountsModule.parse_config({}).managers == frozenset()
    def bad_keys(raw: dict) -> list:
        return [issue.path for issue in sanitizer_config.check(raw) if issue.path[0] == "guest_managers"]

    assert bad_keys({"guest_managers": ["manager"]}) == [("guest_managers", 0)]
    assert bad_keys({"guest_managers": "@manager:lgwan.test"}) == [("guest_managers",)]
    assert bad_keys({"guest_managers": ["@manager:lgwan.test"]}) == []
    assert sanitizer_config.options({"guest_managers": ["@a:lgwan.test"]}).guest_managers == {"@a:lgwan.test"}
    assert sanitizer_config.options({}).guest_managers == frozenset()
