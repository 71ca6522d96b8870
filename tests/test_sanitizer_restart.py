"""The sanitizer bot stopped (SIGTERM) at any moment of a file's work: the bot exits at once, the file
stays queued and is answered once after the restart, with nothing lost and nothing sent twice.

The moments are made, not waited for by luck: a stand-in for bubblewrap in the bot's PATH runs the
real one but holds back a jailed worker's first words ("ready") while the test says so, so the bot is
still waiting for that worker to start when the signal comes: the parse worker (type detection) and
LibreOffice (really running, its answer held back). Then the file being rendered (its progress
message was just posted) and the copy being uploaded. A file posted in a room and a !編集用 request
for it in a DM go through every moment together.
"""

from __future__ import annotations

import re
import shutil
import stat
from pathlib import Path

import pytest
from bots_harness import BotProcess, wait_membership, wait_replies
from nio import RoomCreateResponse
from test_sanitizer_progress import DOCX, ask_editable, dm_with, long_strict_docx, post_file, shown

from lgwan_chat.homeserver import child_env

BOT = "sanitizer"

GATE = """#!/bin/sh
# bubblewrap as the test has it: while {hold} exists and this jail's command line has the text in it,
# the jailed worker runs but what it says first ("ready") waits in the pipe
hold={hold}
held() {{ [ -e "$hold" ] && case " $* " in *"$(cat "$hold" 2>/dev/null)"*) return 0;; esac; return 1; }}
if held "$@"; then
    {bwrap} "$@" | {{ while held "$@"; do sleep 0.05; done; exec cat; }}
    exit
fi
exec {bwrap} "$@"
"""


class Gate:
    """The stand-in's switch: :meth:`hold` a kind of jailed worker before it says it is ready."""

    def __init__(self, folder: Path):
        bwrap = shutil.which("bwrap")
        assert bwrap is not None, "bubblewrap is needed"
        self.folder = folder
        self._hold = folder / "hold"
        script = folder / "bwrap"
        script.write_text(GATE.format(hold=self._hold, bwrap=bwrap))
        script.chmod(script.stat().st_mode | stat.S_IXUSR)

    def hold(self, script: str) -> None:
        self._hold.write_text(script)

    def release(self) -> None:
        self._hold.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def homeserver_modules():
    from harness import suite_modules_trusting

    return suite_modules_trusting(f"@{BOT}-bot:lgwan.test")


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    return Gate(tmp_path_factory.mktemp("gate"))


@pytest.fixture(scope="module")
def sanitizer_bot(homeserver, nginx_front, tmp_path_factory, gate):
    folder = tmp_path_factory.mktemp("sanitizer-restart")
    path = f"{gate.folder}:{child_env().get('PATH', '/usr/bin:/bin')}"
    with BotProcess(homeserver, folder, BOT, entry=["-m", "bots.sanitizer"],
                    options={"work_dir": str(folder / "work"),
                             # a progress message only once the page count is known: the file is being rendered
                             "progress": {"pages": 10, "after_s": 3600, "every_s": 0},
                             "office": {"word": "both"},
                             "upload": {"enabled": False}},
                    zone="internet", storage=homeserver.backend, env={"PATH": path}) as bot:
        bot.start().wait_ready()
        yield bot
        gate.release()
        assert bot.stop() == 0


def restart(bot: BotProcess) -> None:
    """SIGTERM: the bot must exit within the harness's few seconds, with 0; then it starts again."""
    assert bot.stop() == 0
    bot.start().wait_ready()


def event(event_id: str) -> str:
    return "event_id=" + re.escape(event_id)


async def test_a_file_and_an_editable_request_stopped_at_any_moment_are_answered_once_after_the_restart(
        homeserver, login, nginx_front, sanitizer_bot, gate):
    bot = sanitizer_bot
    user = homeserver.new_user("staff")
    phone = await login(user, "internet", via=nginx_front)
    pc = await login(user, "lgwan", via=nginx_front)
    created = await pc.room_create(name="企画課", invite=[bot.user_id])
    assert isinstance(created, RoomCreateResponse), created
    room = created.room_id
    await wait_membership(pc, room, bot.user_id, "join")
    dm = await dm_with(pc, bot)

    # 1. the parse workers cannot get ready: the one started ahead of time, and the one a file needs
    gate.hold("parse_worker.py")
    restart(bot)
    file = await post_file(phone, room, long_strict_docx(12), "報告書.docx", DOCX)
    request = await ask_editable(pc, dm, room, file)
    for job in (file, request):
        await bot.await_log(re.compile("file queued .*" + event(job)), timeout=60)
    await bot.await_log(re.compile("jailed worker starting .*worker=parse_worker"), count=2, timeout=60)
    # 2. LibreOffice is running but has not said it is ready: the one started ahead of time, and one a file needs
    gate.hold("office_worker.py")
    restart(bot)
    await bot.await_log(re.compile("jailed worker starting .*worker=office_worker"), count=2, timeout=120)
    # 3. a file being rendered: its page count is known, its progress message just posted
    gate.release()
    restart(bot)
    await bot.await_log(re.compile(f"progress posted .*({event(file)}|{event(request)})"), timeout=300)
    # 4. a copy being uploaded
    restart(bot)
    await bot.await_log(re.compile("uploading "), timeout=300)
    restart(bot)
    for job in (file, request):
        await bot.await_log(re.compile("file answered .*" + event(job)), since_start=False, timeout=300)
    assert bot.query("SELECT event_id FROM sanitizer_jobs") == []

    # each answered once: the report (its progress message edited into it, or a reply) and the copy
    in_room = await wait_replies(pc, room, file, count=2, sender=bot.user_id, timeout=60)
    assert [e["content"]["msgtype"] for e in in_room] == ["m.notice", "m.file"], [e["content"] for e in in_room]
    said = await shown(pc, room, in_room[0])
    assert said.startswith("無害化しました（Office 文書: "), said
    assert in_room[1]["content"]["body"] == "報告書.pdf"
    in_dm = await wait_replies(pc, dm, request, count=2, sender=bot.user_id, timeout=60)
    assert [e["content"]["msgtype"] for e in in_dm] == ["m.notice", "m.file"], [e["content"] for e in in_dm]
    said = await shown(pc, dm, in_dm[0])
    assert said.startswith("「報告書.docx」の編集用の写しです。\n無害化しました（Office 文書: "), said
    assert in_dm[1]["content"]["body"] == "報告書.pdf"
