"""Resuming a session from the token a browser kept in its cookie (issue 24, defect 2).

The token is checked server-side like any request's: an ended (idle, too old), revoked (log-out,
password change, user removed) or unknown token is refused and audited; a live one resumes the
session and is audited like a log-in with a password.
"""

from __future__ import annotations

import pytest

from recsys_core.errors import AuthError
from recsys_core.security import audit, sessions, users
from recsys_core.security.settings import SecuritySettings

PW = "correct horse"
T0 = 1_800_000_000.0
CFG = SecuritySettings(session_idle_minutes=30, session_max_hours=12)


@pytest.fixture()
def token() -> str:
    users.add_user("ann", PW, "viewer")
    return sessions.login("ann", PW, "10.0.0.1", now=T0, settings=CFG).token


def test_a_live_token_resumes_the_session_and_is_audited_as_a_log_in(token: str) -> None:
    session = sessions.resume(token, "10.0.0.9", now=T0 + 60, settings=CFG)
    assert session.token == token and session.user.username == "ann"
    row = audit.read(limit=1)[0]
    assert row["action"] == "login" and row["actor"] == "app:ann"
    assert "session-cookie" in row["detail"] and "10.0.0.9" in row["detail"]
    assert PW not in row["detail"] and token not in row["detail"]


@pytest.mark.parametrize(
    ("later", "why"),
    [(31 * 60, "idle"), (12 * 3600 + 1, "too old")],
)
def test_an_ended_session_is_not_resumed(token: str, later: float, why: str) -> None:
    if why == "too old":  # used every 20 minutes, so only the absolute lifetime ends it
        t = T0
        while t + 20 * 60 < T0 + later:
            t += 20 * 60
            sessions.current_user(token, now=t, settings=CFG)
    with pytest.raises(AuthError, match="session has ended"):
        sessions.resume(token, "10.0.0.1", now=T0 + later, settings=CFG)
    assert audit.read(limit=1)[0]["action"] == "login-resume-refused"


def test_a_revoked_token_is_not_resumed(token: str) -> None:
    sessions.logout(token)
    with pytest.raises(AuthError, match="session has ended"):
        sessions.resume(token, "10.0.0.1")
    assert audit.read(limit=1)[0]["action"] == "login-resume-refused"


def test_a_removed_user_or_a_changed_password_ends_the_cookie_too(token: str) -> None:
    sessions.change_password(token, PW, "another long password")
    with pytest.raises(AuthError):
        sessions.resume(token, "10.0.0.1")
    fresh = sessions.login("ann", "another long password", "10.0.0.1").token
    users.remove_user("ann")
    with pytest.raises(AuthError):
        sessions.resume(fresh, "10.0.0.1")


@pytest.mark.parametrize("forged", ["", None, "x" * 43, "not-a-token-at-all-but-long-enough"])
def test_an_unknown_or_empty_token_is_refused(token: str, forged: str | None) -> None:
    with pytest.raises(AuthError):
        sessions.resume(forged, "10.0.0.1")
    assert sessions.current_user(token) is not None  # the real session is untouched


def test_the_cookie_expires_when_the_session_ends_at_the_latest(token: str) -> None:
    assert sessions.expires_at(token, settings=CFG) == T0 + 12 * 3600
    assert sessions.expires_at("unknown-token-" + "x" * 30, settings=CFG) is None
    assert sessions.expires_at(None) is None
