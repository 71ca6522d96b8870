"""Every message exists in Japanese and English, with the same placeholders."""

from __future__ import annotations

import re
import string
from pathlib import Path

from lgwan_chat.core.i18n import LANGUAGES, catalogue

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for d in ("lgwan_chat", "synapse_modules", "bots") for p in (ROOT / d).rglob("*.py")]
# Message keys as the code uses them: t("k"), both("k"), ConfigIssue(path, "k"), forbidden("k"), "x-error": "k", ...
KEY = re.compile(r"""["']((?:config|type|hint|demo|zones|zone|list|read_status|stamps|bookmarks|bot|memo|notes"""
                 r"""|sanitizer|upload|polls|provisioning|guests|federation)(?:\.[a-z_0-9]+)+)["']""")


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_catalogues_have_the_same_keys_and_placeholders():
    ja, en = (catalogue(lang) for lang in LANGUAGES)
    assert set(ja) == set(en)
    for key in ja:
        assert placeholders(ja[key]) == placeholders(en[key]), key


def test_japanese_messages_are_japanese():
    japanese = re.compile(r"[\u3001-\u30ff\u4e00-\u9fff\uff01-\uff5e]")
    for key, text in catalogue("ja").items():
        assert japanese.search(text), f"{key} has no Japanese: {text!r}"


def test_every_key_the_code_uses_is_in_the_catalogues():
    used = {key for path in SOURCES for key in KEY.findall(path.read_text(encoding="utf-8"))}
    assert used, "the key pattern found nothing: the test would pass vacuously"
    missing = used - set(catalogue("ja"))
    assert not missing, f"message keys used in code but missing from the catalogues: {sorted(missing)}"
