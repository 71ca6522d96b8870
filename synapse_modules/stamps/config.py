"""Configuration of the stamps module (``config:`` of its ``modules:`` entry).

Every key is documented in ``config/modules.yaml`` and the admin guide. Stamp
images are checked here too, so a broken image stops ``check-config`` and
Synapse's start with the file named, instead of a broken picker later.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from lgwan_chat.core import SOURCE_ROOT
from lgwan_chat.core.configcheck import typed
from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.configcheck.schema import IDENTIFIER, bilingual_name, string
from lgwan_chat.core.configcheck.typed import derived, key

from .images import StampImage, StampImageError, load


@attrs.frozen
class Stamp:
    id: str
    label_ja: str
    label_en: str
    image: StampImage


@attrs.frozen
class StampEntry:
    """One ``stamps:`` item as written: the image is a path, loaded into a ``Stamp``."""

    id: str = key(schema=IDENTIFIER)
    label: dict[str, str] = key(schema=bilingual_name())
    image: str = key(schema=string())


def default_images_dir() -> Path:
    """The sample stamps shipped in config/stamps."""
    return (SOURCE_ROOT or Path.cwd()) / "config" / "stamps"


def _load_all(config: StampsConfig) -> tuple[Stamp, ...]:
    stamps: list[Stamp] = []
    issues: list[ConfigIssue] = []
    seen: dict[str, int] = {}  # id -> index of its first definition
    for index, item in enumerate(config.entries):
        if item.id in seen:
            issues.append(ConfigIssue(("stamps", index, "id"), "config.duplicate_id",
                                      {"value": item.id, "first": f"stamps[{seen[item.id]}].id"}))
            continue
        seen[item.id] = index
        try:
            image = load(config.images_dir / item.image)
        except StampImageError as e:
            issues.append(ConfigIssue(("stamps", index, "image"), e.key, dict(e.params)))
            continue
        stamps.append(Stamp(item.id, item.label["ja"], item.label.get("en") or item.label["ja"], image))
    if issues:
        raise typed.ConfigInvalid(issues)
    return tuple(stamps)


@attrs.frozen
class StampsConfig:
    #: Reaction keys shown first, in this order, even when nobody has used them yet.
    acknowledgements: tuple[str, ...] = key(["了解", "確認しました", "👍"], {
        "type": "array", "items": string(maxLength=32), "maxItems": 20, "uniqueItems": True}, convert=tuple)
    #: The organisation's stamp pack.
    pack_name: dict[str, str] = key({"ja": "スタンプ", "en": "Stamps"}, bilingual_name())
    #: Where relative image paths are looked up (default: the sample stamps shipped in config/stamps).
    images_dir: Path = key(None, string(), convert=lambda d: default_images_dir() if d is None else Path(d))
    #: Base URL of the sticker picker page as clients reach it (default: Synapse's public_baseurl).
    #: Both zones' clients load it: use a name that resolves on LGWAN and on the internet side.
    picker_base_url: str | None = key(None, string(pattern=r"^https?://[^\s]+$", **{"x-hint": "hint.url"}))
    entries: tuple[StampEntry, ...] = typed.sections(StampEntry, name="stamps", maxItems=200)
    pack_name_ja: str = derived(lambda c: c.pack_name["ja"])
    pack_name_en: str = derived(lambda c: c.pack_name.get("en") or c.pack_name["ja"])
    #: the stamps with their images loaded and checked
    stamps: tuple[Stamp, ...] = derived(_load_all)


check, parse = typed.module_functions(StampsConfig)
