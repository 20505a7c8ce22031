"""Model lab: evaluate models with chosen hyperparameters, compare them, export a report;
tune the settings for this log on a validation window."""

from __future__ import annotations

import json
import time

import pandas as pd
import streamlit as st

from recsys_core.business import currency_symbol
from recsys_core.evaluation import ALL_MODELS, evaluate
from recsys_core.models.als_spark import spark_available
from recsys_core.serving.lab import record_metrics
from recsys_core.tuning import settings_for
from recsys_core.tuning.search import TUNABLE_MODELS, TuneConfig, TuneStatus, tune_dataset
from ui import auth, charts, state
from ui.components import download_csv, table
from ui.errors import show_errors
from ui.glossary import describe, glossary_section, metric_columns
from ui.model_lab import (
    ACCURACY_SHOWN,
    BEYOND_SHOWN,
    FORM_KEYS,
    RELIABILITY_COLUMNS,
    SELECTION_SHOWN,
    TUNE_RESULT,
    LabSettings,
    accuracy_columns,
    build_report,
    comparison_lines,
    folds_frame,
    headline_metrics,
    overlap_table,
    report_module,
    selection_columns,
    selection_table,
    shown_columns,
    trials_figure,
    trials_table,
    tune_summary,
)
from ui.resources import active_data, can_train, service

st.title("Model lab")

#: Segment kinds in words.
SEGMENT_NAMES = {
    "tenure": "new vs returning",
    "volume": "light vs heavy buyers",
    "country": "country",
}
#: Metric families of the accuracy table (the others go to the beyond-accuracy table).
ACCURACY_FAMILIES = (
    "ndcg",
    "precision",
    "recall",
    "map",
    "mrr",
    "hit_rate",
    "revenue",
    "revenue_total",
)

with show_errors():
    data = active_data()

with show_errors():
    applied = settings_for(data.dataset)
st.caption(
    f"Settings: **{applied.label}** (where the form's defaults and the event weights come "
    "from: a saved Tune result for this data, else the built-in preset, else settings scaled "
    "to the log)."
)
for note in applied.notes:
    st.caption(f"Note: {note}")

available = [m for m in ALL_MODELS if can_train(m, data.dataset)]
preselected = list(available)
if spark_available():  # offered, not preselected: a Spark fit takes ~25x implicit's time here
    available.append("als-spark")

# ------------------------------------------------------------------ settings
with st.form("lab_settings"):
    st.markdown(
        "Each model is fitted on the training part of a temporal split (the last 30 days are "
        "the test period) and recommends to every test shopper."
    )
    models = st.multiselect("Models", available, default=preselected, key="lab_models")
    start = LabSettings.defaults(applied.preset, tuple(available))
    k_col, folds_col = st.columns(2)
    k = k_col.number_input("List length k", 1, 100, start.k, key="lab_k")
    folds = folds_col.number_input(
        "Time folds",
        1,
        12,
        start.folds,
        key="lab_folds",
        help="Consecutive 30-day test windows, each trained on everything before it; the "
        "tables show the latest, the chart below every fold (each fold refits every model).",
    )
    als_col, knn_col, bpr_col, ranker_col = st.columns(4)
    with als_col:
        st.markdown("**ALS**")
        als_factors = st.number_input(
            "factors", 2, 1024, start.als_factors, step=8, key="lab_als_factors"
        )
        als_reg = st.number_input(
            "regularization",
            0.0,
            100.0,
            start.als_regularization,
            step=0.01,
            format="%.3f",
            key="lab_als_reg",
        )
        als_alpha = st.number_input(
            "alpha", 0.01, 100.0, start.als_alpha, step=0.5, key="lab_als_alpha"
        )
        als_iter = st.number_input("iterations", 1, 200, start.als_iterations, key="lab_als_iter")
    with knn_col:
        st.markdown("**Item-kNN**")
        knn_k = st.number_input("neighbours", 1, 1000, start.knn_neighbours, key="lab_knn_k")
        weightings = ["bm25", "cosine", "tfidf"]
        knn_weighting = st.selectbox(
            "weighting", weightings, index=weightings.index(start.knn_weighting), key="lab_knn_w"
        )
    with bpr_col:
        st.markdown("**BPR**")
        bpr_factors = st.number_input(
            "factors", 2, 1024, start.bpr_factors, step=8, key="lab_bpr_factors"
        )
    with ranker_col:
        st.markdown("**Purchase model (ranker)**")
        ranker_windows = st.number_input(
            "training windows",
            1,
            12,
            start.ranker_windows,
            key="lab_ranker_windows",
            help="30-day label windows before the cutoff the classifier learns from.",
        )
        ranker_folds = st.selectbox(
            "cross-fitting folds",
            [0, 2, 3, 4, 5],
            index=[0, 2, 3, 4, 5].index(start.ranker_folds),
            key="lab_ranker_folds",
            help="0: one model calibrated on held-out shoppers (fastest). K: K models, each "
            "trained on the other folds, averaged (better, about K-1 times the fit time).",
        )
        ranker_trees = st.number_input(
            "trees (max)", 10, 2000, start.ranker_trees, step=50, key="lab_ranker_trees"
        )
    st.caption(
        "Defaults are the settings named above. The ranker's defaults take about 25 s to fit "
        "on Online Retail; its trees are a maximum: early stopping on held-out shoppers picks "
        "how many each fold model keeps."
    )
    run = st.form_submit_button("Evaluate", type="primary")

