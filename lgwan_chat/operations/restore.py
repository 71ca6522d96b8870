"""``lgwan-chat restore BACKUPDIR TARGET``: a deployment again, from a backup made by ``backup.py``.

The backup is checked whole before anything is written: the manifest must be there (it is
written last) and signed with the deployment's backup key (an unsigned manifest, or one signed
with another key, is refused: checksums alone could have been recomputed after a change), every
file it names must have its size and SHA-256, and no file may be there that it does not name. A
backup that fails any of this is refused (ja/en, naming the file), so a tampered or half-copied
backup never becomes a deployment. The restored deployment keeps the key it was checked with.

The target folder must be empty (or missing) unless ``force``; a PostgreSQL database is restored
into a database that is empty (or created here), never over one in use. Paths in the restored
configuration (the deployment folder, files kept outside it, a new PostgreSQL database name) are
rewritten to where things are now, so a backup can be restored onto a fresh machine or folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from lgwan_chat.core.signed_manifest import FIELD, is_signed_by

from .backup import FORMAT, FORMAT_VERSION, MANIFEST, load_key, pg_env, private_dir, sha256
from .deployment import BACKUP_KEY, Database, DeploymentError

#: Restored files whose text may name paths of the old deployment (rewritten to the new one).
TEXT_SUFFIXES = (".yaml", ".yml", ".json", ".config", ".conf", ".service", ".target", ".template")


class BackupInvalid(DeploymentError):
    """The backup is incomplete or was changed after it was made."""


def key_for(target: Path, key_file: Path | None = None) -> bytes:
    """The backup key: ``key_file``, else the one of the deployment at ``target`` (restoring in place).
    A backup restored onto a new machine needs the key kept elsewhere (``--key-file``)."""
    path = key_file or target / BACKUP_KEY
    if key_file is None and not path.exists():
        raise DeploymentError("ops.backup_key_needed", path=path)
    return load_key(path)


def read_manifest(backup_dir: Path) -> dict[str, Any]:
    """The backup's manifest as it is, not yet checked against the key or the files."""
    path = backup_dir / MANIFEST
    if not backup_dir.is_dir():
        raise BackupInvalid("ops.backup_missing", path=backup_dir)
    if not path.is_file():
        raise BackupInvalid("ops.manifest_missing", path=path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BackupInvalid("ops.manifest_broken", path=path, problem=e) from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
            or manifest.get("format_version") != FORMAT_VERSION or not isinstance(manifest.get("files"), dict):
        raise BackupInvalid("ops.manifest_broken", path=path, problem=f"not a {FORMAT} v{FORMAT_VERSION} manifest")
    return manifest


def verify(backup_dir: Path, key: bytes) -> dict[str, Any]:
    """The manifest of a complete, unchanged backup signed with ``key``; ``BackupInvalid`` otherwise."""
    path = backup_dir / MANIFEST
    manifest = read_manifest(backup_dir)
    # The signature first: the checksums below are only worth what the manifest's origin is.
    if FIELD not in manifest:
        raise BackupInvalid("ops.manifest_unsigned", path=path)
    if not is_signed_by(manifest, key):
        raise BackupInvalid("ops.manifest_bad_signature", path=path)
    files: dict[str, Any] = manifest["files"]
    for relative, entry in files.items():
        target = backup_dir / relative
        if ".." in Path(relative).parts or Path(relative).is_absolute() or not isinstance(entry, dict):
            raise BackupInvalid("ops.manifest_broken", path=path, problem=relative)
        if not target.is_file() or target.is_symlink():
            raise BackupInvalid("ops.file_missing", path=target)
        if target.stat().st_size != entry.get("size") or sha256(target) != entry.get("sha256"):
            raise BackupInvalid("ops.file_changed", path=target)
    present = {p.relative_to(backup_dir).as_posix() for p in backup_dir.rglob("*") if not p.is_dir()}
    unexpected = sorted(present - set(files) - {MANIFEST})
    if unexpected:
        raise BackupInvalid("ops.file_unexpected", path=backup_dir / unexpected[0])
    included = manifest.get("included") or {}
    needed = [included.get("synapse_database", {}).get("backup")]
    needed += [b.get("backup") for b in (included.get("bots") or {}).values() if b.get("backup") is not None]
    for relative in needed:
        if relative not in files:
            raise BackupInvalid("ops.file_missing", path=backup_dir / str(relative))
    return manifest


def _empty(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def _pg_admin_params(params: dict[str, str]) -> dict[str, str]:
    return {**params, "dbname": "postgres"}


def _pg_connect(params: dict[str, str]) -> Any:
    import psycopg2

    return psycopg2.connect(Database("postgres", params=params).dsn, password=params.get("password"))


def prepare_pg(params: dict[str, str], force: bool) -> None:
    """The target database exists and is empty (created when missing); ``force`` allows tables."""
    import psycopg2

    try:
        conn = _pg_connect(params)
    except psycopg2.OperationalError as e:
        if f'"{params["dbname"]}" does not exist' not in str(e):
            raise DeploymentError("ops.pg_unreachable", database=params["dbname"], problem=e) from e
        admin = _pg_connect(_pg_admin_params(params))
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                from psycopg2 import sql

                cur.execute(sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' "
                                    "TEMPLATE template0").format(sql.Identifier(params["dbname"])))
        finally:
            admin.close()
        return
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            row = cur.fetchone()
            tables = row[0] if row else 0
    finally:
        conn.close()
    if tables and not force:
        raise DeploymentError("ops.pg_not_empty", database=params["dbname"], count=tables)


def pg_restore(dump: Path, params: dict[str, str], force: bool) -> None:
    prepare_pg(params, force)
    db = Database("postgres", params=params)
    args = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
            "--dbname", db.dsn]
    if force:
        args[1:1] = ["--clean", "--if-exists"]
    result = subprocess.run([*args, str(dump)], env=pg_env(db), capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise DeploymentError("ops.pg_restore_failed", database=params["dbname"],
                              problem=result.stderr.strip()[-2000:])


def _copy(source: Path, target: Path) -> None:
    private_dir(target.parent)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.chmod(target, 0o600)


def _moved(old_root: str, new_root: Path, original: str, external: dict[str, str], target: Path) -> Path:
    """Where a file that was at ``original`` goes now."""
    path = Path(original)
    if path == Path(old_root) or path.is_relative_to(old_root):
        return new_root / path.relative_to(old_root)
    for relative, was in external.items():
        if was == original:
            return target / relative
    return new_root / "external" / path.name


def _literal(text: str) -> Any:
    return lambda _match: text


def _rewrite(text: str, replacements: list[tuple[str, str]]) -> str:
    for old, new in sorted(replacements, key=lambda r: -len(r[0])):
        if old != new:
            text = re.sub(re.escape(old) + r"(?=[/\"'\s:,}\]]|$)", _literal(new), text, flags=re.M)
    return text


def restore(backup_dir: Path, target: Path, key: bytes, force: bool = False, postgres_database: str | None = None,
            bot_postgres: dict[str, str] | None = None, progress: Any = None) -> dict[str, Any]:
    """Restore ``backup_dir`` (signed with ``key``) into the folder ``target``; returns the manifest.

    ``postgres_database``: restore Synapse's PostgreSQL database under this name (default: the name
    it had); ``bot_postgres``: a bot's store DSN by bot name (default: the one it had).
    """
    say = progress or (lambda key, **params: None)
    backup_dir = backup_dir.resolve()
    target = target.resolve()
    manifest = verify(backup_dir, key)
    if not force and not _empty(target):
        raise DeploymentError("ops.target_not_empty", path=target)
    say("ops.backup_verified", path=backup_dir, files=len(manifest["files"]), created=manifest.get("created"))
    old_umask = os.umask(0o077)
    try:
        _restore(backup_dir, target, manifest, force, postgres_database, bot_postgres or {}, say)
        _keep_key(target, key)
    finally:
        os.umask(old_umask)
    return manifest


def _restore(backup_dir: Path, target: Path, manifest: dict[str, Any], force: bool, postgres_database: str | None,
             bot_postgres: dict[str, str], say: Any) -> None:
    private_dir(target)
    for relative in manifest["deployment"].get("dirs") or []:
        if ".." not in Path(relative).parts and not Path(relative).is_absolute():
            private_dir(target / relative)
    included = manifest["included"]
    old_root = manifest["deployment"]["root"]
    external: dict[str, str] = included.get("external") or {}
    replacements: list[tuple[str, str]] = [(old_root, str(target))]
    for relative, original in external.items():
        replacements.append((original, str(target / relative)))
    # the deployment's own files, then what lived outside it
    for relative in manifest["files"]:
        if relative.startswith("files/"):
            _copy(backup_dir / relative, target / relative[len("files/"):])
        elif relative.startswith("external/"):
            _copy(backup_dir / relative, target / relative)
    say("ops.restoring_media")
    media_original = included["media_store"]["original"]
    media = _moved(old_root, target, media_original, external, target)
    private_dir(media)
    for relative in manifest["files"]:
        if relative.startswith("media/"):
            _copy(backup_dir / relative, media / relative[len("media/"):])
    if media != Path(media_original):
        replacements.append((media_original, str(media)))
    say("ops.restoring_synapse")
    synapse = included["synapse_database"]
    database_rename: tuple[str, str] | None = None
    if synapse["engine"] == "sqlite":
        path = _moved(old_root, target, synapse["original"], external, target)
        _copy(backup_dir / synapse["backup"], path)
        if path != Path(synapse["original"]):
            replacements.append((synapse["original"], str(path)))
            if not Path(synapse["original"]).is_relative_to(old_root):
                # its folder too (the units' ReadWritePaths= name it)
                replacements.append((str(Path(synapse["original"]).parent), str(path.parent)))
    else:
        params = dict(synapse["original"])
        if postgres_database:
            database_rename = (params["dbname"], postgres_database)
            params["dbname"] = postgres_database
        password = _password_of(target, manifest)
        if password:
            params["password"] = password
        pg_restore(backup_dir / synapse["backup"], params, force)
    for name, store in (included.get("bots") or {}).items():
        if store.get("backup") is None:
            continue  # the bot had never run: it starts afresh, as it would have
        say("ops.restoring_bot", name=name)
        if store["engine"] == "sqlite":
            path = _moved(old_root, target, store["original"], external, target)
            _copy(backup_dir / store["backup"], path)
            if path != Path(store["original"]):
                replacements.append((store["original"], str(path)))
        else:
            # as bots.yaml spells it (a password in it included: the manifest never holds one)
            old_dsn = _bot_dsn(target, name) or Database("postgres", params=store["original"]).dsn
            dsn = bot_postgres.get(name, old_dsn)
            params = dict(part.partition("=")[::2] for part in dsn.split())
            params = {k: v.strip("'") for k, v in params.items()}
            pg_restore(backup_dir / store["backup"], params, force)
            if dsn != old_dsn:
                replacements.append((old_dsn, dsn))
    say("ops.rewriting_paths")
    for path in sorted(target.rglob("*")):
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.parent.name == "logrotate"):
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            new = _rewrite(text, replacements)
            if database_rename is not None:
                new = _rename_database(new, *database_rename)
            if new != text:
                path.write_text(new, encoding="utf-8", errors="surrogateescape")
    for path in [target, *target.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, 0o700 if path.is_dir() else 0o600)


