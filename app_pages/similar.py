"""Similar items: a product's neighbours by ALS and by item-kNN, with co-purchase counts."""

from __future__ import annotations

import streamlit as st

from recsys_core.similar import TEXT_SOURCE
from ui import frames, state
from ui.components import item_card, item_picker, table
from ui.errors import show_errors
from ui.frames import relative_similarity
from ui.resources import active_data, service

#: The models compared, one full-width list each (side by side, columns were cut off).
SIMILARITY_MODELS = (("als", "ALS (latent factors)"), ("itemknn", "Item-kNN (co-interaction)"))
#: The "from" column in words.
SOURCE_LABELS = {
    "als": "ALS",
    "itemknn": "item-kNN",
    "bpr": "BPR",
    "popularity": "popularity",
    TEXT_SOURCE: "title text (no purchases yet)",
}

st.title("Similar items")

with show_errors():
    data = active_data()
    svc = service(data)

state.url_default(state.ITEM, "item")  # a shared link reopens the same view
state.url_default("similar_k", "k", int, valid=lambda n: 3 <= n <= 30)
pick, settings = st.columns([2, 1])
with pick:
    item_id = item_picker(data)
with settings:
    k = st.slider("Similar items (k)", 3, 30, 10, key="similar_k")
if item_id is None:
    st.stop()
state.share_view(item=item_id, k=k)
item_card(data, item_id)

st.caption(
    "Each list has k items: when a model has fewer similar items (item-kNN keeps a few "
    "neighbours per product) the rest come from the next model, and the **from** column says "
    "which. **Similarity** is on one scale for every row: the row's score as a share of the "
    "best score its own model gives this product (100 % = as close as that model's best "
    "match). **Bought both**: shoppers who bought both products; **with both**: shoppers who "
    "interacted with both in any way (from the event log)."
)
for model, label in SIMILARITY_MODELS:
    st.subheader(label)
    if model not in svc.lab.models:
        st.info(f"{model} is not trained in version {svc.version}.")
        continue
    with show_errors(stop=False, prefix=f"{model}: "):
        similar = svc.similar_frame(item_id, k, model)
        if note := similar.attrs.get("note"):
            st.caption(f"Note: {note}.")
        best = {  # a model's own rows and title-text rows (a cold item) carry their best
            source: float(svc.similar_frame(item_id, 1, source)["score"].iloc[0])
            if source not in (model, TEXT_SOURCE)
            else float(similar.loc[similar["source"] == source, "score"].iloc[0])
            for source in similar["source"].unique()
        }
        similar = similar.assign(similarity=relative_similarity(similar, best))
        counts = frames.co_counts(
            data.key, data.checksum, data.dataset.events, item_id, similar["item_id"].tolist()
        )
        similar = similar.merge(counts, on="item_id", how="left")
        similar = similar[["rank", "title", "similarity", "source", "co_buyers", "co_shoppers"]]
        similar["source"] = similar["source"].map(lambda s: SOURCE_LABELS.get(s, s))
        table(
            similar,
            name=f"similar-{item_id}-{model}",
            key=f"similar_{model}",
            column_config={
                "rank": st.column_config.NumberColumn("rank", width="small"),
                "title": st.column_config.TextColumn("product", width="large"),
                "similarity": st.column_config.ProgressColumn(
                    "similarity",
                    help="Share of the best score the row's own model gives this product "
                    "(100 % = as close as its best match): one scale for every row.",
                    min_value=0.0,
                    max_value=1.0,
                    format="percent",
                ),
                "source": st.column_config.TextColumn(
                    "from", help="The model that found this item.", width="small"
                ),
                "co_buyers": st.column_config.NumberColumn(
                    "bought both",
                    help="Shoppers who bought both products (support).",
                ),
                "co_shoppers": st.column_config.NumberColumn(
                    "with both",
                    help="Shoppers who interacted with both products.",
                ),
            },
        )
