"""Configuration of the stamps module (``config:`` of its ``modules:`` entry).

Every key is documented in ``config/modules.yaml`` and the admin guide. Stamp
images are checked here too, so a broken image stops ``check-config`` and
Synapse's start with the file named, instead of a broken picker later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from lgwan_chat.core import SOURCE_ROOT
from lgwan_chat.core.configcheck.issues import ConfigIssue, raise_config_error
from lgwan_chat.core.configcheck.schema import IDENTIFIER, bilingual_name, mapping, string, validate

from .images import StampImage, StampImageError, load

SCHEMA = mapping({
    # Reaction keys shown first, in this order, even when nobody has used them yet.
    "acknowledgements": {"type": "array", "items": string(maxLength=32), "maxItems": 20, "uniqueItems": True},
    # The organisation's stamp pack.
    "pack_name": bilingual_name(),
    # Where relative image paths are looked up (default: the sample stamps shipped in config/stamps).
    "images_dir": string(),
    # Base URL of the sticker picker page as clients reach it (default: Synapse's public_baseurl).
    # Both zones' clients load it: use a name that resolves on LGWAN and on the internet side.
    "picker_base_url": string(pattern=r"^https?://[^\s]+$", **{"x-hint": "hint.url"}),
    "stamps": {"type": "array", "maxItems": 200, "items": mapping(
        {"id": IDENTIFIER, "label": bilingual_name(), "image": string()}, required=("id", "label", "image"))},
})

DEFAULTS: dict[str, Any] = {
    "acknowledgements": ["了解", "確認しました", "👍"],
    "pack_name": {"ja": "スタンプ", "en": "Stamps"},
    "stamps": [],
}


@attrs.frozen
class Stamp:
    id: str
    label_ja: str
    label_en: str
    image: StampImage


@attrs.frozen
class StampsConfig:
    acknowledgements: tuple[str, ...]
    pack_name_ja: str
    pack_name_en: str
    stamps: tuple[Stamp, ...] = ()
    picker_base_url: str | None = None


def images_dir(raw: dict) -> Path:
    if "images_dir" in raw:
        return Path(raw["images_dir"])
    return (SOURCE_ROOT or Path.cwd()) / "config" / "stamps"


def _load_all(raw: dict) -> tuple[list[Stamp], list[ConfigIssue]]:
    stamps, issues, seen = [], [], {}
    base = images_dir(raw)
    for index, item in enumerate(raw.get("stamps", [])):
        if item["id"] in seen:
            issues.append(ConfigIssue(("stamps", index, "id"), "config.duplicate_id",
                                      {"value": item["id"], "first": f"stamps[{seen[item['id']]}].id"}))
            continue
        seen[item["id"]] = index
        try:
            image = load(base / item["image"])
        except StampImageError as e:
            issues.append(ConfigIssue(("stamps", index, "image"), e.key, dict(e.params)))
            continue
        label = item["label"]
        stamps.append(Stamp(item["id"], label["ja"], label.get("en") or label["ja"], image))
    return stamps, issues


def check(raw: Any) -> list[ConfigIssue]:
    issues = validate(raw, SCHEMA)
    if issues:
        return issues
    return _load_all(raw or {})[1]


def parse(raw: Any) -> StampsConfig:
    raw = raw or {}
    raise_config_error(validate(raw, SCHEMA))
    merged = {**DEFAULTS, **raw}
    stamps, issues = _load_all(merged)
    raise_config_error(issues)
    name = merged["pack_name"]
    return StampsConfig(acknowledgements=tuple(merged["acknowledgements"]), pack_name_ja=name["ja"],
                        pack_name_en=name.get("en") or name["ja"], stamps=tuple(stamps),
                        picker_base_url=merged.get("picker_base_url"))
