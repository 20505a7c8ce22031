"""Log-in and roles in the app, driven headless with AppTest.

The app runs on the small store of :mod:`tests.app.test_pages` (its trained lab is copied into
this module's own ``$RECSYS_HOME``, where the three users live, so the other page tests keep
running in local single-user mode).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from recsys_core.security import audit, sessions, users
from recsys_core.security.pseudonyms import pseudonym
from tests.app.test_pages import APP, TIMEOUT, AppData, app_data  # noqa: F401
from ui import auth, state

PW = "a long enough password"
BROWSE = ["Overview", "Shopper", "Similar items", "Search", "Explanations"]
ANALYST = ["Overview", "Data", "Shopper", "Similar items", "Search", "Model lab", "Explanations"]
ADMIN = [*ANALYST, "Users", "Audit log"]
PAGE_FILES = {
    "Overview": "app_pages/overview.py",
    "Data": "app_pages/data.py",
    "Shopper": "app_pages/shopper.py",
    "Similar items": "app_pages/similar.py",
    "Search": "app_pages/search.py",
    "Model lab": "app_pages/model_lab.py",
    "Explanations": "app_pages/explanations.py",
    "Users": "app_pages/users.py",
    "Audit log": "app_pages/audit.py",
}


@pytest.fixture(scope="module")
def secured_home(app_data: AppData, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    home = tmp_path_factory.mktemp("secured") / "home"
    shutil.copytree(app_data.home, home)
    return home


@pytest.fixture(autouse=True)
def _isolated_home(
    app_data: AppData,  # noqa: F811
    secured_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    monkeypatch.setenv("RECSYS_HOME", str(secured_home))
    monkeypatch.setenv(state.ENV_DATA, str(app_data.csv))
    monkeypatch.delenv(state.ENV_DATASET, raising=False)
    for role in ("viewer", "analyst", "admin"):
        if users.get_user(role) is None:
            users.add_user(role, PW, role)
    yield


def _run(role: str | None, page: str | None = None, **session: Any) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if role is not None:
        at.session_state[auth.TOKEN] = sessions.login(role, PW, "test").token
    for key, value in session.items():
        at.session_state[key] = value
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


def _texts(at: AppTest) -> str:
    """Every string the browser would receive for the page (element protos as text)."""
    out = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    for frame in at.dataframe:
        out.append(frame.value.to_csv())
    return "\n".join(out)


@pytest.mark.parametrize(
    ("role", "pages"), [("viewer", BROWSE), ("analyst", ANALYST), ("admin", ADMIN)]
)
def test_each_role_sees_exactly_its_pages(role: str, pages: list[str]) -> None:
    at = _run(role)
    assert not at.exception
    assert at.session_state[auth.VISIBLE_PAGES] == pages
    assert f"Logged in as **{role}** ({role})" in [m.value for m in at.sidebar.markdown]


@pytest.mark.parametrize(
    ("role", "title", "needed"),
    [
        ("viewer", "Users", "admin"),
        ("viewer", "Audit log", "admin"),
        ("viewer", "Data", "analyst"),
        ("viewer", "Model lab", "analyst"),
        ("analyst", "Users", "admin"),
        ("analyst", "Audit log", "admin"),
    ],
)
def test_a_page_the_role_does_not_allow_is_refused_when_opened_directly(
    role: str, title: str, needed: str
) -> None:
    at = _run(role, PAGE_FILES[title])
    assert not at.exception
    assert [e.value for e in at.error] and f"needs the {needed} role" in at.error[0].value
    assert title not in [t.value for t in at.title]
    last = audit.read(limit=1)[0]
    assert last["action"] == "page-refused" and last["actor"] == f"app:{role}"


def test_admin_pages_open_for_an_admin() -> None:
    for title in ("Users", "Audit log"):
        at = _run("admin", PAGE_FILES[title])
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert at.title[0].value == title
    table = at.dataframe[0].value
    assert {"login", "page-refused"} <= set(table["action"])


def test_without_a_session_only_the_login_form_is_shown_and_a_wrong_password_is_refused() -> None:
    at = _run(None)
    assert [t.value for t in at.title] == ["Log in"]
    at.text_input(key="login_name").input("viewer")
    at.text_input(key="login_password").input("not the password")
    at.button[0].click().run()
    assert "wrong user name or password" in at.error[0].value
    assert auth.TOKEN not in at.session_state
    assert audit.read(limit=1)[0]["action"] == "login-failed"
    at.text_input(key="login_password").input(PW)
    at.button[0].click().run()
    assert at.session_state[auth.TOKEN]
    assert "Log in" not in [t.value for t in at.title]


def test_log_out_ends_the_session_server_side() -> None:
    at = _run("viewer")
    token = at.session_state[auth.TOKEN]
    at.sidebar.button(key="auth_logout").click().run()
    assert sessions.current_user(token) is None
    assert [t.value for t in at.title] == ["Log in"]


def test_a_viewer_sees_no_real_shopper_id(app_data: AppData) -> None:  # noqa: F811
    events = pd.read_csv(app_data.csv, dtype=str)
    ids = set(events["user_id"])
    at = _run("viewer", PAGE_FILES["Shopper"])
    assert not at.exception and not at.error, [e.value for e in at.error]
    chosen = at.session_state[state.SHOPPER]
    text = _texts(at)
    assert pseudonym(chosen) in text
    # ids are like U001: look for every real id as a whole token
    leaked = [u for u in ids if f"{u} " in text or f"{u}\\n" in text or f'"{u}"' in text]
    assert not leaked, leaked[:5]
    assert audit.read(limit=5, action="view-shopper")[0]["detail"].find(chosen) == -1
    # search by pseudonym finds the shopper
    other = sorted(ids - {chosen})[0]
    at.text_input(key="shopper_query").input(pseudonym(other).lower()).run()
    assert at.session_state[state.SHOPPER] == other
    assert not [u for u in ids if f'"{u} ' in _texts(at)]


def test_an_admin_reveals_a_real_id_and_it_is_audited() -> None:
    at = _run("admin", PAGE_FILES["Shopper"])
    chosen = at.session_state[state.SHOPPER]
    at.button(key=f"reveal_{pseudonym(chosen)}").click().run()
    assert f"**{chosen}**" in [m.value for m in at.markdown][0] or any(
        f"**{chosen}**" in m.value for m in at.markdown
    )
    last = audit.read(limit=5, action="reveal-id")[0]
    assert last["actor"] == "app:admin" and pseudonym(chosen) in last["detail"]
    assert chosen not in last["detail"]


def test_local_mode_says_so_and_refuses_a_non_loopback_address(
    app_data: AppData,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streamlit import config

    monkeypatch.setenv("RECSYS_HOME", str(app_data.home))  # no users there
    at = _run(None)
    assert not at.exception and not at.error
    assert any("Local single-user mode" in i.value for i in at.info)
    assert at.title[0].value == "Overview"
    previous = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        refused = _run(None)
    finally:
        config.set_option("server.address", previous)
    assert "only serves this machine" in refused.error[0].value
    assert not refused.title
