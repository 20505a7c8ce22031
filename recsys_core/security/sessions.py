"""Log-in, attempt throttling and server-side, revocable sessions.

- A session is a random token; only its SHA-256 is stored. It ends after
  ``session_idle_minutes`` without use or ``session_max_hours`` after log-in (settings),
  at log-out (every session of that user) and when the user's password changes or the user is
  removed.
- Failed log-ins slow further tries of that *account* down, from anywhere: after
  ``login_max_failures`` failures within ``login_window_minutes`` each try must wait 1 s, 2 s,
  4 s, ... (at most ``login_backoff_max_seconds``) after the last failure; a try inside the
  wait is refused unchecked and not counted, so it does not lengthen the wait. It is a
  back-off, never a lock: the next try after the wait is checked.
- A source (client address) this account logged in from before, with fewer than
  ``login_max_failures`` failures of its own, is not slowed down by failures from elsewhere:
  someone guessing from another address cannot keep the owner out.
- The source is the connecting address; ``X-Forwarded-For`` is believed only when the
  connection comes from a proxy listed in ``trusted_proxies`` (:func:`client_source`), so a
  client cannot pick its own source, and a same-host proxy does not make everyone one source.
- An admin's password reset (``users passwd``) clears the account's failures.
- A browser may keep the token in a cookie and *resume* the session after a reload
  (:func:`resume`): the token is checked like any request's, and the resumed log-in is
  audited like a log-in with a password; an ended or unknown token is refused (and audited).
- Log-ins, failures, throttled tries and log-outs are written to the audit log.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
from collections.abc import Iterable
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


#: How long a source counts as one the account logged in from before.
KNOWN_SOURCE_DAYS = 90


def _networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                from recsys_core.errors import ConfigError

                raise ConfigError(
                    f"RECSYS_TRUSTED_PROXIES: {part!r} is not an address or network ({exc}); "
                    "list proxies like '127.0.0.1,::1,10.0.0.0/8'"
                ) from None
    return nets


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def client_source(
    peer: str | None,
    forwarded_for: Iterable[str] = (),
    *,
    settings: SecuritySettings | None = None,
) -> str:
    """The client address a request comes from, as the throttling key.

    ``peer`` is the connecting address (``None`` is loopback, as Streamlit reports it).
    ``X-Forwarded-For`` values are believed only hop by hop from the right while the hop that
    added them is a trusted proxy (``trusted_proxies``); the first untrusted address is the
    client. Without trusted proxies the header is ignored.
    """
    cfg = settings or get_settings()
    proxies = _networks(cfg.trusted_proxies)
    hop = _address(peer or "127.0.0.1")
    if hop is None:
        return str(peer)
    chain = [a.strip() for value in forwarded_for for a in str(value).split(",") if a.strip()]
    while proxies and chain and any(hop in net for net in proxies):
        previous = _address(chain.pop())
        if previous is None:  # a malformed entry: the last trusted hop is all we know
            break
        hop = previous
    return str(hop)


def _backoff(failures: int, cfg: SecuritySettings) -> float:
    """Seconds a try must wait after the last of ``failures`` recent failures."""
    extra = failures - cfg.login_max_failures
    if extra < 0:
        return 0.0
    return float(min(cfg.login_backoff_max_seconds, 2.0 ** min(extra, 30)))


def lock_remaining(
    username: str,
    source: str,
    *,
    now: float | None = None,
    settings: SecuritySettings | None = None,
    home: Path | None = None,
) -> float:
    """Seconds until ``username`` may try again from ``source`` (0 when it may now).

    The wait is the account's back-off, skipped for a source the account logged in from
    within :data:`KNOWN_SOURCE_DAYS` that has fewer than ``login_max_failures`` recent
    failures of its own.
    """
    cfg = settings or get_settings()
    t = _now(now)
    with connect(home) as conn:
        rows = conn.execute(
            "SELECT source, at FROM login_failures WHERE username = ? AND at > ?",
            (username, t - cfg.login_window_minutes * 60),
        ).fetchall()
        known = conn.execute(
            "SELECT 1 FROM login_sources WHERE username = ? AND source = ? AND last_success > ?",
            (username, source, t - KNOWN_SOURCE_DAYS * 86400),
        ).fetchone()
    if not rows:
        return 0.0
    own = sum(1 for s, _ in rows if s == source)
    if known and own < cfg.login_max_failures:
        return 0.0
    last = max(at for _, at in rows)
    return max(0.0, last + _backoff(len(rows), cfg) - t)


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
        Wrong name or password (one message for both), or a try inside the back-off.
    """
    cfg = settings or get_settings()
    t = _now(now)
    wait = lock_remaining(username, source, now=t, settings=cfg, home=home)
    if wait > 0:
        audit.record(f"app:{username}", "login-throttled", {"source": source}, home=home)
        raise AuthError(
            f"too many failed log-ins for {username!r}; try again in {max(1, round(wait))} "
            "second(s) (an admin's password reset clears this at once)"
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
                (t - 2 * cfg.login_window_minutes * 60,),
            )
        audit.record(f"app:{username}", "login-failed", {"source": source}, home=home)
        raise AuthError("wrong user name or password")
    token = secrets.token_urlsafe(32)
    with connect(home) as conn:
        conn.execute(
            "DELETE FROM login_failures WHERE username = ? AND source = ?", (username, source)
        )
        conn.execute(
            "INSERT INTO login_sources (username, source, last_success) VALUES (?, ?, ?) "
            "ON CONFLICT (username, source) DO UPDATE SET last_success = excluded.last_success",
            (username, source, t),
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


def resume(
    token: str | None,
    source: str,
    *,
    now: float | None = None,
    settings: SecuritySettings | None = None,
    home: Path | None = None,
) -> Session:
    """Resume a live session from a token the browser kept (a reload of the app).

    Audited as ``login`` with ``"by": "session-cookie"``; the session's lifetime is not
    extended beyond its idle and absolute limits (it only counts as used).

    Raises
    ------
    AuthError
        The token is empty, unknown, or its session has ended (idle, too old, logged out,
        password changed, user removed): the user must log in again. Audited as
        ``login-resume-refused`` (unless the token is empty).
    """
    if not token:
        raise AuthError("no session to resume; log in")
    user = current_user(token, now=now, settings=settings, home=home)
    if user is None:
        audit.record("app:unknown", "login-resume-refused", {"source": source}, home=home)
        raise AuthError("your session has ended; log in again")
    audit.record(
        f"app:{user.username}", "login", {"source": source, "by": "session-cookie"}, home=home
    )
    return Session(token, user)


def expires_at(
    token: str | None,
    *,
    settings: SecuritySettings | None = None,
    home: Path | None = None,
) -> float | None:
    """When the token's session ends at the latest (log-in time + ``session_max_hours``,
    epoch seconds), or ``None`` for an unknown token: a cookie holding it expires then."""
    if not token:
        return None
    cfg = settings or get_settings()
    with connect(home) as conn:
        row = conn.execute(
            "SELECT created FROM sessions WHERE token_hash = ?", (_digest(token),)
        ).fetchone()
    return None if row is None else float(row[0]) + cfg.session_max_hours * 3600


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
