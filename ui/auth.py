"""Log-in, roles and pseudonyms in the app (the rules live in :mod:`recsys_core.security`).

- With no users the app runs in *local single-user mode*: no log-in, real shopper ids, a
  banner saying so, and it refuses to serve on an address other than loopback.
- As soon as one user exists every session must log in. The router (``app.py``) shows only
  the pages the user's role allows, and refuses -- server-side, on every run -- a page opened
  by its URL that the role does not allow.
- Logged-in users see shoppers as keyed pseudonyms (:func:`shown_id`); an admin can reveal
  one real id, which is audited.

Per-user state (the session token, revealed ids) lives in ``st.session_state``. The browser
also keeps the session token (never the password) in a ``SameSite=Strict`` cookie that
expires with the session, so a reload resumes the session (:func:`resume_from_cookie`,
checked and audited server-side by :func:`recsys_core.security.sessions.resume`); log-out
clears it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from email.utils import formatdate
from typing import Any

import pandas as pd
import streamlit as st

from recsys_core.columns import Columns
from recsys_core.errors import AuthError, RecsysError
from recsys_core.security import audit, sessions
from recsys_core.security.pseudonyms import pseudonym, pseudonym_key
from recsys_core.security.users import User, any_users, role_allows

TOKEN = "auth_token"
REVEALED = "auth_revealed"
#: The titles of the pages this session's navigation shows (read by the tests).
VISIBLE_PAGES = "auth_visible_pages"
LAST_AUDITED = "auth_last_audited"
#: Set once this browser connection has tried the session cookie (a reload is a new one).
COOKIE_TRIED = "auth_cookie_tried"
#: Set when the browser's session cookie must be cleared (log-out, ended or unknown token).
CLEAR_COOKIE = "auth_clear_cookie"
#: (token, when its session ends at the latest) of the cookie this connection writes.
COOKIE_EXPIRES = "auth_cookie_expires"
#: What a session token looks like (``secrets.token_urlsafe``): anything else is not one.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,128}")

#: The role each page needs, by url path (a page not listed needs ``admin``: fail closed).
PAGE_ROLES: dict[str, str] = {
    "": "viewer",  # the root URL (the default page's url path is empty): opens the Overview
    "home": "viewer",
    "decision": "viewer",
    "planner": "viewer",
    "merchandising": "viewer",  # read-only for viewers; saving needs analyst (the store checks)
    "overview": "viewer",
    "shopper": "viewer",
    "similar": "viewer",
    "search": "viewer",
    "explanations": "viewer",
    "data": "analyst",
    "model_lab": "analyst",
    "operations": "admin",
    "users": "admin",
    "audit": "admin",
}
#: Pages that only make sense once users exist.
USER_ADMIN_PAGES = frozenset({"users", "audit"})
LOCAL_MODE = (
    "Local single-user mode: no users exist, so nobody logs in and shopper ids are shown as "
    "they are. Create the first admin with `python -m recsys_core users add NAME --role admin` "
    "to turn on log-ins, roles and pseudonyms."
)


def login_enabled() -> bool:
    """Whether the app asks for a log-in (at least one user exists)."""
    return any_users()


def page_role(url_path: str) -> str:
    """The role a page needs (``admin`` for a page nobody listed, so a new page is never
    open to every role by accident)."""
    return PAGE_ROLES.get(url_path, "admin")


def is_loopback(address: str | None) -> bool:
    """Whether Streamlit serves only this machine (an unset address listens everywhere)."""
    if not address:
        return False
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def server_address() -> str | None:
    """``server.address`` as Streamlit was started with."""
    value = st.get_option("server.address")
    return str(value) if value else None


def source() -> str:
    """Where this session connects from (the throttling key beside the account): the
    connecting address (Streamlit reports loopback as ``None``), or the client named in
    ``X-Forwarded-For`` when the connection comes from a proxy in ``RECSYS_TRUSTED_PROXIES``
    (:func:`recsys_core.security.sessions.client_source`)."""
    try:
        ip = st.context.ip_address
        forwarded = list(st.context.headers.get_all("X-Forwarded-For"))
    except Exception:  # pragma: no cover - older Streamlit or no request context
        ip, forwarded = None, []
    return sessions.client_source(ip, forwarded)


def current_user() -> User | None:
    """The logged-in user of this session, or ``None`` (ended sessions are forgotten, and
    the browser's cookie with them)."""
    token = st.session_state.get(TOKEN)
    if not token:
        return None
    user = sessions.current_user(token)
    if user is None:
        st.session_state.pop(TOKEN, None)
        st.session_state[CLEAR_COOKIE] = True
    return user


# ------------------------------------------------------------------------- session cookie


def cookie_name() -> str:
    """The session cookie's name, one per port: cookies ignore ports, so two labs on one
    host would otherwise overwrite each other's cookie."""
    return f"recsys_session_{st.get_option('server.port')}"


def cookie_path() -> str:
    """The app's URL path (``server.baseUrlPath``): the cookie is sent to this app only."""
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}" if base else "/"


