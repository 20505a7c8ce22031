"""Data: explore the event log, switch datasets, upload your own log with column mapping."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from recsys_core.errors import RecsysError
from ui import auth, charts, frames, state
from ui.components import funnel_chart, table
from ui.errors import show_errors
from ui.resources import active_data
from ui.upload import (
    ENCODINGS,
    MAPPED_COLUMNS,
    REQUIRED,
    UploadPreview,
    canonical_events,
    clear_message,
    guess_column_map,
    guess_event_map,
    handle_upload,
    mapping_problems,
    preview_upload,
)

NONE = "(not in the file)"


@st.cache_data(max_entries=4, show_spinner="Reading the file ...")
def _preview(name: str, content: bytes, encoding: str) -> UploadPreview:
    """The file's columns and first rows, read once per content (every widget change reruns)."""
    return preview_upload(name, content, encoding)


st.title("Data")

# ------------------------------------------------------------------ switch dataset
state.ensure_session()
options = state.dataset_options()
current = state.active_key()
if st.session_state.get("data_dataset_select") != current:
    # the widget follows the active dataset (an upload switches it from code, not the widget)
    st.session_state["data_dataset_select"] = current


def _switch_dataset() -> None:
    key = st.session_state["data_dataset_select"]
    state.set_active_key(key)
    state.remember_in_url(key)


st.selectbox(
    "Active dataset",
    options,
    format_func=state.dataset_label,
    key="data_dataset_select",
    on_change=_switch_dataset,
    help="Every page uses this dataset. Models are trained on first use and saved.",
)

with show_errors():
    data = active_data()
summary = data.dataset.summary()
cols = st.columns(4)
cols[0].metric("Events", f"{summary['events']:,}")
cols[1].metric("Shoppers", f"{summary['users']:,}")
cols[2].metric("Products", f"{summary['items']:,}")
cols[3].metric("Timestamps", "yes" if summary["has_timestamps"] else "no")
for note in data.dataset.notes:
    st.caption(f"Note: {note}")

# ------------------------------------------------------------------ explore
events = data.dataset.events
counts = frames.event_counts(data.key, data.checksum, events)
weekly = frames.weekly_activity(data.key, data.checksum, events)
if weekly.empty:
    st.info("This log has no timestamps: no events over time.")
else:
    st.plotly_chart(charts.activity_figure(weekly), key="data_activity")

left, right = st.columns(2)
with left:
    funnel_chart(data, "data_funnel")
    recorded = counts[counts["events"] > 0]  # no rows of 0 for stages the log lacks
    table(recorded, name=f"{data.dataset.name}-events-by-type", key="data_counts")
popularity = frames.item_popularity(data.key, data.checksum, events, data.dataset.catalog)
with right:
    st.plotly_chart(charts.long_tail_figure(popularity), key="data_long_tail")
    n_top = max(1, int(round(0.2 * len(popularity))))
    share = float(popularity["share_of_events"].head(n_top).sum())
    st.caption(f"The 20% most popular products ({n_top:,}) get {share:.0%} of the events.")

activity = frames.shopper_activity(data.key, data.checksum, events)
left, right = st.columns(2)
with left:
    st.plotly_chart(charts.user_activity_figure(activity), key="data_user_activity")
    st.caption(
        f"Median {activity['events'].median():.0f} events per shopper; "
        f"the most active has {activity['events'].max():,}."
    )
with right:
    tab_items, tab_shoppers = st.tabs(["Products by popularity", "Shoppers by activity"])
    with tab_items:
        table(
            popularity,
            name=f"{data.dataset.name}-item-popularity",
            key="data_popularity",
            height=300,
            column_config={
                "share_of_events": st.column_config.NumberColumn(format="percent"),
                "cumulative_share": st.column_config.NumberColumn(format="percent"),
            },
        )
    with tab_shoppers:
        table(
            activity,
            name=f"{data.dataset.name}-shopper-activity",
            key="data_activity_table",
            height=300,
        )

