"""The federation allow-list, with real homeservers federating on loopback.

Ours (the suite's allow-list module, on the backend under test) federates with two stock
Synapses: ``listed`` (a neighbouring municipality on the signed list) and ``unlisted`` (not on
it). Ours's homeserver.yaml carries the ``federation_domain_whitelist`` that
``lgwan-chat federation homeserver-snippet`` prints for the list.
"""

from __future__ import annotations

import asyncio
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from federation import federating_homeserver, make_tls, stock_homeservers
from harness import download
from nio import JoinResponse, RoomSendResponse, UploadResponse
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key

from lgwan_chat.cli import main
from lgwan_chat.homeserver import Homeserver, HomeserverError, HomeserverSpec
from synapse_modules.federation.allowlist import sign_text

MODULE = "synapse_modules.federation.FederationAllowListModule"
INTERNAL = {"type": "jp.lgwan.room.internal", "state_key": "", "content": {"internal": True}}


def allowlist_text(servers: list[str], groups: list[dict] | None = None) -> str:
    doc = {"federation": {
        "servers": [{"name": name, "label": {"ja": f"自治体{i}", "en": f"Town {i}"},
                     "role": "prefecture" if i == 0 else "municipality"} for i, name in enumerate(servers)],
        "groups": groups or []}}
    return "# 許可リスト / allow-list\n" + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def signing_key(version: str = "pref1"):
    key = generate_signing_key(version)
    return key, encode_verify_key_base64(get_verify_key(key))


