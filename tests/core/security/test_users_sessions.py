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


def test_failures_back_off_the_account_and_the_wait_is_never_a_lock() -> None:
    users.add_user("ann", PW, "viewer")
    cfg = SecuritySettings()
    for i in range(5):
        with pytest.raises(AuthError, match="wrong user name or password"):
            sessions.login("ann", f"guess {i}", "10.0.0.9", now=T0 + i, settings=cfg)
    # inside the back-off every try is refused unchecked (the right password too) ...
    with pytest.raises(AuthError, match="try again in 1 second"):
        sessions.login("ann", PW, "10.0.0.10", now=T0 + 4.5, settings=cfg)
    # ... and refused tries do not lengthen it: after the wait the try is checked
    assert sessions.login("ann", PW, "10.0.0.9", now=T0 + 6, settings=cfg)
    actions = [r["action"] for r in audit.read(actor="app:ann", limit=100)]
    assert actions.count("login-failed") == 5 and "login-throttled" in actions


def test_the_wait_doubles_and_is_capped() -> None:
    users.add_user("ann", PW, "viewer")
    cfg = SecuritySettings(login_backoff_max_seconds=8)
    t = T0
    waits = []
    for i in range(10):
        t += sessions.lock_remaining("ann", "10.0.0.9", now=t, settings=cfg)
        with pytest.raises(AuthError, match="wrong"):
            sessions.login("ann", f"guess {i}", "10.0.0.9", now=t, settings=cfg)
        waits.append(sessions.lock_remaining("ann", "10.0.0.9", now=t, settings=cfg))
    assert waits == [0, 0, 0, 0, 1, 2, 4, 8, 8, 8]


def test_someone_guessing_from_a_shared_proxy_cannot_lock_the_admin_out() -> None:
    """Issue 23 item 8: behind a same-host proxy every try came from "unknown"; five wrong
    passwords locked the admin out for 15 minutes and `users passwd` did not clear it."""
    users.add_user("root", PW, "admin")
    cfg = SecuritySettings()
    proxy = SecuritySettings(trusted_proxies="127.0.0.1,::1")
    admin = sessions.client_source(None, ["203.0.113.7"], settings=proxy)
    attacker = sessions.client_source(None, ["198.51.100.66"], settings=proxy)
    assert (admin, attacker) == ("203.0.113.7", "198.51.100.66")
    assert sessions.login("root", PW, admin, now=T0, settings=cfg)  # a source used before
    for i in range(50):  # the attacker keeps guessing, never waiting
        with pytest.raises(AuthError):
            sessions.login("root", f"guess {i}", attacker, now=T0 + 10 + i, settings=cfg)
    assert sessions.lock_remaining("root", attacker, now=T0 + 60, settings=cfg) > 0
    assert sessions.login("root", PW, admin, now=T0 + 60, settings=cfg)  # not kept out
    # a source the admin never used waits at most the back-off's cap, never 15 minutes
    assert sessions.lock_remaining("root", "192.0.2.1", now=T0 + 60, settings=cfg) <= 60
    assert sessions.login("root", PW, "192.0.2.1", now=T0 + 60 + 61, settings=cfg)
    # an admin's password reset clears the failures at once, as the message says
    for i in range(6):
        t = T0 + 200 + i * 100
        with pytest.raises(AuthError):
            sessions.login("root", f"again {i}", attacker, now=t, settings=cfg)
    assert sessions.lock_remaining("root", "192.0.2.2", now=t + 0.5, settings=cfg) > 0
    users.set_password("root", "a fresh passphrase")
    assert sessions.lock_remaining("root", "192.0.2.2", now=t + 0.5, settings=cfg) == 0


def test_forwarded_addresses_are_believed_only_from_a_configured_proxy() -> None:
    none = SecuritySettings()
    proxy = SecuritySettings(trusted_proxies="127.0.0.1, ::1, 10.0.0.0/8")
    # no proxy configured: the header is the client's own claim and is ignored
    assert sessions.client_source("198.51.100.5", ["203.0.113.7"], settings=none) == (
        "198.51.100.5"
    )
    assert sessions.client_source(None, ["203.0.113.7"], settings=none) == "127.0.0.1"
    # from a trusted proxy: the right-most untrusted hop is the client, a spoofed left part is not
    spoofed = ["1.2.3.4, 203.0.113.7", "10.0.0.2"]
    assert sessions.client_source(None, spoofed, settings=proxy) == "203.0.113.7"
    assert sessions.client_source("198.51.100.5", spoofed, settings=proxy) == "198.51.100.5"
    assert sessions.client_source("::1", ["garbage"], settings=proxy) == "::1"
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        sessions.client_source(None, [], settings=SecuritySettings(trusted_proxies="nope"))


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
