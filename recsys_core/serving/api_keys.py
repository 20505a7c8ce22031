"""API keys of the REST API: one or more per user of the users database (issue 11's).

A key is a random token shown once when it is created; only its SHA-256 is stored, in the
same SQLite database as the users (``$RECSYS_HOME/security.db``, table ``api_keys``). A key
acts with its owner's role at the time of the request, so removing the user or lowering the
role takes effect at once; removing the user also makes their keys useless.

``python -m recsys_core api-key create|list|revoke`` manages them (admin work, audited).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from recsys_core.errors import ConfigError
from recsys_core.security.db import connect, credentials_changed, read_only
from recsys_core.security.users import User, get_user

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
)
"""


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never the key itself): its public id, owner and label."""

    key_id: str
    username: str
    label: str
    created: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _table(conn: sqlite3.Connection) -> sqlite3.Connection:
    conn.execute(_SCHEMA)
    return conn


def create_key(username: str, label: str = "", home: Path | None = None) -> tuple[str, ApiKey]:
    """A new key for an existing user: ``(token shown once, its stored record)``.

    Raises
    ------
    ConfigError
        No such user.
    """
    if get_user(username, home) is None:
        raise ConfigError(f"no user {username!r}: add it first with `users add`")
    key_id = secrets.token_hex(4)
    token = f"rk_{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKey(key_id, username, label, time.time())
    with connect(home) as conn:
        _table(conn).execute(
            "INSERT INTO api_keys (key_hash, key_id, username, label, created) "
            "VALUES (?, ?, ?, ?, ?)",
            (_digest(token), key_id, username, label, record.created),
        )
    return token, record


def list_keys(home: Path | None = None) -> list[ApiKey]:
    """Every stored key record, by owner."""
    with connect(home) as conn:
        rows = (
            _table(conn)
            .execute(
                "SELECT key_id, username, label, created FROM api_keys ORDER BY username, created"
            )
            .fetchall()
        )
    return [ApiKey(*row) for row in rows]


def revoke_key(key_id: str, home: Path | None = None) -> None:
    """Delete a key by its id (the ``rk_<id>_`` part).

    Raises
    ------
    ConfigError
        No key with that id.
    """
    with connect(home) as conn:
        gone = _table(conn).execute("DELETE FROM api_keys WHERE key_id = ?", (key_id,)).rowcount
    if not gone:
        raise ConfigError(f"no API key with id {key_id!r} (see `api-key list`)")
    credentials_changed(home)  # a running API drops the key now, not after its cache time


def user_for_key(token: str | None, home: Path | None = None) -> User | None:
    """The user a key belongs to (with their current role), or ``None``."""
    if not token:
        return None
    # read-only: a per-request lookup must not queue behind the audit writer's write lock
    with read_only(home) as conn:
        if conn is None:
            return None
        try:
            row = conn.execute(
                "SELECT u.username, u.role, u.created, u.password_changed FROM api_keys k "
                "JOIN users u ON u.username = k.username WHERE k.key_hash = ?",
                (_digest(token),),
            ).fetchone()
        except sqlite3.OperationalError:  # no such table yet: no keys
            return None
    return User(*row) if row else None