def request(client, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """(status, JSON body) of a client-server API call: what a client would see, errors included."""
    req = urllib.request.Request(f"{client.homeserver}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {client.access_token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


async def members(client, room_id: str) -> dict[str, str]:
    """user id -> membership, in ``client``'s server's view of the room."""
    status, body = request(client, "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/members")
    assert status == 200, body
    return {e["state_key"]: e["content"]["membership"] for e in body["chunk"]}


async def join_eventually(client, room: str, attempts: int = 100):
    """Join (the invite or the room's state may still be travelling over federation)."""
    response = None
    for _ in range(attempts):
        response = await client.join(room)
        if isinstance(response, JoinResponse):
            return response
        await asyncio.sleep(0.1)
    return response


async def wait_for_message(client, room_id: str, body: str) -> bool:
    for _ in range(100):
        response = await client.room_messages(room_id, start="", limit=50)
        if any(getattr(e, "body", None) == body for e in getattr(response, "chunk", [])):
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def federation_tls(tmp_path_factory):
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def neighbours(federation_tls, tmp_path_factory):
    """(listed, unlisted) stock homeservers."""
    with stock_homeservers(tmp_path_factory, federation_tls, ("listed", "unlisted")) as servers:
        yield servers


@pytest.fixture(scope="module")
def homeserver(hs_backend, neighbours, federation_tls, tmp_path_factory):
    listed, _ = neighbours
    data = tmp_path_factory.mktemp(f"ours-{hs_backend}")
    path = data / "federation.yaml"
    key, public = signing_key()
    ours = federating_homeserver(
        data, hs_backend, federation_tls,
        modules=[{"module": MODULE, "config": {"allowlist": str(path), "signing_public_key": public}}],
        extra={"federation_domain_whitelist": [listed.server_name]})
    own = ours.server_name
    groups = [{"alias": f"#bousai:{own}", "label": {"ja": "防災担当者グループ"}},
              {"alias": f"#kenmin:{own}", "label": {"ja": "県職員のみ"}, "servers": [own]}]
    path.write_text(sign_text(allowlist_text([own, listed.server_name], groups), key, own), encoding="utf-8")
    ours.start()
    try:
        yield ours
    finally:
        ours.close()


async def test_listed_servers_exchange_invites_joins_and_messages(homeserver, login, neighbours, remote_login):
    staff = await login(homeserver.new_user("staff"), "lgwan")
    neighbour = await remote_login(neighbours[0], "neighbour")
    # our user invites theirs
    room = await staff.room_create(name="広域連携", invite=[neighbour.user_id])
    assert isinstance(await join_eventually(neighbour, room.room_id), JoinResponse)
    assert isinstance(await neighbour.room_send(room.room_id, "m.room.message",
                                                {"msgtype": "m.text", "body": "隣町からです"}), RoomSendResponse)
    assert await wait_for_message(staff, room.room_id, "隣町からです")
    assert isinstance(await staff.room_send(room.room_id, "m.room.message",
                                            {"msgtype": "m.text", "body": "市役所からです"}), RoomSendResponse)
    assert await wait_for_message(neighbour, room.room_id, "市役所からです")
    # theirs invites ours into a room on their server
    theirs = await neighbour.room_create(name="隣町の会議", invite=[staff.user_id])
    assert isinstance(await join_eventually(staff, theirs.room_id), JoinResponse)
    assert (await members(neighbour, theirs.room_id))[staff.user_id] == "join"


async def test_listed_servers_fetch_each_others_media(homeserver, login, neighbours, remote_login):
    staff = await login(homeserver.new_user("staff"), "internet")
    neighbour = await remote_login(neighbours[0], "neighbour")
    for uploader, reader, base in ((neighbour, staff, homeserver.url("internet")),
                                   (staff, neighbour, neighbours[0].url("internet"))):
        data = f"%PDF-1.4 {uploader.user_id} ".encode() * 50
        uploaded, _ = await uploader.upload(io.BytesIO(data), content_type="application/pdf",
                                            filename="通知.pdf", filesize=len(data))
        assert isinstance(uploaded, UploadResponse)
        assert await download(base, reader, uploaded.content_uri) == (200, data)
    outsider = await remote_login(neighbours[1], "outsider")
    data = b"%PDF-1.4 unlisted " * 50
    uploaded, _ = await outsider.upload(io.BytesIO(data), content_type="application/pdf", filename="x.pdf",
                                        filesize=len(data))
    assert isinstance(uploaded, UploadResponse)
    status, body = await download(homeserver.url("internet"), staff, uploaded.content_uri)
    assert status != 200 and body != data  # Synapse never asks the unlisted server


async def test_inviting_a_user_of_an_unlisted_server_is_refused_with_the_reason(homeserver, login, neighbours,
                                                                               remote_login):
    staff = await login(homeserver.new_user("staff"), "lgwan")
    outsider = await remote_login(neighbours[1], "outsider")
    room = await staff.room_create(name="連絡")
    status, body = request(staff, "POST", f"/_matrix/client/v3/rooms/{quote(room.room_id)}/invite",
                           {"user_id": outsider.user_id})
    assert status == 403
    assert body["errcode"] == "M_FORBIDDEN"
    assert body["jp.lgwan.reason"] == "federation_server_not_listed"
    assert "信頼できる自治体サーバーの一覧に載っていない" in body["error"]
    assert neighbours[1].server_name in body["jp.lgwan.message"]["en"]
    # inviting at creation is refused the same way
    status, body = request(staff, "POST", "/_matrix/client/v3/createRoom", {"invite": [outsider.user_id]})
    assert status == 403 and body["jp.lgwan.reason"] == "federation_server_not_listed"


async def test_unlisted_server_user_can_neither_invite_nor_join(homeserver, login, neighbours, remote_login):
    staff = await login(homeserver.new_user("staff"), "lgwan")
    outsider = await remote_login(neighbours[1], "outsider")
    # their invite never reaches our user
    theirs = await outsider.room_create(name="怪しい招待")
    status, _ = request(outsider, "POST", f"/_matrix/client/v3/rooms/{quote(theirs.room_id)}/invite",
                        {"user_id": staff.user_id})
    assert status >= 400
    sync = await staff.sync(timeout=0)
    assert theirs.room_id not in sync.rooms.invite
    # they cannot join a public room of ours through its alias
    local = f"kouhou{homeserver.pid}"
    room = await staff.room_create(name="広報", alias=local,
                                   initial_state=[{"type": "m.room.join_rules", "state_key": "",
                                                   "content": {"join_rule": "public"}}])
    response = await outsider.join(f"#{local}:{homeserver.server_name}")
    assert not isinstance(response, JoinResponse)
    assert outsider.user_id not in await members(staff, room.room_id)
    # and our staff cannot join theirs
    await outsider.room_create(name="外部の公開ルーム", alias=f"open{homeserver.pid}", initial_state=[
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "public"}}])
    assert not isinstance(await staff.join(f"#open{homeserver.pid}:{neighbours[1].server_name}"), JoinResponse)


