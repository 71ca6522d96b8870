"""``lgwan-chat deploy move-to-postgres OUTDIR --sqlite-database FILE``: from SQLite to PostgreSQL.

Growing from ``size: single`` to ``workers`` moves Synapse's database. Synapse's own tool,
``synapse_port_db``, copies only the tables both sides have, and the suite's module tables
(the record of untrusted media, device zones and approvals, stamps, bookmarks, guests) exist on
PostgreSQL only once the main process has run there, which makes the port collide with the
accounts the modules create. So, with everything stopped:

1. refuse while the deployment runs (a listener answers, or a process holds the SQLite file),
   while Synapse's background updates are pending on SQLite, when a module's tables on SQLite
   are not at this version's schema, or when Synapse has already run on the target database;
2. ``synapse_port_db`` onto the empty database, with a temporary 0600 config (deleted after);
3. refuse if SQLite holds a table neither Synapse nor a module declares (it would be lost);
4. in one PostgreSQL transaction: the modules' tables from their own migrations
   (``synapse_modules.schemas``), every row of each copied, the counts checked per table.

Run again after a complete move, it finds the module tables equal to SQLite's and SQLite's newest
event, account and file on PostgreSQL, and changes nothing; if the module tables hold other rows
(PostgreSQL has been used since), or SQLite has a newer event, account or file (the old deployment
was started again), it refuses.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from lgwan_chat.operations.deployment import Database, DeploymentError, find
from synapse_modules._storage import VERSION_TABLE, migrate
from synapse_modules.schemas import MODULE_SCHEMAS

#: Rows per INSERT when copying a table.
BATCH = 500

Say = Callable[..., None]


def module_tables() -> dict[str, list[str]]:
    """module -> the tables its migrations create (found by running them on an empty SQLite)."""
    conn = sqlite3.connect(":memory:")
    found: dict[str, list[str]] = {}
    try:
        for module, migrations in MODULE_SCHEMAS.items():
            before = _sqlite_tables(conn)
            migrate(conn.cursor(), module, migrations)
            found[module] = sorted(_sqlite_tables(conn) - before - {VERSION_TABLE})
    finally:
        conn.close()
    return found


def copied_tables() -> list[str]:
    """Every module table this tool copies (``lgwan_schema_versions`` is written by the migrations)."""
    return sorted(table for tables in module_tables().values() for table in tables)


def _sqlite_tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


# --- is anything still running? ------------------------------------------------------------------

def listener_ports(root: Path) -> list[int]:
    """The HTTP listeners of the main process and of every worker, as the deployment's files say."""
    synapse = root / "synapse"
    ports: list[int] = []
    for path, key in [(synapse / "deploy.yaml", "listeners"),
                      *((p, "worker_listeners") for p in sorted((synapse / "workers").glob("*.yaml")))]:
        doc = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}
        ports += [int(lst["port"]) for lst in doc.get(key) or [] if isinstance(lst, dict) and "port" in lst]
    return ports


def answering(ports: list[int]) -> list[int]:
    found = []
    for port in ports:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                found.append(port)
    return found


def holders(path: Path) -> list[int]:
    """Processes (that this user may see) with ``path`` or its journal open."""
    names = {str(path.resolve()) + suffix for suffix in ("", "-wal", "-journal")}
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd) in names for fd in (proc / "fd").iterdir()):
                pids.append(int(proc.name))
        except OSError:  # another user's process, or gone meanwhile
            continue
    return pids


def refuse_if_running(root: Path, sqlite_path: Path) -> None:
    if ports := answering(listener_ports(root)):
        raise DeploymentError("deploy.move_running_port", port=ports[0])
    if pids := holders(sqlite_path):
        raise DeploymentError("deploy.move_running_file", pid=pids[0], path=sqlite_path)


# --- the source -----------------------------------------------------------------------------------

