"""Search: product search (hybrid or TF-IDF), plain and re-ranked for a shopper."""

from __future__ import annotations

import streamlit as st

from recsys_core.search import RELEVANCE_FLOOR, SEARCH_METHODS
from recsys_core.security.pseudonyms import pseudonym
from ui import auth, state
from ui.components import (
    PROBABILITY_COLUMN,
    full_height,
    ranker_notice,
    shopper_picker,
    table,
)
from ui.errors import show_errors
from ui.glossary import category_label
from ui.resources import active_data, has_ranker, service

st.title("Search")

with show_errors():
    data = active_data()
    svc = service(data)

state.url_default("search_query", "q")  # a shared link reopens the same view
state.url_default(state.SHOPPER, "shopper")
state.url_default("search_k", "k", int, valid=lambda n: 5 <= n <= 50)
query = st.text_input(
    "Search products", key="search_query", placeholder="e.g. mug, coffee, lantern"
)
left, right = st.columns([2, 1])
with left:
    user_id = shopper_picker(data, key="search_shopper")
with right:
    k = st.slider("Results", 5, 50, 20, key="search_k")
    method = st.radio(
        "Method",
        SEARCH_METHODS,
        horizontal=True,
        key="search_method",
        help=(
            "hybrid: TF-IDF blended with text embeddings learnt from this catalog (finds "
            "misspellings, joined or split words and items bought with the same words); "
            "tfidf: lexical matches only. See docs/search.md for how they compare."
        ),
    )
state.share_view(q=query.strip(), shopper=auth.shown_id(user_id) if user_id else None, k=k)

if not query.strip():
    st.caption("Type a word from a product title or category.")
    st.stop()

auth.record_once(
    "search", {"query": query.strip(), "shopper": pseudonym(user_id) if user_id else None}
)
with show_errors():
    plain, personal = svc.search(query, user_id if has_ranker(svc) else None, k, method)
if plain.empty:
    st.warning(f"No product matches {query!r}.")
    st.stop()

# one list above the other, each showing every result (side by side, headers were cut and
# half the results hid in a small scroll box)
plain_col, personal_col = st.container(), st.container()
with plain_col:
    st.subheader("By relevance")
    table(
        plain[["rank", "title", "category", "relevance", "item_id"]],
        name=f"search-{query}",
        key="search_plain",
        column_config={
            "relevance": st.column_config.NumberColumn(format="%.3f"),
            "category": st.column_config.TextColumn(category_label(data.dataset.name)),
        },
        height=full_height(len(plain)),
    )
with personal_col:
    st.subheader(f"For shopper {auth.shown_id(user_id)}")
    if personal is None:
        ranker_notice()
    else:
        n_relevant = int(personal["reranked"].sum())
        st.caption(
            f"Only relevant matches are re-ranked by this shopper's purchase probability: "
            f"those holding every word of the query and at least "
            f"{RELEVANCE_FLOOR:.0%} as relevant as the best match ({n_relevant} here). "
            "Less relevant matches follow in relevance order, never above them."
        )
        table(
            personal[
                ["rank", "title", "purchase_probability", "lexical_rank", "reranked", "item_id"]
            ],
            name=f"search-{query}-{auth.shown_id(user_id)}",
            key="search_personal",
            height=full_height(len(personal)),
            column_config={
                "purchase_probability": PROBABILITY_COLUMN,
                "lexical_rank": st.column_config.NumberColumn(
                    "rank by relevance", help="Position in the plain relevance order (left)."
                ),
                "reranked": st.column_config.CheckboxColumn(
                    "re-ranked", help="Relevant enough to be re-ranked for this shopper."
                ),
            },
        )