async def test_a_remote_member_cannot_bring_in_an_unlisted_user(homeserver, login, neighbours, remote_login):
    """Bypass: a listed server's member with invite power invites, then the outsider joins through that server."""
    staff = await login(homeserver.new_user("staff"), "lgwan")
    neighbour = await remote_login(neighbours[0], "neighbour")
    outsider = await remote_login(neighbours[1], "outsider")
    room = await staff.room_create(name="共同事業", invite=[neighbour.user_id],
                                   power_level_override={"users": {neighbour.user_id: 100}})
    assert isinstance(await join_eventually(neighbour, room.room_id), JoinResponse)
    status, _ = request(neighbour, "POST", f"/_matrix/client/v3/rooms/{quote(room.room_id)}/invite",
                        {"user_id": outsider.user_id})
    assert status == 200  # their own (stock) server lets them
    assert isinstance(await neighbour.room_send(room.room_id, "m.room.message",
                                                {"msgtype": "m.text", "body": "招待しました"}), RoomSendResponse)
    assert await wait_for_message(staff, room.room_id, "招待しました")  # the invite has arrived before it
    assert outsider.user_id not in await members(staff, room.room_id)  # ... and was refused (soft-failed)
    # the outsider joins through the neighbour's server (which has the invite) and posts
    assert isinstance(await join_eventually(outsider, room.room_id, attempts=50), JoinResponse)
    await outsider.room_send(room.room_id, "m.room.message", {"msgtype": "m.text", "body": "部外者の投稿"})
    for _ in range(50):  # over the next five seconds, nothing of theirs lands on our server
        assert outsider.user_id not in await members(staff, room.room_id)
        response = await staff.room_messages(room.room_id, start="", limit=50)
        assert "部外者の投稿" not in [getattr(e, "body", None) for e in response.chunk]
        await asyncio.sleep(0.1)


async def test_organisation_internal_room_gains_no_member_from_another_server(homeserver, login, neighbours,
                                                                              remote_login):
    staff = await login(homeserver.new_user("staff"), "lgwan")
    neighbour = await remote_login(neighbours[0], "neighbour")
    local = f"naibu{homeserver.pid}"
    room = await staff.room_create(name="人事（庁内専用）", alias=local, initial_state=[
        INTERNAL, {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "public"}}])
    colleague = await login(homeserver.new_user("colleague"), "lgwan")
    assert isinstance(await colleague.join(room.room_id), JoinResponse)  # our own staff: fine
    status, body = request(staff, "POST", f"/_matrix/client/v3/rooms/{quote(room.room_id)}/invite",
                           {"user_id": neighbour.user_id})
    assert status == 403 and body["jp.lgwan.reason"] == "federation_internal_room"
    assert "庁内専用" in body["error"] and "organisation-internal" in body["error"]
    # a listed server's user joining through the alias (no invite needed in a public room)
    response = await neighbour.join(f"#{local}:{homeserver.server_name}")
    assert not isinstance(response, JoinResponse)
    assert neighbour.user_id not in await members(staff, room.room_id)
    status, create = request(staff, "GET", f"/_matrix/client/v3/rooms/{quote(room.room_id)}/state/m.room.create/")
    assert create["m.federate"] is False


async def test_a_federating_room_cannot_be_marked_internal_afterwards(homeserver, login):
    staff = await login(homeserver.new_user("staff"), "lgwan")
    room = await staff.room_create(name="普通のルーム")
    status, body = request(staff, "PUT", f"/_matrix/client/v3/rooms/{quote(room.room_id)}/state/"
                           "jp.lgwan.room.internal/", {"internal": True})
    assert status == 403 and body["jp.lgwan.reason"] == "federation_internal_after_creation"
    assert "ルームを作るときにしか" in body["error"]


