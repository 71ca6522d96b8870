"""Read status (既読・未読) through real clients and real receipts, each rule of status.py."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

import pytest
from harness import http_get
from nio import RoomCreateResponse, RoomSendResponse

PREFIX = "/_synapse/client/lgwan/v1/rooms"


def call(url: str, token: str, method: str = "GET", path: str = "", body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


class Room:
    """A room of a municipal department: the first member creates it, the others join."""

    def __init__(self, homeserver, clients: dict):
        self.hs = homeserver
        self.clients = clients
        self.url = homeserver.url("internet")
        self.room_id = ""

    @classmethod
    async def make(cls, homeserver, login, names: list[str]) -> Room:
        clients = {}
        for name in names:
            clients[name] = await login(homeserver.new_user(name), "internet")
        room = cls(homeserver, clients)
        owner = clients[names[0]]
        created = await owner.room_create(name="総務課", invite=[c.user_id for c in list(clients.values())[1:]])
        assert isinstance(created, RoomCreateResponse), created
        room.room_id = created.room_id
        for client in list(clients.values())[1:]:
            await client.join(room.room_id)
        return room

    async def say(self, name: str, body: str, thread_root: str | None = None) -> str:
        content: dict[str, Any] = {"msgtype": "m.text", "body": body}
        if thread_root:
            content["m.relates_to"] = {"rel_type": "m.thread", "event_id": thread_root}
        sent = await self.clients[name].room_send(self.room_id, "m.room.message", content)
        assert isinstance(sent, RoomSendResponse), sent
        return sent.event_id

    def receipt(self, name: str, event_id: str, thread_id: str | None = None, kind: str = "m.read") -> None:
        body = {"thread_id": thread_id} if thread_id else {}
        status, answer = call(self.url, self.clients[name].access_token, "POST",
                              f"/_matrix/client/v3/rooms/{quote(self.room_id)}/receipt/{kind}/{quote(event_id)}",
                              body or {"_": 0})
        assert status == 200, answer

    def status(self, event_id: str, asker: str | None = None) -> tuple[int, dict]:
        client = self.clients[asker or next(iter(self.clients))]
        return call(self.url, client.access_token,
                    path=f"{PREFIX}/{quote(self.room_id)}/read_status/{quote(event_id)}")

    def readers(self, event_id: str) -> tuple[set[str], set[str]]:
        status, body = self.status(event_id)
        assert status == 200, body
        assert body["read_count"] == len(body["read"]) and body["unread_count"] == len(body["unread"])
        names = {c.user_id: n for n, c in self.clients.items()}
        return {names[r["user_id"]] for r in body["read"]}, {names[u] for u in body["unread"]}


async def test_who_has_read_and_who_has_not(homeserver, login):
    room = await Room.make(homeserver, login, ["kacho", "sato", "suzuki", "tanaka"])
    first = await room.say("kacho", "明日の会議は10時からです")
    second = await room.say("kacho", "資料は共有フォルダにあります")
    assert room.readers(first) == ({"kacho"}, {"sato", "suzuki", "tanaka"})  # the sender has read it

    room.receipt("sato", first)
    assert room.readers(first) == ({"kacho", "sato"}, {"suzuki", "tanaka"})
    assert room.readers(second) == ({"kacho"}, {"sato", "suzuki", "tanaka"})

    # A receipt on a LATER message means the earlier one was read too (Element misses this).
    room.receipt("suzuki", second)
    assert room.readers(first) == ({"kacho", "sato", "suzuki"}, {"tanaka"})

    # Writing a later message in the same timeline means having read what came before.
    await room.say("tanaka", "承知しました")
    assert room.readers(first) == ({"kacho", "sato", "suzuki", "tanaka"}, set())

    _status, body = room.status(first)
    assert all(isinstance(r["ts"], int) and r["ts"] > 0 for r in body["read"])


async def test_threads_main_timeline_and_unthreaded_receipts(homeserver, login):
    room = await Room.make(homeserver, login, ["kacho", "sato", "suzuki", "tanaka"])
    root = await room.say("kacho", "道路補修の件")
    in_thread = await room.say("kacho", "写真を追加しました", thread_root=root)
    later_main = await room.say("kacho", "別件です")

    # A receipt for the thread covers the thread, not the main timeline.
    room.receipt("sato", in_thread, thread_id=root)
    assert "sato" in room.readers(in_thread)[0]
    assert "sato" in room.readers(later_main)[1]
    # A "main" receipt covers the main timeline, not the thread.
    room.receipt("suzuki", later_main, thread_id="main")
    assert "suzuki" in room.readers(later_main)[0] and "suzuki" in room.readers(root)[0]
    assert "suzuki" in room.readers(in_thread)[1]
    # An unthreaded receipt covers everything before it, threads included.
    room.receipt("tanaka", later_main)
    assert "tanaka" in room.readers(in_thread)[0] and "tanaka" in room.readers(root)[0]
    # Replying in the thread is reading the thread and its root, not the rest of the main timeline.
    assert "sato" in room.readers(root)[1]
    await room.say("sato", "確認しました", thread_root=root)
    assert "sato" in room.readers(in_thread)[0] and "sato" in room.readers(root)[0]
    assert "sato" in room.readers(later_main)[1]
    _status, body = call(room.url, room.clients["kacho"].access_token, "POST",
                        f"{PREFIX}/{quote(room.room_id)}/read_status", {"event_ids": [root, later_main]})
    assert [(e["read_count"], e["unread_count"]) for e in body["events"]] == [
        (len(r), len(u)) for r, u in (room.readers(root), room.readers(later_main))]


async def test_private_receipts_are_never_revealed(homeserver, login):
    room = await Room.make(homeserver, login, ["kacho", "sato"])
    event = await room.say("kacho", "人事異動のお知らせ")
    room.receipt("sato", event, kind="m.read.private")
    read, unread = room.readers(event)
    assert (read, unread) == ({"kacho"}, {"sato"})
    _status, body = room.status(event, asker="sato")  # not even to the reader themselves
    assert room.clients["sato"].user_id in body["unread"]


async def test_members_who_joined_later_or_left(homeserver, login):
    room = await Room.make(homeserver, login, ["kacho", "sato", "suzuki"])
    event = await room.say("kacho", "異動前のお知らせ")
    newcomer = await login(homeserver.new_user("newcomer"), "internet")
    await room.clients["kacho"].room_invite(room.room_id, newcomer.user_id)
    await newcomer.join(room.room_id)
    room.clients["newcomer"] = newcomer
    # Joined after the message: neither read nor "unread" (it was not sent to them) ...
    assert room.readers(event) == ({"kacho"}, {"sato", "suzuki"})
    # ... until they do read it.
    room.receipt("newcomer", event)
    assert room.readers(event) == ({"kacho", "newcomer"}, {"sato", "suzuki"})
    # Members who left are not counted.
    await room.clients["suzuki"].room_leave(room.room_id)
    assert room.readers(event) == ({"kacho", "newcomer"}, {"sato"})


async def test_only_members_may_ask_and_unknown_events_are_404(homeserver, login):
    room = await Room.make(homeserver, login, ["kacho", "sato"])
    event = await room.say("kacho", "内部連絡")
    outsider = await login(homeserver.new_user("outsider"), "internet")
    status, body = call(room.url, outsider.access_token,
                        path=f"{PREFIX}/{quote(room.room_id)}/read_status/{quote(event)}")
    assert status == 403 and body["errcode"] == "M_FORBIDDEN" and "参加していない" in body["error"]
    status, body = room.status("$doesnotexist")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND" and "見つかりません" in body["error"]
    other = await Room.make(homeserver, login, ["other"])
    foreign = await other.say("other", "別のルーム")
    assert room.status(foreign)[0] == 404  # an event of another room is not found here
    assert http_get(room.url + f"{PREFIX}/{quote(room.room_id)}/read_status/{quote(event)}")[0] == 401


async def test_batch_counts_match_single_answers(homeserver, login):
    room = await Room.make(homeserver, login, ["kacho", "sato", "suzuki", "tanaka"])
    events = [await room.say("kacho", f"連絡 {i}") for i in range(6)]
    room.receipt("sato", events[1])
    room.receipt("suzuki", events[4])
    await room.say("tanaka", "了解", thread_root=events[2])  # reads the thread only
    kacho = room.clients["kacho"].access_token

    status, body = call(room.url, kacho, "POST", f"{PREFIX}/{quote(room.room_id)}/read_status",
                        {"event_ids": events + ["$unknown"]})
    assert status == 200, body
    assert body["not_found"] == ["$unknown"]
    for item in body["events"]:
        read, unread = room.readers(item["event_id"])
        assert (item["read_count"], item["unread_count"]) == (len(read), len(unread)), item
    assert [e["event_id"] for e in body["events"]] == events

    status, recent = call(room.url, kacho, path=f"{PREFIX}/{quote(room.room_id)}/read_status?limit=3")
    assert status == 200 and len(recent["events"]) == 3
    assert recent["events"][0]["event_id"] not in events  # newest first: tanaka's thread reply


@pytest.mark.parametrize("body, limit_query", [
    ({"event_ids": []}, None), ({"event_ids": "not-a-list"}, None), ({"event_ids": ["no-dollar"]}, None),
    ({"event_ids": ["$x"] * 101}, None), (None, "0"), (None, "abc"), (None, "1000"),
])
async def test_bad_batch_requests_get_a_clear_error(homeserver, login, body, limit_query):
    room = await Room.make(homeserver, login, ["kacho"])
    token = room.clients["kacho"].access_token
    if body is not None:
        status, answer = call(room.url, token, "POST", f"{PREFIX}/{quote(room.room_id)}/read_status", body)
    else:
        status, answer = call(room.url, token, path=f"{PREFIX}/{quote(room.room_id)}/read_status?limit={limit_query}")
    assert status == 400
    assert answer["errcode"] in ("M_BAD_JSON", "M_INVALID_PARAM")
    assert "100" in answer["jp.lgwan.message"]["ja"]
