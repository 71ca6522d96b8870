"""check-config for the zone rules' keys: the widget allow-list, and homeserver.yaml keys that
would contradict ``allow_encryption`` (one source for Element's io.element.e2ee)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lgwan_chat.cli import main
from lgwan_chat.core.i18n import t
from lgwan_chat.homeserver import HomeserverSpec, render


def write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def rendered(tmp_path: Path) -> dict:
    """homeserver.yaml as the template renders it, with the suite's modules.yaml merged in."""
    files = render(HomeserverSpec(data_dir=tmp_path / "data"))
    doc: dict = {}
    for f in files:
        doc.update(yaml.safe_load(f.read_text(encoding="utf-8")))
    return doc


def zones_config(doc: dict) -> dict:
    return next(m for m in doc["modules"] if m["module"].endswith("ZonePolicyModule"))["config"]


def test_the_rendered_template_and_modules_pass(tmp_path, capsys):
    doc = rendered(tmp_path)
    assert "io.element.e2ee" not in (doc.get("extra_well_known_client_content") or {})
    assert main(["check-config", str(write(tmp_path, doc))]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("allow_encryption", [False, True])
def test_io_element_e2ee_in_homeserver_yaml_is_refused(tmp_path, capsys, allow_encryption):
    doc = rendered(tmp_path)
    zones_config(doc)["allow_encryption"] = allow_encryption
    doc["extra_well_known_client_content"] = {"io.element.e2ee": {"default": False}, "org.example": {}}
    assert main(["check-config", str(write(tmp_path, doc))]) == 1
    err = capsys.readouterr().err
    assert t("config.zone_well_known_e2ee", "ja") in err and t("config.zone_well_known_e2ee", "en") in err


@pytest.mark.parametrize("setting, allow_encryption, ok", [
    ("all", False, False), ("invite", False, False), ("off", False, True), ("all", True, True)])
def test_synapse_encryption_by_default_must_be_off_without_encryption(tmp_path, capsys, setting,
                                                                       allow_encryption, ok):
    doc = rendered(tmp_path)
    zones_config(doc)["allow_encryption"] = allow_encryption
    doc["encryption_enabled_by_default_for_room_type"] = setting
    assert main(["check-config", str(write(tmp_path, doc))]) == (0 if ok else 1)
    assert (t("config.zone_encryption_by_default", "ja") in capsys.readouterr().err) is not ok


@pytest.mark.parametrize("value, ok", [
    (None, True), ([], True), (["https://pad.city.example.lg.jp/"], True),
    (["ftp://pad.example/"], False), (["pad.example"], False), ("https://pad.example/", False), ([3], False)])
def test_allowed_widget_urls_is_validated(tmp_path, capsys, value, ok):
    path = tmp_path / "modules.yaml"
    path.write_text(yaml.safe_dump({"modules": [{"module": "synapse_modules.zones.ZonePolicyModule",
                                                 "config": {"allowed_widget_urls": value}}]}), encoding="utf-8")
    assert main(["check-config", str(path)]) == (0 if ok else 1)
    if not ok:
        assert "allowed_widget_urls" in capsys.readouterr().err
