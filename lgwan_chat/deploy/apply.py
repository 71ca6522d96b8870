"""Write a rendered deployment into OUTDIR, or show what writing it would change.

Owned files are replaced (a unified diff shows each change first); seeded files are written
only when missing, so the admin's edits stay; secrets come from ``secrets.ensure`` (kept).
Every file is 0600 and every directory 0700: the configs hold passwords and secrets.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import attrs

from lgwan_chat.templates import write_private

from .render import GeneratedFile
from .secrets import private_dir

#: Directories the processes write into (bots' storage, the sanitizer's work, logs, media).
DATA_DIRS = ("logs", "bots", "sanitizer", "media_store")


@attrs.frozen
class Change:
    path: str
    #: "create", "update", "unchanged", or "kept" (a seeded file the admin owns now).
    action: str
    diff: str = ""


def plan(outdir: Path, files: list[GeneratedFile]) -> list[Change]:
    changes = []
    for generated in files:
        target = outdir / generated.path
        if not target.exists():
            changes.append(Change(generated.path, "create"))
            continue
        if not generated.owned:
            changes.append(Change(generated.path, "kept"))
            continue
        current = target.read_text(encoding="utf-8")
        if current == generated.text:
            changes.append(Change(generated.path, "unchanged"))
            continue
        diff = "".join(difflib.unified_diff(current.splitlines(keepends=True), generated.text.splitlines(keepends=True),
                                            fromfile=f"{generated.path} (now)", tofile=f"{generated.path} (new)"))
        changes.append(Change(generated.path, "update", diff))
    return changes


def write(outdir: Path, files: list[GeneratedFile], changes: list[Change]) -> None:
    private_dir(outdir)
    for name in DATA_DIRS:
        private_dir(outdir / name)
    by_path = {f.path: f for f in files}
    for change in changes:
        if change.action in ("create", "update"):
            target = outdir / change.path
            private_dir(target.parent)
            write_private(target, by_path[change.path].text)
