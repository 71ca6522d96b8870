"""`make bench` keeps working: a tiny run of the benchmark prints the ratio (no timing asserted)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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
    assert summary["round_ratios"] == [b / a for a, b in zip(stock, suite, strict=True)]
    assert min(summary["round_ratios"]) <= summary["ratio"] <= max(summary["round_ratios"])



def test_send_throughput_attribute_runs_the_suite_without_each_module_in_rotating_rounds(tmp_path):
    out = tmp_path / "result.json"
    result = subprocess.run([sys.executable, str(BENCH), "--users", "2", "--messages", "2", "--rounds", "2",
                             "--warmup", "0", "--attribute", "--without", "stamps", "--json", str(out)],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(out.read_text())
    # Every suite module but the one left out, each left out in turn; stock has none.
    assert summary["targets"] == {"stock": [], "suite": ["zones", "read_status", "bookmarks"],
                                  "without zones": ["read_status", "bookmarks"],
                                  "without read_status": ["zones", "bookmarks"],
                                  "without bookmarks": ["zones", "read_status"]}
    labels = list(summary["targets"])
    # Round 2 starts with the homeserver that went second in round 1.
    assert [r["label"] for r in summary["rounds"]] == labels + labels[1:] + labels[:1]
    assert all(r["messages"] == 4 and r["cpu_s"] >= 0 and r["load_1min"] >= 0 for r in summary["rounds"])
    for label in labels[1:]:
        stock = [r["msgs_per_s"] for r in summary["rounds"] if r["label"] == "stock"]
        mine = [r["msgs_per_s"] for r in summary["rounds"] if r["label"] == label]
        assert summary[label]["throughput_ratio"]["rounds"] == [b / a for a, b in zip(stock, mine, strict=True)]
    assert "module adds" in result.stdout and "messages per CPU second" in result.stdout
    assert _synapses_under(tmp_path) == []  # none of the run's homeservers is left behind


def test_send_throughput_stops_its_homeservers_when_it_is_terminated(tmp_path):
    bench = subprocess.Popen([sys.executable, str(BENCH), "--users", "2", "--messages", "500", "--rounds", "20"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        deadline = time.monotonic() + 300
        while len(_synapses_under(tmp_path)) < 2 and bench.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(_synapses_under(tmp_path)) == 2, "the benchmark did not start its two homeservers"
        bench.send_signal(signal.SIGTERM)  # what a timeout or a CI cancel sends
        bench.wait(120)
        assert _synapses_under(tmp_path) == []
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        for pid in _synapses_under(tmp_path):  # a failed run must not leave them to the next tests
            os.kill(pid, signal.SIGTERM)


def _synapses_under(folder: Path) -> list[int]:
    """Synapse processes whose configuration lies in ``folder``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # not a process, or it ended meanwhile
            continue
        if "synapse.app.homeserver" in args and any(a.startswith(str(folder)) for a in args):
            found.append(int(proc.name))
    return found


def test_send_throughput_refuses_to_leave_out_a_module_the_suite_does_not_have():
    result = subprocess.run([sys.executable, str(BENCH), "--without", "nosuch"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "--without nosuch: not a module of the suite (modules: zones, read_status, stamps, bookmarks)" in (
        result.stderr)

def test_read_status_benchmark_builds_keeps_and_reuses_its_room(tmp_path):
    bench = BENCH.parent / "read_status.py"
    args = [sys.executable, str(bench), "--members", "12", "--events", "60", "--queries", "5",
            "--keep", str(tmp_path / "kept")]
    first = subprocess.run(args + ["--json", str(tmp_path / "first.json")], capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "building a room of 12 members and 60 events" in first.stdout
    second = subprocess.run(args + ["--json", str(tmp_path / "second.json")], capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "building a room" not in second.stdout and "using the room kept in" in second.stdout
    for run in ("first", "second"):
        results = json.loads((tmp_path / f"{run}.json").read_text())["results"]
        for backend in results.values():
            assert backend["room"] == {"members": 12, "events": 60}
            for setting in ("cache_rooms=0", "cache_rooms=200"):
                assert set(backend[setting]) == {"single", "batch_50", "recent_50", "single_after_receipt"}
                assert all(t["n"] > 0 and 0 < t["p50_ms"] <= t["p95_ms"] for t in backend[setting].values())
    # Kept PostgreSQL databases are dropped by hand: this test cleans up after itself.
    state = tmp_path / "kept" / "postgres" / "bench-state.json"
    if state.exists():
        from lgwan_chat.postgres import PostgresDatabase

        PostgresDatabase(existing=json.loads(state.read_text())["database"]).drop()


def test_sanitize_benchmark_sanitizes_every_sample_file(tmp_path):
    out = tmp_path / "sanitize.json"
    result = subprocess.run([sys.executable, str(BENCH.parent / "sanitize.py"), "--runs", "1", "--json", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(out.read_text())
    assert [f["file"] for f in summary["files"]] == ["12 MP JPEG", "10-page PDF (text)", "5-page PDF (12 MP photos)",
                                                     "20-page docx (Japanese)", "5,000-row xlsx", "100-file zip"]
    assert all(f["verdict"] == "sanitized" for f in summary["files"]), summary["files"]
    pages = {f["file"]: f["pages"] for f in summary["files"]}
    assert pages["10-page PDF (text)"] == 10 and pages["20-page docx (Japanese)"] == 20
    assert "| file | size | result |" in result.stdout


def test_polls_benchmark_counts_every_voter(tmp_path):
    out = tmp_path / "polls.json"
    result = subprocess.run([sys.executable, str(BENCH.parent / "polls.py"), "--members", "12",
                             "--safety-sizes", "5,12", "--json", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(out.read_text())["sqlite"]
    assert summary["survey"]["members"] == 12 and summary["survey"]["summary_after_last_vote_s"] > 0
    assert "summary counted everyone" in result.stdout
    assert [s["members"] for s in summary["safety_start"]] == [5, 12]
    assert all(0 < s["poll_visible_s"] <= s["summary_visible_s"] for s in summary["safety_start"]), summary
    assert "safety check in a room of 12: poll visible" in result.stdout
