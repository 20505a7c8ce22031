"""Similar items: a product's neighbours by ALS and by item-kNN, with co-purchase counts."""

from __future__ import annotations

import streamlit as st

from recsys_core.similar import SCORE_LABELS
from ui import frames, state
from ui.components import item_card, item_picker, table
from ui.errors import show_errors
from ui.glossary import SCORE_HELP
from ui.resources import active_data, service

#: The models compared side by side.
SIMILARITY_MODELS = (("als", "ALS (latent factors)"), ("itemknn", "Item-kNN (co-interaction)"))

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
    "which. Scores are on each model's own scale (an item-kNN co-purchase score is not "
    "comparable with an ALS cosine). **Bought both**: shoppers who bought both products; "
    "**with both**: shoppers who interacted with both in any way (from the event log)."
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
            if note := similar.attrs.get("note"):
                st.caption(f"ⓘ {note}.")
            counts = frames.co_counts(
                data.key, data.checksum, data.dataset.events, item_id, similar["item_id"].tolist()
            )
            similar = similar.merge(counts, on="item_id", how="left")
            similar = similar[["rank", "title", "score", "source", "co_buyers", "co_shoppers"]]
            table(
                similar,
                name=f"similar-{item_id}-{model}",
                key=f"similar_{model}",
                column_config={
                    "rank": st.column_config.NumberColumn("rank", width="small"),
                    "title": st.column_config.TextColumn("product", width="medium"),
                    "score": st.column_config.NumberColumn(
                        SCORE_LABELS[model],
                        help=SCORE_HELP[model] + " Filled rows show their own model's score.",
                        format="compact" if model == "itemknn" else "%.3f",
                    ),
                    "source": st.column_config.TextColumn("from", width="small"),
                    "co_buyers": st.column_config.NumberColumn(
                        "bought both", help="Shoppers who bought both products (support)."
                    ),
                    "co_shoppers": st.column_config.NumberColumn(
                        "with both", help="Shoppers who interacted with both products."
                    ),
                },
            )
