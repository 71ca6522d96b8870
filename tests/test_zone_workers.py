"""The zone module on a Synapse deployment with workers (PostgreSQL + Redis, as in production).

The module is instantiated in every process: the main process creates its tables, the workers
use them, a device bound through one process is refused in its wrong zone by every other
process, and the event rules run where the event is created (the worker).
"""

from __future__ import annotations

import pytest
from nio import RoomCreateResponse, RoomSendError, RoomSendResponse, SyncResponse

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
    from synapse_modules.stamps.store import MIGRATIONS as STAMPS
    from synapse_modules.zones.store import MIGRATIONS as ZONES

    versions = dict(homeserver.query("SELECT module, version FROM lgwan_schema_versions"))
    assert versions == {"zones": len(ZONES), "stamps": len(STAMPS)}
