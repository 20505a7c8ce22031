"""Similar items: a product's neighbours by ALS and by item-kNN, with co-purchase counts."""

from __future__ import annotations

import streamlit as st

from ui import frames
from ui.components import item_card, item_picker, table
from ui.errors import show_errors
from ui.resources import active_data, service

#: The models compared side by side.
SIMILARITY_MODELS = (("als", "ALS (latent factors)"), ("itemknn", "Item-kNN (co-interaction)"))

st.title("Similar items")

with show_errors():
    data = active_data()
    svc = service(data)

pick, settings = st.columns([2, 1])
with pick:
    item_id = item_picker(data)
with settings:
    k = st.slider("Similar items (k)", 3, 30, 10, key="similar_k")
if item_id is None:
    st.stop()
item_card(data, item_id)

st.caption(
    "Co-shoppers: shoppers who interacted with both products; co-buyers: shoppers who bought "
    "both (from the event log)."
)
columns = st.columns(len(SIMILARITY_MODELS))
for col, (model, label) in zip(columns, SIMILARITY_MODELS, strict=True):
    with col:
        st.subheader(label)
        if model not in svc.lab.models:
            st.info(f"{model} is not trained in version {svc.version}.")
            continue
        with show_errors(stop=False, prefix=f"{model}: "):
            similar = svc.similar_frame(item_id, k, model)
            counts = frames.co_counts(
                data.key, data.checksum, data.dataset.events, item_id, similar["item_id"].tolist()
            )
            similar = similar.merge(counts, on="item_id", how="left")
            similar = similar[["rank", "title", "item_id", "score", "co_shoppers", "co_buyers"]]
            table(
                similar,
                name=f"similar-{item_id}-{model}",
                key=f"similar_{model}",
                column_config={
                    "score": st.column_config.NumberColumn("similarity", format="%.3f"),
                    "co_shoppers": st.column_config.NumberColumn("co-shoppers"),
                    "co_buyers": st.column_config.NumberColumn("co-buyers"),
                },
            )