async def test_group_rooms_open_to_listed_servers_and_limited_to_their_servers(homeserver, login, neighbours,
                                                                             remote_login):
    staff = await login(homeserver.new_user("staff"), "lgwan")
    neighbour = await remote_login(neighbours[0], "neighbour")
    public = [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "public"}}]
    await staff.room_create(name="防災担当者グループ", alias="bousai", initial_state=public)
    joined = await join_eventually(neighbour, f"#bousai:{homeserver.server_name}", attempts=20)
    assert isinstance(joined, JoinResponse)
    assert (await members(staff, joined.room_id))[neighbour.user_id] == "join"
    # a group room cannot be made internal
    status, body = request(staff, "PUT", f"/_matrix/client/v3/rooms/{quote(joined.room_id)}/state/"
                           "jp.lgwan.room.internal/", {"internal": True})
    assert status == 403
    # the prefecture-only group: a listed municipality's user cannot be invited
    only = await staff.room_create(name="県職員のみ", alias="kenmin", initial_state=public)
    status, body = request(staff, "POST", f"/_matrix/client/v3/rooms/{quote(only.room_id)}/invite",
                           {"user_id": neighbour.user_id})
    assert status == 403 and body["jp.lgwan.reason"] == "federation_group_server"
    assert f"#kenmin:{homeserver.server_name}" in body["error"]
    # ... nor join it through the alias (make_join has no module hook: the join is soft-failed here)
    await neighbour.join(f"#kenmin:{homeserver.server_name}")
    await neighbour.room_send(only.room_id, "m.room.message", {"msgtype": "m.text", "body": "対象外の投稿"})
    for _ in range(30):
        assert neighbour.user_id not in await members(staff, only.room_id)
        response = await staff.room_messages(only.room_id, start="", limit=50)
        assert "対象外の投稿" not in [getattr(e, "body", None) for e in response.chunk]
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def open_homeserver(neighbours, federation_tls, tmp_path_factory):
    """Ours again, but without federation_domain_whitelist (whitelist_check: warn): the module alone."""
    listed, _ = neighbours
    data = tmp_path_factory.mktemp("open")
    path = data / "federation.yaml"
    ours = federating_homeserver(data, "sqlite", federation_tls, modules=[
        {"module": MODULE, "config": {"allowlist": str(path), "whitelist_check": "warn"}}])
    path.write_text(allowlist_text([ours.server_name, listed.server_name]), encoding="utf-8")
    ours.start()
    try:
        yield ours
    finally:
        ours.close()


async def test_without_the_whitelist_the_module_still_refuses_unlisted_servers(open_homeserver, neighbours,
                                                                              remote_login):
    assert "federation_domain_whitelist" in open_homeserver.log_tail(max_chars=10**9)  # the warning at start
    staff = await open_homeserver.login(open_homeserver.new_user("staff"), "lgwan")
    try:
        outsider = await remote_login(neighbours[1], "outsider")
        neighbour = await remote_login(neighbours[0], "neighbour")
        # an invite from the unlisted server is refused (federated_user_may_invite)
        theirs = await outsider.room_create(name="怪しい招待")
        status, _ = request(outsider, "POST", f"/_matrix/client/v3/rooms/{quote(theirs.room_id)}/invite",
                            {"user_id": staff.user_id})
        assert status == 403
        # one from a listed server arrives
        listed_room = await neighbour.room_create(name="隣町から", invite=[staff.user_id])
        assert isinstance(await join_eventually(staff, listed_room.room_id), JoinResponse)
        # inviting the unlisted server's user is refused with the reason
        room = await staff.room_create(name="連絡")
        status, body = request(staff, "POST", f"/_matrix/client/v3/rooms/{quote(room.room_id)}/invite",
                               {"user_id": outsider.user_id})
        assert status == 403 and body["jp.lgwan.reason"] == "federation_server_not_listed"
        # an unlisted user joining a public room through its alias never becomes a member here
        public = await staff.room_create(name="広報", alias="kouhou", initial_state=[
            {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "public"}}])
        # (without the whitelist their server may believe it joined: make_join has no module hook and
        # the join is soft-failed here)
        await outsider.join(f"#kouhou:{open_homeserver.server_name}")
        await outsider.room_send(public.room_id, "m.room.message", {"msgtype": "m.text", "body": "部外者の投稿"})
        for _ in range(30):
            assert outsider.user_id not in await members(staff, public.room_id)
            response = await staff.room_messages(public.room_id, start="", limit=50)
            assert "部外者の投稿" not in [getattr(e, "body", None) for e in response.chunk]
            await asyncio.sleep(0.1)
    finally:
        await open_homeserver.close_clients()


