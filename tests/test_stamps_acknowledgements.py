"""Acknowledgement stamps: who answered 了解 / 確認しました to a message, next to its read status."""

from __future__ import annotations

from urllib.parse import quote

from test_read_status import PREFIX, Room, call


def react(room: Room, name: str, event_id: str, key: str):
    return room.clients[name].room_send(room.room_id, "m.reaction", {
        "m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}})


async def test_who_acknowledged_with_what(homeserver, login):
    room = await Room.make(homeserver, login, ["kacho", "sato", "suzuki", "tanaka"])
    notice = await room.say("kacho", "明日は9時に集合してください")
    await react(room, "sato", notice, "了解")
    await react(room, "suzuki", notice, "了解")
    retracted = await react(room, "tanaka", notice, "確認しました")
    await room.clients["tanaka"].room_redact(room.room_id, retracted.event_id)  # taken back
    await react(room, "tanaka", notice, "🙏")

    status, body = call(room.url, room.clients["kacho"].access_token,
                        path=f"{PREFIX}/{quote(room.room_id)}/stamps/{quote(notice)}")
    assert status == 200, body
    stamps = {s["key"]: s for s in body["stamps"]}
    # The configured acknowledgements come first, in order, even when unused.
    assert [s["key"] for s in body["stamps"]][:3] == ["了解", "確認しました", "👍"]
    names = {c.user_id: n for n, c in room.clients.items()}
    assert {names[u["user_id"]] for u in stamps["了解"]["users"]} == {"sato", "suzuki"}
    assert stamps["了解"]["count"] == 2
    assert stamps["確認しました"]["count"] == 0  # the redacted reaction does not count
    assert [names[u["user_id"]] for u in stamps["🙏"]["users"]] == ["tanaka"]
    # Reacting is writing later in the same timeline: all three have read the notice.
    assert (body["read_count"], body["unread_count"]) == (4, 0)


async def test_stamps_are_for_members_only(homeserver, login):
    room = await Room.make(homeserver, login, ["kacho"])
    notice = await room.say("kacho", "内部連絡")
    outsider = await login(homeserver.new_user("outsider"), "internet")
    status, body = call(room.url, outsider.access_token, path=f"{PREFIX}/{quote(room.room_id)}/stamps/{quote(notice)}")
    assert status == 403 and body["jp.lgwan.reason"] == "not_member"
    status, body = call(room.url, room.clients["kacho"].access_token,
                        path=f"{PREFIX}/{quote(room.room_id)}/stamps/$nothing")
    assert status == 404
