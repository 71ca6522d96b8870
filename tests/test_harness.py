"""The harness itself: real Synapse on the chosen database, zone listeners, clients, logs."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from nio import JoinResponse, RoomCreateResponse, RoomMessageText, RoomSendResponse, SyncResponse


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read()


def test_both_zone_listeners_serve_the_client_api(homeserver):
    for zone in ("internet", "lgwan"):
        assert _get(homeserver.url(zone) + "/health") == (200, b"OK")
        status, body = _get(homeserver.url(zone) + "/_matrix/client/versions")
        assert status == 200 and "versions" in json.loads(body)


def test_registered_users_land_in_the_chosen_database(homeserver, hs_backend):
    alice = homeserver.new_user("alice")
    bob = homeserver.new_user("bob")
    rows = homeserver.query("SELECT name FROM users WHERE name IN (?, ?) ORDER BY name", alice.user_id, bob.user_id)
    assert [r[0] for r in rows] == sorted([alice.user_id, bob.user_id])
    # The SQLite file must stay unused when the homeserver runs on PostgreSQL, and vice versa.
    sqlite_file = Path(homeserver.data_dir) / "homeserver.db"
    assert sqlite_file.exists() == (hs_backend == "sqlite")


async def test_message_from_phone_reaches_office_pc(homeserver, login):
    """A staff member on the internet side writes; a colleague on LGWAN reads it."""
    field = homeserver.new_user("field", displayname="現場 一郎")
    office = homeserver.new_user("office", displayname="庁内 花子")
    phone = await login(field, "internet")
    pc = await login(office, "lgwan")

    created = await phone.room_create(name="道路補修 現場", invite=[office.user_id])
    assert isinstance(created, RoomCreateResponse), created
    assert isinstance(await pc.join(created.room_id), JoinResponse)
    sent = await phone.room_send(created.room_id, "m.room.message",
                                 {"msgtype": "m.text", "body": "市道3号線の補修が完了しました"})
    assert isinstance(sent, RoomSendResponse), sent

    sync = await pc.sync(timeout=5000, full_state=True)
    assert isinstance(sync, SyncResponse), sync
    bodies = [e.body for e in sync.rooms.join[created.room_id].timeline.events if isinstance(e, RoomMessageText)]
    assert "市道3号線の補修が完了しました" in bodies


def test_a_failing_test_shows_the_homeserver_log(pytester, monkeypatch):
    """When a homeserver-backed test fails, pytest prints what Synapse logged during it."""
    tests_dir = Path(__file__).parent
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tests_dir / "support"), str(tests_dir)]))
    pytester.makeconftest((tests_dir / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(test_inner="""
        import urllib.request

        def test_fails(homeserver):
            urllib.request.urlopen(homeserver.url("lgwan") + "/_matrix/client/versions?from=xyzzy").read()
            assert False, "deliberate failure"
    """)
    result = pytester.runpytest_subprocess("--backends=sqlite", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*homeserver log*", "*from=xyzzy*", "*homeserver database backends: sqlite*"])
