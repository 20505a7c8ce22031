"""The security database: ``$RECSYS_HOME/security.db`` (SQLite) with users, sessions,
failed log-ins and the audit log.

Every call opens its own short-lived connection (SQLite in WAL mode), so the app, the CLI
and the REST API can share the file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from recsys_core.paths import recsys_home

DB_NAME = "security.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'analyst', 'admin')),
    password_hash TEXT NOT NULL,
    created REAL NOT NULL,
    password_changed REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    source TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (username);
CREATE TABLE IF NOT EXISTS login_failures (
    username TEXT NOT NULL,
    source TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (username, source, at);
CREATE TABLE IF NOT EXISTS login_sources (
    username TEXT NOT NULL,
    source TEXT NOT NULL,
    last_success REAL NOT NULL,
    PRIMARY KEY (username, source)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
"""

#: The triggers that keep the audit table append-only (created inside the write transaction,
#: so finding one missing and putting it back is recorded in the log, never silent).
TRIGGERS: dict[str, str] = {
    "audit_no_update": "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: rows cannot be changed'); END",
    "audit_no_delete": "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: rows cannot be deleted'); END",
}


def missing_triggers(conn: sqlite3.Connection) -> list[str]:
    """The append-only triggers that are not in the database."""
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    return [name for name in TRIGGERS if name not in have]


def _restore_triggers(conn: sqlite3.Connection, home: Path | None) -> None:
    """Put missing append-only triggers back; when the log already had rows, someone removed
    them, so that is written to the log itself (``audit-triggers-recreated``).

    The row is written by :mod:`recsys_core.security.audit` through the hook it registers when
    imported; a process that never imported it leaves damaged triggers as they are (``audit
    verify`` reports them) rather than putting them back silently.
    """
    missing = missing_triggers(conn)
    if not missing:
        return
    has_rows = conn.execute("SELECT 1 FROM audit LIMIT 1").fetchone() is not None
    if has_rows and _triggers_recreated_hook is None:
        return
    for name in missing:
        conn.execute(TRIGGERS[name])
    if has_rows and _triggers_recreated_hook is not None:
        _triggers_recreated_hook(conn, missing, home)


#: Writes the ``audit-triggers-recreated`` row; set by :mod:`recsys_core.security.audit` (the
#: audit log owns its rows; this module only owns the connection and schema).
_triggers_recreated_hook: Callable[[sqlite3.Connection, list[str], Path | None], None] | None = None


def on_triggers_recreated(
    hook: Callable[[sqlite3.Connection, list[str], Path | None], None],
) -> None:
    """Register what writes the log row when missing triggers were put back."""
    global _triggers_recreated_hook
    _triggers_recreated_hook = hook


#: A file whose identity changes whenever a credential is withdrawn or changed (a key revoked,
#: a user added or removed, a role changed): long-lived readers (the REST API's key cache)
#: compare :func:`credentials_stamp` before trusting what they cached.
CREDENTIALS_STAMP = "credentials.stamp"


def credentials_changed(home: Path | None = None) -> None:
    """Say that credentials changed (a new file replaces the stamp: new inode and time)."""
    folder = home or recsys_home()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CREDENTIALS_STAMP
    tmp = folder / f".{CREDENTIALS_STAMP}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, os.urandom(8).hex().encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def credentials_stamp_path(home: Path | None = None) -> Path:
    """``$RECSYS_HOME/credentials.stamp`` (resolve it once, then :func:`credentials_stamp`)."""
    return (home or recsys_home()) / CREDENTIALS_STAMP


def credentials_stamp(path: str | Path) -> tuple[int, int]:
    """The stamp file's identity (inode, modification time in ns); ``(0, 0)`` when there is
    none. One ``stat``: cheap enough to check on every request."""
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0)
    return (st.st_ino, st.st_mtime_ns)


def db_path(home: Path | None = None) -> Path:
    """``$RECSYS_HOME/security.db``."""
    return (home or recsys_home()) / DB_NAME


@contextmanager
def read_only(home: Path | None = None) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection (``None`` when there is no database yet): no schema script, no
    write lock. :func:`connect` takes the write lock (``BEGIN IMMEDIATE``) to put the schema
    and triggers in place, so a lookup through it waits behind the audit writer's commit; in
    WAL mode a reader never does. For the REST API's per-request lookups (keys, users)."""
    path = db_path(home)
    if not path.exists():
        yield None
        return
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def connect(home: Path | None = None) -> Iterator[sqlite3.Connection]:
    """A connection with the schema in place; commits on success, rolls back on error."""
    path = db_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():  # 0600 from the start; SQLite gives its -wal/-shm files the same mode
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        try:
            _restore_triggers(conn, home)
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()