# ------------------------------------------------------------------ tune
with st.expander("Tune the settings for this log", expanded=TUNE_RESULT in st.session_state):
    st.markdown(
        "Searches event weights and model settings (optuna) on a **validation window**: the "
        "30 days before the test period (without timestamps, a seeded hold-out of the "
        "training events). The test period is never used. The best settings are saved for "
        "this data and used by the next evaluation and training."
    )
    budget_col, models_col = st.columns(2)
    budget = budget_col.number_input(
        "Budget (minutes)", 0.1, 60.0, 1.0, step=0.5, key="lab_tune_budget"
    )
    tune_models = models_col.multiselect(
        "Models to tune", list(TUNABLE_MODELS), default=list(TUNABLE_MODELS), key="lab_tune_models"
    )
    if st.button("Tune", key="lab_tune") and tune_models:
        bar = st.progress(0.0, text="preparing the validation window")
        chart_box = st.empty()
        table_box = st.empty()
        records: list = []
        shown = [0.0]

        def on_trial(status: TuneStatus) -> None:
            best = "-" if status.best_ndcg is None else f"{status.best_ndcg:.4f}"
            left = int(status.seconds_left)
            bar.progress(
                status.fraction,
                text=f"{status.trials_done} trials, best NDCG@10 {best}, "
                f"{left // 60}:{left % 60:02d} left ({status.message})",
            )
            if status.last is not None:
                records.append(status.last)
            if time.monotonic() - shown[0] > 1.0:  # redraw at most once a second
                shown[0] = time.monotonic()
                frame = trials_table(records)
                chart_box.plotly_chart(trials_figure(frame), key=f"lab_tune_live_{len(records)}")
                table_box.dataframe(frame, hide_index=True)

        with show_errors(stop=False):
            config = TuneConfig(models=list(tune_models), budget_minutes=float(budget))
            result, tuned = tune_dataset(data.dataset, config, progress=on_trial)
            auth.record("tune", {"dataset": data.dataset.name, "trials": len(result.trials)})
            st.session_state[TUNE_RESULT] = {
                "key": data.key,
                "checksum": data.checksum,
                "result": result,
                "label": tuned.label,
            }
            for widget in FORM_KEYS:  # the form shows the tuned settings from now on
                st.session_state.pop(widget, None)
            st.rerun()
    done = st.session_state.get(TUNE_RESULT)
    if done and done["key"] == data.key and done["checksum"] == data.checksum:
        result = done["result"]
        st.success(
            f"{len(result.trials)} trials in {result.seconds:.0f} s; settings {done['label']} "
            "saved and used by the next evaluation and training of this data."
        )
        table(tune_summary(result), name=f"tune-summary-{data.dataset.name}", key="lab_tune_sum")
        frame = trials_table(result.trials)
        st.plotly_chart(trials_figure(frame), key="lab_tune_chart")
        table(frame, name=f"tune-trials-{data.dataset.name}", key="lab_tune_trials")

if run:
    if not models:
        st.warning("Choose at least one model.")
        st.stop()
    settings = LabSettings(
        models=tuple(models),
        k=int(k),
        folds=int(folds),
        als_factors=int(als_factors),
        als_regularization=float(als_reg),
        als_alpha=float(als_alpha),
        als_iterations=int(als_iter),
        knn_neighbours=int(knn_k),
        knn_weighting=str(knn_weighting),
        bpr_factors=int(bpr_factors),
        ranker_windows=int(ranker_windows),
        ranker_folds=int(ranker_folds),
        ranker_trees=int(ranker_trees),
    )
    bar = st.progress(0.0, text="starting")

    def report_progress(message: str, fraction: float) -> None:
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

    with show_errors():
        config = settings.config()
        result = evaluate(data.dataset, config, progress=report_progress)
    auth.record("evaluate", {"dataset": data.dataset.name})  # audit log hook (h11)
    bar.empty()
    st.session_state[state.EVALUATION] = {
        "key": data.key,
        "checksum": data.checksum,
        "config": config,
        "result": result,
        "report": None,
    }

