"""Log-in and roles in the app, driven headless with AppTest.

The app runs on the small store of :mod:`tests.app.test_pages` (its trained lab is copied into
this module's own ``$RECSYS_HOME``, where the three users live, so the other page tests keep
running in local single-user mode).
"""

from __future__ import annotations

import re
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
BROWSE = ["Decision", "Overview", "Shopper", "Similar items", "Search", "Test planner"]
BROWSE += ["Merchandising", "Explanations"]
ANALYST = ["Decision", "Overview", "Data", "Shopper", "Similar items", "Search", "Model lab"]
ANALYST += ["Test planner", "Merchandising", "Explanations"]
ADMIN = [*ANALYST, "Operations", "Users", "Audit log"]
PAGE_FILES = {
    "Decision": "app_pages/decision.py",
    "Test planner": "app_pages/planner.py",
    "Merchandising": "app_pages/merchandising.py",
    "Overview": "app_pages/overview.py",
    "Data": "app_pages/data.py",
    "Shopper": "app_pages/shopper.py",
    "Similar items": "app_pages/similar.py",
    "Search": "app_pages/search.py",
    "Model lab": "app_pages/model_lab.py",
    "Explanations": "app_pages/explanations.py",
    "Operations": "app_pages/operations.py",
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


def _open_shopper_sections(at: AppTest) -> AppTest:
    """Open the Shopper page's lazy sections (why, side by side, history): their text and
    downloads are checked too."""
    for section in (state.SHOPPER_WHY, state.SHOPPER_SIDE_BY_SIDE, state.SHOPPER_HISTORY):
        at.session_state[section] = True
    return at.run()


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
        ("viewer", "Operations", "admin"),
        ("analyst", "Operations", "admin"),
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


#: A real shopper id of the small store (U001 ... U300) anywhere as a whole word.
RAW_ID = re.compile(r"\bU\d{3}\b")


@pytest.fixture()
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The bytes of every download button the pages render (deferred downloads, made on the
    click, are made here as if clicked)."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    seen: list[bytes] = []
    original = MemoryMediaFileStorage.load_and_get_id
    original_deferred = MediaFileManager.add_deferred

    def capture(self: Any, path_or_data: Any, *args: Any, **kwargs: Any) -> str:
        if isinstance(path_or_data, bytes):
            seen.append(path_or_data)
        return original(self, path_or_data, *args, **kwargs)

    def click(self: Any, make: Any, *args: Any, **kwargs: Any) -> str:
        data = make()
        seen.append(data.encode("utf-8") if isinstance(data, str) else bytes(data))
        return original_deferred(self, make, *args, **kwargs)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    monkeypatch.setattr(MediaFileManager, "add_deferred", click)
    return seen


@pytest.mark.parametrize("title", BROWSE)
def test_a_viewer_sees_no_real_shopper_id_in_pages_or_downloads(
    title: str, downloads: list[bytes]
) -> None:
    at = _run("viewer", PAGE_FILES[title])
    assert not at.exception and not at.error, [e.value for e in at.error]
    if title == "Shopper":
        _open_shopper_sections(at)
        at.toggle(key="shopper_history_table").set_value(True).run()
    if title == "Search":
        at.text_input(key="search_query").input("a").run()
    text = _texts(at)
    assert not RAW_ID.findall(text), RAW_ID.findall(text)[:5]
    leaked = [RAW_ID.findall(d.decode("utf-8", "ignore")) for d in downloads]
    assert not any(leaked), [x for x in leaked if x][:1]
    if title == "Shopper":
        assert downloads, "the Shopper page offers downloads"
        chosen = at.session_state[state.SHOPPER]
        assert pseudonym(chosen) in text
        assert any(pseudonym(chosen).encode() in d for d in downloads)  # history: pseudonymised
        detail = audit.read(limit=5, action="view-shopper")[0]["detail"]
        assert pseudonym(chosen) in detail and chosen not in detail


def test_the_leak_check_would_see_real_ids_in_local_mode(
    app_data: AppData,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    downloads: list[bytes],
) -> None:
    monkeypatch.setenv("RECSYS_HOME", str(app_data.home))  # no users: real ids as before
    at = _open_shopper_sections(_run(None, PAGE_FILES["Shopper"]))
    assert RAW_ID.findall(_texts(at))
    assert any(RAW_ID.findall(d.decode("utf-8", "ignore")) for d in downloads)


def test_a_viewer_finds_a_shopper_by_pseudonym(app_data: AppData) -> None:  # noqa: F811
    ids = set(pd.read_csv(app_data.csv, dtype=str)["user_id"])
    at = _run("viewer", PAGE_FILES["Shopper"])
    other = sorted(ids - {at.session_state[state.SHOPPER]})[0]
    at.text_input(key="shopper_query").input(pseudonym(other).lower()).run()
    assert at.session_state[state.SHOPPER] == other
    at.text_input(key="shopper_query").input(other).run()  # a real id finds nothing
    assert any("No shopper" in w.value for w in at.warning)


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


def test_a_session_ended_elsewhere_is_noticed_on_the_next_interaction() -> None:
    at = _run("viewer", PAGE_FILES["Shopper"])
    sessions.end_sessions("viewer")  # e.g. a password change from the CLI
    at.text_input(key="shopper_query").input("S-").run()
    assert [t.value for t in at.title] == ["Log in"]


@pytest.mark.slow
def test_an_analysts_upload_does_not_change_what_recommend_serves(
    app_data: AppData,  # noqa: F811
) -> None:
    import json
    import subprocess
    import sys

    from recsys_core.security.uploads import list_uploads
    from tests.app.test_pages import CUSTOM_CSV
    from ui.upload import handle_upload

    def served() -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "recsys_core", "recommend", "--user", "U001", "--json"]
            + ["--model", "als"],  # (the ranker hot path is an integration matter of main)
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    before = served()
    at = _run("analyst", PAGE_FILES["Data"])
    session = {k: at.session_state[k] for k in (state.DATASET_KEY, state.UPLOADS)}
    mapping = {"user_id": "who", "item_id": "what", "event": "action", "timestamp": "when"}
    outcome = handle_upload(
        "custom.csv",
        CUSTOM_CSV,
        state=session,
        column_map=mapping,
        event_map={"buy": "purchase", "look": "view"},
        owner="analyst",
    )
    assert outcome.ok, outcome.message
    # the analyst's session now trains and serves the upload ...
    trained = _run("analyst", PAGE_FILES["Shopper"], **session)
    assert not trained.exception and not trained.error, [e.value for e in trained.error]
    assert trained.session_state[state.DATASET_KEY] == outcome.key
    # ... while the CLI serves exactly what it served before
    after = served()
    assert after["model_version"] == before["model_version"]
    assert after["items"] == before["items"]
    assert [u.name for u in list_uploads("analyst")] == [
        trained.session_state[state.UPLOADS][outcome.key].name
    ]


