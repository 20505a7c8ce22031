"""Streamlit entry point: ``streamlit run app.py``. The router only; pages live in app_pages/.

The initial dataset is ``$RECSYS_APP_DATA`` (a CSV/Parquet path) if set, else
``$RECSYS_APP_DATASET`` (a built-in name) if set, else ``online-retail``; the Data page
switches datasets. The first start on a dataset trains every model (with a progress bar) and
saves them under ``$RECSYS_HOME``; later starts load them.

The page folder is deliberately not called ``pages/``: Streamlit treats a ``pages/`` folder
beside the entry point as a legacy multipage app until ``st.navigation`` has run once in the
process, so the first request of a fresh server for a page URL (and every ``AppTest`` run
after ``switch_page``) would bypass this router.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from ui import auth, resources, state

# a Material icon: an emoji page icon makes Streamlit load its emoji table on the first page
st.set_page_config(
    page_title="Recommendation lab", page_icon=":material/shopping_cart:", layout="wide"
)

OVERVIEW_PAGE = ("app_pages/overview.py", "Overview", ":material/home:", "overview")


def _home() -> None:
    """The root URL opens the Overview at its own address (``/overview``)."""
    st.switch_page(OVERVIEW)


# Titles and URL paths are relied on by the browser test (tests/app/test_e2e_browser.py).
# (file, title, icon, url path); the role each page needs is ui.auth.PAGE_ROLES[url path].
PAGE_FILES: list[tuple[str, str, str, str]] = [
    ("app_pages/decision.py", "Decision", ":material/gavel:", "decision"),
    OVERVIEW_PAGE,
    ("app_pages/data.py", "Data", ":material/table_chart:", "data"),
    ("app_pages/shopper.py", "Shopper", ":material/person:", "shopper"),
    ("app_pages/similar.py", "Similar items", ":material/hub:", "similar"),
    ("app_pages/search.py", "Search", ":material/search:", "search"),
    ("app_pages/model_lab.py", "Model lab", ":material/science:", "model_lab"),
    ("app_pages/planner.py", "Test planner", ":material/biotech:", "planner"),
    ("app_pages/merchandising.py", "Merchandising", ":material/storefront:", "merchandising"),
    ("app_pages/explanations.py", "Explanations", ":material/lightbulb:", "explanations"),
    ("app_pages/operations.py", "Operations", ":material/build:", "operations"),
    ("app_pages/users.py", "Users", ":material/group:", "users"),
    ("app_pages/audit.py", "Audit log", ":material/policy:", "audit"),
]

state.ensure_session()
login_on = auth.login_enabled()
if login_on:
    auth.resume_from_cookie()  # a reload keeps the session (the token's cookie)
user = auth.current_user() if login_on else None

if not login_on and not auth.is_loopback(auth.server_address()):
    st.error(
        f"Local single-user mode (no users) only serves this machine, but the app was started "
        f"on {auth.server_address() or 'every address'}. Start it with "
        "`--server.address 127.0.0.1`, or create users first "
        "(`python -m recsys_core users add NAME --role admin`)."
    )
    st.stop()


def _login_at(path: str) -> Callable[[], None]:
    """The log-in form served at a page's own address (see :func:`_login_pages`)."""

    def login() -> None:
        auth.login_form()

    login.__name__ = f"login_{path}"
    return login


def _login_pages() -> list[Any]:
    """The log-in form at ``/login`` and at every page's address (issue 24): a shared link
    such as ``/shopper?shopper=...&k=7`` opens the form, not a "Page not found" dialog over
    it, and keeps its path and query, so after the log-in the rerun lands on the linked page
    with the linked state."""
    pages = [st.Page(auth.login_form, title="Log in", url_path="login", default=True)]
    for _, _, _, path in PAGE_FILES:
        pages.append(st.Page(_login_at(path), title="Log in", url_path=path, visibility="hidden"))
    return pages


if login_on and user is None:
    st.navigation(_login_pages()).run()
    st.stop()

role = user.role if user else "admin"  # local single-user mode: the one user may do anything


def _allowed(path: str) -> bool:
    """Whether this session may open the page at ``path`` (no user pages in local mode)."""
    if not login_on:
        return path not in auth.USER_ADMIN_PAGES
    return auth.role_allows(role, auth.page_role(path))


allowed = {path for _, _, _, path in PAGE_FILES if _allowed(path)}
pages = []
for file, title, icon, path in PAGE_FILES:
    if not login_on and path not in allowed:
        continue  # local mode: as before, no users or audit pages
    pages.append(
        st.Page(
            file,
            title=title,
            icon=icon,
            url_path=path,
            visibility="visible" if path in allowed else "hidden",
        )
    )
OVERVIEW = next(p for p in pages if p.url_path == OVERVIEW_PAGE[3])
PAGES = [
    st.Page(_home, title="Overview", url_path="home", default=True, visibility="hidden"),
    *pages,
]
st.session_state[auth.VISIBLE_PAGES] = [p.title for p in pages if p.url_path in allowed]

page = st.navigation(PAGES)
if user is not None and not _allowed(page.url_path):
    auth.refuse(page.title, auth.page_role(page.url_path), user)
with st.sidebar:
    auth.sidebar(user)
    st.caption(f"Dataset: **{state.dataset_label(state.active_key())}**")
    if warning := st.session_state.get(state.STARTUP_WARNING):
        st.warning(warning)
    background = st.container()  # the purchase model's background training, filled below
if not login_on:
    st.info(auth.LOCAL_MODE, icon=":material/lock_open:")
try:
    page.run()
finally:  # after the page (even one that stopped early): it has chosen or trained the models
    with background:
        resources.ranker_status()