saved = st.session_state.get(state.EVALUATION)
if not saved or saved["key"] != data.key or saved["checksum"] != data.checksum:
    st.info("Choose models and settings, then press Evaluate (a few seconds to minutes).")
    st.stop()
result = saved["result"]
config = saved["config"]
k = result.k

# ------------------------------------------------------------------ results
st.subheader("Metrics")
split = result.split
st.caption(
    f"{split.get('method', '?')} split, cutoff {split.get('cutoff', '-')}, "
    f"{split.get('test_users', 0):,} test shoppers; {split.get('relevant', '')}."
)
for note in result.notes:
    st.caption(f"Note: {note}")
metrics = result.metrics_table()
# Two tables of at most six columns with short headers (k is in the heading, not in every
# header), so both fit the page at 1280 px; the CSV under them has every metric.
currency = currency_symbol(data.dataset.name)
accuracy_cols = [c for c in metrics.columns if c.split("@")[0] in ACCURACY_FAMILIES]
other_cols = [c for c in metrics.columns if c not in accuracy_cols]
st.markdown(f"**Accuracy of the top-{k} lists**: did they hold what shoppers went on to buy?")
table(
    metrics[accuracy_cols].reset_index(),
    name=f"metrics-{result.dataset}-k{k}",
    key="lab_metrics",
    column_config=accuracy_columns(accuracy_cols, currency),
    column_order=shown_columns(accuracy_cols, ACCURACY_SHOWN),
    download=False,
)
st.markdown(f"**Beyond accuracy** (top-{k} lists)")
table(
    metrics[other_cols].reset_index(),
    name=f"metrics-{result.dataset}-k{k}",
    key="lab_metrics_other",
    column_config=metric_columns(other_cols, decimals=3, with_k=False),
    column_order=shown_columns(other_cols, BEYOND_SHOWN),
    download=False,
)
st.caption(
    "Fit time, memory and size are in the model selection table below; mean average "
    "precision, first-hit score (MRR), revenue over all test shoppers and the timings are in "
    "the CSV."
)
download_csv(metrics.reset_index(), f"metrics-{result.dataset}-k{k}", "lab_metrics")
for line in comparison_lines(result):
    st.caption(line)
glossary_section()
st.download_button(
    "Download evaluation JSON",
    result.dumps(),
    file_name=f"evaluation-{result.dataset}-k{k}.json",
    mime="application/json",
    key="lab_json",
    on_click="ignore",
)

left, right = st.columns(2)
with left:
    beyond = st.radio("Trade-off against", ["novelty", "coverage"], horizontal=True, key="lab_tr")
    st.plotly_chart(charts.tradeoff_figure(metrics, k, beyond), key="lab_tradeoff")
with right:
    if result.reliability is not None and len(result.reliability):
        binning = st.radio(
            "Calibration bins",
            ["equal width", "equal mass"],
            horizontal=True,
            key="lab_bins",
            help="10 equal-width bins put most predictions in the first bin at a low purchase "
            "rate; 10 equal-mass bins hold as many predictions each.",
        )
        reliability = (
            result.reliability_quantile
            if binning == "equal mass" and result.reliability_quantile is not None
            else result.reliability
        )
        st.plotly_chart(charts.reliability_figure(reliability), key="lab_reliability")
        if result.classifier:
            st.caption(
                "Purchase model (if they order): "
                + ", ".join(
                    f"{(describe(m) or (m, ''))[0]} {v:.3f}"
                    for m, v in result.classifier.items()
                    if m in ("auc", "logloss", "brier", "ece")
                )
            )
        order_metrics = getattr(result, "order_classifier", None)
        if order_metrics:
            st.caption(
                "Order model (orders at all in the test period): "
                + ", ".join(
                    f"{(describe(m) or (m, ''))[0]} {order_metrics[m]:.3f}"
                    for m in ("auc", "logloss", "brier", "ece")
                    if m in order_metrics
                )
                + f"; {order_metrics.get('order_rate', float('nan')):.1%} of "
                f"{int(order_metrics.get('shoppers', 0)):,} shoppers ordered."
            )
        table(
            reliability,
            name=f"reliability-{result.dataset}",
            key="lab_reliability_table",
            column_config=RELIABILITY_COLUMNS,
        )
    else:
        st.info("Calibration needs the purchase model (ranker) among the evaluated models.")

