"""The admin guide's examples hold: its complete example (a city of two departments and a prefecture)
passes check-config, and its production install commands are what the fresh-Debian walkthrough runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from lgwan_chat.checkconfig import check_file

DOCS = Path(__file__).resolve().parent.parent / "docs"
WALKTHROUGH = DOCS.parent / "scripts" / "fresh-debian-walkthrough.sh"


def example_blocks(guide: str) -> list[str]:
    text = (DOCS / guide).read_text(encoding="utf-8")
    start = text.index("#### 完全な例" if guide.endswith(".ja.md") else "#### Complete example")
    section = text[start:text.index("### 4.10", start)]
    return re.findall(r"```yaml\n(.*?)```", section, re.S)


@pytest.mark.parametrize("guide", ["admin-guide.ja.md", "admin-guide.en.md"])
def test_the_complete_example_passes_check_config(guide, tmp_path):
    organisation, federation, homeserver = example_blocks(guide)
    assert yaml.safe_load(organisation)["organisation"]["municipality"]["id"] == "city-a"
    (tmp_path / "organisation.yaml").write_text(organisation, encoding="utf-8")
    assert check_file(tmp_path / "organisation.yaml") == []
    # the list as the prefecture writes it, before `lgwan-chat federation sign` adds the signature
    unsigned = "\n".join(line for line in federation.splitlines() if not line.startswith("signatures:"))
    (tmp_path / "federation.yaml").write_text(unsigned, encoding="utf-8")
    assert check_file(tmp_path / "federation.yaml") == []
    listed = {s["name"] for s in yaml.safe_load(unsigned)["federation"]["servers"]}
    assert set(yaml.safe_load(homeserver)["federation_domain_whitelist"]) == listed


@pytest.mark.parametrize("guide", ["admin-guide.ja.md", "admin-guide.en.md"])
def test_the_phones_example_passes_check_config_and_serves_maps_per_entrance(guide, tmp_path):
    from synapse_modules.zones.config import parse
    from synapse_modules.zones.well_known import EntranceWellKnown

    text = (DOCS / guide).read_text(encoding="utf-8")
    start = text.index("#### スマートフォンの設定例" if guide.endswith(".ja.md") else "#### Phones example")
    [block] = re.findall(r"```yaml\n(.*?)```", text[start:text.index("####", start + 5)], re.S)
    (tmp_path / "modules.yaml").write_text(block, encoding="utf-8")
    assert check_file(tmp_path / "modules.yaml") == []
    config = parse(yaml.safe_load(block)["modules"][0]["config"])
    served = EntranceWellKnown(config)
    assert served.for_zone("lgwan")["m.tile_server"]["map_style_url"].startswith("http://tiles.city-a.lg.jp/")
    assert "org.matrix.msc4143.rtc_foci" not in served.for_zone("lgwan")
    assert served.for_zone("internet")["org.matrix.msc4143.rtc_foci"][0]["type"] == "livekit"


@pytest.mark.parametrize("guide", ["admin-guide.ja.md", "admin-guide.en.md"])
def test_growing_to_workers_moves_the_data_with_the_clis_command(guide, capsys):
    """The guide's procedure from ``single`` to ``workers``: its ``lgwan-chat`` lines are commands
    and options the CLI has, and no step is left to the admin's care ("unsolved")."""
    from lgwan_chat import cli

    text = (DOCS / guide).read_text(encoding="utf-8")
    start = text.index("#### `single` から `workers` へ" if guide.endswith(".ja.md") else
                       "#### Growing from `single` to `workers`")
    section = text[start:text.index("\n####", start + 5)]
    assert "未解決" not in section and "unsolved" not in section.lower()
    commands = [" ".join(block.replace("\\\n", " ").split()) for block in re.findall(r"```sh\n(.*?)```", section, re.S)]
    lines = [line[line.index(".venv/bin/lgwan-chat "):] for block in commands for line in block.split("sudo ")
             if ".venv/bin/lgwan-chat " in line]
    assert [line.split()[1:3] for line in lines] == [["deploy", "move-to-postgres"]]
    for line in lines:
        words = line.split()
        with pytest.raises(SystemExit) as done:
            cli.main([*words[1:3], "--help"])
        assert done.value.code == 0
        usage = capsys.readouterr().out
        for option in (w for w in words if w.startswith("--")):
            assert option in usage, (line, option)


def install_blocks(guide: str) -> dict[str, str]:
    """The guide's ```sh blocks marked ``<!-- fresh-debian: NAME -->``, by name, in order."""
    text = (DOCS / guide).read_text(encoding="utf-8")
    return dict(re.findall(r"^<!-- fresh-debian: (\S+) -->\n```sh\n(.*?)^```$", text, re.S | re.M))


def commands(block: str) -> list[str]:
    """A block's commands without its comments (each guide comments in its own language)."""
    lines = (re.sub(r"(^|\s)#.*$", "", line).rstrip() for line in block.splitlines())
    return [line for line in lines if line]


def walkthrough(*args: str) -> str:
    return subprocess.run(["bash", str(WALKTHROUGH), *args], capture_output=True, text=True, check=True).stdout


def test_the_walkthrough_runs_the_guides_install_commands_as_written():
    ja, en = install_blocks("admin-guide.ja.md"), install_blocks("admin-guide.en.md")
    names = walkthrough("--list").split()
    assert names == list(ja) == list(en)
    for name in names:
        assert walkthrough("--print", name) == ja[name]  # exactly the guide's lines, run as a script
        assert commands(en[name]) == commands(ja[name])  # both languages give the same commands
    # the production install end to end: packages and venv, service user, database, deploy, units
    steps = "\n".join(commands("".join(ja.values())))
    for step in ("make production", "useradd --system", "createdb", "deploy init", "deploy check",
                 "nginx -t", "systemctl enable lgwan-chat.target"):
        assert step in steps
