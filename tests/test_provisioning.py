"""Organisation provisioning against a real Synapse: `lgwan-chat provision` and the module.

Each test provisions its own municipality (its own aliases and staff) from the
organisation file the module reads, so the tests do not depend on each other.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from nio import RoomSendError, RoomSendResponse

from lgwan_chat.cli import main as cli
from lgwan_chat.provisioning.apply import Client, HttpError

SERVER = "lgwan.test"
_cities = itertools.count()


@pytest.fixture(scope="module")
def files(tmp_path_factory, hs_backend) -> Path:
    """The organisation file the module reads and the provisioning account's token: one per homeserver."""
    return tmp_path_factory.mktemp(f"provisioning-{hs_backend}")


@pytest.fixture(scope="module")
def homeserver_modules(files):
    return [{"module": "synapse_modules.provisioning.ProvisioningModule",
             "config": {"organisation_file": str(files / "organisation.yaml"),
                        "provisioner": f"@provisioner:{SERVER}"}}]


def city_of_two_departments(muni: str, people: str) -> dict:
    """北市: 総務課 (人事係) and 土木課 (道路係), a project room and the announcement room."""
    return {
        "municipality": {"id": muni, "name": {"ja": "北市", "en": "Kita City"}},
        "roles": [{"title": "課長", "power_level": 50}, {"title": "係長", "power_level": 25}],
        "departments": [
            {"id": "soumu", "name": {"ja": "総務課", "en": "General Affairs Division"},
             "sections": [{"id": "jinji", "name": {"ja": "人事係", "en": "Personnel Section"}}]},
            {"id": "doboku", "name": {"ja": "土木課", "en": "Civil Engineering Division"},
             "sections": [{"id": "douro", "name": {"ja": "道路係", "en": "Roads Section"}}]},
        ],
        "projects": [{"id": "dx", "name": {"ja": "DX推進", "en": "DX project"},
                      "departments": ["jinji"], "members": [f"{people}.sato"]}],
        "announcement": {"name": {"ja": "全庁お知らせ", "en": "All-staff announcements"}, "posters": ["課長"]},
        "staff": [
            {"localpart": f"{people}.yamada", "display_name": "山田", "department": "soumu", "title": "課長"},
            {"localpart": f"{people}.suzuki", "display_name": "鈴木", "department": "jinji", "title": "係長"},
            {"localpart": f"{people}.sato", "display_name": "佐藤", "department": "doboku", "title": "課長"},
            {"localpart": f"{people}.tanaka", "display_name": "田中", "department": "douro"},
        ],
    }