def _keep_key(target: Path, key: bytes) -> None:
    """The restored deployment signs its next backups with the key its backup was checked with."""
    path = target / BACKUP_KEY
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")


def _bot_dsn(target: Path, name: str) -> str | None:
    """The PostgreSQL DSN of bot ``name`` in the restored bots.yaml."""
    try:
        doc = yaml.safe_load((target / "bots.yaml").read_text(encoding="utf-8")) or {}
        dsn = doc["bots"][name]["storage"]["postgres"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    return str(dsn) if dsn else None


def _password_of(target: Path, manifest: dict[str, Any]) -> str | None:
    """The PostgreSQL password the restored configuration gives Synapse (never kept in the manifest)."""
    for relative in manifest["deployment"]["config_files"]:
        try:
            doc = yaml.safe_load((target / relative).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        args = ((doc.get("database") or {}).get("args") or {}) if isinstance(doc, dict) else {}
        if args.get("password"):
            return str(args["password"])
    return os.environ.get("PGPASSWORD")


def _rename_database(text: str, old: str, new: str) -> str:
    """``database: OLD`` (Synapse's psycopg2 args) becomes ``database: NEW``."""
    return re.sub(r"^(\s+(?:database|dbname):\s*['\"]?)" + re.escape(old) + r"(['\"]?\s*)$",
                  lambda m: m.group(1) + new + m.group(2), text, flags=re.M)
