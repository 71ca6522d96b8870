"""lgwan-chat check-config, and the same rules inside the modules' parse_config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from synapse.config import ConfigError

from lgwan_chat.cli import main
from lgwan_chat.homeserver import Homeserver, HomeserverError, HomeserverSpec
from synapse_modules.zones import ZonePolicyModule

CONFIG = Path(__file__).resolve().parent.parent / "config"
SAMPLES = ["modules.yaml", "organisation.yaml"]


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", SAMPLES)
def test_shipped_samples_are_valid(name, capsys):
    assert main(["check-config", str(CONFIG / name)]) == 0
    assert "問題ありません" in capsys.readouterr().out


def test_cli_runs_as_installed_console_script(tmp_path):
    bad = write(tmp_path, "organisation: {municipality: {id: x, name: {ja: 市}}, departments: []}\n")
    result = subprocess.run([str(Path(sys.executable).parent / "lgwan-chat"), "check-config",
                             str(CONFIG / "modules.yaml"), str(bad)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "modules.yaml: 問題ありません" in result.stdout
    assert f"{bad}:1: organisation.departments: 少なくとも 1 個必要です / needs at least 1 items" in result.stderr


def test_every_error_is_reported_with_file_line_key_and_both_languages(tmp_path, capsys):
    bad = write(tmp_path, """\
modules:
  - module: synapse_modules.zones.ZonePolicyModule
    config:
      zone_sorce: listener
      unmatched: maybe
      ip_zones:
        lgwan: [10.0.0.0/33]
  - module: synapse_modules.nosuch.Module
organisation:
  municipality: {id: demo-city, name: {ja: デモ市}}
  departments:
    - {id: soumu, name: {ja: 総務課}}
    - {id: soumu, name: {ja: 総務課（重複）}}
  staff:
    - {localpart: yamada, display_name: 山田, department: kikaku}
bots:
  nosuchbot: {}
""")
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    expected = [
        f"{bad}:4: modules[0].config.zone_sorce: "
        "未知のキー「zone_sorce」です（「zone_source」の書き間違いではありませんか）",
        f"{bad}:5: modules[0].config.unmatched: 「maybe」は使えません。使える値: reject, lgwan, internet / "
        "'maybe' is not allowed. Allowed values: reject, lgwan, internet",
        f"{bad}:7: modules[0].config.ip_zones.lgwan[0]: 「10.0.0.0/33」は IP アドレス範囲",
        f"{bad}:8: modules[1].module: このスイートに「synapse_modules.nosuch.Module」というモジュールはありません",
        f"{bad}:13: organisation.departments[1].id: "
        "ID「soumu」が重複しています（最初の定義: organisation.departments[0].id）",
        f"{bad}:15: organisation.staff[0].department: 部署「kikaku」は organisation.departments に定義されていません"
        " / department 'kikaku' is not defined in organisation.departments",
        f"{bad}:17: bots.nosuchbot: このスイートに「nosuchbot」というボットはありません",
    ]
    for line, start in zip(err, expected, strict=False):
        assert line.startswith(start), (line, start)
    assert err[len(expected)] == "7 件のエラーがあります / 7 error(s) found"


def test_type_errors_name_the_expected_and_actual_type(tmp_path, capsys):
    bad = write(tmp_path, "modules:\n  - module: synapse_modules.zones.ZonePolicyModule\n"
                          "    config:\n      listener_zones: [lgwan]\n")
    assert main(["check-config", str(bad)]) == 1
    assert ("modules[0].config.listener_zones: キーと値の組（mapping） である必要がありますが、リスト が書かれています"
            " / must be a mapping of keys to values, but a list is written") in capsys.readouterr().err


@pytest.mark.parametrize("text, expected", [
    ("modules: [\n", "YAML として読めません"),
    ("- just\n- a list\n", "ファイルの最上位はキーと値の組"),
    ("server_name: x\n", "このスイートの設定が見つかりません"),
    ("organisation:\n  municipality: {id: a, name: {ja: 市}}\n  municipality: {id: b, name: {ja: 町}}\n"
     "  departments: [{id: x, name: {ja: 課}}]\n", "キー「municipality」が同じ場所に2回書かれています"),
])
def test_unreadable_documents_get_a_clear_error(tmp_path, capsys, text, expected):
    assert main(["check-config", str(write(tmp_path, text))]) == 1
    assert expected in capsys.readouterr().err


def test_missing_file_is_an_error_not_a_crash(tmp_path, capsys):
    assert main(["check-config", str(tmp_path / "nope.yaml")]) == 1
    assert "ファイルを読めません" in capsys.readouterr().err


def test_full_homeserver_yaml_is_cross_checked_against_its_listeners(tmp_path, capsys):
    hs = write(tmp_path, """\
server_name: city.example
listeners:
  - {port: 8008, type: http, tag: internet, resources: [{names: [client]}]}
modules:
  - module: synapse_modules.zones.ZonePolicyModule
    config: {}