class City:
    def __init__(self, homeserver, files: Path, capsys):
        n = next(_cities)
        self.hs, self.files, self.capsys = homeserver, files, capsys
        self.muni, self.people = f"kita{n}", f"k{n}"
        self.org = city_of_two_departments(self.muni, self.people)
        self.write()
        (files / "secret").write_text(homeserver.registration_shared_secret)
        self.users: dict[str, Any] = {}

    def write(self) -> None:
        (self.files / "organisation.yaml").write_text(
            yaml.safe_dump({"organisation": self.org}, allow_unicode=True), encoding="utf-8")

    def register(self, *names: str) -> None:
        for name in names:
            self.users[name] = self.hs.new_user(localpart=f"{self.people}.{name}")

    def provision(self, *flags: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = cli(["provision", *flags, str(self.files / "organisation.yaml"), "--homeserver", self.hs.url("lgwan"),
                    "--token-file", str(self.files / "provisioner.token"),
                    "--shared-secret-file", str(self.files / "secret")])
        out = self.capsys.readouterr()
        return code, out.out, out.err

    @property
    def admin(self) -> Client:
        return Client(self.hs.url("lgwan"), (self.files / "provisioner.token").read_text().strip())

    def room_id(self, key: str) -> str:
        alias = f"%23{self.muni}-{key}:{SERVER}" if key else f"%23{self.muni}:{SERVER}"
        return self.admin.call("GET", f"/_matrix/client/v3/directory/room/{alias}")["room_id"]

    def state(self, key: str) -> list[dict]:
        return self.admin.call("GET", f"/_matrix/client/v3/rooms/{self.room_id(key)}/state")

    def joined(self, name: str) -> set[str]:
        """Keys of the rooms ``name`` is in, as their own client sees them."""
        rooms = Client(self.hs.url("lgwan"), self.users[name].access_token).call(
            "GET", "/_matrix/client/v3/joined_rooms")["joined_rooms"]
        keys = set()
        for room_id in rooms:
            for ev in self.admin.call("GET", f"/_matrix/client/v3/rooms/{room_id}/state"):
                if ev["type"] == "m.room.canonical_alias" and ev["content"].get("alias"):
                    keys.add(ev["content"]["alias"].split(":")[0][len(f"#{self.muni}-"):] or "(city)")
        return keys

    def snapshot(self) -> dict[str, list]:
        """Every state event id of every room of this city, to see that nothing changed."""
        keys = ["", "-soumu", "-soumu-space", "-jinji", "-jinji-space", "-doboku", "-doboku-space", "-douro",
                "-douro-space", "-dx", "-all-staff"]
        out = {}
        for key in keys:
            room_id = self.admin.call("GET", f"/_matrix/client/v3/directory/room/%23{self.muni}{key}:{SERVER}")[
                "room_id"]
            out[key] = sorted(ev["event_id"] for ev in self.admin.call(
                "GET", f"/_matrix/client/v3/rooms/{room_id}/state"))
        return out


@pytest.fixture
def city(homeserver, files, capsys):
    return City(homeserver, files, capsys)


def state_of(state: list[dict], kind: str, key: str = "") -> dict:
    content = next((ev["content"] for ev in state if ev["type"] == kind and ev["state_key"] == key), None)
    assert content is not None, f"no {kind} event with state key {key!r}"
    return content


async def test_provisioning_a_city_makes_its_rooms_spaces_and_power_levels(city, login):
    city.register("yamada", "suzuki", "sato", "tanaka")
    code, out, err = city.provision()
    assert code == 0, err
    assert "ルーム #" + city.muni + "-soumu を作成（名前: 総務課）" in out
    assert f"create room #{city.muni}-soumu (name: 総務課)" in out
    assert out.index("変更の計画") < out.index("Plan of changes")

    # the space tree mirrors the departments
    assert state_of(city.state(""), "m.room.create")["type"] == "m.space"
    assert state_of(city.state(""), "m.room.name") == {"name": "北市"}
    assert state_of(city.state("soumu-space"), "m.room.create")["type"] == "m.space"
    assert state_of(city.state(""), "m.space.child", city.room_id("soumu-space")) == {"via": [SERVER]}
    assert state_of(city.state("soumu-space"), "m.space.child", city.room_id("jinji-space")) == {"via": [SERVER]}
    assert state_of(city.state("jinji-space"), "m.space.child", city.room_id("jinji")) == {"via": [SERVER]}
    assert state_of(city.state(""), "m.space.child", city.room_id("all-staff")) == {"via": [SERVER]}
    assert state_of(city.state("jinji"), "m.space.parent", city.room_id("jinji-space"))["canonical"] is True
    assert "m.space.child" not in {ev["type"] for ev in city.state("douro")}
    assert state_of(city.state("doboku"), "m.room.topic")["topic"] == "Civil Engineering Division"
    assert state_of(city.state("doboku"), "m.room.join_rules") == {"join_rule": "invite"}

    # staff are in their department's rooms (a division's room has its sections), projects, all-staff
    assert city.joined("tanaka") == {"(city)", "doboku-space", "douro-space", "doboku", "douro", "all-staff"}
    assert city.joined("suzuki") == {"(city)", "soumu-space", "jinji-space", "soumu", "jinji", "dx", "all-staff"}
    assert city.joined("sato") == {"(city)", "doboku-space", "doboku", "dx", "all-staff"}

    # roles -> power levels; only 課長 may post announcements
    power = state_of(city.state("soumu"), "m.room.power_levels")
    assert power["users"][f"@{city.people}.yamada:{SERVER}"] == 50
    assert power["users"][f"@{city.people}.suzuki:{SERVER}"] == 25
    announcements = city.room_id("all-staff")
    tanaka, suzuki, sato = [await login(city.users[n]) for n in ("tanaka", "suzuki", "sato")]
    for client in (tanaka, suzuki):
        refused = await client.room_send(announcements, "m.room.message", {"msgtype": "m.text", "body": "私も"})
        assert isinstance(refused, RoomSendError) and refused.status_code == "M_FORBIDDEN", refused
    posted = await sato.room_send(announcements, "m.room.message",
                                          {"msgtype": "m.text", "body": "明日は停電点検です"})
    assert isinstance(posted, RoomSendResponse), posted
    # everyone else may talk in their department room
    assert isinstance(await tanaka.room_send(
        city.room_id("douro"), "m.room.message", {"msgtype": "m.text", "body": "了解"}), RoomSendResponse)

    # the same YAML again: nothing to do, nothing done
    before = city.snapshot()
    code, out, err = city.provision()
    assert code == 0, err
    assert out == "変更はありません\n\nno changes\n"
    assert city.snapshot() == before


async def test_dry_run_prints_the_plan_and_changes_nothing(city):
    city.register("yamada", "suzuki", "sato", "tanaka")
    code, out, err = city.provision("--dry-run")
    assert code == 0, err
    assert f"スペース #{city.muni} を作成（名前: 北市）" in out and f"create space #{city.muni} (name: 北市)" in out
    assert f"{city.people}.tanaka を #{city.muni}-douro に参加させる" in out
    assert "ドライラン: 何も変更していません / dry run: nothing was changed" in out
    with pytest.raises(HttpError) as missing:
        city.room_id("soumu")
    assert missing.value.status == 404
    assert city.joined("tanaka") == set()
    # the real run does what the dry run said
    assert city.provision()[0] == 0
    assert city.joined("tanaka") == {"(city)", "doboku-space", "douro-space", "doboku", "douro", "all-staff"}


async def test_staff_registered_later_are_joined_to_their_rooms_at_registration(city, login):
    city.register("yamada", "suzuki", "sato")
    code, out, err = city.provision()
    assert code == 0, err
    assert (f"ホームサーバーにアカウントがない職員（登録またはログイン時に自動で参加します）: {city.people}.tanaka"
            in out)
    assert f"staff without an account on the homeserver (joined automatically when they register or log in): " \
           f"{city.people}.tanaka" in out
    city.register("tanaka")  # the module joins them as they register
    assert city.joined("tanaka") == {"(city)", "doboku-space", "douro-space", "doboku", "douro", "all-staff"}
    # a chief registered later can post announcements at once: the levels were set for them beforehand
    city.org["staff"].append({"localpart": f"{city.people}.ito", "display_name": "伊藤", "department": "soumu",
                              "title": "課長"})
    city.write()
    assert city.provision()[0] == 0
    city.register("ito")
    assert city.joined("ito") == {"(city)", "soumu-space", "soumu", "all-staff"}
    posted = await (await login(city.users["ito"])).room_send(
        city.room_id("all-staff"), "m.room.message", {"msgtype": "m.text", "body": "着任しました"})
    assert isinstance(posted, RoomSendResponse), posted
    # and they can talk there at once, but not post announcements
    client = await login(city.users["tanaka"])
    assert isinstance(await client.room_send(city.room_id("douro"), "m.room.message",
                                             {"msgtype": "m.text", "body": "よろしくお願いします"}), RoomSendResponse)
    refused = await client.room_send(city.room_id("all-staff"), "m.room.message", {"msgtype": "m.text", "body": "x"})
    assert isinstance(refused, RoomSendError) and refused.status_code == "M_FORBIDDEN"
    # the next run has nothing to do for them
    assert city.provision()[1] == "変更はありません\n\nno changes\n"


async def test_a_member_of_staff_moved_in_the_yaml_joins_the_new_department_at_the_next_run(city):
    city.register("yamada", "suzuki", "sato", "tanaka")
    assert city.provision()[0] == 0
    moved = copy.deepcopy(city.org)
    moved["staff"][3]["department"] = "jinji"  # 田中: 道路係 -> 人事係
    city.org = moved
    city.write()
    code, out, err = city.provision()
    assert code == 0, err
    assert f"{city.people}.tanaka を #{city.muni}-jinji に参加させる" in out
    assert (f"{city.people}.tanaka は YAML では #{city.muni}-douro の所属ではありませんが、"
            "--allow-delete がないため外しません" in out)
    assert city.joined("tanaka") == {"(city)", "doboku-space", "douro-space", "doboku", "douro", "all-staff",
                                     "soumu-space", "jinji-space", "soumu", "jinji", "dx"}
    # leaving the old rooms only with --allow-delete
    code, out, err = city.provision("--allow-delete")
    assert code == 0, err
    assert f"{city.people}.tanaka を #{city.muni}-douro から外す" in out
    assert city.joined("tanaka") == {"(city)", "all-staff", "soumu-space", "jinji-space", "soumu", "jinji", "dx"}
    assert city.provision("--allow-delete")[1] == "変更はありません\n\nno changes\n"


async def test_a_room_removed_from_the_yaml_stays_until_deletion_is_allowed(city):
    city.register("yamada", "suzuki", "sato", "tanaka")
    assert city.provision()[0] == 0
    dx = city.room_id("dx")
    city.org["projects"] = []
    city.write()
    code, out, err = city.provision()
    assert f"#{city.muni}-dx は YAML にありませんが、--allow-delete がないため残します" in out
    assert "変更はありません" in out
    assert city.room_id("dx") == dx and "dx" in city.joined("sato")
    code, out, err = city.provision("--allow-delete")
    assert code == 0, err
    assert f"YAML にない #{city.muni}-dx を片付ける" in out
    with pytest.raises(HttpError):
        city.room_id("dx")
    assert state_of(city.state(""), "m.space.child", dx) == {}
    # archived, not deleted: its members and messages stay
    sato_rooms = Client(city.hs.url("lgwan"), city.users["sato"].access_token).call(
        "GET", "/_matrix/client/v3/joined_rooms")["joined_rooms"]
    assert dx in sato_rooms
    assert city.provision("--allow-delete")[1] == "変更はありません\n\nno changes\n"


async def test_staff_added_to_the_yaml_are_joined_at_their_next_login(city, login):
    city.register("yamada", "suzuki", "sato", "tanaka")
    city.org["staff"].pop()  # 田中 has an account but is not in the YAML yet
    city.write()
    assert city.provision()[0] == 0
    assert city.joined("tanaka") == set()
    city.org = city_of_two_departments(city.muni, city.people)  # now listed, no provision run yet
    city.write()
    await login(city.users["tanaka"])
    assert city.joined("tanaka") == {"(city)", "doboku-space", "douro-space", "doboku", "douro", "all-staff"}
    assert city.provision()[1] == "変更はありません\n\nno changes\n"


async def test_renames_promotions_and_a_moved_section_are_applied(city, login):
    city.register("yamada", "suzuki", "sato", "tanaka")
    assert city.provision()[0] == 0
    doboku_space, douro_space = city.room_id("doboku-space"), city.room_id("douro-space")
    city.org["departments"][1]["name"] = {"ja": "建設課", "en": "Construction Division"}
    city.org["staff"][3]["title"] = "課長"  # 田中 promoted: may now post announcements
    section = city.org["departments"][1].pop("sections")[0]
    city.org["departments"][0]["sections"].append(section)  # 道路係 moves under 総務課
    city.write()
    code, out, err = city.provision("--allow-delete")
    assert code == 0, err
    assert f"#{city.muni}-doboku の名前を「建設課」に変更" in out
    assert state_of(city.state("doboku"), "m.room.name") == {"name": "建設課"}
    assert state_of(city.state("doboku-space"), "m.room.name") == {"name": "建設課"}
    assert state_of(city.state("doboku"), "m.room.topic")["topic"] == "Construction Division"
    # the section's space hangs under its new department only
    assert state_of(city.state("soumu-space"), "m.space.child", douro_space) == {"via": [SERVER]}
    assert state_of(city.state("doboku-space"), "m.space.child", douro_space) == {}
    assert state_of(city.state("douro-space"), "m.space.parent", doboku_space) == {}
    assert city.joined("tanaka") == {"(city)", "soumu-space", "douro-space", "soumu", "douro", "all-staff"}
    tanaka = await login(city.users["tanaka"])
    posted = await tanaka.room_send(city.room_id("all-staff"), "m.room.message",
                                    {"msgtype": "m.text", "body": "道路係は総務課に移りました"})
    assert isinstance(posted, RoomSendResponse), posted
    assert city.provision("--allow-delete")[1] == "変更はありません\n\nno changes\n"


async def test_a_broken_yaml_is_refused_before_anything_is_done(city):
    city.org["staff"][0]["department"] = "kikaku"
    city.write()
    code, _out, err = city.provision()
    assert code == 1
    assert "organisation.staff[0].department: 部署「kikaku」は organisation.departments に定義されていません" in err
    with pytest.raises(HttpError):
        city.room_id("soumu")