# -- refusing to start ---------------------------------------------------------------------

LISTED = ["pref.example.lg.jp", "city-a.example.lg.jp"]


def start_failure(tmp_path: Path, config: dict, whitelist: list[str] | None = LISTED) -> str:
    extra = {} if whitelist is None else {"federation_domain_whitelist": whitelist}
    hs = Homeserver(HomeserverSpec(data_dir=tmp_path / "hs", modules=[{"module": MODULE, "config": config}],
                                   extra=extra))
    try:
        with pytest.raises(HomeserverError):
            hs.start(timeout=60)
    finally:
        hs.stop()
    return hs.console_log_path.read_text(encoding="utf-8")


@pytest.fixture
def signed_list(tmp_path):
    key, public = signing_key()
    path = tmp_path / "federation.yaml"
    path.write_text(sign_text(allowlist_text(LISTED), key, LISTED[0]), encoding="utf-8")
    return path, public


def test_a_tampered_signed_list_stops_synapse(tmp_path, signed_list):
    path, public = signed_list
    path.write_text(path.read_text(encoding="utf-8").replace("city-a.example.lg.jp", "evil.example.com"),
                    encoding="utf-8")
    console = start_failure(tmp_path, {"allowlist": str(path), "signing_public_key": public},
                            whitelist=[LISTED[0], "evil.example.com"])
    assert f"許可リスト {path}:" in console and "を使えません" in console
    assert "署名が設定された公開鍵で検証できません" in console
    assert "the signature does not verify with the configured public key" in console


def test_an_unsigned_list_stops_synapse_when_a_key_is_configured(tmp_path):
    path = tmp_path / "federation.yaml"
    path.write_text(allowlist_text(LISTED), encoding="utf-8")
    console = start_failure(tmp_path, {"allowlist": str(path), "signing_public_key": signing_key()[1]})
    assert "署名がありません" in console and "the list is not signed" in console


def test_a_whitelist_that_differs_from_the_list_stops_synapse(tmp_path, signed_list):
    path, public = signed_list
    console = start_failure(tmp_path, {"allowlist": str(path), "signing_public_key": public},
                            whitelist=[LISTED[0], "other.example.jp"])
    assert "federation_domain_whitelist が許可リスト" in console
    assert "missing: city-a.example.lg.jp; extra: other.example.jp" in console
    console = start_failure(tmp_path, {"allowlist": str(path)}, whitelist=None)
    assert "federates with every server" in console


# -- check-config and the CLI --------------------------------------------------------------

def test_check_config_reports_the_list_and_the_whitelist(tmp_path, signed_list, capsys):
    path, public = signed_list
    other_public = signing_key("other")[1]
    homeserver = tmp_path / "homeserver.yaml"
    homeserver.write_text(yaml.safe_dump({
        "server_name": LISTED[1],
        "listeners": [],
        "federation_domain_whitelist": [LISTED[0]],
        "modules": [{"module": MODULE, "config": {"allowlist": str(path), "signing_public_key": public}},
                    {"module": MODULE, "config": {"allowlist": str(path), "signing_public_key": other_public}},
                    {"module": MODULE, "config": {"allowlist": str(tmp_path / "nosuch.yaml")}},
                    {"module": MODULE, "config": {"allowlist": str(path), "whitelist_check": "never"}},
                    {"module": MODULE, "config": {"allowlist": str(path), "signing_public_key": "abc"}}]}),
        encoding="utf-8")
    assert main(["check-config", str(homeserver)]) == 1
    err = capsys.readouterr().err
    # the first entry is fine: its own server may be left out of the whitelist
    assert "modules[0]" not in err
    assert f"modules[1].config.allowlist: 許可リスト {path}:" in err
    assert "署名が設定された公開鍵で検証できません" in err
    assert f"modules[2].config.allowlist: 許可リスト {tmp_path / 'nosuch.yaml'} を使えません" in err
    assert "modules[3].config.whitelist_check: 「never」は使えません" in err
    assert ("modules[4].config.signing_public_key: "
            "公開鍵として読めません（ed25519 公開鍵の base64 を書いてください）") in err
    # the whitelist itself
    doc = yaml.safe_load(homeserver.read_text(encoding="utf-8"))
    doc["modules"] = doc["modules"][:1]
    doc["federation_domain_whitelist"] = [LISTED[0], "other.example.jp"]
    homeserver.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert main(["check-config", str(homeserver)]) == 1
    err = capsys.readouterr().err
    assert "modules[0].config.whitelist_check: homeserver.yaml の federation_domain_whitelist が許可リスト" in err
    assert "（不足: -、余分: other.example.jp）" in err


