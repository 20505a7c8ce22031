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

import streamlit as st

from ui import resources, state

st.set_page_config(page_title="Recommendation lab", page_icon="🛒", layout="wide")

OVERVIEW = st.Page(
    "app_pages/overview.py", title="Overview", icon=":material/home:", url_path="overview"
)


def _home() -> None:
    """The root URL opens the Overview at its own address (``/overview``)."""
    st.switch_page(OVERVIEW)


# Titles and URL paths are relied on by the browser test (tests/app/test_e2e_browser.py).
PAGES = [
    st.Page(_home, title="Overview", url_path="home", default=True, visibility="hidden"),
    OVERVIEW,
    st.Page("app_pages/data.py", title="Data", icon=":material/table_chart:", url_path="data"),
    st.Page("app_pages/shopper.py", title="Shopper", icon=":material/person:", url_path="shopper"),
    st.Page(
        "app_pages/similar.py", title="Similar items", icon=":material/hub:", url_path="similar"
    ),
    st.Page("app_pages/search.py", title="Search", icon=":material/search:", url_path="search"),
    st.Page(
        "app_pages/model_lab.py", title="Model lab", icon=":material/science:", url_path="model_lab"
    ),
    st.Page(
        "app_pages/explanations.py",
        title="Explanations",
        icon=":material/lightbulb:",
        url_path="explanations",
    ),
]

page = st.navigation(PAGES)
state.ensure_session()
with st.sidebar:
    st.caption(f"Dataset: **{state.dataset_label(state.active_key())}**")
    if warning := st.session_state.get(state.STARTUP_WARNING):
        st.warning(warning)
    background = st.container()  # the purchase model's background training, filled below
try:
    page.run()
finally:  # after the page (even one that stopped early): it has chosen or trained the models
    with background:
        resources.ranker_status()