# ------------------------------------------------------------------ upload
st.header("Upload your own log")
st.markdown(
    "A CSV or Parquet file with one row per behaviour: who (shopper id), what (product id), "
    "which event (view, cart, favorite, purchase) and, ideally, when. Map your columns and "
    "event names below; the file is checked with the same rules as "
    "`python -m recsys_core validate`."
)
uploaded = st.file_uploader(
    "Event log (CSV or Parquet)",
    type=["csv", "tsv", "txt", "parquet", "gz", "zip", "bz2", "xz"],
    key="data_upload",
    on_change=clear_message,  # the last file's outcome does not belong to the next one
    help="Stored encrypted in your workspace; trained under its own name, it does not change "
    "what the command line serves.",
)
encoding = st.selectbox(
    "Text encoding",
    ENCODINGS,
    key="data_upload_encoding",
    help="Of a CSV file (a BOM is honoured). Try latin-1 or cp1252 for files saved by Excel.",
)
if uploaded is not None:
    content = uploaded.getvalue()
    tag = hashlib.sha256(content).hexdigest()[:12]  # fresh mapping widgets for each file
    try:
        preview = _preview(uploaded.name, content, encoding)
    except RecsysError as exc:
        st.error(str(exc))
        st.stop()
    st.caption(
        f"{preview.name}: {preview.rows:,} rows, columns {', '.join(preview.columns)}. "
        f"Detected format: {preview.detected_format}."
    )
    for note in preview.notes:
        st.caption(f"Note: {note}")
    st.dataframe(preview.head, hide_index=True, width="stretch", height=200, placeholder="—")

    fmt = "auto"
    use_detected = False
    if preview.detected_format != "events":
        use_detected = st.toggle(
            f"Read it as the {preview.detected_format} format (no mapping needed)",
            value=True,
            key=f"data_use_detected_{tag}",
        )
        fmt = preview.detected_format if use_detected else "events"

    column_map: dict[str, str | None] = {}
    event_map: dict[str, str | None] = {}
    if not use_detected:
        st.subheader("Column mapping")
        guess = guess_column_map(preview.columns)
        choices = [NONE, *preview.columns]
        grid = st.columns(4)
        for i, canonical in enumerate(MAPPED_COLUMNS):
            guessed = guess.get(canonical)
            picked = grid[i % 4].selectbox(
                canonical + (" *" if canonical in REQUIRED else ""),
                choices,
                index=choices.index(guessed) if guessed else 0,
                key=f"data_map_{canonical}_{tag}",
            )
            column_map[canonical] = None if picked == NONE else picked
        st.caption(
            "Fields marked \\* are required. Title and category, when mapped, feed the catalog "
            "and search."
        )

        event_col = column_map.get("event")
        if event_col:
            names = [v for v, _ in preview.value_counts.get(event_col, [])]
            if names:
                st.subheader("Event names")
                guessed_events = guess_event_map(names)
                counts_of = dict(preview.value_counts[event_col])
                editor = pd.DataFrame(
                    {
                        "file event": names,
                        "rows": [counts_of[n] for n in names],
                        "means": [guessed_events[n] for n in names],
                    }
                )
                edited = st.data_editor(
                    editor,
                    hide_index=True,
                    disabled=["file event", "rows"],
                    column_config={
                        "means": st.column_config.SelectboxColumn(
                            "canonical event", options=canonical_events()
                        )
                    },
                    key=f"data_event_map_{tag}",
                    placeholder="— (ignored)",
                )
                event_map = {
                    str(name): (str(means) if pd.notna(means) and means else None)
                    for name, means in zip(edited["file event"], edited["means"], strict=True)
                }
            else:
                st.caption(
                    f"{event_col} has too many distinct values to list; known spellings "
                    "(view, addtocart, transaction, ...) are mapped automatically."
                )

    problems = [] if use_detected else mapping_problems(column_map)
    for problem in problems:
        st.warning(problem)
    if st.button("Validate and use this log", type="primary"):
        with st.spinner("Validating ..."):
            outcome = handle_upload(
                uploaded.name,
                content,
                fmt=fmt,
                column_map=column_map,
                event_map=event_map,
                encoding=encoding,
                owner=auth.owner(),
            )
        auth.record("upload", {"file": preview.name, "ok": outcome.ok, "dataset": outcome.key})
        if outcome.ok and outcome.key:
            state.remember_in_url(outcome.key)
        st.rerun()  # show the outcome below, and the new dataset everywhere if it was valid

message = st.session_state.get(state.UPLOAD_MESSAGE)
if message:
    if message["ok"]:
        st.success(message["message"])
    else:
        st.error(message["message"])
        st.caption(f"The active dataset is still {state.dataset_label(state.active_key())}.")