def open_sqlite(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise DeploymentError("ops.database_missing", path=path)
    conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
    if "background_updates" not in _sqlite_tables(conn):
        conn.close()
        raise DeploymentError("deploy.move_not_synapse", path=path)
    return conn


def refuse_if_not_ready(conn: sqlite3.Connection) -> None:
    """Synapse's background updates done; each module's tables at this version's schema."""
    pending = [row[0] for row in conn.execute("SELECT update_name FROM background_updates ORDER BY update_name")]
    if pending:
        raise DeploymentError("deploy.move_background_updates", count=len(pending), names=", ".join(pending[:5]))
    if VERSION_TABLE not in _sqlite_tables(conn):
        return  # no module ever ran on it: only their empty tables are made
    for module, version in conn.execute(f"SELECT module, version FROM {VERSION_TABLE}"):
        if module not in MODULE_SCHEMAS:
            raise DeploymentError("deploy.move_unknown_module", module=module)
        if version != len(MODULE_SCHEMAS[module]):
            raise DeploymentError("deploy.move_module_version", module=module, found=version,
                                  expected=len(MODULE_SCHEMAS[module]))


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def sqlite_rows(conn: sqlite3.Connection, table: str, names: list[str]) -> Iterator[list[tuple]]:
    cursor = conn.execute(f"SELECT {', '.join(names)} FROM {table}")
    while batch := cursor.fetchmany(BATCH):
        yield batch


# --- the target -----------------------------------------------------------------------------------

class Qmark:
    """A psycopg2 cursor taking ``?`` parameters, as the modules' migrations are written for Synapse."""

    def __init__(self, cursor: Any):
        self.cursor = cursor

    def execute(self, sql: str, params: tuple | None = None) -> None:
        if params:
            sql = sql.replace("%", "%%").replace("?", "%s")
        self.cursor.execute(sql, params or None)

    def fetchone(self) -> Any:
        return self.cursor.fetchone()


def connect(db: Database) -> Any:
    import psycopg2

    return psycopg2.connect(db.dsn, password=db.params.get("password"))  # None: no password given


def pg_tables(cur: Any) -> set[str]:
    cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
    return {row[0] for row in cur.fetchall()}


def _sorted(rows: list[tuple]) -> list[tuple]:
    return sorted((tuple(row) for row in rows), key=repr)


def compare_module_tables(cur: Any, source: sqlite3.Connection, present: set[str]) -> list[tuple[str, int, int]]:
    """(table, rows on PostgreSQL, rows on SQLite) for each module table whose rows differ."""
    differ = []
    on_sqlite = _sqlite_tables(source)
    for table in copied_tables():
        expected: list[tuple] = []
        found: list[tuple] = []
        if table in on_sqlite:
            select = f"SELECT {', '.join(columns(source, table))} FROM {table}"
            expected = _sorted(source.execute(select).fetchall())
        else:
            select = f"SELECT * FROM {table}"
        if table in present:
            cur.execute(select)
            found = _sorted(cur.fetchall())
        if found != expected:
            differ.append((table, len(found), len(expected)))
    return differ


def _counts(differ: list[tuple[str, int, int]]) -> str:
    return ", ".join(f"{table} ({found}/{expected})" for table, found, expected in differ)


#: Synapse's newest row per table, as (table, key column, order column): if SQLite's is not on
#: PostgreSQL, the SQLite deployment was started again after the move (a message or an account
#: only Synapse's tables hold would be lost by answering "already moved").
NEWEST_ROWS = (("events", "event_id", "stream_ordering"), ("users", "name", "creation_ts"),
               ("local_media_repository", "media_id", "created_ts"))


def used_after_the_move(cur: Any, source: sqlite3.Connection) -> str:
    """"table key" of SQLite's newest row that PostgreSQL lacks, or "" when it has them all."""
    for table, key, order in NEWEST_ROWS:
        row = source.execute(f"SELECT {key} FROM {table} ORDER BY {order} DESC LIMIT 1").fetchone()
        if row is None:
            continue
        cur.execute(f"SELECT 1 FROM {table} WHERE {key} = %s", (row[0],))
        if cur.fetchone() is None:
            return f"{table} {row[0]}"
    return ""


def check_target(cur: Any, source: sqlite3.Connection, database: str) -> bool:
    """True when the move is already complete (module tables equal to SQLite's, SQLite's newest
    event, account and file on PostgreSQL); raises when the target is not an empty database or an
    interrupted move of this one, or when SQLite was used after the move."""
    present = pg_tables(cur)
    if present & ({VERSION_TABLE} | set(copied_tables())):
        differ = compare_module_tables(cur, source, present)
        if differ:
            raise DeploymentError("deploy.move_target_not_empty", tables=_counts(differ))
        newer = used_after_the_move(cur, source)
        if newer:
            raise DeploymentError("deploy.move_sqlite_newer", what=newer)
        return True
    if present and "port_from_sqlite3" not in present:
        raise DeploymentError("deploy.move_synapse_ran", database=database, table=sorted(present)[0])
    return False


def uncovered(source: sqlite3.Connection, synapse_tables: set[str]) -> list[str]:
    """SQLite tables that are neither Synapse's (on PostgreSQL after the port), nor a module's,
    nor SQLite's own (``sqlite_*``, the full-text indexes' shadow tables)."""
    virtual = [row[0] for row in source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")]
    known = synapse_tables | set(copied_tables()) | {VERSION_TABLE}
    return sorted(t for t in _sqlite_tables(source) - known
                  if not t.startswith("sqlite_") and not any(t.startswith(v + "_") for v in virtual))


def copy_module_tables(cur: Any, source: sqlite3.Connection, say: Say) -> None:
    """Create every module's tables from its migrations and copy their rows (the caller commits)."""
    from psycopg2.extras import execute_values

    for module, migrations in MODULE_SCHEMAS.items():
        migrate(Qmark(cur), module, migrations)
    on_sqlite = _sqlite_tables(source)
    for table in copied_tables():
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        already = cur.fetchone()[0]
        expected = source.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] if table in on_sqlite else 0
        if already:
            raise DeploymentError("deploy.move_target_not_empty", tables=_counts([(table, already, expected)]))
        if table in on_sqlite:
            names = columns(source, table)
            cur.execute(f"SELECT * FROM {table} LIMIT 0")
            target = [d[0] for d in cur.description]
            if sorted(target) != sorted(names):
                raise DeploymentError("deploy.move_columns", table=table, postgres=", ".join(target),
                                      sqlite=", ".join(names))
            for batch in sqlite_rows(source, table, names):
                execute_values(cur, f"INSERT INTO {table} ({', '.join(names)}) VALUES %s", batch, page_size=BATCH)
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        copied = cur.fetchone()[0]
        if copied != expected:
            raise DeploymentError("deploy.move_count_mismatch", table=table, copied=copied, expected=expected)
        say("deploy.move_copied", table=table, count=copied)


# --- synapse_port_db ------------------------------------------------------------------------------

def port_config(root: Path) -> dict[str, Any]:
    """What Synapse reads (homeserver.yaml, then deploy.yaml over it), without the modules:
    synapse_port_db reads one file and runs no module."""
    merged: dict[str, Any] = {}
    for name in ("homeserver.yaml", "deploy.yaml"):
        merged.update(yaml.safe_load((root / "synapse" / name).read_text(encoding="utf-8")) or {})
    merged.pop("modules", None)
    # Nothing else uses the database meanwhile: Synapse's background updates on PostgreSQL need
    # not pause between batches (as they do for a live server).
    merged["background_updates"] = {**(merged.get("background_updates") or {}), "sleep_enabled": False}
    return merged


def port_db_command() -> list[str]:
    beside = Path(sys.executable).parent / "synapse_port_db"
    return [str(beside)] if beside.is_file() else [sys.executable, "-m", "synapse._scripts.synapse_port_db"]


def run_port_db(root: Path, sqlite_path: Path, say: Say) -> None:
    logs = root / "logs"
    logs.mkdir(mode=0o700, exist_ok=True)
    log = logs / "move-to-postgres.log"
    say("deploy.move_porting", log=log)
    fd, name = tempfile.mkstemp(prefix=".move-to-postgres-", suffix=".yaml", dir=root / "synapse")  # 0600
    config = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(port_config(root), f, allow_unicode=True, sort_keys=False)
        with open(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
            result = subprocess.run([*port_db_command(), "--sqlite-database", str(sqlite_path),
                                     "--postgres-config", str(config)], cwd=root, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT)
    finally:
        config.unlink(missing_ok=True)
    if result.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        raise DeploymentError("deploy.move_port_failed", code=result.returncode, log=log, tail="\n".join(tail))


# --- the whole move -------------------------------------------------------------------------------

def move(outdir: Path, sqlite_path: Path, say: Say) -> str:
    """Move the deployment in ``outdir`` onto the PostgreSQL database its files name;
    "moved" or "already" (nothing to do). Raises ``DeploymentError`` when it refuses."""
    deployment = find(outdir)
    root = deployment.root
    if deployment.layout != "deploy" or deployment.database.engine != "postgres":
        raise DeploymentError("deploy.move_not_postgres", path=root / "synapse" / "deploy.yaml")
    sqlite_path = sqlite_path.resolve()
    refuse_if_running(root, sqlite_path)
    source = open_sqlite(sqlite_path)
    try:
        refuse_if_not_ready(source)
        target = connect(deployment.database)
        try:
            database = deployment.database.params.get("dbname", "")
            with target.cursor() as cur:
                done = check_target(cur, source, database)
            target.rollback()
            if done:
                return "already"
            run_port_db(root, sqlite_path, say)
            with target.cursor() as cur:
                left = uncovered(source, pg_tables(cur))
                if left:
                    raise DeploymentError("deploy.move_uncovered", tables=", ".join(left))
                source.execute("BEGIN")  # one read snapshot of every module table
                copy_module_tables(cur, source, say)
            target.commit()
            source.rollback()
        finally:
            target.close()
    finally:
        source.close()
    return "moved"