def test_check_config_validates_the_list_file(tmp_path, capsys):
    bad = tmp_path / "federation.yaml"
    bad.write_text("""\
federation:
  servers:
    - {name: pref.example.lg.jp, label: {ja: 県}, role: prefecture}
    - {name: pref.example.lg.jp, label: {ja: 県（重複）}, role: county}
  groups:
    - {alias: "#bousai:elsewhere.example.jp", label: {ja: 防災}}
""", encoding="utf-8")
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:4: federation.servers[1].role: 「county」は使えません" in err
    assert main(["check-config", str(bad).replace("federation.yaml", "x.yaml")]) == 1
    bad.write_text(bad.read_text(encoding="utf-8").replace("role: county", "role: municipality"), encoding="utf-8")
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert (f"{bad}:4: federation.servers[1].name: サーバー「pref.example.lg.jp」が重複しています"
            "（最初の定義: federation.servers[0]）") in err
    assert (f"{bad}:6: federation.groups[0].alias: "
            "サーバー「elsewhere.example.jp」は federation.servers に載っていません") in err


def test_shipped_sample_list_is_valid(capsys):
    sample = Path(__file__).resolve().parent.parent / "config" / "federation.yaml"
    assert main(["check-config", str(sample)]) == 0
    assert main(["federation", "verify", str(sample)]) == 0
    assert "形式は問題ありません（サーバー 3 台、グループ 2 件" in capsys.readouterr().out


def test_prefecture_generates_a_key_signs_and_every_server_verifies(tmp_path, capsys):
    keyfile, listfile = tmp_path / "pref.key", tmp_path / "federation.yaml"
    listfile.write_text(allowlist_text(LISTED), encoding="utf-8")
    assert main(["federation", "generate-key", "--key-id", "pref2026", str(keyfile)]) == 0
    out = capsys.readouterr().out
    public = out.rsplit(": ", 1)[1].strip()
    assert "ed25519:pref2026" in out and len(public) == 43
    assert main(["federation", "generate-key", str(keyfile)]) == 1  # never overwrites the key
    assert "上書きしません" in capsys.readouterr().err

    assert main(["federation", "verify", "--public-key", public, str(listfile)]) == 1
    assert "署名がありません" in capsys.readouterr().err
    assert main(["federation", "sign", "--key", str(keyfile), str(listfile)]) == 0
    assert main(["federation", "sign", "--key", str(keyfile), str(listfile)]) == 0  # re-signing replaces
    text = listfile.read_text(encoding="utf-8")
    assert text.startswith("# 許可リスト / allow-list\n") and text.count("\nsignatures:") == 1
    capsys.readouterr()
    assert main(["federation", "verify", "--public-key", public, str(listfile)]) == 0
    assert f"{LISTED[0]} ed25519:pref2026 の署名を確認しました" in capsys.readouterr().out
    # a comment may change; a value may not
    listfile.write_text("# 配布版\n" + text, encoding="utf-8")
    assert main(["federation", "verify", "--public-key", public, str(listfile)]) == 0
    listfile.write_text(text.replace("自治体1", "自治体X"), encoding="utf-8")
    assert main(["federation", "verify", "--public-key", public, str(listfile)]) == 1
    assert "署名が設定された公開鍵で検証できません" in capsys.readouterr().err
    listfile.write_text(text, encoding="utf-8")
    assert main(["federation", "verify", "--public-key", signing_key()[1], str(listfile)]) == 1

    assert main(["federation", "homeserver-snippet", "--server-name", "town-b.example.lg.jp", str(listfile)]) == 0
    snippet = yaml.safe_load(capsys.readouterr().out)
    assert snippet == {"federation_domain_whitelist": [*LISTED, "town-b.example.lg.jp"]}
