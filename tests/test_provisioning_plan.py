"""Organisation provisioning without a server: the YAML, its checks, and the plan of changes."""

from __future__ import annotations

import copy

import pytest

from lgwan_chat.core.organisation import check, parse
from lgwan_chat.core.provisioning_plan import ANNOUNCE_LEVEL, Observed, desired, make_plan, rooms_of, simulate

CITY = {
    "municipality": {"id": "kita", "name": {"ja": "北市", "en": "Kita City"}},
    "roles": [{"title": "課長", "power_level": 50}, {"title": "係長", "power_level": 25}],
    "departments": [
        {"id": "soumu", "name": {"ja": "総務課", "en": "General Affairs"},
         "rooms": [{"id": "soumu-zatsudan", "name": {"ja": "総務課 雑談"}}],
         "sections": [{"id": "jinji", "name": {"ja": "人事係"}}]},
        {"id": "doboku", "name": {"ja": "土木課"},
         "sections": [{"id": "douro", "name": {"ja": "道路係"}}]},
    ],
    "projects": [{"id": "dx", "name": {"ja": "DX推進"}, "departments": ["jinji"], "members": ["sato"]}],
    "announcement": {"name": {"ja": "全庁お知らせ", "en": "Announcements"}, "posters": ["課長"]},
    "staff": [
        {"localpart": "yamada", "display_name": "山田", "department": "soumu", "title": "課長"},
        {"localpart": "suzuki", "display_name": "鈴木", "department": "jinji", "title": "係長"},
        {"localpart": "sato", "display_name": "佐藤", "department": "doboku", "title": "課長"},
        {"localpart": "tanaka", "display_name": "田中", "department": "douro"},
    ],
}


def city(**changes) -> dict:
    raw = copy.deepcopy(CITY)
    raw.update(changes)
    return raw


def applied(raw: dict, users=None) -> Observed:
    """The state a first run leaves on a server where ``users`` exist (None: everyone)."""
    org = parse(raw)
    return simulate(make_plan(org, Observed(users=users)), Observed(users=users))


def kinds(plan, kind):
    return [(a.key, a.value) for a in plan.actions if a.kind == kind]


def test_the_yaml_becomes_rooms_spaces_and_memberships():
    org = parse(city())
    specs = {s.key: s for s in desired(org)}
    assert {k for k, s in specs.items() if s.is_space} == {
        "kita", "kita-soumu-space", "kita-jinji-space", "kita-doboku-space", "kita-douro-space"}
    assert {k for k, s in specs.items() if not s.is_space} == {
        "kita-soumu", "kita-soumu-zatsudan", "kita-jinji", "kita-doboku", "kita-douro", "kita-dx", "kita-all-staff"}
    # a division's room has its sections' staff; a section's room only its own
    assert specs["kita-soumu"].members == {"yamada", "suzuki"}
    assert specs["kita-soumu-zatsudan"].members == {"yamada", "suzuki"}
    assert specs["kita-jinji"].members == {"suzuki"}
    assert specs["kita-dx"].members == {"suzuki", "sato"}
    assert specs["kita-all-staff"].members == {"yamada", "suzuki", "sato", "tanaka"}
    # the space tree mirrors the departments
    assert specs["kita-jinji-space"].parent == "kita-soumu-space"
    assert specs["kita-jinji"].parent == "kita-jinji-space"
    assert specs["kita-soumu-space"].parent == "kita"
    assert specs["kita-all-staff"].parent == specs["kita-dx"].parent == "kita"
    # roles give power levels; in the announcement room only the posters can post
    assert dict(specs["kita-soumu"].power) == {"yamada": 50, "suzuki": 25}
    assert specs["kita-all-staff"].events_default == ANNOUNCE_LEVEL
    assert dict(specs["kita-all-staff"].power) == {"yamada": ANNOUNCE_LEVEL, "sato": ANNOUNCE_LEVEL}
    assert rooms_of(org, "tanaka") == ["kita", "kita-doboku-space", "kita-douro-space", "kita-doboku",
                                       "kita-douro", "kita-all-staff"]

    plan = make_plan(org, Observed())
    assert len(kinds(plan, "create")) == 12
    assert ("kita-douro", "tanaka") in kinds(plan, "join")
    assert ("kita-soumu-space", "kita-jinji-space") in kinds(plan, "link")
    text = plan.render()
    ja = text.index("ルーム #kita-soumu を作成（名前: 総務課）")
    assert ja < text.index("create room #kita-soumu (name: 総務課)")


