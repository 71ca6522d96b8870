"""Many new accounts at once (the Monday morning when every member of staff signs in for the first
time): each gets the stamp pack, nobody is lost, nobody else is added; a set-up cut short by a
restart is finished by the next start."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
from harness import RunningHomeserver, User, eventually, http_get
from test_stamps_pack import has_pack, images_dir, pack_room, stamps_module, wait_for_pack  # noqa: F401

from lgwan_chat.postgres import PG_SETTINGS

STORM = 40


#: Fast password hashing: 40 registrations at once should measure the pack, not bcrypt.
FAST_HASHING = {"bcrypt_rounds": 4}


@pytest.fixture(scope="module")
def homeserver_modules(images_dir):  # noqa: F811 (the fixture imported above)
    return stamps_module(images_dir)


@pytest.fixture(scope="module")
def homeserver_extra() -> dict:
    return FAST_HASHING


def register_at_once(hs: RunningHomeserver, prefix: str, count: int) -> list[User]:
    """``count`` accounts registered concurrently, each registration in flight at the same time."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda i: hs.new_user(localpart=f"{prefix}{i}"), range(count)))


def pack_members(hs: RunningHomeserver, user: User, room_id: str) -> set[str]:
    status, _, body = http_get(hs.url("internet") + f"/_matrix/client/v3/rooms/{quote(room_id)}/joined_members",
                               user.access_token)
    assert status == 200, body
    return set(json.loads(body)["joined"])


def everyone_has_the_pack(hs: RunningHomeserver, users: list[User], room_id: str) -> None:
    for user in users:
        has_pack(hs, user, room_id)


def write(hs: RunningHomeserver, sql: str, *args: object) -> None:
    """Change Synapse's database while it is stopped (what an interrupted set-up leaves behind)."""
    if hs.database is not None:
        import psycopg2

        pg = psycopg2.connect(dbname=hs.database.name, **PG_SETTINGS)
        try:
            with pg, pg.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), args)
        finally:
            pg.close()
        return
    lite = sqlite3.connect(hs.hs.data_dir / "homeserver.db")
    try:
        with lite:
            lite.execute(sql, args)
    finally:
        lite.close()


async def test_a_storm_of_registrations_gives_everyone_the_pack_once(homeserver):
    wait_for_pack(homeserver)  # registers one account itself: the "waiter"
    users = register_at_once(homeserver, "storm", STORM)
    room_id = pack_room(homeserver, users[0].access_token)

    await eventually(lambda: everyone_has_the_pack(homeserver, users, room_id), timeout=120, interval=1)
    members = pack_members(homeserver, users[0], room_id)
    waiter = {m for m in members if m.startswith("@waiter")}
    assert len(waiter) == 1
    assert members == {u.user_id for u in users} | waiter | {f"@stamps:{homeserver.server_name}"}
    # One join each: nobody was joined twice by a registration and a backfill racing.
    joins = homeserver.query("SELECT state_key, COUNT(*) FROM events WHERE room_id = ? AND type = 'm.room.member'"
                             " GROUP BY state_key", room_id)
    assert {user: count for user, count in joins if count != 1} == {}


async def test_a_set_up_cut_short_by_a_restart_is_finished_at_the_next_start(tmp_path: Path, hs_backend: str,
                                                                               images_dir):  # noqa: F811
    hs = RunningHomeserver(tmp_path / "hs", hs_backend, modules=stamps_module(images_dir), extra=FAST_HASHING)
    hs.start()
    try:
        wait_for_pack(hs)
        users = register_at_once(hs, "monday", 12)
        room_id = pack_room(hs, users[0].access_token)
        # Stopped while the pack is being given out (some accounts may still be waiting for it) ...
        hs.hs.stop()
        # ... and for these, as if it stopped between the join and the account data.
        cut_short = [u.user_id for u in users[:3]]
        for user_id in cut_short:
            write(hs, "DELETE FROM account_data WHERE user_id = ? AND account_data_type IN"
                      " ('im.ponies.emote_rooms', 'm.widgets')", user_id)
            write(hs, "DELETE FROM lgwan_stamp_users WHERE user_id = ?", user_id)
        hs.hs.start()

        await eventually(lambda: everyone_has_the_pack(hs, users, room_id), timeout=120, interval=1)
        members = pack_members(hs, users[0], room_id)
        assert {u.user_id for u in users} <= members
        assert {m for m in members if m.startswith("@monday")} == {u.user_id for u in users}
    finally:
        hs.close()