def test_a_csv_download_is_audited_when_it_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 23 item 11 (app half): downloads used on_click="ignore", so the click was never
    seen and no download was ever audited. Now the data is made, and audited, on the click."""
    import streamlit as st

    from ui import components

    buttons: list[dict[str, Any]] = []
    monkeypatch.setattr(
        components.st, "download_button", lambda *a, **k: buttons.append({"args": a, **k})
    )
    token = sessions.login("viewer", PW, "test").token
    st.session_state[auth.TOKEN] = token
    try:
        frame = pd.DataFrame({"user_id": ["12346"], "title": ["Mug\r=cmd|' /C calc'!A0"]})
        components.download_csv(frame, "history", "t")
    finally:
        st.session_state.pop(auth.TOKEN, None)
    (button,) = buttons
    assert button["on_click"] == "ignore"  # the page does not rerun ...
    make = button["args"][1]
    assert callable(make)  # ... but the data is made on the click, which is audited
    before = audit.read(limit=1)[0]["id"]
    data = make()
    assert pseudonym("12346").encode() in data and b"12346" not in data
    assert b"\r=" not in data
    row = audit.read(limit=1)[0]
    assert row["id"] > before and row["action"] == "export" and row["actor"] == "app:viewer"
    assert "history.csv" in row["detail"]
    sessions.end_sessions("viewer")  # the session ends before a later click
    assert b"session has ended" in make()
    assert audit.read(limit=1)[0]["action"] == "export-refused"


def _html_bodies(at: AppTest) -> str:
    return "\n".join(str(e.proto) for e in at.get("html"))


def test_a_logged_in_session_keeps_its_token_in_a_cookie_and_the_log_out_clears_it() -> None:
    """Issue 24 (2): a reload asked for the log-in again. The session's token (never the
    password) goes into a SameSite=Strict cookie; the log-out revokes it and clears it."""
    at = _run("viewer")
    token = at.session_state[auth.TOKEN]
    bodies = _html_bodies(at)
    assert f"{auth.cookie_name()}={token}" in bodies and "SameSite=Strict" in bodies
    assert PW not in bodies
    at.sidebar.button(key="auth_logout").click().run()
    bodies = _html_bodies(at)
    assert token not in bodies and f"{auth.cookie_name()}=;" in bodies
    assert "1970" in bodies


def test_a_shopper_switch_asks_the_security_database_a_few_times_not_once_per_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 24 (speed): the picker's format function called ``shown_id`` for each of its
    options (up to 1,000), and each call asked the security database whether log-ins are on
    (a connection and a write lock each): most of a shopper switch's time."""
    at = _run("viewer", PAGE_FILES["Shopper"])
    calls: list[int] = []
    real = auth.any_users
    monkeypatch.setattr(auth, "any_users", lambda *a, **k: calls.append(1) or real(*a, **k))
    options = len(at.selectbox(key="shopper_select").options)
    assert options > 100
    at.run()  # the page again, picker included
    assert not at.exception and at.title[0].value == "Shopper"
    assert 0 < len(calls) < 20, f"{len(calls)} look-ups for {options} options"