def cookie_token(cookies: Mapping[str, str]) -> str | None:
    """The session token in the browser's cookies (``st.context.cookies``, sent when the
    browser connected), or ``None`` when there is none or it is not shaped like a token."""
    value = cookies.get(cookie_name())
    return value if isinstance(value, str) and TOKEN_PATTERN.fullmatch(value) else None


def resume_from_cookie() -> None:
    """Once per browser connection without a session: resume the session whose token the
    browser's cookie holds (a reload). The token is checked server-side (an ended, revoked
    or unknown token is refused, and the cookie cleared) and the resumed log-in audited."""
    if st.session_state.get(TOKEN) or st.session_state.get(COOKIE_TRIED):
        return
    st.session_state[COOKIE_TRIED] = True
    try:
        cookies = st.context.cookies
    except Exception:  # pragma: no cover - no request context (bare script run)
        return
    if not isinstance(cookies.get(cookie_name()), str):
        return  # no cookie (or a test harness without a browser)
    try:
        session = sessions.resume(cookie_token(cookies), source())
    except AuthError:
        st.session_state[CLEAR_COOKIE] = True
        return
    st.session_state[TOKEN] = session.token
    st.session_state.pop(CLEAR_COOKIE, None)


def cookie_script(token: str | None, expires: float | None) -> str:
    """The script that stores ``token`` in the session cookie until ``expires`` (epoch
    seconds), or clears the cookie when either is ``None``. ``SameSite=Strict``, ``Secure``
    over HTTPS; the value is the session token only (never the password)."""
    path = cookie_path()
    if token is None or expires is None:
        value, until = "", "Thu, 01 Jan 1970 00:00:00 GMT"
    else:
        if not TOKEN_PATTERN.fullmatch(token):
            raise ValueError("not a session token")
        value, until = token, formatdate(expires, usegmt=True)
    cookie = f"{cookie_name()}={value}; Path={path}; Expires={until}; SameSite=Strict"
    return (
        "<script>document.cookie = "
        f"{json.dumps(cookie)} + (location.protocol === 'https:' ? '; Secure' : '');</script>"
    )


def keep_session_cookie() -> None:
    """Write this session's token into the browser's cookie (expiring when the session ends
    at the latest); an idle-ended session is refused server-side and the cookie cleared."""
    token = st.session_state.get(TOKEN)
    known = st.session_state.get(COOKIE_EXPIRES)
    if known is None or known[0] != token:  # one look-up per session token
        known = (token, sessions.expires_at(token))
        st.session_state[COOKIE_EXPIRES] = known
    expires = known[1]
    if token and expires is not None:
        st.html(cookie_script(token, expires), unsafe_allow_javascript=True)


def clear_session_cookie() -> None:
    """Clear the browser's session cookie if this connection's session ended or was
    refused (the script stays on the log-in form until the next log-in)."""
    if st.session_state.get(CLEAR_COOKIE):
        st.html(cookie_script(None, None), unsafe_allow_javascript=True)


def check_session() -> None:
    """In a fragment rerun (which skips the router): if log-ins are on and this session has
    ended (idle, too old, logged out elsewhere), rerun the whole app, which shows the log-in."""
    if login_enabled() and current_user() is None:
        st.rerun(scope="app")


def actor() -> str:
    """The audit actor of this session: ``app:<user>`` or ``app:local``."""
    user = current_user() if st.session_state.get(TOKEN) else None
    return f"app:{user.username}" if user else "app:local"


def record(action: str, detail: Mapping[str, Any] | str | None = None) -> None:
    """Write an event of this session to the audit log."""
    audit.record(actor(), action, detail)


