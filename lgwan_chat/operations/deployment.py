"""Where a deployment keeps its data, read from its own configuration files.

Synapse's files are read in the order Synapse reads them (a later file's top-level key replaces an
earlier one's): ``synapse/homeserver.yaml``, ``synapse/deploy.yaml``, ``synapse/modules.yaml`` for
a deployment written by ``lgwan-chat deploy init``; ``homeserver.yaml``, ``overrides.yaml`` for the
demo and the test harness. ``bots.yaml`` names each bot's storage (SQLite file or PostgreSQL DSN),
which also holds the sanitizer's queue and the upload page's links.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import yaml

#: The config files of each layout, in Synapse's reading order (those that exist are read).
LAYOUTS: dict[str, tuple[str, ...]] = {
    "deploy": ("synapse/homeserver.yaml", "synapse/deploy.yaml", "synapse/modules.yaml"),
    "demo": ("homeserver.yaml", "overrides.yaml"),
}


#: The key of backup manifests' HMAC, under the deployment folder (both layouts keep secrets/ there).
#: Never copied into a backup: whoever holds a backup must not be able to sign one.
BACKUP_KEY = "secrets/backup_manifest_key"


class DeploymentError(Exception):
    """A deployment that cannot be backed up as it is; ``key`` and ``params`` for the ja/en message."""

    def __init__(self, key: str, **params: Any):
        super().__init__(key)
        self.key = key
        self.params = params


@attrs.frozen
class Database:
    #: "sqlite" or "postgres"
    engine: str
    #: SQLite: the file
    path: Path | None = None
    #: PostgreSQL: libpq keywords (dbname, host, port, user, password)
    params: dict[str, str] = attrs.field(factory=dict)

    @property
    def dsn(self) -> str:
        return " ".join(f"{k}={_quote(v)}" for k, v in self.params.items() if k != "password")


@attrs.frozen
class Bot:
    name: str
    store: Database
    #: The sanitizer's audit log (a record of what entered LGWAN), when there is one.
    audit_log: Path | None = None
    #: Folders of temporary work, never backed up.
    work_dirs: tuple[Path, ...] = ()


@attrs.frozen
class Deployment:
    root: Path
    layout: str
    config_files: tuple[Path, ...]
    database: Database
    media_store: Path
    signing_key: Path
    bots: tuple[Bot, ...]

    @property
    def backup_key(self) -> Path:
        return self.root / BACKUP_KEY

    def data_paths(self) -> list[Path]:
        """What is backed up on its own (databases, media) and so skipped when copying the rest."""
        paths = [self.media_store]
        for db in (self.database, *(b.store for b in self.bots)):
            if db.path is not None:
                paths += [db.path, *(db.path.with_name(db.path.name + s) for s in ("-wal", "-shm", "-journal"))]
        for bot in self.bots:
            paths += list(bot.work_dirs)
            if bot.audit_log is not None:
                paths.append(bot.audit_log)
        return paths


def _quote(value: str) -> str:
    value = str(value)
    if value and all(c.isalnum() or c in "._-/:" for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _load(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise DeploymentError("ops.config_unreadable", path=path, problem=e) from e
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise DeploymentError("ops.config_unreadable", path=path, problem="not a mapping")
    return doc


def _absolute(root: Path, value: Any) -> Path:
    path = Path(str(value))
    return path if path.is_absolute() else root / path


def synapse_database(root: Path, block: Any, where: Path) -> Database:
    if not isinstance(block, dict) or "name" not in block:
        # Synapse's default: SQLite file homeserver.db in its working directory
        return Database("sqlite", path=root / "homeserver.db")
    args = block.get("args") or {}
    if block["name"] in ("sqlite3", "sqlite"):
        return Database("sqlite", path=_absolute(root, args.get("database", "homeserver.db")))
    if block["name"] in ("psycopg2", "psycopg"):
        params = {}
        for key, libpq in (("database", "dbname"), ("dbname", "dbname"), ("host", "host"), ("port", "port"),
                           ("user", "user"), ("password", "password")):
            if args.get(key) not in (None, ""):
                params[libpq] = str(args[key])
        if "dbname" not in params:
            raise DeploymentError("ops.database_unknown", path=where, value=block)
        return Database("postgres", params=params)
    raise DeploymentError("ops.database_unknown", path=where, value=block.get("name"))


def _bot_store(root: Path, storage: Any, where: Path, name: str) -> Database:
    if isinstance(storage, dict) and storage.get("sqlite"):
        return Database("sqlite", path=_absolute(root, storage["sqlite"]))
    if isinstance(storage, dict) and storage.get("postgres"):
        params = {}
        for part in str(storage["postgres"]).split():
            key, _, value = part.partition("=")
            params[key] = value.strip("'")
        return Database("postgres", params=params)
    raise DeploymentError("ops.bot_storage_unknown", path=where, name=name)


def find(root: Path) -> Deployment:
    """The deployment in ``root`` (either layout); ``DeploymentError`` when it is not one."""
    root = root.resolve()
    layout = next((name for name, files in LAYOUTS.items() if (root / files[0]).is_file()), None)
    if layout is None:
        raise DeploymentError("ops.not_a_deployment", path=root)
    files = tuple(root / f for f in LAYOUTS[layout] if (root / f).is_file())
    merged: dict[str, Any] = {}
    database_file = files[0]
    for path in files:
        doc = _load(path)
        if "database" in doc:
            database_file = path
        merged.update(doc)
    database = synapse_database(root, merged.get("database"), database_file)
    media = _absolute(root, merged.get("media_store_path", "media_store"))
    signing_key = _absolute(root, merged.get("signing_key_path", root / f"{merged.get('server_name')}.signing.key"))
    bots: list[Bot] = []
    bots_yaml = root / "bots.yaml"
    if bots_yaml.is_file():
        for name, block in ((_load(bots_yaml).get("bots")) or {}).items():
            if not isinstance(block, dict):
                continue
            store = _bot_store(root, block.get("storage"), bots_yaml, name)
            engine: dict = block["engine"] if isinstance(block.get("engine"), dict) else {}
            work = [Path(block["work_dir"])] if block.get("work_dir") else []
            if store.path is not None:
                work.append(store.path.parent / "sanitizer-work")  # the sanitizer's default (bots/sanitizer/app.py)
            audit = engine.get("audit_log")
            if audit is None and (name == "sanitizer" or "engine" in block) and work:
                audit = work[0] / "audit.jsonl"  # the sanitizer's default: in its work folder
            bots.append(Bot(name, store, _absolute(root, audit) if audit else None,
                            tuple(_absolute(root, w) for w in work)))
    return Deployment(root, layout, files, database, media, signing_key, tuple(bots))
