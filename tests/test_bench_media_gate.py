"""`make bench-media-gate` keeps working: a tiny run prints the gated/ungated ratio (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "media_gate.py"


def test_media_gate_benchmark_compares_gated_and_ungated_downloads(tmp_path):
    out = tmp_path / "result.json"
    result = subprocess.run([sys.executable, str(BENCH), "--clients", "2", "--downloads", "3", "--rounds", "2",
                             "--warmup", "0", "--sizes", "1000", "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio gated/ungated (downloads/s, median of rounds):" in result.stdout
    summary = json.loads(out.read_text())
    rounds = summary["sizes"]["1000"]["rounds"]
    assert [r["downloads"] for r in rounds["gated"] + rounds["ungated"]] == [6] * 4