def record_once(action: str, detail: Mapping[str, Any]) -> None:
    """Audit ``action`` unless the same action and detail was the last one of this session
    (a rerun of the same view is not a new event)."""
    marker = (action, tuple(sorted((k, str(v)) for k, v in detail.items())))
    if st.session_state.get(LAST_AUDITED) == marker:
        return
    st.session_state[LAST_AUDITED] = marker
    record(action, detail)


def owner() -> str:
    """Whose workspace this session's uploads go to: the user, or ``local`` without log-ins."""
    user = current_user() if st.session_state.get(TOKEN) else None
    return user.username if user else "local"


def pseudonymised() -> bool:
    """Whether shopper ids are shown as pseudonyms (always, once log-ins are on)."""
    return login_enabled()


def id_display() -> Callable[[object], str]:
    """:func:`shown_id` with this session's decision (log-ins on? ids revealed?) and the
    pseudonym key read once, for many ids: a picker's 1,000 options or a table's column.
    (Calling :func:`shown_id` per id asked the security database each time, most of a
    shopper switch's time, issue 24.)"""
    if not pseudonymised():
        return str
    revealed = set(st.session_state.get(REVEALED, set()))
    key = pseudonym_key()

    def show(user_id: object) -> str:
        text = str(user_id)
        return text if text in revealed else pseudonym(text, key)

    return show


def shown_id(user_id: object) -> str:
    """A shopper id as this session may see it: the pseudonym, the real id in local mode or
    after an admin revealed it."""
    return id_display()(user_id)


def shown_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its shopper-id column as this session may see it."""
    if Columns.USER not in frame.columns or not pseudonymised():
        return frame
    out = frame.copy()
    out[Columns.USER] = out[Columns.USER].astype(str).map(id_display())
    return out


def reveal_control(user_id: str) -> None:
    """For an admin: a button that shows the real id of a pseudonymised shopper (audited)."""
    user = current_user()
    if user is None or not role_allows(user.role, "admin"):
        return
    if str(user_id) in st.session_state.get(REVEALED, set()):
        return
    if st.button("Reveal the real id (audited)", key=f"reveal_{pseudonym(user_id)}"):
        st.session_state.setdefault(REVEALED, set()).add(str(user_id))
        record("reveal-id", {"shopper": pseudonym(user_id)})
        st.rerun()


# ---------------------------------------------------------------------------------- pages


def login_form() -> None:
    """The log-in page: a name and a password (refused, audited and throttled when wrong)."""
    clear_session_cookie()
    st.title("Log in")
    st.caption("This lab holds shop data: log in with the account an admin gave you.")
    with st.form("login"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        try:
            session = sessions.login(name.strip(), password, source())
        except AuthError as exc:
            st.error(str(exc))
            return
        st.session_state[TOKEN] = session.token
        st.session_state.pop(CLEAR_COOKIE, None)
        st.rerun()


def sidebar(user: User | None) -> None:
    """Who is logged in, a log-out and a password change; or the local-mode note."""
    if user is None:
        return
    st.markdown(f"Logged in as **{user.username}** ({user.role})")
    if st.button("Log out", key="auth_logout", icon=":material/logout:"):
        sessions.logout(st.session_state.get(TOKEN))
        for name in (TOKEN, REVEALED, LAST_AUDITED):
            st.session_state.pop(name, None)
        st.session_state[CLEAR_COOKIE] = True
        st.rerun()
    with st.expander("Change password"), st.form("auth_passwd", clear_on_submit=True):
        old = st.text_input("Current password", type="password")
        new = st.text_input("New password", type="password")
        if st.form_submit_button("Change"):
            try:
                sessions.change_password(st.session_state.get(TOKEN), old, new)
            except RecsysError as exc:
                st.error(str(exc))
            else:
                st.session_state.pop(TOKEN, None)
                st.session_state[CLEAR_COOKIE] = True
                st.rerun()
    keep_session_cookie()


def refuse(page_title: str, needed: str, user: User) -> None:
    """Stop a page the user's role does not allow (and audit the attempt)."""
    record("page-refused", {"page": page_title, "needs": needed})
    st.error(
        f"The {page_title} page needs the {needed} role; you are logged in as "
        f"{user.username} ({user.role}). Ask an admin if you need it."
    )
    st.stop()
