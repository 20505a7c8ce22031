"""Explanations: what drives the purchase probability (global SHAP importance) and how each
feature's value moves it (effect plots), on a sample of candidates."""

from __future__ import annotations

import streamlit as st

from ui import auth, charts, frames
from ui.components import download_csv, ranker_notice, table
from ui.errors import show_errors
from ui.explanations import MAX_ROWS, shap_sample
from ui.glossary import METRICS
from ui.resources import active_data, has_ranker, service

st.title("Explanations")

with show_errors():
    data = active_data()
    svc = service(data)
if not has_ranker(svc):
    ranker_notice()
    st.stop()

st.markdown(
    "SHAP values of the purchase model on every candidate item of a seeded sample of "
    "shoppers. Values are in log-odds (before calibration): positive values make a purchase "
    "more likely."
)
cols = st.columns(2)
n_shoppers = cols[0].slider("Shoppers in the sample", 10, 300, 30, step=10, key="expl_n")
seed = int(cols[1].number_input("Sample seed", 0, 10_000, 42, key="expl_seed"))

activity = frames.shopper_activity(data.key, data.checksum, data.dataset.events)
with show_errors():
    try:
        sample = shap_sample(
            data.key,
            data.checksum,
            svc.version,
            tuple(activity["user_id"]),
            n_shoppers,
            seed,
            svc,
        )
    except ImportError:
        st.info("SHAP explanations need `recsys_core.explain`, which is not installed yet.")
        st.stop()
pairs = sample.pairs
st.caption(
    f"{len(pairs):,} candidates (at most {MAX_ROWS:,}) of {pairs['user_id'].nunique():,} "
    "shoppers; "
    f"mean purchase probability {pairs['purchase_probability'].mean():.1%}."
)

st.subheader("What drives the purchase probability")
importance = sample.importance
left, right = st.columns([3, 2])
with left:
    st.plotly_chart(charts.importance_figure(importance), key="expl_importance")
with right:
    # the plain label and the number fit the column; the technical name is in the CSV
    table(
        importance,
        name="shap-importance",
        key="expl_importance_table",
        height=420,
        column_config={
            "feature": None,  # the technical name: hidden here, kept in the CSV
            "label": st.column_config.TextColumn("feature", width="medium"),
            "mean_abs_shap": st.column_config.NumberColumn(
                "mean |SHAP| (log-odds)", format="%.4f", help=METRICS["log_odds"][1]
            ),
        },
        download=False,
    )
    download_csv(importance, "shap-importance", "expl_importance_table")

st.subheader("Effect of one feature")
labels = dict(zip(importance["feature"], importance["label"], strict=True))
feature = st.selectbox(
    "Feature (most important first)",
    importance["feature"].tolist(),
    format_func=lambda f: f"{labels.get(f, f)} ({f})",
    key="expl_feature",
)
effect = sample.effect(feature)
st.plotly_chart(
    charts.effect_figure(auth.shown_frame(effect), feature, labels.get(feature)), key="expl_effect"
)
st.caption(
    "Each point is one candidate: the feature's value (x) and how much it moved that "
    "candidate's score (y). A missing value is not drawn."
)
table(
    effect[["title", "value", "contribution", "user_id", "item_id"]],
    name=f"shap-{feature}",
    key="expl_effect_table",
    height=250,
    column_config={
        "title": st.column_config.TextColumn("product"),
        "value": st.column_config.NumberColumn(
            "feature value", format="%.4g", help="— : missing (e.g. never bought)."
        ),
        "contribution": st.column_config.NumberColumn(
            "effect (log-odds)", format="%+.3f", help=METRICS["log_odds"][1]
        ),
        "user_id": st.column_config.TextColumn("shopper"),
        "item_id": st.column_config.TextColumn("item", width="small"),
    },
)
