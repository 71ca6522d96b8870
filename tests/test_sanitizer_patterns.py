"""No pattern applied to untrusted text may backtrack (issue #14: one long CSV cell held the bot for
over a minute). Every regular expression of the engine and its sandboxed workers is found here, by
reading the source (``re.compile/search/match/...`` with a literal) and by looking at each module's
compiled patterns and its ``UNTRUSTED_PATTERNS`` (patterns built at run time register there), and fed
generated adversarial inputs: a run of one or two characters, between every prefix and terminator
taken from the pattern itself and from the usual character classes.

"Linear" is checked without a clock on the wall: the thread's CPU time of ONE call on a 16n-long input
is compared with SIXTEEN calls on n-long inputs (the same number of characters). Linear work gives a
ratio near 1, quadratic near 16; the limit is 4, and a failing case is measured again (best of
several) before it counts, so a loaded machine does not make it fail. The times themselves are shown
by ``make bench-sanitize``.
"""

from __future__ import annotations

import ast
import importlib
import itertools
import re
import sys
import time
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parent.parent / "bots" / "sanitizer" / "engine"
WORKERS = ENGINE / "workers"
#: screening sizes, then the sizes a suspect is measured again at
SMALL, FACTOR, CONFIRM = 100, 16, 400
LIMIT = 4.0
#: representatives of the character classes patterns use
CLASSES = "a1 .,-+eE'|!\"<>:/\\&;=_\t\nxA\uff61\x00é#%(){}[]*?$^@~"
FUNCTIONS = {"compile", "search", "match", "fullmatch", "findall", "finditer", "sub", "subn", "split"}


def _flags(node: ast.AST | None) -> int:
    if node is None:
        return 0
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "re":
        return int(getattr(re, node.attr))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _flags(node.left) | _flags(node.right)
    return 0


def literal_patterns(path: Path) -> list[re.Pattern]:
    """``re.X("literal", ..., flags)`` calls anywhere in a source file, inside functions too."""
    found: list[re.Pattern] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                and node.func.attr in FUNCTIONS and node.args and isinstance(node.args[0], ast.Constant)):
            continue
        flags = next((k.value for k in node.keywords if k.arg == "flags"), None)
        if flags is None and node.func.attr in ("compile", "search", "match", "fullmatch", "findall", "finditer"):
            flags = node.args[1] if len(node.args) > 1 else None
        pattern = node.args[0].value
        if isinstance(pattern, bytes):
            found.append(re.compile(pattern, _flags(flags)))
        else:
            assert isinstance(pattern, str), f"{path}:{node.lineno}: a pattern neither str nor bytes"
            found.append(re.compile(pattern, _flags(flags)))
    return found


def _module_patterns(value: object, depth: int = 0) -> list[re.Pattern]:
    if isinstance(value, re.Pattern):
        return [value]
    if depth < 3 and isinstance(value, (tuple, list, set, frozenset)):
        return [p for item in value for p in _module_patterns(item, depth + 1)]
    if depth < 3 and isinstance(value, dict):
        return [p for item in value.values() for p in _module_patterns(item, depth + 1)]
    return []


def all_patterns() -> dict[str, re.Pattern]:
    sys.path.insert(0, str(WORKERS))
    found: dict[tuple, tuple[str, re.Pattern]] = {}
    for path in sorted(p for p in [*ENGINE.glob("*.py"), *WORKERS.glob("*.py")] if p.stem != "__main__"):
        if path.parent == WORKERS:
            module = importlib.import_module(path.stem)
        else:
            module = importlib.import_module(f"bots.sanitizer.engine.{path.stem}")
        patterns = literal_patterns(path)
        for name, value in vars(module).items():
            if getattr(value, "__module__", module.__name__) == module.__name__ or name == "UNTRUSTED_PATTERNS":
                patterns += _module_patterns(value)
        for pattern in patterns:
            found.setdefault((pattern.pattern, pattern.flags), (f"{path.stem}:{pattern.pattern!s:.60}", pattern))
    return dict(found.values())


