"""`make bench` keeps working: a tiny run of the benchmark prints the ratio (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "send_throughput.py"


def test_send_throughput_benchmark_compares_stock_and_suite(tmp_path):
    out = tmp_path / "result.json"
    result = subprocess.run([sys.executable, str(BENCH), "--users", "2", "--messages", "3", "--rounds", "2",
                             "--warmup", "1", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio suite/stock (throughput, median of rounds):" in result.stdout
    summary = json.loads(out.read_text())
    assert [r["label"] for r in summary["rounds"]] == ["stock", "suite", "suite", "stock"]  # alternating
    assert all(r["messages"] == 6 for r in summary["rounds"])
    stock = [r["msgs_per_s"] for r in summary["rounds"] if r["label"] == "stock"]
    suite = [r["msgs_per_s"] for r in summary["rounds"] if r["label"] == "suite"]
    assert summary["round_ratios"] == [b / a for a, b in zip(stock, suite)]
    assert min(summary["round_ratios"]) <= summary["ratio"] <= max(summary["round_ratios"])
