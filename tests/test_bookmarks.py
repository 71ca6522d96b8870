"""Bookmarks (ブックマーク): staff react 🔖 to any message; the memo bot lists them over HTTP.

Real clients react, take reactions back, edit and redact messages and leave rooms; the module
sees every room (the memo bot is in none of them here) and never shows what the owner of a
bookmark may not see now.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote, urlencode

import pytest
from harness import eventually
from nio import RoomPutStateResponse, RoomRedactResponse, RoomSendResponse
from synapse.config import ConfigError
from test_read_status import Room, call

from lgwan_chat.checkconfig import check_document
from lgwan_chat.core.i18n import t
from synapse_modules.bookmarks import BookmarksModule

PATH = "/_synapse/client/lgwan/v1/bookmarks"
PERMALINK_BASE = "https://chat.example.lg.jp/#/room/"
BOOKMARK = "🔖"


@pytest.fixture(scope="module")
def homeserver_modules():
    return [{"module": "synapse_modules.bookmarks.BookmarksModule",
             "config": {"readers": ["@memo:lgwan.test"], "permalink_base": PERMALINK_BASE}}]


async def react(room: Room, name: str, event_id: str, key: str = BOOKMARK) -> str:
    sent = await room.clients[name].room_send(room.room_id, "m.reaction", {
        "m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}})
    assert isinstance(sent, RoomSendResponse), sent
    return sent.event_id


async def redact(room: Room, name: str, event_id: str) -> None:
    assert isinstance(await room.clients[name].room_redact(room.room_id, event_id), RoomRedactResponse)


def bookmarks(room: Room, name: str, **query) -> tuple[int, dict]:
    return call(room.url, room.clients[name].access_token, path=PATH + ("?" + urlencode(query) if query else ""))


def rows_for(homeserver, target: str, count: int) -> None:
    assert homeserver.query("SELECT COUNT(*) FROM lgwan_bookmarks WHERE target_event_id = ? AND removed = 0",
                            target) == [(count,)]


def listed(room: Room, name: str, expected: list[str]) -> dict:
    status, body = bookmarks(room, name)
    assert status == 200, body
    assert [b["event_id"] for b in body["bookmarks"]] == expected
    return body


async def test_a_bookmark_reaction_bookmarks_the_message(homeserver, login):
    room = await Room.make(homeserver, login, ["yamada", "sato"])
    notice = await room.say("sato", "明日の防災訓練は 9 時に庁舎前集合です")
    await room.say("sato", "雨天の場合は会議室で行います")
    await react(room, "sato", notice, "👍")  # other reactions bookmark nothing
    reaction = await react(room, "yamada", notice)

    body = await eventually(lambda: listed(room, "yamada", [notice]))
    [item] = body["bookmarks"]
    assert item == {
        "room_id": room.room_id, "room_name": "総務課", "event_id": notice,
        "bookmarked_ts": item["bookmarked_ts"], "sender": room.clients["sato"].user_id,
        "origin_server_ts": item["origin_server_ts"], "body": "明日の防災訓練は 9 時に庁舎前集合です",
        "msgtype": "m.text", "permalink": f"{PERMALINK_BASE}{quote(room.room_id, safe='')}/{quote(notice, safe='')}",
        "unavailable": None,
    }
    assert item["bookmarked_ts"] >= item["origin_server_ts"] > 0
    assert "!" not in item["permalink"][len(PERMALINK_BASE):] and "$" not in item["permalink"]
    assert "next" not in body
    listed(room, "sato", [])  # only the person who reacted
    rows = homeserver.query("SELECT user_id, room_id, target_event_id FROM lgwan_bookmarks"
                            " WHERE reaction_event_id = ?", reaction)
    assert rows == [(room.clients["yamada"].user_id, room.room_id, notice)]

    await redact(room, "yamada", reaction)  # taking the reaction back removes the bookmark
    await eventually(lambda: listed(room, "yamada", []))
    # kept as a tombstone: a process reading the reaction late cannot bring the bookmark back
    assert homeserver.query("SELECT removed FROM lgwan_bookmarks WHERE reaction_event_id = ?", reaction) == [(1,)]


async def test_with_or_without_the_variation_selector_one_bookmark(homeserver, login):
    room = await Room.make(homeserver, login, ["yamada"])
    message = await room.say("yamada", "予算要求の締切は 10 日")
    plain = await react(room, "yamada", message, "🔖")
    emoji = await react(room, "yamada", message, "🔖\ufe0f")  # what some keyboards send
    await eventually(lambda: rows_for(homeserver, message, 2))
    listed(room, "yamada", [message])  # listed once
    await redact(room, "yamada", plain)
    await asyncio.sleep(0.5)
    listed(room, "yamada", [message])  # the other reaction still bookmarks it
    await redact(room, "yamada", emoji)
    await eventually(lambda: listed(room, "yamada", []))


async def test_the_text_shown_is_the_latest_edit(homeserver, login):
    room = await Room.make(homeserver, login, ["yamada", "sato"])
    notice = await room.say("sato", "会議は 3 階です")
    edit = await room.clients["sato"].room_send(room.room_id, "m.room.message", {
        "msgtype": "m.text", "body": "* 会議は 5 階です",
        "m.new_content": {"msgtype": "m.text", "body": "会議は 5 階です"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": notice}})
    assert isinstance(edit, RoomSendResponse), edit
    await react(room, "yamada", notice)
    body = await eventually(lambda: listed(room, "yamada", [notice]))
    assert body["bookmarks"][0]["body"] == "会議は 5 階です"


async def test_a_redacted_message_reveals_nothing(homeserver, login):
    room = await Room.make(homeserver, login, ["yamada", "sato"])
    secret = "個人情報を誤って送信しました: 090-1234-5678"
    message = await room.say("sato", secret)
    await react(room, "yamada", message)
    await eventually(lambda: listed(room, "yamada", [message]))
    await redact(room, "sato", message)

    def redacted() -> dict:
        body = listed(room, "yamada", [message])
        assert body["bookmarks"][0]["unavailable"] == "redacted"
        return body

    body = await eventually(redacted)
    item = body["bookmarks"][0]
    assert (item["body"], item["msgtype"]) == (None, None)
    assert item["sender"] == room.clients["sato"].user_id  # like "message deleted" in the timeline
    assert "090" not in json.dumps(body, ensure_ascii=False)


async def test_after_leaving_the_room_nothing_of_it_is_shown(homeserver, login):
    room = await Room.make(homeserver, login, ["kacho", "yamada"])
    message = await room.say("kacho", "人事異動の内示は金曜です")
    await react(room, "yamada", message)
    await eventually(lambda: listed(room, "yamada", [message]))
    await room.clients["yamada"].room_leave(room.room_id)
    renamed = await room.clients["kacho"].room_put_state(room.room_id, "m.room.name", {"name": "人事（非公開）"})
    assert isinstance(renamed, RoomPutStateResponse), renamed

    [item] = listed(room, "yamada", [message])["bookmarks"]
    assert item["unavailable"] == "not_member"
    assert [item[k] for k in ("body", "msgtype", "sender", "origin_server_ts", "room_name")] == [None] * 5
    assert "内示" not in json.dumps(item, ensure_ascii=False)

    # Back in the room: the bookmark is there again, with the room's name now.
    await room.clients["kacho"].room_invite(room.room_id, room.clients["yamada"].user_id)
    await room.clients["yamada"].join(room.room_id)
    [item] = listed(room, "yamada", [message])["bookmarks"]
    assert (item["unavailable"], item["body"], item["room_name"]) == (
        None, "人事異動の内示は金曜です", "人事（非公開）")


async def test_a_message_from_before_joining_stays_hidden(homeserver, login):
    """history_visibility "joined": reacting to an earlier message's id must not reveal it."""
    room = await Room.make(homeserver, login, ["kacho"])
    hidden = await room.clients["kacho"].room_put_state(room.room_id, "m.room.history_visibility",
                                                       {"history_visibility": "joined"})
    assert isinstance(hidden, RoomPutStateResponse), hidden
    earlier = await room.say("kacho", "新メンバーには見せない連絡")
    newcomer = await login(homeserver.new_user("newcomer"), "internet")
    room.clients["newcomer"] = newcomer
    await room.clients["kacho"].room_invite(room.room_id, newcomer.user_id)
    await newcomer.join(room.room_id)
    await react(room, "newcomer", earlier)
    await eventually(lambda: rows_for(homeserver, earlier, 1))
    [item] = listed(room, "newcomer", [earlier])["bookmarks"]
    assert item["unavailable"] == "not_found" and item["body"] is None and item["sender"] is None