PATTERNS = all_patterns()


def inputs(pattern: re.Pattern) -> list[tuple[str, str, str]]:
    """(prefix, unit, terminator): the unit is repeated. Units: every character of the pattern and of the
    classes, and pairs of the pattern's characters; prefixes: the pattern's words and characters (to
    enter it); terminators: characters that end a run and fail a match."""
    source = pattern.pattern if isinstance(pattern.pattern, str) else pattern.pattern.decode("latin-1")
    own = "".join(sorted({c for c in source if c.isprintable() and c not in "\\()[]{}?*+^$"}))
    chars = "".join(sorted(set(own + CLASSES)))
    words = re.findall(r"[A-Za-z]{2,}", source)[:3]
    units = [*chars, *("".join(p) for p in itertools.product(own[:8], repeat=2))]
    prefixes = ["", *words, *own[:6]]
    terminators = ["", "x", "!", "\n", "'", "\x00", "|", ">", *own[:4]]
    return [(p, u, t) for p in prefixes for u in units for t in dict.fromkeys(terminators)]


def _work(pattern: re.Pattern, text: str, calls: int) -> int:
    data: str | bytes = text if isinstance(pattern.pattern, str) else text.encode("utf-8")
    started = time.thread_time_ns()
    for _ in range(calls):
        pattern.search(data)
        pattern.fullmatch(data)
        for _ in pattern.finditer(data):
            pass
    return time.thread_time_ns() - started


def ratio(pattern: re.Pattern, prefix: str, unit: str, terminator: str, tries: int = 1, size: int = SMALL) -> float:
    repeat = max(1, size // len(unit))
    small = prefix + unit * repeat + terminator
    large = prefix + unit * (repeat * FACTOR) + terminator
    best_small = min(_work(pattern, small, FACTOR) for _ in range(tries))
    best_large = min(_work(pattern, large, 1) for _ in range(tries))
    return best_large / max(best_small, 1)


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_work_grows_linearly(name):
    pattern = PATTERNS[name]
    worst = []
    for prefix, unit, terminator in inputs(pattern):
        if ratio(pattern, prefix, unit, terminator) > LIMIT:
            measured = ratio(pattern, prefix, unit, terminator, tries=5, size=CONFIRM)
            if measured > LIMIT:
                worst.append((round(measured, 1), prefix, unit, terminator))
                if len(worst) == 3:
                    break  # enough to show (each is seconds of backtracking)
    assert not worst, f"{name}: work grows faster than the input for {sorted(worst, reverse=True)[:5]}"


def test_the_patterns_that_broke_are_found_here():
    """The collection above must see the patterns of issue #14 (else the test proves nothing)."""
    sources = {p.pattern for p in PATTERNS.values()}
    from bots.sanitizer.engine import budgets, text
    assert text.NUMBER.pattern in sources and budgets.FORMULA_TAG.pattern in sources
    # ooxml's and odf's patterns (fields and formulas are read by linear scanners, not patterns)
    from bots.sanitizer.engine import odf, ooxml
    assert {p.pattern for p in ooxml.UNTRUSTED_PATTERNS.values()} <= sources
    assert {p.pattern for p in odf.UNTRUSTED_PATTERNS.values()} <= sources
    assert sum(name.startswith("ooxml:") for name in PATTERNS) >= 5
    assert len(PATTERNS) >= 15


def test_the_check_catches_a_quadratic_pattern():
    """The old number pattern of text.py (quadratic on ``-111...1x``) fails the check."""
    old = re.compile(r"[+-]?(\d[\d,]*)?\.?\d+([eE][+-]?\d+)?")
    assert ratio(old, "-", "1", "x", size=CONFIRM) > LIMIT
    new = PATTERNS[next(n for n in PATTERNS if n.startswith("text:[+-]?(?:"))]
    assert ratio(new, "-", "1", "x", tries=3, size=CONFIRM) < LIMIT
