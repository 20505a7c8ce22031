"""Log-in, attempt throttling and server-side, revocable sessions.

- A session is a random token; only its SHA-256 is stored. It ends after
  ``session_idle_minutes`` without use or ``session_max_hours`` after log-in (settings),
  at log-out (every session of that user) and when the user's password changes or the user is
  removed.
- ``login_max_failures`` failed log-ins for one account from one source within
  ``login_window_minutes`` lock further tries for that account and source until
  ``login_lock_minutes`` after the last failure -- the right password included.
- Log-ins, failures, locks and log-outs are written to the audit log.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from recsys_core.errors import AuthError
from recsys_core.security import audit
from recsys_core.security.db import connect
from recsys_core.security.settings import SecuritySettings, get_settings
from recsys_core.security.users import User, check_password, get_user


@dataclass(frozen=True)
class Session:
    """A logged-in session: the token the client keeps and the user it belongs to."""

    token: str
    user: User


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def lock_remaining(
    username: str,
    source: str,
    *,
    now: float | None = None,
    settings: SecuritySettings | None = None,
    home: Path | None = None,
) -> float:
    """Seconds until ``username`` may try again from ``source`` (0 when not locked)."""
    cfg = settings or get_settings()
    t = _now(now)
    with connect(home) as conn:
        rows = conn.execute(
            "SELECT at FROM login_failures WHERE username = ? AND source = ? AND at > ? "
            "ORDER BY at",
            (username, source, t - cfg.login_window_minutes * 60),
        ).fetchall()
    if len(rows) < cfg.login_max_failures:
        return 0.0
    return max(0.0, rows[-1][0] + cfg.login_lock_minutes * 60 - t)


def login(
    username: str,
    password: str,
    source: str,
    *,
    now: float | None = None,
    settings: SecuritySettings | None = None,
    home: Path | None = None,
) -> Session:
    """Check the password and open a session.

    Raises
    ------
    AuthError
        Wrong name or password (one message for both), or too many recent failures.
    """
    cfg = settings or get_settings()
    t = _now(now)
    wait = lock_remaining(username, source, now=t, settings=cfg, home=home)
    if wait > 0:
        audit.record(f"app:{username}", "login-locked", {"source": source}, home=home)
        raise AuthError(
            f"too many failed log-ins for {username!r}; try again in {wait / 60:.0f} minute(s) "
            "or ask an admin to reset the password"
        )
    user = check_password(username, password, home=home)
    if user is None:
        with connect(home) as conn:
            conn.execute(
                "INSERT INTO login_failures (username, source, at) VALUES (?, ?, ?)",
                (username, source, t),
            )
            conn.execute(
                "DELETE FROM login_failures WHERE at < ?",
                (t - 2 * (cfg.login_window_minutes + cfg.login_lock_minutes) * 60,),
            )
        audit.record(f"app:{username}", "login-failed", {"source": source}, home=home)
        raise AuthError("wrong user name or password")
    token = secrets.token_urlsafe(32)
    with connect(home) as conn:
        conn.execute(
            "DELETE FROM login_failures WHERE username = ? AND source = ?", (username, source)
        )
        conn.execute(
            "INSERT INTO sessions (token_hash, username, source, created, last_seen) "
            "VALUES (?, ?, ?, ?, ?)",
            (_digest(token), username, source, t, t),
        )
    audit.record(f"app:{username}", "login", {"source": source}, home=home)
    return Session(token, user)


def current_user(
    token: str | None,
    *,
    now: float | None = None,
    settings: SecuritySettings | None = None,
    home: Path | None = None,
) -> User | None:
    """The user of a live session (and mark it used), or ``None`` when it has ended."""
    if not token:
        return None
    cfg = settings or get_settings()
    t = _now(now)
    key = _digest(token)
    with connect(home) as conn:
        row = conn.execute(
            "SELECT username, created, last_seen FROM sessions WHERE token_hash = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        username, created, last_seen = row
        idle = t - last_seen > cfg.session_idle_minutes * 60
        if idle or t - created > cfg.session_max_hours * 3600:
            conn.execute("DELETE FROM sessions WHERE token_hash = ?", (key,))
            return None
        conn.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (t, key))
    return get_user(username, home=home)


def logout(token: str | None, *, home: Path | None = None) -> None:
    """End every session of the token's user (log-out everywhere)."""
    if not token:
        return
    with connect(home) as conn:
        row = conn.execute(
            "SELECT username FROM sessions WHERE token_hash = ?", (_digest(token),)
        ).fetchone()
        if row is None:
            return
        conn.execute("DELETE FROM sessions WHERE username = ?", (row[0],))
    audit.record(f"app:{row[0]}", "logout", {}, home=home)


def end_sessions(username: str, *, home: Path | None = None) -> int:
    """End every session of ``username``; the number ended."""
    with connect(home) as conn:
        return conn.execute("DELETE FROM sessions WHERE username = ?", (username,)).rowcount


def change_password(
    token: str | None, old_password: str, new_password: str, *, home: Path | None = None
) -> None:
    """A logged-in user changes their own password; every session of theirs ends."""
    from recsys_core.security.users import set_password

    user = current_user(token, home=home)
    if user is None:
        raise AuthError("your session has ended; log in again")
    if check_password(user.username, old_password, home=home) is None:
        audit.record(f"app:{user.username}", "password-change-failed", {}, home=home)
        raise AuthError("the current password is wrong")
    set_password(user.username, new_password, home=home)
    audit.record(f"app:{user.username}", "password-changed", {"user": user.username}, home=home)