async def test_only_readers_see_other_peoples_bookmarks(homeserver, login):
    room = await Room.make(homeserver, login, ["yamada"])
    message = await room.say("yamada", "来週の出張の件")
    await react(room, "yamada", message)
    await eventually(lambda: listed(room, "yamada", [message]))
    yamada = room.clients["yamada"].user_id

    # The memo bot (in `readers`) is in none of yamada's rooms, and still lists them for yamada.
    memo = await login(homeserver.new_user(localpart="memo"), "internet")
    room.clients["memo"] = memo
    status, body = bookmarks(room, "memo", user_id=yamada)
    assert status == 200 and [b["event_id"] for b in body["bookmarks"]] == [message], body
    assert body["bookmarks"][0]["body"] == "来週の出張の件"  # as yamada sees it
    assert bookmarks(room, "memo")[1] == {"bookmarks": []}  # its own: none

    room.clients["colleague"] = await login(homeserver.new_user("colleague"), "internet")
    status, body = bookmarks(room, "colleague", user_id=yamada)
    assert status == 403, body
    assert body["errcode"] == "M_FORBIDDEN" and body["jp.lgwan.reason"] == "not_reader"
    assert body["error"].startswith(t("bookmarks.not_reader", "ja"))
    assert bookmarks(room, "yamada", user_id=yamada)[0] == 200  # asking for oneself is fine

    status, _ = call(room.url, "", path=PATH)
    assert status == 401


