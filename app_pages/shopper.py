"""Shopper: a shopper's recommendations by every model and why, and their history.

The recommendations come first: they are what changes when another shopper is picked, and
Streamlit redraws a page in order.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from recsys_core.business import (
    currency_symbol,
    expected_revenue,
    format_money,
    with_prices,
)
from recsys_core.metrics import jaccard_overlap
from recsys_core.models import model_class
from recsys_core.policy import ListPolicy
from recsys_core.security.pseudonyms import pseudonym
from ui import auth, charts, frames, state
from ui import operations as ops
from ui.components import (
    MISSING,
    OVERALL_COLUMN,
    PROBABILITY_COLUMN,
    bulk_export,
    business_filters,
    download_csv,
    plural,
    probability_metrics,
    ranker_notice,
    shopper_picker,
    table,
)
from ui.errors import show_errors
from ui.explanations import plain_reasons
from ui.glossary import METRICS, RECOMMEND_SCORES, money_unit
from ui.resources import active_data, has_ranker, service

st.title("Shopper")

with show_errors():
    data = active_data()
    svc = service(data)
ranker = has_ranker(svc)


#: Keys (and session-state names) of the lazy sections below the recommendations table.
WHY, SIDE, HISTORY = state.SHOPPER_WHY, state.SHOPPER_SIDE_BY_SIDE, state.SHOPPER_HISTORY
#: Session-state name of the model the Shopper page offered by default last time.
_LAST_DEFAULT = "shopper_model_default"


def follow_default(default_model: str) -> None:
    """Switch the model select to a new default (the ranker once its background training
    has finished) unless the user picked another model themselves (issue 24: the page
    stayed on ALS after the purchase model was saved)."""
    previous = st.session_state.get(_LAST_DEFAULT)
    chosen = st.session_state.get("shopper_model")
    if previous is not None and previous != default_model and chosen in (None, previous):
        st.session_state["shopper_model"] = default_model
    st.session_state[_LAST_DEFAULT] = default_model


@st.fragment
def shopper_view() -> None:
    """Everything that depends on the chosen shopper.

    A fragment: picking another shopper reruns only this part, not the router and the
    rest of the app, so the new recommendations appear sooner.
    """
    # a shared link reopens the same view (shopper, model, k)
    models = svc.lab.model_names
    state.url_default(state.SHOPPER, "shopper")
    state.url_default("shopper_model", "model", valid=lambda m: m in models)
    state.url_default("shopper_k", "k", int, valid=lambda n: 3 <= n <= 30)
    pick, settings = st.columns([2, 1])
    with pick:
        user_id = shopper_picker(data)
    if user_id is None:
        return
    shown_id = auth.shown_id(user_id)  # the pseudonym once log-ins are on
    auth.record_once("view-shopper", {"shopper": pseudonym(user_id)})
    auth.reveal_control(user_id)
    with settings:
        k = st.slider("Recommendations (k)", 3, 30, 10, key="shopper_k")
        if st.session_state.get("shopper_model") not in (None, *models):
            del st.session_state["shopper_model"]  # e.g. BPR before the background training
        default_model = "ranker" if ranker else ("als" if "als" in models else models[0])
        follow_default(default_model)
        model = st.selectbox(
            "Model",
            models,
            index=models.index(default_model),
            key="shopper_model",
            help="ranker: the two-stage purchase model (ranks by purchase probability).",
        )
        rule = svc.bought_rule()  # the lab's default: the rule evaluation applies
        filter_seen = st.checkbox(
            "Hide items already bought",
            value=rule.remove,
            key="shopper_bought",
            help=f"Default ({rule.source}): {rule.why}",
        )
    filters = business_filters(data)
    state.share_view(shopper=shown_id, model=model, k=k)

    history = frames.shopper_history(
        data.key, data.checksum, user_id, data.dataset.events, data.dataset.catalog
    )
    n_bought = int((history["event"] == "purchase").sum())
    st.markdown(
        f"**{shown_id}**: {plural(len(history), 'event')} on "
        f"{plural(history['item_id'].nunique(), 'product')}, {plural(n_bought, 'purchase')} "
        "(history at the bottom of the page)."
    )

    # ------------------------------------------------------------------ recommendations
    st.subheader("Recommendations")
    # one list policy (repeats + business filters), applied by the service as everywhere
    # the lab's rule as it is (bought or every seen item, as evaluation applies it), or the
    # product manager's own choice
    policy = (
        ListPolicy.from_rule(rule, filters)
        if filter_seen == rule.remove
        else ListPolicy("leave-out-bought" if filter_seen else "keep", filters, source="request")
    )
    purchases = None
    if filters.exclude_bought_days and data.dataset.has_timestamps:
        purchases = history.assign(user_id=user_id)
    with show_errors():
        start = time.perf_counter()
        reco, served_by, reason = svc.recommend_frame(
            user_id, k, model, policy=policy, purchases=purchases
        )
        # the Operations page's health window sees the app's answers too
        ops.record_answer(svc.lab.path, time.perf_counter() - start, reason is not None)
        compare = svc.compare_models(user_id, k, policy=policy, purchases=purchases)
    if filters.active:
        st.caption(
            f"Business filters: showing {len(reco)} items that pass (list policy: "
            f"{policy.name}; the list was asked deep enough to fill k)."
        )
    if reason:
        st.warning(f"Served by **{served_by}**: {reason}")
    if not ranker:
        ranker_notice()
    currency = currency_symbol(data.dataset.name)
    reco = with_prices(reco, data.dataset.catalog)
    order = svc.order_probability(user_id)
    revenue = expected_revenue(reco)
    cols = st.columns(3)
    cols[0].metric(
        "Orders in the next 30 days",
        "—" if order != order else f"{order:.1%}",
        help=METRICS["order_probability"][1],
    )
    prices = reco["price"].to_numpy(dtype=float)
    priced = bool(np.isfinite(prices).any())
    cols[1].metric(
        "Expected revenue of this list",
        format_money(revenue, currency) if priced else "—",
        help=METRICS["expected_revenue"][1],
    )
    cols[2].metric(
        "List value at full price",
        format_money(float(np.nansum(prices)), currency) if priced else "—",
        help="Sum of the listed items' unit prices.",
    )
    if not priced:
        st.caption("This log has no prices, so the lab cannot put money on these lists.")
    if order == order:
        st.caption(
            "**If they order**: the chance the item is in the shopper's order if they order in "
            "the next 30 days; **overall** = order chance × that."
        )

    model_cols = [m for m in svc.lab.model_names if m in compare.columns]
    others = [m for m in model_cols if m != served_by]  # the served model's rank is "rank"
    columns = ["rank", "title", "price", "probability", "purchase_probability"]
    columns += ["expected_revenue", "other_ranks", "item_id"]
    if not model_class(served_by).scores_are_probabilities:  # else score == probability
        columns.insert(-1, "score")
    shown = reco.assign(other_ranks=frames.other_model_ranks(reco["item_id"], compare, others))[
        columns
    ]
    st.caption(
        f"Top {len(reco)} by **{served_by}**, with the purchase probability of each item; "
        "where the other models rank it is under *Models side by side*; the download adds "
        "the model's own score and the item ids."
    )
    money = "accounting"  # thousands separators; the header names the currency
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        key="shopper_reco",
        placeholder=MISSING,
        # fits a 1280 px window (issue 24, 6): the model's own score, the other models'
        # ranks and the item id are in the download (and the ranks under "Models side by
        # side"), not in columns shown here
        column_order=[c for c in columns if c not in ("score", "other_ranks", "item_id")],
        column_config={
            "rank": st.column_config.NumberColumn("rank", width="small"),
            "title": st.column_config.TextColumn("product"),
            "price": st.column_config.NumberColumn(f"price ({money_unit(currency)})", format=money),
            "purchase_probability": PROBABILITY_COLUMN,
            "probability": OVERALL_COLUMN,
            "expected_revenue": st.column_config.NumberColumn(
                # an unknown currency is said once, in the price's header (fits 1280 px)
                f"expected revenue ({currency})" if currency else "expected revenue",
                format=money,
                help=METRICS["expected_revenue"][1]
                + ("" if currency else f" In the prices' unit ({money_unit(currency)})."),
            ),
            "score": st.column_config.NumberColumn(
                RECOMMEND_SCORES.get(served_by, (f"{served_by} score", ""))[0],
                format="compact",
                help=RECOMMEND_SCORES.get(served_by, ("", "The model's own ranking score."))[1],
            ),
            "other_ranks": st.column_config.TextColumn(
                "ranked by other models", help=f"Model #rank in that model's top {k}."
            ),
            "item_id": st.column_config.TextColumn("id", width="small"),
        },
    )
    download_csv(shown, f"recommendations-{shown_id}-{served_by}", "shopper_reco")

    # ------------------------------------------------------------------ below the table
    # Lazy expanders (issue 24): a section runs only while it is open, so a switch to
    # another shopper computes no chart below the table unless the user has opened its
    # section (it then stays open, for every shopper, until closed). "Why" starts open: the
    # plain reasons are what a product manager reads next (and, measured under load, the
    # table painted later when nothing at all ran after it: docs/app.md).
    with st.expander(
        "Why this recommendation?",
        expanded=True,
        key=WHY,
        on_change="rerun",
        icon=":material/lightbulb:",
    ) as why:
        if why.open:
            why_section(user_id, reco, served_by)
    with st.expander(
        "Models side by side", key=SIDE, on_change="rerun", icon=":material/compare:"
    ) as side_by_side:
        if side_by_side.open:
            side_by_side_section(user_id, shown_id, compare, model_cols, served_by, k)
    with st.expander("History", key=HISTORY, on_change="rerun", icon=":material/history:") as past:
        if past.open:
            history_section(history, shown_id)


def why_section(user_id: str, reco: pd.DataFrame, served_by: str) -> None:
    """Why an item of the list is there, by the model that served the list: plain reasons
    and the SHAP charts behind a toggle under the ranker's lists, "because you bought" rows
    under every model's."""
    titles = dict(zip(reco["item_id"], reco["title"], strict=True))
    item_id = st.selectbox(
        "Recommendation to explain",
        reco["item_id"].tolist(),
        format_func=lambda i: f"{titles.get(i, '')} ({i})",
        key="shopper_explain_item",
    )
    if item_id is not None:
        explanation: dict[str, Any] | None = None
        # the model that served the list explains it: SHAP only under the ranker's lists
        served_shap = ranker and model_class(served_by).scores_are_probabilities
        if served_shap:
            with show_errors(stop=False):
                explanation = svc.explain_served(user_id, item_id, served_by)
            if explanation is not None:  # full width: in a column the labels were cut off
                probability_metrics(explanation)
        left, right = st.columns([3, 2])
        with left:
            if served_shap:
                if explanation is not None:
                    up, down = plain_reasons(explanation)
                    if up:
                        st.markdown(
                            "**Likely because the shopper** "
                            + "; ".join(up)
                            + ("." if not down else f". **Held back by**: {'; '.join(down)}.")
                        )
                    if st.toggle(
                        "Details: how each reason moves the score (SHAP chart)",
                        key="shopper_shap_details",
                    ):
                        st.plotly_chart(
                            charts.waterfall_figure(explanation), key="shopper_waterfall"
                        )
                        order_detail = explanation.get("order_explanation")
                        if order_detail:
                            st.markdown("**Why this order chance** (the order model)")
                            st.plotly_chart(
                                charts.waterfall_figure(order_detail), key="shopper_order_shap"
                            )
            else:
                st.info(
                    f"This list was served by **{served_by}**: its own reasons are on the "
                    "right (the purchase model's SHAP waterfall explains the ranker's lists)."
                )
        if explanation is None:
            with show_errors(stop=False):
                explanation = svc.explain_served(user_id, item_id, served_by)
        bought: list[dict[str, Any]] = list((explanation or {}).get("because_you_bought") or [])
        with right:
            st.markdown(f"**{(explanation or {}).get('reasons_label') or 'Because you bought'}**")
            if bought:
                for past in bought:  # strongest first; the model's weights mean nothing to a PM
                    counted = past.get("counted", "bought")
                    st.markdown(f"- {past['title']} (`{past['item_id']}`, {counted})")
            else:
                st.caption(f"No single past item explains this one in {served_by}'s list.")


