"""Overview: the active dataset at a glance."""

from __future__ import annotations

import streamlit as st

from recsys_core.data.builtin import BUILTIN_DATASETS, DEFAULT_DATASET, load_dataset
from recsys_core.errors import RecsysError

st.title("E-commerce recommendation lab")
name = st.selectbox(
    "Dataset", list(BUILTIN_DATASETS), index=list(BUILTIN_DATASETS).index(DEFAULT_DATASET)
)
try:
    with st.spinner(f"Loading {name} ..."):
        summary = load_dataset(name).summary()
except RecsysError as exc:
    st.error(str(exc))
    st.stop()
cols = st.columns(3)
cols[0].metric("Events", f"{summary['events']:,}")
cols[1].metric("Shoppers", f"{summary['users']:,}")
cols[2].metric("Products", f"{summary['items']:,}")
st.caption(BUILTIN_DATASETS[name].description)