segments = pd.DataFrame(getattr(result, "segments", []) or [])
if not segments.empty:
    st.subheader("By shopper segment")
    seg_col, metric_col = st.columns(2)
    kinds = [c for c in ("tenure", "volume", "country") if c in set(segments["segment"])]
    kind = seg_col.radio(
        "Segment",
        kinds,
        horizontal=True,
        key="lab_segment",
        format_func=SEGMENT_NAMES.get,
        help="From each test shopper's events before the test period.",
    )
    metric = metric_col.radio(
        "Metric",
        [f"ndcg@{k}", f"hit_rate@{k}", f"recall@{k}"],
        horizontal=True,
        key="lab_segment_metric",
        format_func=lambda m: (describe(m) or (m, ""))[0],
    )
    part = segments[segments["segment"] == kind]
    pivot = part.pivot_table(index="value", columns="model", values=metric).reset_index()
    shoppers = part.drop_duplicates("value").set_index("value")["shoppers"]
    pivot.insert(1, "shoppers", pivot["value"].map(shoppers).astype(int))
    table(
        pivot.rename(columns={"value": SEGMENT_NAMES.get(kind, kind)}),
        name=f"segments-{kind}-{metric}",
        key="lab_segments",
        column_config={
            m: st.column_config.NumberColumn(
                m, format="%.4f", help=(describe(metric) or ("", ""))[1]
            )
            for m in part["model"].unique()
        },
    )
    st.caption(
        "New: first event less than 90 days before the test period; heavy: the 20 % of "
        "buyers with the most orders (days with a purchase); countries beyond the 5 largest "
        "are grouped as 'other'."
    )

st.subheader("Model selection")
selection = selection_table(result)
table(
    selection,
    name=f"model-selection-{result.dataset}",
    key="lab_selection",
    column_config=selection_columns(k),
    column_order=shown_columns(list(selection.columns), SELECTION_SHOWN),
)
st.caption(
    "How each model explains its lists: "
    + "; ".join(
        f"**{name}**: {words}"
        for name, words in zip(selection["model"], selection["interpretability"], strict=True)
        if words
    )
    + "."
)
if result.folds:
    fold_metric = f"ndcg@{k}"
    st.plotly_chart(
        charts.folds_figure(folds_frame(result, fold_metric), fold_metric), key="lab_folds_chart"
    )
    st.caption(
        f"Each point is one test window; the tables above show the latest ({len(result.folds)} "
        "folds; the selection table's quality is the mean over them)."
    )
if len(result.models) > 1:
    overlap = overlap_table(result)
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.overlap_figure(overlap), key="lab_overlap")
    with right:
        st.caption("Mean per-shopper Jaccard overlap of the models' top-k lists.")
        download_csv(overlap.reset_index(names="model"), "overlap", "lab_overlap")

# ------------------------------------------------------------------ record and export
st.subheader("Keep and share")
record_col, report_col = st.columns(2)
with record_col:
    st.markdown("Show these numbers on the Overview page as the served models' metrics.")
    if st.button("Record these metrics as the headline metrics", key="lab_record"):
        with show_errors(stop=False):
            lab = service(data).lab
            record_metrics(lab, headline_metrics(result))
            st.success(f"Recorded for version {lab.version}.")
with report_col:
    if report_module() is None:
        st.info("Report export not available yet.")
    else:
        if saved.get("report") is None and st.button("Prepare the report", key="lab_report"):
            with (
                st.spinner("Preparing the report (explanations of example shoppers) ..."),
                show_errors(stop=False),
            ):
                saved["report"] = build_report(result, data.dataset, config)
                auth.record("export", {"report": data.dataset.name})  # audit log hook (h11)
        report = saved.get("report")
        if report is not None:
            from recsys_core.reporting import MIME_TYPES, report_bytes

            stem = f"report-{result.dataset}-k{k}"
            for column, fmt in zip(st.columns(3), ("html", "pdf", "json"), strict=True):
                # the PDF is drawn only when asked for; HTML and JSON are quick
                payload = (
                    (lambda: report_bytes(report, "pdf"))
                    if fmt == "pdf"
                    else report_bytes(report, fmt)
                )
                column.download_button(
                    fmt.upper(),
                    payload,
                    file_name=f"{stem}.{fmt}",
                    mime=MIME_TYPES[fmt],
                    key=f"lab_report_{fmt}",
                    on_click="ignore",
                )
            unavailable = getattr(report, "unavailable", {}) or {}
            if unavailable:
                st.caption("Not in the report: " + json.dumps(unavailable))