def test_the_state_a_plan_produced_gives_an_empty_plan():
    org = parse(city())
    plan = make_plan(org, applied(city()))
    assert plan.actions == () and plan.kept == ()
    assert plan.render() == "変更はありません\n\nno changes\n"


def test_a_moved_member_of_staff_joins_the_new_department_and_stays_in_the_old_without_allow_delete():
    before = applied(city())
    moved = city()
    moved["staff"][3]["department"] = "jinji"  # tanaka: 道路係 -> 人事係
    org = parse(moved)
    plan = make_plan(org, before)
    assert sorted(kinds(plan, "join")) == [("kita-dx", "tanaka"), ("kita-jinji", "tanaka"),
                                           ("kita-jinji-space", "tanaka"), ("kita-soumu", "tanaka"),
                                           ("kita-soumu-space", "tanaka"), ("kita-soumu-zatsudan", "tanaka")]
    assert kinds(plan, "remove") == []
    assert ("member", "kita-douro", "tanaka") in plan.kept
    assert ("tanaka は YAML では #kita-douro の所属ではありませんが、--allow-delete がないため外しません"
            in plan.render())

    plan = make_plan(org, before, allow_delete=True)
    assert sorted(kinds(plan, "remove")) == [("kita-doboku", "tanaka"), ("kita-doboku-space", "tanaka"),
                                             ("kita-douro", "tanaka"), ("kita-douro-space", "tanaka")]
    assert make_plan(org, simulate(plan, before), allow_delete=True).actions == ()


def test_a_room_gone_from_the_yaml_is_kept_unless_deletion_is_allowed():
    before = applied(city())
    org = parse(city(projects=[]))
    plan = make_plan(org, before)
    assert plan.actions == ()
    assert ("room", "kita-dx", None) in plan.kept
    assert "#kita-dx は YAML にありませんが、--allow-delete がないため残します" in plan.render()
    plan = make_plan(org, before, allow_delete=True)
    assert [(a.kind, a.key) for a in plan.actions] == [("unlink", "kita"), ("archive", "kita-dx")]
    assert make_plan(org, simulate(plan, before), allow_delete=True).actions == ()


def test_people_not_in_the_yaml_are_never_removed():
    before = applied(city())
    before.rooms["kita-soumu"].members.add("polls-bot")
    plan = make_plan(parse(city()), before, allow_delete=True)
    assert plan.actions == () and plan.kept == ()


def test_changed_names_topics_and_roles_only_change_those():
    before = applied(city())
    raw = city()
    raw["departments"][0]["name"] = {"ja": "総務部", "en": "General Affairs Dept"}
    raw["staff"][1]["title"] = "課長"  # suzuki promoted: may now post announcements
    plan = make_plan(parse(raw), before)
    assert ("kita-soumu", "総務部") in kinds(plan, "name")
    assert ("kita-soumu-space", "総務部") in kinds(plan, "name")
    assert ("kita-soumu", "General Affairs Dept") in kinds(plan, "topic")
    power = dict(kinds(plan, "power"))
    assert power["kita-all-staff"]["users"] == {"suzuki": (0, ANNOUNCE_LEVEL)}
    assert power["kita-jinji"]["users"] == {"suzuki": (25, 50)}
    assert {a.kind for a in plan.actions} == {"name", "topic", "power"}
    assert "#kita-all-staff の権限レベルを変更（suzuki: 0→50）" in plan.render()


