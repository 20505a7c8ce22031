"""Users, Argon2id hashes, sessions (idle, absolute, log-out, password change) and throttling."""

from __future__ import annotations

import sqlite3

import pytest
from argon2 import PasswordHasher

from recsys_core.errors import AuthError, ConfigError
from recsys_core.security import audit, sessions, users
from recsys_core.security.db import db_path
from recsys_core.security.settings import SecuritySettings

PW = "correct horse"
T0 = 1_800_000_000.0


def _stored_hash(name: str) -> str:
    with sqlite3.connect(db_path()) as conn:
        return str(
            conn.execute("SELECT password_hash FROM users WHERE username = ?", (name,)).fetchone()[
                0
            ]
        )


def test_passwords_are_argon2id_with_owasp_parameters() -> None:
    users.add_user("ann", PW, "analyst")
    digest = _stored_hash("ann")
    assert digest.startswith("$argon2id$") and "m=19456,t=2,p=1" in digest
    assert PW not in digest
    PasswordHasher().verify(digest, PW)
    assert users.check_password("ann", PW) is not None
    assert users.check_password("ann", "wrong password") is None


def test_roles_nest_and_unknown_roles_and_short_passwords_are_refused() -> None:
    assert users.role_allows("admin", "analyst") and users.role_allows("analyst", "viewer")
    assert not users.role_allows("viewer", "analyst") and not users.role_allows(None, "viewer")
    with pytest.raises(ConfigError, match="unknown role"):
        users.add_user("bob", PW, "superuser")
    with pytest.raises(ConfigError, match="at least 8"):
        users.add_user("bob", "short", "viewer")
    users.add_user("bob", PW, "viewer")
    with pytest.raises(ConfigError, match="already exists"):
        users.add_user("bob", PW, "admin")
    users.set_role("bob", "admin")
    assert users.get_user("bob").role == "admin"  # type: ignore[union-attr]


def test_a_session_ends_after_the_idle_time() -> None:
    users.add_user("ann", PW, "viewer")
    cfg = SecuritySettings(session_idle_minutes=30)
    s = sessions.login("ann", PW, "127.0.0.1", now=T0, settings=cfg)
    assert sessions.current_user(s.token, now=T0 + 29 * 60, settings=cfg) is not None
    # used at +29 min: idle counts from there
    assert sessions.current_user(s.token, now=T0 + 58 * 60, settings=cfg) is not None
    assert sessions.current_user(s.token, now=T0 + 89 * 60, settings=cfg) is None
    assert sessions.current_user(s.token, now=T0 + 60 * 60, settings=cfg) is None  # gone for good


def test_a_session_ends_after_the_absolute_lifetime_even_when_used() -> None:
    users.add_user("ann", PW, "viewer")
    cfg = SecuritySettings(session_idle_minutes=30, session_max_hours=12)
    s = sessions.login("ann", PW, "127.0.0.1", now=T0, settings=cfg)
    t = T0
    while t < T0 + 12 * 3600 - 20 * 60:
        t += 20 * 60
        assert sessions.current_user(s.token, now=t, settings=cfg) is not None
    assert sessions.current_user(s.token, now=T0 + 12 * 3600 + 1, settings=cfg) is None


def test_log_out_ends_every_session_of_the_user() -> None:
    users.add_user("ann", PW, "viewer")
    users.add_user("bob", PW, "viewer")
    laptop = sessions.login("ann", PW, "10.0.0.1")
    phone = sessions.login("ann", PW, "10.0.0.2")
    other = sessions.login("bob", PW, "10.0.0.1")
    sessions.logout(laptop.token)
    assert sessions.current_user(laptop.token) is None
    assert sessions.current_user(phone.token) is None  # the token still held elsewhere
    assert sessions.current_user(other.token) is not None
    assert [r["action"] for r in audit.read(actor="app:ann")][0] == "logout"


