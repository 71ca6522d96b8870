"""Japanese text as people search it: ｶﾀｶﾅ = カタカナ = かたかな, ＡＢＣ = abc, full-width space = space."""

from __future__ import annotations

import unicodedata

_KATAKANA_TO_HIRAGANA = {code: code - 0x60 for code in range(ord("ァ"), ord("ヶ") + 1)}


def normalize(text: str) -> str:
    """NFKC (half-width kana and full-width ASCII to their usual form), case folded, katakana
    read as hiragana, runs of spaces as one."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_KATAKANA_TO_HIRAGANA)
    return " ".join(folded.split())


def like_pattern(word: str) -> str:
    """A LIKE pattern matching ``word`` anywhere, with LIKE's own characters escaped (ESCAPE '\\')."""
    escaped = normalize(word).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
