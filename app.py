"""Streamlit entry point: ``streamlit run app.py``. The router only; pages live in pages/."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Recommendation lab", page_icon="🛒", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon="🏠", default=True),
]

st.navigation(PAGES).run()
