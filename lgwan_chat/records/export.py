"""``lgwan-chat records export``: a readable archive of a room's history, and ``verify``.

Read with Synapse's admin API (the admin need not be in the room): every event of the room
from its start (for the names people had), those between ``--from`` and ``--to`` (JST dates,
both included) written out. The archive shows names and times in JST, edits with each earlier
version, redacted messages as 削除されました, files as the copies posted in the room (after the
sanitizer, in LGWAN rooms) saved next to it with their SHA-256, and polls with their results.

The files are listed in ``manifest.json`` with their SHA-256, and the manifest carries an
HMAC-SHA256 with the deployment's export key: ``verify`` finds any file changed, added or
removed, and a manifest edited without the key. Files from the room are only copied, never
opened or rendered (untrusted bytes are parsed only in the sanitizer's jail): the HTML and PDF
list them, they do not embed them.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from lgwan_chat.core.http import HttpError
from lgwan_chat.core.i18n import both
from lgwan_chat.core.signed_manifest import is_signed_by, sign

from .retention import RecordsError

JST = ZoneInfo("Asia/Tokyo")
FORMATS = ("html", "pdf", "csv")
MANIFEST = "manifest.json"
DELETED = "削除されました"
POLL_START = ("org.matrix.msc3381.poll.start", "m.poll.start")
POLL_RESPONSE = ("org.matrix.msc3381.poll.response", "m.poll.response")
POLL_END = ("org.matrix.msc3381.poll.end", "m.poll.end")
FILE_TYPES = ("m.file", "m.image", "m.video", "m.audio")
PAGE = 500


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def jst(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts / 1000, JST).strftime("%Y-%m-%d %H:%M:%S JST")


def day_bounds(first: str | None, last: str | None) -> tuple[int | None, int | None]:
    """``--from``/``--to`` (YYYY-MM-DD in JST, both included) as ms since the epoch."""
    def start(day: str) -> int:
        try:
            d = dt.date.fromisoformat(day)
        except ValueError:
            raise RecordsError(both("records.bad_date", value=day)) from None
        return int(dt.datetime(d.year, d.month, d.day, tzinfo=JST).timestamp() * 1000)

    lo = start(first) if first else None
    hi = start(last) + 86_400_000 - 1 if last else None
    if lo is not None and hi is not None and lo > hi:
        raise RecordsError(both("records.bad_range", first=first, last=last))
    return lo, hi


@attrs.define
class Version:
    ts: int
    body: str


@attrs.define
class Entry:
    event_id: str
    ts: int
    sender: str
    name: str
    kind: str  # message, file, poll, encrypted, sticker, other
    body: str
    deleted: bool = False
    #: earlier versions, oldest first (the body above is the latest)
    history: list[Version] = attrs.Factory(list)
    file_name: str | None = None
    file_path: str | None = None  # relative to the archive
    file_sha256: str | None = None
    file_size: int | None = None
    #: poll: (answer text, votes) and voters
    results: list[tuple[str, int]] = attrs.Factory(list)
    voters: int = 0
    poll_ended: bool = False


@attrs.define
class Archive:
    room_id: str
    room_name: str
    first: str | None
    last: str | None
    entries: list[Entry]
    exported_by: str
    exported_at: int


def events(client: Any, room_id: str) -> Iterator[dict[str, Any]]:
    """Every event of the room, oldest first, through the admin API."""
    token = None
    while True:
        query = {"dir": "f", "limit": str(PAGE)}
        if token:
            query["from"] = token
        page = client.call("GET", f"/_synapse/admin/v1/rooms/{_q(room_id)}/messages?"
                                  + urllib.parse.urlencode(query))
        chunk = page.get("chunk") or []
        yield from chunk
        token = page.get("end")
        if not chunk or not token:
            return


def _text(content: dict[str, Any]) -> str:
    body = content.get("body")
    return body if isinstance(body, str) else ""


def _poll_text(value: Any) -> str:
    if isinstance(value, dict):
        for k in ("org.matrix.msc1767.text", "m.text", "body"):
            v = value.get(k)
            if isinstance(v, str):
                return v
            if isinstance(v, list) and v and isinstance(v[0], dict):
                return str(v[0].get("body", ""))
    return ""


def build(client: Any, room: str, first: str | None, last: str | None, out: Path) -> Archive:
    """Read the room and copy its files into ``out/files``; the archive's entries."""
    from bots.polls.tally import Response, count

    lo, hi = day_bounds(first, last)
    room_id = room
    if room.startswith("#"):
        room_id = client.call("GET", f"/_matrix/client/v3/directory/room/{_q(room)}")["room_id"]
    try:
        state = client.call("GET", f"/_synapse/admin/v1/rooms/{_q(room_id)}/state")["state"]
    except HttpError as e:
        if e.status in (400, 404):
            raise RecordsError(both("records.unknown_room_alias", room=room)) from None
        raise
    names: dict[str, str] = {}
    room_name = room_id
    for ev in state:
        if ev["type"] == "m.room.member" and isinstance(ev["content"].get("displayname"), str):
            names[ev["state_key"]] = ev["content"]["displayname"]
        if ev["type"] == "m.room.name" and isinstance(ev["content"].get("name"), str):
            room_name = ev["content"]["name"]

    entries: dict[str, Entry] = {}
    order: list[str] = []
    edits: dict[str, list[dict[str, Any]]] = {}
    responses: dict[str, list[Any]] = {}
    ends: dict[str, int] = {}
    polls: dict[str, dict[str, Any]] = {}
    name_at: dict[str, str] = {}
    files = out / "files"
    for ev in events(client, room_id):
        kind, content, sender, ts = ev["type"], ev.get("content") or {}, ev["sender"], ev["origin_server_ts"]
        if kind == "m.room.member":
            if isinstance(content.get("displayname"), str):
                name_at[ev["state_key"]] = content["displayname"]
            continue
        relates = content.get("m.relates_to") or {}
        if relates.get("rel_type") == "m.replace" and "m.new_content" in content:
            edits.setdefault(relates.get("event_id", ""), []).append(ev)
            continue
        if kind in POLL_RESPONSE:
            raw = content.get(kind) or content.get("org.matrix.msc3381.poll.response") or {}
            answers = raw.get("answers") if isinstance(raw, dict) else None
            ok = isinstance(answers, list) and all(isinstance(a, str) for a in answers)
            responses.setdefault(relates.get("event_id", ""), []).append(
                Response(sender, ts, ev["event_id"], tuple(answers) if ok and answers is not None else None))
            continue
        if kind in POLL_END:
            ends.setdefault(relates.get("event_id", ""), ts)
            continue
        if (lo is not None and ts < lo) or (hi is not None and ts > hi):
            continue
        redacted = "redacted_because" in (ev.get("unsigned") or {})
        who = name_at.get(sender) or names.get(sender) or sender
        entry = Entry(ev["event_id"], ts, sender, who, "other", "")
        if redacted:
            if kind not in ("m.room.message", "m.sticker", *POLL_START, "m.room.encrypted"):
                continue
            entry.kind, entry.body, entry.deleted = "message", DELETED, True
        elif kind == "m.room.message":
            entry.kind, entry.body = "message", _text(content)
            if content.get("msgtype") in FILE_TYPES and isinstance(content.get("url"), str):
                entry.kind = "file"
                _copy_file(client, content, entry, files, len(order))
        elif kind == "m.sticker":
            entry.kind, entry.body = "sticker", _text(content)
        elif kind in POLL_START:
            poll = content.get(kind) or {}
            entry.kind, entry.body = "poll", _poll_text(poll.get("question"))
            polls[ev["event_id"]] = poll
        elif kind == "m.room.encrypted":
            entry.kind, entry.body = "encrypted", "暗号化されたメッセージ（書き出せません）/ encrypted message"
        else:
            continue
        entries[ev["event_id"]] = entry
        order.append(ev["event_id"])

    for original, versions in edits.items():
        edited = entries.get(original)
        if edited is None or edited.deleted:
            continue
        entry = edited
        history = [Version(entry.ts, entry.body)]
        for ev in sorted(versions, key=lambda e: (e["origin_server_ts"], e["event_id"])):
            if ev["sender"] != entry.sender or "redacted_because" in (ev.get("unsigned") or {}):
                continue
            history.append(Version(ev["origin_server_ts"], _text(ev["content"]["m.new_content"])))
        entry.body, entry.history = history[-1].body, history[:-1]
    for event_id, poll in polls.items():
        entry = entries[event_id]
        answers = [a for a in poll.get("answers") or [] if isinstance(a, dict) and isinstance(a.get("id"), str)]
        try:
            max_selections = int(poll.get("max_selections", 1))
        except (TypeError, ValueError):
            max_selections = 1
        tally = count([a["id"] for a in answers], max_selections, responses.get(event_id, []), ends.get(event_id))
        entry.results = [(_poll_text(a), tally.counts.get(a["id"], 0)) for a in answers]
        entry.voters, entry.poll_ended = tally.voters, event_id in ends
    return Archive(room_id, room_name, first, last, [entries[e] for e in order], "", 0)