def test_a_password_change_ends_every_session_of_the_user() -> None:
    users.add_user("ann", PW, "viewer")
    first = sessions.login("ann", PW, "10.0.0.1")
    second = sessions.login("ann", PW, "10.0.0.2")
    sessions.change_password(first.token, PW, "a new passphrase")
    assert sessions.current_user(first.token) is None
    assert sessions.current_user(second.token) is None
    with pytest.raises(AuthError):
        sessions.login("ann", PW, "10.0.0.1")
    assert sessions.login("ann", "a new passphrase", "10.0.0.1").user.username == "ann"
    # an admin's reset from the CLI does the same
    third = sessions.login("ann", "a new passphrase", "10.0.0.3")
    users.set_password("ann", "yet another one")
    assert sessions.current_user(third.token) is None


def test_five_failures_per_account_and_source_lock_further_tries() -> None:
    users.add_user("ann", PW, "viewer")
    cfg = SecuritySettings()
    for i in range(5):
        with pytest.raises(AuthError, match="wrong user name or password"):
            sessions.login("ann", f"guess {i}", "10.0.0.9", now=T0 + i, settings=cfg)
    # the right password is refused too while locked, from that source
    with pytest.raises(AuthError, match="too many failed log-ins"):
        sessions.login("ann", PW, "10.0.0.9", now=T0 + 60, settings=cfg)
    # another source is not locked out by this one
    assert sessions.login("ann", PW, "10.0.0.10", now=T0 + 60, settings=cfg)
    # the lock lifts after login_lock_minutes
    assert sessions.login("ann", PW, "10.0.0.9", now=T0 + 4 + 15 * 60 + 1, settings=cfg)
    actions = [r["action"] for r in audit.read(actor="app:ann", limit=100)]
    assert actions.count("login-failed") == 5 and "login-locked" in actions


def test_four_failures_do_not_lock_and_old_failures_fall_out_of_the_window() -> None:
    users.add_user("ann", PW, "viewer")
    cfg = SecuritySettings()
    for i in range(4):
        with pytest.raises(AuthError):
            sessions.login("ann", "nope nope", "s", now=T0 + i, settings=cfg)
    assert sessions.login("ann", PW, "s", now=T0 + 10, settings=cfg)  # and it resets them
    for i in range(4):
        with pytest.raises(AuthError):
            sessions.login("ann", "nope nope", "s", now=T0 + 20 + i, settings=cfg)
    with pytest.raises(AuthError, match="wrong"):  # 5th failure, 16 minutes after the first 4
        sessions.login("ann", "nope nope", "s", now=T0 + 20 + 16 * 60, settings=cfg)
    assert sessions.login("ann", PW, "s", now=T0 + 21 + 16 * 60, settings=cfg)


def test_unknown_users_get_the_same_message_and_are_throttled_too() -> None:
    users.add_user("ann", PW, "viewer")
    with pytest.raises(AuthError) as unknown:
        sessions.login("nobody", PW, "s")
    with pytest.raises(AuthError) as wrong:
        sessions.login("ann", "bad password", "s")
    assert str(unknown.value) == str(wrong.value)


def test_removing_a_user_ends_their_sessions() -> None:
    users.add_user("ann", PW, "viewer")
    s = sessions.login("ann", PW, "s")
    users.remove_user("ann")
    assert sessions.current_user(s.token) is None


def test_only_the_token_hash_is_stored() -> None:
    users.add_user("ann", PW, "viewer")
    s = sessions.login("ann", PW, "s")
    raw = db_path().read_bytes()
    assert s.token.encode() not in raw


def test_the_database_and_its_journal_files_are_private() -> None:
    import stat

    users.add_user("ann", PW, "viewer")
    sessions.login("ann", PW, "s")
    files = [p for p in db_path().parent.glob(db_path().name + "*")]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), [
        (p.name, oct(p.stat().st_mode)) for p in files
    ]
