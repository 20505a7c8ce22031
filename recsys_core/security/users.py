"""Users and roles, with Argon2id password hashes (OWASP's minimum: 19 MiB, 2 passes, 1 lane).

Roles, each including the ones before it:

- ``viewer``: browse recommendations, similar items and search; shoppers shown as pseudonyms;
- ``analyst``: also upload data, train, evaluate and export reports;
- ``admin``: also operations (activate, rollback, restore), users, the audit log, and reveal a
  real shopper id (audited).
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from recsys_core.errors import AuthError, ConfigError
from recsys_core.security.db import connect, credentials_changed, read_only

ROLES: tuple[str, ...] = ("viewer", "analyst", "admin")
MIN_PASSWORD_LENGTH = 8
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")

#: Argon2id with OWASP's minimum parameters: 19 MiB memory, 2 iterations, 1 degree of parallelism.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@cache
def _dummy_hash() -> str:
    """A hash verified when the user does not exist, so both cases take the same time (made
    at the first log-in, not at import: the app's first page in local mode never needs it)."""
    return HASHER.hash("not a password of anyone")


@dataclass(frozen=True)
class User:
    """A user of the lab (never carries the password hash out of this module)."""

    username: str
    role: str
    created: float
    password_changed: float


def role_allows(role: str | None, needed: str) -> bool:
    """Whether ``role`` includes ``needed`` (admin > analyst > viewer)."""
    if role not in ROLES or needed not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)


def _check_name(username: str) -> str:
    if not _NAME.match(username or ""):
        raise ConfigError(f"invalid user name {username!r}: use 1-64 letters, digits or . _ @ -")
    return username


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}; choose one of {list(ROLES)}")
    return role


def _check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return password


def any_users(home: Path | None = None) -> bool:
    """Whether at least one user exists (the app then asks for a log-in). Read-only: the
    REST API asks on its request path, and must not wait behind the audit writer."""
    with read_only(home) as conn:
        if conn is None:
            return False
        try:
            return conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None
        except sqlite3.OperationalError:  # no users table yet
            return False


def add_user(username: str, password: str, role: str, home: Path | None = None) -> User:
    """Create a user; a taken name is an error."""
    _check_name(username)
    _check_role(role)
    digest = HASHER.hash(_check_password(password))
    now = time.time()
    with connect(home) as conn:
        if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
            raise ConfigError(
                f"user {username!r} already exists; use `users passwd` or `users role`"
            )
        conn.execute(
            "INSERT INTO users (username, role, password_hash, created, password_changed) "
            "VALUES (?, ?, ?, ?, ?)",
            (username, role, digest, now, now),
        )
    credentials_changed(home)  # the first user turns a local-only API to keys-required
    return User(username, role, now, now)


def get_user(username: str, home: Path | None = None) -> User | None:
    """The user named ``username``, or ``None``."""
    with connect(home) as conn:
        row = conn.execute(
            "SELECT username, role, created, password_changed FROM users WHERE username = ?",
            (username,),
        ).fetchone()
    return User(*row) if row else None


def list_users(home: Path | None = None) -> list[User]:
    """Every user, by name."""
    with connect(home) as conn:
        rows = conn.execute(
            "SELECT username, role, created, password_changed FROM users ORDER BY username"
        ).fetchall()
    return [User(*r) for r in rows]


def _require(conn: object, username: str) -> None:
    row = conn.execute(  # type: ignore[attr-defined]
        "SELECT 1 FROM users WHERE username = ?", (username,)
    ).fetchone()
    if row is None:
        raise ConfigError(f"no user {username!r}; `python -m recsys_core users list` shows them")


def remove_user(username: str, home: Path | None = None) -> None:
    """Delete a user and end every session of theirs."""
    with connect(home) as conn:
        _require(conn, username)
        conn.execute("DELETE FROM users WHERE username = ?", (username,))
        conn.execute("DELETE FROM sessions WHERE username = ?", (username,))
        conn.execute("DELETE FROM login_failures WHERE username = ?", (username,))
        conn.execute("DELETE FROM login_sources WHERE username = ?", (username,))
    credentials_changed(home)  # a running API drops their keys now


def set_role(username: str, role: str, home: Path | None = None) -> None:
    """Change a user's role (their sessions see the new role on the next request)."""
    _check_role(role)
    with connect(home) as conn:
        _require(conn, username)
        conn.execute("UPDATE users SET role = ? WHERE username = ?", (role, username))
    credentials_changed(home)  # a running API sees the new role now


def set_password(username: str, password: str, home: Path | None = None) -> None:
    """Change a user's password, end every session of theirs and clear their failed log-ins
    (an admin's reset lifts the back-off, as the log-in message says)."""
    digest = HASHER.hash(_check_password(password))
    with connect(home) as conn:
        _require(conn, username)
        conn.execute(
            "UPDATE users SET password_hash = ?, password_changed = ? WHERE username = ?",
            (digest, time.time(), username),
        )
        conn.execute("DELETE FROM sessions WHERE username = ?", (username,))
        conn.execute("DELETE FROM login_failures WHERE username = ?", (username,))


def check_password(username: str, password: str, home: Path | None = None) -> User | None:
    """The user when ``password`` is theirs, else ``None`` (same work for unknown users)."""
    with connect(home) as conn:
        row = conn.execute(
            "SELECT username, role, created, password_changed, password_hash FROM users "
            "WHERE username = ?",
            (username,),
        ).fetchone()
    digest = row[4] if row else _dummy_hash()
    try:
        HASHER.verify(digest, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if HASHER.check_needs_rehash(digest):
        with connect(home) as conn:
            conn.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?",
                (HASHER.hash(password), username),
            )
    return User(*row[:4])


def require_role(user: User | None, needed: str) -> User:
    """``user`` when their role includes ``needed``; otherwise :class:`AuthError`."""
    if user is None:
        raise AuthError("log in first")
    if not role_allows(user.role, needed):
        raise AuthError(
            f"{user.username} is a {user.role}; this needs the {needed} role (ask an admin)"
        )
    return user