def _copy_file(client: Any, content: dict[str, Any], entry: Entry, files: Path, index: int) -> None:
    url = content["url"]
    entry.file_name = content.get("filename") if isinstance(content.get("filename"), str) else entry.body
    match = re.fullmatch(r"mxc://([A-Za-z0-9.:-]+)/([A-Za-z0-9_-]+)", url)
    if match is None:
        return
    suffix = Path(entry.file_name or "").suffix.lower()
    suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ".bin"
    files.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = files / f"{index + 1:05d}{suffix}"
    request = urllib.request.Request(
        f"{client.base_url.rstrip('/')}/_matrix/client/v1/media/download/{match.group(1)}/{match.group(2)}",
        headers={"Authorization": f"Bearer {client.token}"})
    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(request, timeout=120) as r, open(target, "wb") as f:
            while chunk := r.read(1 << 16):
                digest.update(chunk)
                size += len(chunk)
                f.write(chunk)
    except (OSError, ValueError):
        target.unlink(missing_ok=True)
        entry.file_path = None
        return
    entry.file_path = f"files/{target.name}"
    entry.file_sha256, entry.file_size = digest.hexdigest(), size


_CSS = """
body { font-family: "Noto Sans CJK JP", "Noto Sans JP", sans-serif; font-size: 10.5pt; margin: 2em; }
h1 { font-size: 15pt; } table { border-collapse: collapse; width: 100%; }
td, th { border: 1px solid #999; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #eee; } .deleted { color: #777; font-style: italic; } .history { color: #555; font-size: 9pt; }
.meta { font-size: 9pt; color: #333; } pre { white-space: pre-wrap; margin: 0; font-family: inherit; }
"""