def side_by_side_section(
    user_id: str,
    shown_id: str,
    compare: pd.DataFrame,
    model_cols: list[str],
    served_by: str,
    k: int,
) -> None:
    """The rank each model gives each listed product, and the models' overlap."""
    others = [m for m in model_cols if m != served_by]
    lists = {
        m: compare.dropna(subset=[m]).sort_values(m)[["item_id", "title"]].reset_index(drop=True)
        for m in model_cols
    }
    # one row per product any model lists, one narrow rank column per model: fits a 1280 px
    # window, where a column of titles per model did not (issue 24, 6)
    order = [served_by, *others] if served_by in model_cols else model_cols
    side = compare[["title", *order]].sort_values(order, na_position="last")
    st.caption(
        f"The rank each model gives each product in its own top {k} for this shopper "
        "(— : not in that model's list); sorted by the list above."
    )
    st.dataframe(
        side,
        hide_index=True,
        width="stretch",
        key="shopper_side",
        placeholder=MISSING,
        column_config={
            "title": st.column_config.TextColumn("product"),
            **{m: st.column_config.NumberColumn(m, format="%d") for m in order},
        },
    )
    download_csv(
        compare, f"model-ranks-{shown_id}", "shopper_compare", "Download all models' ranks"
    )
    _, right = st.columns([1, 2])
    if len(model_cols) > 1:
        by_model = {
            m: pd.DataFrame(
                {
                    "user_id": user_id,
                    "item_id": lists[m]["item_id"],
                    "rank": range(1, len(lists[m]) + 1),
                }
            )
            for m in model_cols
        }
        overlap = pd.DataFrame(1.0, index=model_cols, columns=model_cols)
        for i, a in enumerate(model_cols):
            for other in model_cols[i + 1 :]:
                value = jaccard_overlap(by_model[a], by_model[other], k)
                overlap.loc[a, other] = overlap.loc[other, a] = value
        with right:
            st.plotly_chart(charts.overlap_figure(overlap), key="shopper_overlap")
            download_csv(overlap.reset_index(names="model"), f"overlap-{shown_id}", "shopper_ovl")


def history_section(history: pd.DataFrame, shown_id: str) -> None:
    """The shopper's events: a timeline, and the table on request."""
    if "timestamp" in history.columns and len(history):
        st.plotly_chart(charts.timeline_figure(history), key="shopper_timeline")
    if st.toggle("Show every event as a table", key="shopper_history_table"):
        table(history, name=f"history-{shown_id}", key="shopper_history", height=300)
    else:
        download_csv(history, f"history-{shown_id}", "shopper_history", "Download the history")


shopper_view()


# ------------------------------------------------------------------ bulk export
st.subheader("Bulk export")
with st.expander("Top-k of every shopper (or a segment) as CSV or Parquet"):
    bulk_export(data, svc)