async def test_pages_newest_first(homeserver, login):
    room = await Room.make(homeserver, login, ["yamada"])
    messages = [await room.say("yamada", f"メモ {n}") for n in range(7)]
    for message in messages:
        await react(room, "yamada", message)
    newest_first = messages[::-1]
    await eventually(lambda: listed(room, "yamada", newest_first))

    seen, token, pages = [], None, 0
    while True:
        query = {"limit": 3, **({"from": token} if token else {})}
        status, body = bookmarks(room, "yamada", **query)
        assert status == 200, body
        pages += 1
        seen += [b["event_id"] for b in body["bookmarks"]]
        token = body.get("next")
        if token is None:
            break
        assert len(body["bookmarks"]) == 3
    assert (seen, pages) == (newest_first, 3)
    status, body = bookmarks(room, "yamada", limit=7)
    assert len(body["bookmarks"]) == 7 and "next" not in body


@pytest.mark.parametrize("query, key", [
    ({"limit": "0"}, "bookmarks.bad_limit"),
    ({"limit": "101"}, "bookmarks.bad_limit"),
    ({"limit": "ten"}, "bookmarks.bad_limit"),
    ({"limit": "-1"}, "bookmarks.bad_limit"),
    ({"limit": "１"}, "bookmarks.bad_limit"),  # a full-width digit
    ({"from": "garbage!"}, "bookmarks.bad_from"),
    ({"from": "bm90IGEgdG9rZW4"}, "bookmarks.bad_from"),  # valid base64, not a token
    ({"from": ""}, "bookmarks.bad_from"),
    ({"limit": "1" * 5000}, "bookmarks.bad_limit"),  # more digits than Python's int() accepts
    ({"from": "OTk5OTk5OTk5OTk5OTk5OTk5OTk6JHg"}, "bookmarks.bad_from"),  # 99999999999999999999:$x, no BIGINT
    ({"from": "MTokYQBi"}, "bookmarks.bad_from"),  # 1:$a<NUL>b, which PostgreSQL text refuses
    ({"user_id": "@yamada:lgwan.test\n"}, "bookmarks.bad_user_id"),
    ({"user_id": "yamada"}, "bookmarks.bad_user_id"),
    ({"user_id": "@yamada"}, "bookmarks.bad_user_id"),
])
async def test_malformed_parameters_get_a_clear_400(homeserver, login, query, key):
    client = await login(homeserver.new_user("asker"), "internet")
    status, body = call(homeserver.url("internet"), client.access_token, path=PATH + "?" + urlencode(query))
    assert status == 400, body
    assert body["errcode"] == "M_INVALID_PARAM"
    assert body["jp.lgwan.message"]["ja"] == t(key, "ja", limit=100)
    assert body["jp.lgwan.message"]["en"] == t(key, "en", limit=100)


def test_config_is_validated_by_check_config_and_synapse():
    doc = {"modules": [{"module": "synapse_modules.bookmarks.BookmarksModule",
                        "config": {"readers": ["memo-bot"], "permalink_base": "matrix.to", "reaction_keys": []}}]}
    problems = {".".join(map(str, i.path)): i.key for i in check_document(doc)}
    assert problems == {"modules.0.config.readers.0": "config.pattern",
                        "modules.0.config.permalink_base": "config.pattern",
                        "modules.0.config.reaction_keys": "config.min_items"}
    with pytest.raises(ConfigError) as caught:
        BookmarksModule.parse_config({"readers": ["@memo:lgwan.test", "memo"]})
    assert caught.value.path == ["readers", "1"]
    config = BookmarksModule.parse_config({"reaction_keys": ["🔖\ufe0f", "⭐"]})
    assert config.reaction_keys == {"🔖", "⭐"} and config.permalink_base == "https://matrix.to/#/"