def render_html(archive: Archive) -> str:
    e = html.escape
    period = f"{archive.first or '（最初）'} 〜 {archive.last or '（最後）'}"
    rows = []
    for entry in archive.entries:
        body = f'<pre class="deleted">{e(entry.body)}</pre>' if entry.deleted else f"<pre>{e(entry.body)}</pre>"
        if entry.kind == "file":
            body += (f'<div class="meta">ファイル / file: <a href="{e(entry.file_path or "")}">'
                     f'{e(entry.file_name or "")}</a> ({entry.file_size} bytes)<br>SHA-256: '
                     f'{e(entry.file_sha256 or "取得できませんでした / could not be fetched")}</div>')
        if entry.kind == "poll":
            results = "".join(f"<li>{e(text)}: {votes} 票 / votes</li>" for text, votes in entry.results)
            state = "締切済み / closed" if entry.poll_ended else "受付中 / open"
            body = (f"<div>アンケート / poll: {body}</div><ul>{results}</ul>"
                    f'<div class="meta">{entry.voters} 人が回答 / voters · {state}</div>')
        if entry.kind == "sticker":
            body = f"<div>スタンプ / sticker: {body}</div>"
        if entry.history:
            body += '<div class="history">編集履歴 / edit history:<ol>' + "".join(
                f"<li>{e(jst(v.ts))}: {e(v.body)}</li>" for v in entry.history) + "</ol>（編集済み / edited）</div>"
        rows.append(f"<tr><td>{e(jst(entry.ts))}</td><td>{e(entry.name)}<br>"
                    f'<span class="meta">{e(entry.sender)}</span></td><td>{body}</td></tr>')
    return f"""<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{e(archive.room_name)} — 記録 / record</title><style>{_CSS}</style></head><body>
<h1>{e(archive.room_name)}</h1>
<p class="meta">ルーム / room: {e(archive.room_id)}<br>期間 / period (JST): {e(period)}<br>
書き出し / exported: {e(jst(archive.exported_at))} by {e(archive.exported_by)}<br>
件数 / messages: {len(archive.entries)}</p>
<table><thead><tr><th>日時 / time (JST)</th><th>送信者 / sender</th><th>内容 / content</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""


def write_csv(archive: Archive, path: Path) -> None:
    """UTF-8 with a BOM, so that Excel opens the Japanese text as it is."""
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["日時(JST)", "送信者ID", "表示名", "種類", "内容", "編集履歴", "ファイル", "SHA-256", "イベントID"])
        for entry in archive.entries:
            content = entry.body
            if entry.kind == "poll":
                content += " / " + "; ".join(f"{t}: {v}" for t, v in entry.results)
            w.writerow([jst(entry.ts), entry.sender, entry.name, "削除" if entry.deleted else entry.kind, content,
                        " | ".join(f"{jst(v.ts)}: {v.body}" for v in entry.history),
                        entry.file_path or "", entry.file_sha256 or "", entry.event_id])


def chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def render_pdf(html_path: Path, pdf_path: Path) -> None:
    """HTML to PDF with headless Chromium (Japanese in Noto CJK: Debian's fonts-noto-cjk)."""
    browser = chromium()
    if browser is None:
        raise RecordsError(both("records.no_chromium"))
    with tempfile.TemporaryDirectory(prefix="lgwan-records-") as profile:
        result = subprocess.run(
            [browser, "--headless", "--disable-gpu", "--no-sandbox", "--no-pdf-header-footer",
             "--disable-extensions", "--disable-background-networking", f"--user-data-dir={profile}",
             f"--print-to-pdf={pdf_path}", html_path.resolve().as_uri()],
            capture_output=True, timeout=300, env={**os.environ, "HOME": profile})
    if not pdf_path.exists() or pdf_path.stat().st_size == 0:
        raise RecordsError(both("records.pdf_failed", detail=result.stderr.decode("utf-8", "replace")[-500:]))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            digest.update(chunk)
    return digest.hexdigest()


def export(client: Any, room: str, first: str | None, last: str | None, fmt: str, out: Path, key: bytes,
           exported_by: str, now_ms: int) -> dict[str, Any]:
    """Write the archive into ``out`` (a new directory); returns its manifest."""
    if out.exists() and any(out.iterdir()):
        raise RecordsError(both("records.out_not_empty", path=out))
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out, 0o700)
    archive = build(client, room, first, last, out)
    archive.exported_by, archive.exported_at = exported_by, now_ms
    page = render_html(archive)
    if fmt == "csv":
        write_csv(archive, out / "archive.csv")
    else:
        (out / "archive.html").write_text(page, encoding="utf-8")
        if fmt == "pdf":
            render_pdf(out / "archive.html", out / "archive.pdf")
            (out / "archive.html").unlink()
    listed = {str(p.relative_to(out)): _sha256(p) for p in sorted(out.rglob("*")) if p.is_file()}
    manifest: dict[str, Any] = {
        "room_id": archive.room_id, "room_name": archive.room_name, "from": first, "to": last, "format": fmt,
        "exported_by": exported_by, "exported_at": now_ms, "messages": len(archive.entries), "files": listed}
    manifest = sign(manifest, key)
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    for p in out.rglob("*"):
        os.chmod(p, 0o700 if p.is_dir() else 0o600)
    return manifest


def verify(out: Path, key: bytes) -> list[str]:
    """Problems found in an archive (ja / en each); empty when it is as exported."""
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [both("records.verify_no_manifest", path=out / MANIFEST)]
    problems = []
    if not is_signed_by(manifest, key):
        problems.append(both("records.verify_bad_hmac"))
        if not isinstance(manifest, dict):
            return problems
    listed = manifest.get("files") or {}
    present = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {MANIFEST}
    for name in sorted(set(listed) | present):
        if name not in present:
            problems.append(both("records.verify_missing", file=name))
        elif name not in listed:
            problems.append(both("records.verify_extra", file=name))
        elif _sha256(out / name) != listed[name]:
            problems.append(both("records.verify_changed", file=name))
    return problems
