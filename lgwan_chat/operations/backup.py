"""``lgwan-chat backup DEPLOYMENT OUTDIR``: a consistent copy of a running deployment.

What is copied, in this order, and why the order:

1. each bot's store (SQLite through the online backup API, PostgreSQL through ``pg_dump``): the
   session, sync position, events handled, memos, polls and votes, the sanitizer's queue and the
   upload page's links;
2. Synapse's database (the same two ways): messages, read receipts, accounts, guests, and the
   suite's module tables (bookmarks, read status, zones, guests live in Synapse's database);
3. the media store, file by file (Synapse writes a file before the row that names it, so every
   file the database snapshot names is there when the copy starts after it);
4. the rest of the deployment folder: configuration, ``secrets/`` (the signing key), the
   sanitizer's audit log; not logs, pid files, temporary work.

The bots come first: a bot restored with an older position than Synapse's reads again what came
after it, and what it had already answered is not answered twice (its replies carry transaction
ids derived from the event, which Synapse's database remembers). The other way round, a bot
would hold a sync position from a future the restored Synapse never reached.

Each database is one consistent snapshot taken while everything runs (SQLite's backup API reads
the whole file under one read lock; ``pg_dump`` reads in one repeatable-read transaction). The
manifest (``manifest.json``, written last: a backup without it is incomplete) names every file
with its size and SHA-256, the versions, and what was included, and carries an HMAC-SHA256 with
the deployment's backup key (``secrets/backup_manifest_key``, made on the first backup, never put
in a backup): a backup changed and given a recomputed manifest is refused by ``restore``. Every
file is 0600, every folder 0700.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import lgwan_chat
from lgwan_chat.core.signed_manifest import KeyProblem, create_key, read_key, sign

from .deployment import Database, Deployment, DeploymentError

FORMAT = "lgwan-chat-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Under the deployment folder, never copied: written again by the running processes.
SKIPPED_DIRS = ("logs",)
SKIPPED_SUFFIXES = (".pid", ".sock", ".log")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_key(path: Path) -> bytes:
    """The backup key in ``path``; a ``DeploymentError`` (ja/en) when it cannot be used."""
    try:
        return read_key(path)
    except KeyProblem as e:
        raise DeploymentError(f"ops.backup_{e.kind}", **e.params) from None


def private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def pg_env(db: Database) -> dict[str, str]:
    env = dict(os.environ)
    if db.params.get("password"):
        env["PGPASSWORD"] = db.params["password"]
    return env


def sqlite_snapshot(source: Path, target: Path) -> None:
    """One consistent copy of a live SQLite database (the backup API, all pages in one step)."""
    src = sqlite3.connect(str(source), timeout=60)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
    finally:
        src.close()
    os.chmod(target, 0o600)


def pg_snapshot(db: Database, target: Path) -> None:
    """``pg_dump`` custom format: one repeatable-read snapshot, restored with ``pg_restore``."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    result = subprocess.run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(target),
                             "--dbname", db.dsn], env=pg_env(db), capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise DeploymentError("ops.pg_dump_failed", database=db.params.get("dbname"),
                              problem=result.stderr.strip()[-2000:])
    os.chmod(target, 0o600)


class Writer:
    """The backup folder being filled: every file it gets is recorded for the manifest."""

    def __init__(self, outdir: Path):
        self.outdir = outdir
        self.files: dict[str, dict[str, Any]] = {}

    def target(self, relative: str) -> Path:
        path = self.outdir / relative
        private_dir(path.parent)
        return path

    def record(self, relative: str) -> None:
        path = self.outdir / relative
        os.chmod(path, 0o600)
        self.files[relative] = {"size": path.stat().st_size, "sha256": sha256(path)}

    def copy(self, source: Path, relative: str) -> bool:
        """Copy one file (False when it vanished meanwhile, e.g. a media file deleted during the copy)."""
        target = self.target(relative)
        try:
            with open(source, "rb") as src:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        except FileNotFoundError:
            return False
        self.record(relative)
        return True


def snapshot(db: Database, writer: Writer, stem: str) -> dict[str, Any]:
    if db.engine == "sqlite":
        assert db.path is not None
        if not db.path.is_file():
            raise DeploymentError("ops.database_missing", path=db.path)
        relative = f"{stem}.sqlite3"
        sqlite_snapshot(db.path, writer.target(relative))
        original: Any = str(db.path)
    else:
        relative = f"{stem}.pgdump"
        pg_snapshot(db, writer.target(relative))
        original = {k: v for k, v in db.params.items() if k != "password"}
    writer.record(relative)
    return {"engine": db.engine, "backup": relative, "original": original}


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _skipped(path: Path, deployment: Deployment, outdir: Path) -> bool:
    if path.suffix in SKIPPED_SUFFIXES or path.name.endswith("_temp"):
        return True
    if _inside(path, outdir) or path == deployment.backup_key:
        return True
    relative = path.relative_to(deployment.root)
    if relative.parts and relative.parts[0] in SKIPPED_DIRS:
        return True
    if len(relative.parts) > 1 and relative.parts[0] == "nginx" and relative.parts[1].endswith("_temp"):
        return True
    return any(_inside(path, data) for data in deployment.data_paths())


