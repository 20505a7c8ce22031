"""Overview: the active dataset, the trained models and their headline metrics, the funnel,
activity over time, and where to go next."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recsys_core.models import MODEL_NAMES, model_class
from ui import charts, frames
from ui.components import funnel_chart, table
from ui.errors import show_errors
from ui.glossary import metric_columns
from ui.model_lab import headline_table
from ui.resources import active_data, has_ranker, service

st.title("Overview")

with show_errors():
    data = active_data()
summary = data.dataset.summary()

st.subheader(f"Dataset: {data.label}")
cols = st.columns(4)
cols[0].metric("Events", f"{summary['events']:,}")
cols[1].metric("Shoppers", f"{summary['users']:,}")
cols[2].metric("Products", f"{summary['items']:,}")
if summary.get("first_event"):
    first = pd.Timestamp(summary["first_event"]).date()
    last = pd.Timestamp(summary["last_event"]).date()
    cols[3].metric("Period", f"{(last - first).days + 1} days", help=f"{first} to {last}")
    st.caption(f"From {first} to {last}. Source: {data.dataset.source or data.dataset.name}")
else:
    cols[3].metric("Period", "no timestamps")
for note in data.dataset.notes:
    st.caption(f"Note: {note}")

st.subheader("Trained models")
with show_errors(stop=False):
    svc = service(data)
    lab = svc.lab
    manifest = lab.manifest
    created = pd.Timestamp(lab.created).strftime("%Y-%m-%d %H:%M UTC") if lab.created else "?"
    st.markdown(
        f"Version **{lab.version}**, trained {created} on "
        f"{manifest.get('data', {}).get('events', summary['events']):,} events."
    )
    fit = manifest.get("fit_seconds", {})
    # a two-stage model's stage-one models are trained with it (no fit time of their own)
    trained_with = {
        stage: name
        for name in fit
        if name in MODEL_NAMES
        for stage in model_class(name).stage_one_models
    }
    models = pd.DataFrame(
        {
            "model": lab.model_names,
            "fit time": [
                f"{fit[m]:,.1f} s"
                if fit.get(m) is not None
                else (f"with the {trained_with[m]}" if m in trained_with else "—")
                for m in lab.model_names
            ],
        }
    )
    headline = headline_table(manifest.get("metrics") or {})
    if not headline.empty:
        models = models.merge(headline, on="model", how="left")
        evaluated = (manifest.get("metrics") or {}).get("evaluated")
        st.caption(f"Headline metrics recorded from the evaluation of {evaluated}.")
    else:
        st.caption(
            "No headline metrics recorded yet: run an evaluation on the Model lab page and "
            "record it."
        )
    table(
        models,
        name=f"models-{lab.version}",
        key="overview_models",
        column_config=metric_columns([c for c in models.columns if c not in ("model", "fit time")]),
    )
    if lab.order_model is not None:
        seconds = fit.get("order")
        st.caption(
            "Also trained: the order model (will the shopper order at all in the next 30 days)"
            + (f", {seconds:.1f} s." if seconds is not None else ".")
        )
    for note in manifest.get("notes", []):
        st.caption(f"Note: {note}")
    if not has_ranker(svc):
        st.info("Purchase model not trained: probabilities and SHAP explanations are off.")

left, right = st.columns(2)
with left:
    funnel_chart(data, "overview_funnel")
with right:
    weekly = frames.weekly_activity(data.key, data.checksum, data.dataset.events)
    if weekly.empty:
        st.info("This log has no timestamps: no activity over time.")
    else:
        st.plotly_chart(charts.activity_figure(weekly), key="overview_activity")

st.subheader("Where to go next")
links = st.columns(3)
links[0].page_link(
    "app_pages/shopper.py", label="Pick a shopper and see recommendations", icon=":material/person:"
)
links[0].page_link("app_pages/similar.py", label="Find similar items", icon=":material/hub:")
links[1].page_link(
    "app_pages/search.py", label="Search products, personalised", icon=":material/search:"
)
links[1].page_link(
    "app_pages/model_lab.py", label="Compare and evaluate models", icon=":material/science:"
)
links[2].page_link(
    "app_pages/explanations.py", label="What drives purchases (SHAP)", icon=":material/lightbulb:"
)
links[2].page_link(
    "app_pages/data.py", label="Explore the data or upload your own", icon=":material/table_chart:"
)