""")
    assert main(["check-config", str(hs)]) == 1
    assert "ゾーン「lgwan」に対応するリスナー（tag: lgwan）が listeners にありません" in capsys.readouterr().err


def test_parse_config_raises_synapse_config_error_naming_the_key():
    with pytest.raises(ConfigError) as caught:
        ZonePolicyModule.parse_config({"unmatched": "maybe", "ip_zones": {"lgwan": ["nonsense"]}})
    assert caught.value.path == ["ip_zones", "lgwan", "0"]
    assert "unmatched: 「maybe」は使えません" in caught.value.msg
    assert "'nonsense' is not an IP address range" in caught.value.msg


def test_parse_config_accepts_the_documented_sample():
    sample = yaml.safe_load((CONFIG / "modules.yaml").read_text(encoding="utf-8"))["modules"][0]["config"]
    config = ZonePolicyModule.parse_config(sample)
    assert config.zone_source == "listener" and config.unmatched == "reject"


def test_synapse_refuses_to_start_with_a_bad_module_config(tmp_path):
    """The same validation stops a real Synapse, naming the key in its error output."""
    hs = Homeserver(HomeserverSpec(data_dir=tmp_path, modules=[
        {"module": "synapse_modules.zones.ZonePolicyModule", "config": {"zone_source": "dns"}}]))
    with pytest.raises(HomeserverError):
        hs.start(timeout=30)
    console = hs.console_log_path.read_text(encoding="utf-8")
    assert "modules.<item 0>.config.zone_source" in console
    assert "「dns」は使えません" in console and "'dns' is not allowed" in console


def test_zone_media_keys_are_validated(tmp_path, capsys):
    bad = write(tmp_path, """\
modules:
  - module: synapse_modules.zones.ZonePolicyModule
    config:
      trusted_uploaders: [sanitizer-bot]
      trusted_remote_servers: ["https://pref.example"]
      untrusted_internet_media: "yes"
      guest_zone: everywhere
""")
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert ("modules[0].config.trusted_uploaders[0]: "
            "「sanitizer-bot」は形式が正しくありません（Matrix のユーザー ID") in err
    assert "modules[0].config.trusted_remote_servers[0]: 「https://pref.example」は形式が正しくありません" in err
    assert "modules[0].config.untrusted_internet_media: 真偽値（true / false） である必要があります" in err
    assert "modules[0].config.guest_zone: 「everywhere」は使えません" in err


def test_sanitizer_bot_keys_are_checked_with_their_path(tmp_path, capsys):
    bad = write(tmp_path, """\
bots:
  sanitizer:
    homeserver: {internet: "http://127.0.0.1:8008"}
    zone: internet
    user_id: "@sanitizer-bot:city.example"
    password: x
    storage: {sqlite: /tmp/s.sqlite3}
    engine:
      policies: {pdf: shred}
      dpi: 1200
    upload:
      default_hours: 500
      max_hours: 100
      public_url: "https://chat.example.lg.jp/upload"
""")
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:9: bots.sanitizer.engine.policies.pdf: 「shred」は使えません。使える値: rasterize, refuse" in err
    assert f"{bad}:10: bots.sanitizer.engine.dpi:" in err
    assert "bots.sanitizer.upload.public_url:" in err
    # the template's own sanitizer block is valid
    from lgwan_chat.templates import render

    rendered = tmp_path / "bots.yaml"
    render("bots.template.yaml", rendered, {"internet_url": "http://127.0.0.1:8008", "lgwan_url": "http://127.0.0.1:8018",
                                            "server_name": "city.example", "data_dir": tmp_path,
                                            "upload_listen": "127.0.0.1:8030"})
    assert main(["check-config", str(rendered)]) == 0


@pytest.mark.parametrize("upload, path, said", [
    ("{default_hours: 500, max_hours: 100}", "default_hours", "default_hours（500）が max_hours（100）"),
    # one key alone is checked against the other's default: links of 72 h must not outlive max_hours: 24
    ("{max_hours: 24}", "max_hours", "default_hours（72）が max_hours（24）"),
    # and uploads of 100 MB must not pass max_mb: 50
    ("{max_mb: 50}", "max_mb", "default_max_mb（100）が max_mb（50）"),
    ("{default_max_mb: 600}", "default_max_mb", "default_max_mb（600）が max_mb（500）"),
])
def test_sanitizer_defaults_above_their_maxima_are_refused(tmp_path, capsys, upload, path, said):
    bad = write(tmp_path, f"""\
bots:
  sanitizer:
    homeserver: {{internet: "http://127.0.0.1:8008"}}
    zone: internet
    user_id: "@sanitizer-bot:city.example"
    password: x
    storage: {{sqlite: /tmp/s.sqlite3}}
    upload: {upload}
""")
    assert main(["check-config", str(bad)]) == 1
    assert f"bots.sanitizer.upload.{path}: {said}より大きくなっています" in capsys.readouterr().err


def test_sanitizer_maxima_with_defaults_below_them_are_accepted(tmp_path):
    good = write(tmp_path, """\
bots:
  sanitizer:
    homeserver: {internet: "http://127.0.0.1:8008"}
    zone: internet
    user_id: "@sanitizer-bot:city.example"
    password: x
    storage: {sqlite: /tmp/s.sqlite3}
    upload: {max_hours: 24, default_hours: 12, max_mb: 50, default_max_mb: 50}
""")
    assert main(["check-config", str(good)]) == 0


def test_polls_bot_keys_are_checked_with_their_path(tmp_path, capsys):
    bad = write(tmp_path, """\
bots:
  polls:
    homeserver: {lgwan: "http://127.0.0.1:8018"}
    zone: lgwan
    user_id: "@polls-bot:city.example"
    password: x
    storage: {sqlite: /tmp/p.sqlite3}
    timezone: Asia/Tokio
    remind_via: email
    safety: {min_power_level: 500}
""")
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:8: bots.polls.timezone: タイムゾーン「Asia/Tokio」がありません" in err
    assert f"{bad}:9: bots.polls.remind_via: 「email」は使えません。使える値: mention, dm" in err
    assert f"{bad}:10: bots.polls.safety.min_power_level:" in err