def versions() -> dict[str, str]:
    found = {"lgwan-chat": lgwan_chat.__version__}
    for name in ("matrix-synapse", "matrix-nio"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def backup(deployment: Deployment, outdir: Path, progress: Any = None) -> dict[str, Any]:
    """Write the backup of ``deployment`` into ``outdir`` (new or empty); returns the manifest."""
    outdir = outdir.resolve()
    if _inside(outdir, deployment.root):
        raise DeploymentError("ops.backup_inside", path=outdir, root=deployment.root)
    if outdir.exists() and any(outdir.iterdir()):
        raise DeploymentError("ops.backup_not_empty", path=outdir)
    say = progress or (lambda key, **params: None)
    if not deployment.backup_key.exists():
        create_key(deployment.backup_key)
        say("ops.backup_key_created", path=deployment.backup_key)
    key = load_key(deployment.backup_key)
    old_umask = os.umask(0o077)
    try:
        return _backup(deployment, outdir, say, key)
    finally:
        os.umask(old_umask)


def _backup(deployment: Deployment, outdir: Path, progress: Any, key: bytes) -> dict[str, Any]:
    private_dir(outdir)
    writer = Writer(outdir)
    started = time.time()
    bots: dict[str, Any] = {}
    for bot in deployment.bots:
        if bot.store.path is not None and not bot.store.path.exists():
            # in bots.yaml but never started here (deploy init lists every bot): nothing to keep
            progress("ops.bot_never_ran", name=bot.name, path=bot.store.path)
            bots[bot.name] = {"engine": "sqlite", "backup": None, "original": str(bot.store.path)}
            continue
        progress("ops.backing_up_bot", name=bot.name)
        bots[bot.name] = snapshot(bot.store, writer, f"bots/{bot.name}")
    progress("ops.backing_up_synapse")
    synapse_point = time.time()
    synapse = snapshot(deployment.database, writer, "synapse/database")
    synapse["snapshot_started"] = synapse_point
    progress("ops.backing_up_media")
    media_files = 0
    if deployment.media_store.is_dir():
        for path in sorted(deployment.media_store.rglob("*")):
            if path.is_file() and not path.is_symlink():
                media_files += writer.copy(path, "media/" + path.relative_to(deployment.media_store).as_posix())
    progress("ops.backing_up_files")
    copied: dict[str, str] = {}  # backup path -> original absolute path
    for path in sorted(deployment.root.rglob("*")):
        if path.is_file() and not path.is_symlink() and not _skipped(path, deployment, outdir):
            relative = "files/" + path.relative_to(deployment.root).as_posix()
            if writer.copy(path, relative):
                copied[relative] = str(path)
    # What lives outside the folder (or in logs/): the signing key, the sanitizer's audit log.
    extra = [("signing_key", deployment.signing_key)]
    extra += [(f"audit_log_{bot.name}", bot.audit_log) for bot in deployment.bots if bot.audit_log is not None]
    external: dict[str, str] = {}
    for name, path in extra:
        if str(path) in copied.values():
            continue
        if _inside(path, deployment.root):
            relative = "files/" + path.relative_to(deployment.root).as_posix()
        else:
            relative = f"external/{name}/{path.name}"
            external[relative] = str(path)
        if writer.copy(path, relative):
            copied[relative] = str(path)
        elif name == "signing_key":
            raise DeploymentError("ops.signing_key_missing", path=path)
    # The folders, empty ones too (logs/, the sanitizer's work): the processes expect them.
    dirs = sorted(p.relative_to(deployment.root).as_posix() for p in deployment.root.rglob("*")
                  if p.is_dir() and not p.is_symlink() and not p.name.endswith("_temp")
                  and not _inside(p, outdir) and not _inside(p, deployment.media_store))
    finished = time.time()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(),
        "started": started,
        "finished": finished,
        "versions": versions(),
        "deployment": {"root": str(deployment.root), "layout": deployment.layout,
                       "config_files": [str(p.relative_to(deployment.root)) for p in deployment.config_files],
                       "dirs": dirs},
        "included": {
            "synapse_database": synapse,
            "bots": bots,
            "media_store": {"original": str(deployment.media_store), "backup": "media", "files": media_files},
            "signing_key": str(deployment.signing_key),
            "files": len([p for p in copied if p.startswith("files/")]),
            "external": external,
        },
        "files": dict(sorted(writer.files.items())),
    }
    manifest = sign(manifest, key)
    path = outdir / MANIFEST
    partial = outdir / (MANIFEST + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)  # the manifest appears whole, last: without it the backup is incomplete
    return manifest
