"""API keys of the REST API: one random key per call of :func:`create_key`, owned by a user.

Only the SHA-256 of a key is stored; the key itself is shown once, when it is made. A key
acts with its owner's role; removing the user or :func:`revoke_keys` ends it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from pathlib import Path

from recsys_core.errors import ConfigError
from recsys_core.security.db import connect
from recsys_core.security.users import User, get_user

PREFIX = "rk_"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(username: str, home: Path | None = None) -> str:
    """A new API key for ``username`` (returned once; only its hash is kept)."""
    if get_user(username, home) is None:
        raise ConfigError(f"no user {username!r}; `python -m recsys_core users list` shows them")
    key = PREFIX + secrets.token_urlsafe(32)
    with connect(home) as conn:
        conn.execute(
            "INSERT INTO api_keys (key_hash, username, created) VALUES (?, ?, ?)",
            (_digest(key), username, time.time()),
        )
    return key


def user_for_key(key: str | None, home: Path | None = None) -> User | None:
    """The owner of an API key, or ``None`` for a missing, unknown or revoked key."""
    if not key:
        return None
    with connect(home) as conn:
        row = conn.execute(
            "SELECT username FROM api_keys WHERE key_hash = ?", (_digest(key),)
        ).fetchone()
    return get_user(row[0], home) if row else None


def revoke_keys(username: str, home: Path | None = None) -> int:
    """End every API key of ``username``; the number ended."""
    with connect(home) as conn:
        return conn.execute("DELETE FROM api_keys WHERE username = ?", (username,)).rowcount
