"""``lgwan-chat sanitize``: the engine from the command line, as an admin would use it for a file
that came by USB or email."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LGWAN_CHAT = str(Path(sys.executable).parent / "lgwan-chat")


def sanitize(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LGWAN_CHAT, "sanitize", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_files_are_sanitized_into_the_output_folder_and_refusals_set_the_exit_code(tmp_path):
    (tmp_path / "名簿.csv").write_bytes("氏名,メモ\n山田,=HYPERLINK(\"http://x\")\n".encode("cp932"))
    (tmp_path / "請求書.pdf").write_bytes(b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00" + b"\x00" * 100)
    result = sanitize("名簿.csv", "請求書.pdf", "--out", "out", "--audit", "audit.jsonl", cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # one file was refused
    assert "名簿.csv: 無害化しました" in result.stdout
    assert "請求書.pdf: このファイル（実行ファイル）はお渡しできません" in result.stdout
    # the reason says what the file is in words; the MIME type is for the audit log only
    assert "プログラム（実行ファイル）は、開くとパソコンで動く" in result.stdout
    assert "application/" not in result.stdout
    delivered = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert delivered == ["名簿.csv"]  # nothing of the executable
    text = (tmp_path / "out" / "名簿.csv").read_bytes().decode("utf-8-sig")
    assert "'=HYPERLINK" in text
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["verdict"] for r in records] == ["sanitized", "refused"]
    assert records[1]["detected"] == "application/x-dosexec" and records[1]["outputs"] == []
    assert (tmp_path / "audit.jsonl").stat().st_mode & 0o077 == 0  # who sent what: never readable by others


def test_english_json_and_policies_from_a_config_file(tmp_path):
    (tmp_path / "note.txt").write_text("hello\n", encoding="utf-8")
    (tmp_path / "policies.yaml").write_text("engine:\n  policies:\n    text: refuse\n", encoding="utf-8")
    result = sanitize("note.txt", "--config", "policies.yaml", "--lang", "en", "--json", cwd=tmp_path)
    assert result.returncode == 1
    line = json.loads(result.stdout)
    assert line["verdict"] == "refused" and "not accepted by configuration" in line["report"]


def test_a_bad_config_or_a_missing_file_is_a_clear_error(tmp_path):
    (tmp_path / "note.txt").write_text("hello\n", encoding="utf-8")
    (tmp_path / "policies.yaml").write_text("engine:\n  policies:\n    text: shred\n", encoding="utf-8")
    result = sanitize("note.txt", "--config", "policies.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "engine.policies.text" in result.stderr and "Traceback" not in result.stderr
    result = sanitize("missing.docx", cwd=tmp_path)
    assert result.returncode == 2 and "ファイルが見つかりません: missing.docx" in result.stderr


def test_a_batch_goes_on_after_files_that_crashed_or_blew_up_the_engine(tmp_path):
    """The files of issue #14 between ordinary ones: each gets its line and its audit record, in order."""
    sys.path.insert(0, str(Path(__file__).parent))
    import corpus_adversarial as adv
    files = {"1-segments.jpg": adv.jpeg_segments(60), "2-bomb.docx": adv.docx_xml_bomb(),
             "3-double.pdf": adv.pdf_double_deflate(), "4-名簿.csv": adv.csv_separator(";"),
             "5-scans.jpg": adv.progressive_jpeg(300), "6-メモ.txt": "最後のファイル\n".encode()}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    result = sanitize(*files, "--out", "out", "--audit", "audit.jsonl", "--lang", "en", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stdout.splitlines() if not line.startswith("  -> ")]
    assert [line.split(":", 1)[0] for line in lines] == list(files)
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["verdict"] for r in records] == ["sanitized", "refused", "refused", "sanitized", "refused", "sanitized"]
    assert [r["reason"]["key"] for r in records if r["reason"]] == [
        "sanitizer.refused.part_too_large", "sanitizer.refused.pdf_stream_bomb",
        "sanitizer.refused.jpeg_too_many_scans"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1-segments.jpg", "4-名簿.csv", "6-メモ.txt"]
