"""The suite's modules on a Synapse deployment with workers (PostgreSQL + Redis, as in production).

Every module is instantiated in every process: the main process creates the tables, the workers
use them; a device bound through one process is refused in its wrong zone by every other
process; the event rules run where the event is created (the worker); each process keeps its own
read status cache and every one of them answers with the latest receipts, whichever process
wrote them.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from nio import RoomCreateResponse, RoomSendError, RoomSendResponse, SyncResponse
from test_read_status import call as call_json
from test_zone_endpoint import call_zone
from workers import Worker, WorkerFront, main_with_workers

HOMESERVER_BACKENDS = ["postgres"]  # Synapse workers need PostgreSQL


@pytest.fixture(scope="module")
def deployment(hs_backend, tmp_path_factory):
    main = main_with_workers(tmp_path_factory.mktemp("workers"))
    main.start()
    workers = [Worker(main, "client_lgwan", "lgwan"), Worker(main, "client_internet", "internet")]
    try:
        for worker in workers:
            worker.start()
        yield main, WorkerFront(workers)
    finally:
        for worker in workers:
            worker.stop()
        main.close()


@pytest.fixture(scope="module")
def homeserver(deployment):
    return deployment[0]


async def test_device_bound_through_a_worker_is_refused_everywhere_else(homeserver, deployment, login):
    _, front = deployment
    user = homeserver.new_user("wk")
    pc = await login(user, "lgwan", via=front)  # login and first requests on the LGWAN worker
    assert isinstance(await pc.sync(timeout=0), SyncResponse)
    assert call_zone(front.url("lgwan"), pc.access_token)[1]["zone"] == "lgwan"
    rows = homeserver.query("SELECT zone FROM lgwan_device_zones WHERE device_id = ?", pc.device_id)
    assert rows == [("lgwan",)]  # in the one shared database
    for url in (front.url("internet"), homeserver.url("internet")):  # the other worker, the main process
        status, body = call_zone(url, pc.access_token)
        assert status == 403 and body["jp.lgwan.reason"] == "device_zone_mismatch"


async def test_event_rules_apply_on_the_worker_that_creates_the_event(homeserver, deployment, login):
    _, front = deployment
    user = homeserver.new_user("wk")
    pc = await login(user, "lgwan", via=front)
    room = await pc.room_create(name="ワーカー")
    assert isinstance(room, RoomCreateResponse), room
    invite = {"call_id": "w1", "lifetime": 60000, "version": "1", "party_id": "p",
              "offer": {"type": "offer", "sdp": "v=0"}}
    refused = await pc.room_send(room.room_id, "m.call.invite", invite)
    assert isinstance(refused, RoomSendError) and "通話" in refused.message
    assert isinstance(await pc.room_send(room.room_id, "m.room.message", {"msgtype": "m.text", "body": "了解"}),
                      RoomSendResponse)


def test_only_the_main_process_migrated_the_schema(homeserver):
    from synapse_modules.bookmarks.store import MIGRATIONS as BOOKMARKS
    from synapse_modules.stamps.store import MIGRATIONS as STAMPS
    from synapse_modules.zones.store import MIGRATIONS as ZONES

    versions = dict(homeserver.query("SELECT module, version FROM lgwan_schema_versions"))
    assert versions == {"zones": len(ZONES), "stamps": len(STAMPS), "bookmarks": len(BOOKMARKS)}


async def test_bookmarks_made_and_removed_through_a_worker_show_in_every_process(homeserver, deployment, login):
    """Only the background-tasks process (main) watches reactions; every process answers."""
    from test_bookmarks import PATH as BOOKMARKS
    from test_bookmarks import eventually

    _, front = deployment
    staff = await login(homeserver.new_user("bm"), "internet", via=front)
    room = await staff.room_create(name="ブックマーク")
    assert isinstance(room, RoomCreateResponse), room
    notice = await staff.room_send(room.room_id, "m.room.message", {"msgtype": "m.text", "body": "締切は金曜"})
    reaction = await staff.room_send(room.room_id, "m.reaction", {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": notice.event_id, "key": "🔖"}})
    assert isinstance(reaction, RoomSendResponse), reaction

    def listed(expected: list[str]) -> None:
        for url in (front.url("internet"), homeserver.url("internet")):
            status, body = call_json(url, staff.access_token, path=BOOKMARKS)
            assert status == 200 and [b["event_id"] for b in body["bookmarks"]] == expected, body

    await eventually(lambda: listed([notice.event_id]))
    await staff.room_redact(room.room_id, reaction.event_id)
    await eventually(lambda: listed([]))


async def test_read_status_is_current_in_every_process(homeserver, deployment, login):
    _, front = deployment
    url_worker, url_main = front.url("internet"), homeserver.url("internet")
    kacho = await login(homeserver.new_user("kacho"), "internet", via=front)
    staff = [await login(homeserver.new_user("staff"), "internet", via=front) for _ in range(3)]
    room = await kacho.room_create(name="既読ワーカー", invite=[c.user_id for c in staff])
    assert isinstance(room, RoomCreateResponse), room
    for client in staff:
        await client.join(room.room_id)
    notice = await kacho.room_send(room.room_id, "m.room.message",
                                   {"msgtype": "m.text", "body": "全員確認してください"})
    path = f"/_synapse/client/lgwan/v1/rooms/{quote(room.room_id)}/read_status/{quote(notice.event_id)}"

    def readers(url: str) -> int:
        status, body = call_json(url, kacho.access_token, path=path)
        assert status == 200, body
        return body["read_count"]

    assert readers(url_worker) == readers(url_main) == 1  # both processes now hold the room in memory
    for n, client in enumerate(staff, start=2):
        if n % 2:  # a reply, created on the worker (reading by writing) ...
            sent = await client.room_send(room.room_id, "m.room.message", {"msgtype": "m.text", "body": "確認しました"})
            assert isinstance(sent, RoomSendResponse), sent
        else:  # ... or a receipt, written by the main process (the receipts stream writer)
            status, body = call_json(url_main, client.access_token, "POST",
                                     f"/_matrix/client/v3/rooms/{quote(room.room_id)}/receipt/m.read/"
                                     f"{quote(notice.event_id)}", {"_": 0})
            assert status == 200, body
        assert readers(url_worker) == readers(url_main) == n