def test_staff_without_an_account_are_listed_and_not_joined():
    plan = make_plan(parse(city()), Observed(users={"yamada", "suzuki", "sato"}))
    assert all(lp != "tanaka" for _, lp in kinds(plan, "join"))
    assert plan.missing_users == ("tanaka",)
    assert "ホームサーバーにアカウントがない職員（登録またはログイン時に自動で参加します）: tanaka" in plan.render()
    assert "staff without an account on the homeserver (joined automatically when they register or log in): tanaka" \
        in plan.render()
    # once registered (the module joined them, or the next run does)
    later = applied(city(), users={"yamada", "suzuki", "sato"})
    assert later.users is not None
    later.users.add("tanaka")
    assert sorted(k for k, _ in kinds(make_plan(parse(city()), later), "join")) == [
        "kita", "kita-all-staff", "kita-doboku", "kita-doboku-space", "kita-douro", "kita-douro-space"]


@pytest.mark.parametrize("change, problem", [
    (lambda r: r["projects"][0]["departments"].append("kikaku"),
     ("projects.0.departments.1", "config.unknown_department")),
    (lambda r: r["projects"][0]["members"].append("nobody"), ("projects.0.members.1", "config.unknown_staff")),
    (lambda r: r["staff"][3].update(title="部長"), ("staff.3.title", "config.unknown_role")),
    (lambda r: r["announcement"].update(posters=["部長"]), ("announcement.posters.0", "config.unknown_role")),
    (lambda r: r["staff"].append(dict(r["staff"][0])), ("staff.4.localpart", "config.duplicate_id")),
    (lambda r: r["projects"].append({"id": "soumu-zatsudan", "name": {"ja": "x"}}),
     ("projects.1.id", "config.duplicate_id")),
    (lambda r: r["departments"][0]["rooms"].append({"id": "doboku-space", "name": {"ja": "x"}}),
     ("departments.0.rooms.1.id", "config.duplicate_alias")),
    (lambda r: r.update(announcement={"id": "dx", "name": {"ja": "x"}}), ("announcement.id", "config.duplicate_id")),
    (lambda r: r["roles"].append({"title": "課長", "power_level": 10}), ("roles.2.title", "config.duplicate_id")),
    (lambda r: r["roles"][0].update(power_level=100), ("roles.0.power_level", "config.maximum")),
])
def test_check_config_finds_bad_references(change, problem):
    raw = city()
    change(raw)
    found = [(".".join(map(str, i.path)), i.key) for i in check(raw)]
    assert problem in found, found
    assert check(city()) == []


def test_titles_are_free_text_when_no_roles_are_defined():
    raw = city()
    del raw["roles"]
    del raw["announcement"]["posters"]
    raw["staff"][3]["title"] = "主任"
    assert check(raw) == []
    assert all(s.power == () for s in desired(parse(raw)))


def test_check_config_names_the_place_and_the_problem_in_both_languages(tmp_path):
    import subprocess
    import sys

    import yaml

    raw = city()
    raw["staff"][3]["title"] = "部長"
    raw["projects"][0]["members"].append("nobody")
    path = tmp_path / "organisation.yaml"
    path.write_text(yaml.safe_dump({"organisation": raw}, allow_unicode=True), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "lgwan_chat.cli", "check-config", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert ("organisation.staff[3].title: "
            "役職「部長」は organisation.roles に定義されていません（定義済み: 課長, 係長）"
            " / role '部長' is not defined in organisation.roles (defined: 課長, 係長)") in result.stderr
    assert ("organisation.projects[0].members[1]: 職員「nobody」は organisation.staff に載っていません"
            " / 'nobody' is not listed in organisation.staff") in result.stderr


def test_the_module_config_is_checked_by_check_config():
    from lgwan_chat.checkconfig import check_document

    issues = check_document({"modules": [{"module": "synapse_modules.provisioning.ProvisioningModule",
                                          "config": {"provisioner": "provisioner"}}]})
    found = {(".".join(map(str, i.path)), i.key) for i in issues}
    assert ("modules.0.config.organisation_file", "config.required") in found
    assert any(path == "modules.0.config.provisioner" for path, _ in found), found
    assert check_document({"modules": [{"module": "synapse_modules.provisioning.ProvisioningModule", "config": {
        "organisation_file": "/etc/lgwan-chat/organisation.yaml",
        "provisioner": "@provisioner:city.example.jp"}}]}) == []
