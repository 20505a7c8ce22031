"""Operations: versions, activation and rollback, backup and restore, health, drift, alerts."""

from __future__ import annotations

import streamlit as st

from recsys_core.business import currency_symbol
from recsys_core.security.forget import needs_retraining
from recsys_core.serving import registry
from ui import auth, charts
from ui import operations as ops
from ui.components import table
from ui.errors import show_errors

st.title("Operations")
st.caption(
    "The model registry under $RECSYS_HOME: every version is checksummed (SHA-256), can be "
    "verified, backed up, restored and rolled back. The same actions exist on the command "
    "line: `python -m recsys_core registry ...`, `monitor`, `alerts`."
)

names = registry.datasets()
if not names:
    st.info("No saved versions yet: the first page that needs models trains and saves them.")
    st.stop()
default = ops.default_dataset()
dataset = st.selectbox(
    "Dataset",
    names,
    index=names.index(default) if default in names else 0,
    key="ops_dataset",
)

# ---------------------------------------------------------------------------------- health
st.subheader("Health")
with show_errors(stop=False):
    state = ops.health_of(dataset)
    if state.get("status") == "down":
        st.error(f"Nothing to serve: {state.get('error')}")
    else:
        answers = state["answers"]
        # the version (a long timestamp) on its own line: in a metric column it was cut off
        st.markdown(f"Active version **{state['version']}**")
        cols = st.columns(4)
        cols[0].metric("Status", state["status"])
        cols[1].metric("Age (hours)", f"{state['age_hours']:.1f}" if state["age_hours"] else "—")
        cols[2].metric("Verification", state["verification"])
        share = answers.get("degraded_share")
        cols[3].metric("Degraded answers", "—" if share is None else f"{share:.0%}")
        p50, p95 = answers["latency_ms"]["p50"], answers["latency_ms"]["p95"]
        st.caption(
            f"Over the last {answers['answers']} answers of this app process's live service: "
            f"latency p50 {'-' if p50 is None else f'{p50:.1f} ms'}, "
            f"p95 {'-' if p95 is None else f'{p95:.1f} ms'}; {answers['reloads']} (re)loads."
        )
        for part, why in state["broken"].items():
            st.warning(f"Broken: **{part}**: {why}. Answers fall back to the next healthy model.")
        for err in answers["last_errors"]:
            st.caption(f"Error {err['time']} ({err['where']}): {err['error']}")
        probe_cols = st.columns([1, 3])
        user = probe_cols[1].text_input("Shopper id for a test answer", "", key="ops_probe_user")
        if probe_cols[0].button("Test answer", key="ops_probe"):
            with show_errors(stop=False):
                answer = ops.live_service(dataset).recommend(
                    user or "unknown shopper", 10, "ranker", policy="lab-rule"
                )
                note = f" (degraded: {answer['reason']})" if answer["degraded"] else ""
                st.info(
                    f"{len(answer['items'])} items from {answer['model']} of version "
                    f"{answer['model_version']}{note}"
                )

# ---------------------------------------------------------------------------------- versions
st.subheader("Versions")
verify = st.toggle("Check SHA-256 checksums (reads every file)", value=True, key="ops_verify")
with show_errors(stop=False):
    versions = ops.versions_frame(dataset, verify=verify)
    table(
        versions,
        name=f"versions-{dataset}",
        key="ops_versions",
        column_order=[c for c in ops.VERSION_COLUMNS if c in versions.columns] or None,
    )
    st.caption("Best model: the highest NDCG@10 recorded; the download has every model's.")
    damaged = versions[versions["verification"] == "damaged"] if not versions.empty else versions
    if not damaged.empty:
        st.error(
            f"{len(damaged)} version(s) fail verification: "
            + "; ".join(f"{r.version}: {r.problems}" for r in damaged.itertuples())
            + ". Restore a backup below or roll back."
        )

left, right = st.columns(2)
with left:
    choices = versions["version"].tolist() if not versions.empty else []
    chosen = st.selectbox("Version to activate", choices, key="ops_activate_choice")
    if st.button("Activate", key="ops_activate", disabled=not choices):
        with show_errors(stop=False):
            before, after = registry.rollback(dataset, chosen, why="activate")
            auth.record("activate", {"dataset": dataset, "version": after, "was": before})
            st.success(f"Active version: {after} (was {before})")
            st.rerun()
with right:
    st.write("")
    if st.button("Roll back to the previous version", key="ops_rollback"):
        with show_errors(stop=False):
            before, after = registry.rollback(dataset)
            auth.record("rollback", {"dataset": dataset, "version": after, "was": before})
            st.success(f"Rolled back: {after} is active (was {before})")
            st.rerun()

retrain = [m for m in needs_retraining() if m["dataset"] == dataset]
for mark in retrain:  # written by `forget --user` (h11)
    st.warning(f"Version {mark['version']} needs retraining: {mark['reason']} ({mark['since']}).")

with st.expander("Activation history"):
    table(ops.history_frame(dataset), name=f"history-{dataset}", key="ops_history")

with show_errors(stop=False):
    history = ops.metric_history(list(reversed(ops.dataset_versions(dataset))))
    if not history.empty:
        st.plotly_chart(
            charts.metric_history_figure(history, currency_symbol(dataset)), key="ops_metric_hist"
        )

# ---------------------------------------------------------------------------------- backup
st.subheader("Backup and restore")
b_left, b_right = st.columns(2)
with b_left:
    if st.button("Create a backup", key="ops_backup"):
        with show_errors(stop=False):
            name, data, result = ops.make_backup()
            auth.record("backup", {"file": name, "versions": len(result.versions)})
            st.session_state["ops_backup_file"] = (name, data)
            st.success(
                f"Backed up {len(result.versions)} version(s), {result.size / 1e6:.1f} MB in "
                f"{result.seconds:.1f} s."
            )
            for version, why in result.skipped.items():
                st.warning(f"Skipped damaged version {version}: {why}")
    if "ops_backup_file" in st.session_state:
        name, data = st.session_state["ops_backup_file"]
        st.download_button(
            f"Download {name}",
            data,
            file_name=name,
            mime="application/zstd",
            key="ops_backup_download",
            on_click="ignore",
            icon=":material/download:",
        )
with b_right:
    upload = st.file_uploader(
        "Restore from a backup (.tar.zst or .tar.gz)", type=["zst", "gz"], key="ops_restore_file"
    )
    if upload is not None and st.button("Restore", key="ops_restore"):
        with show_errors(stop=False):
            restored = ops.restore_upload(upload.name, upload.getvalue())
            auth.record(
                "restore",
                {
                    "file": upload.name,
                    "healed": len(restored.healed),
                    "repaired": restored.repaired,
                    "problems": len(restored.problems),
                },
            )
            for level, message in ops.restore_report(restored):
                getattr(st, level)(message)

# ---------------------------------------------------------------------------------- drift
st.subheader("Drift of a newer log")
newer = st.file_uploader(
    "A newer event log (CSV or Parquet) to compare with the training log",
    type=["csv", "parquet", "gz"],
    key="ops_drift_file",
)
if newer is not None and st.button("Check drift", key="ops_drift"):
    with show_errors(stop=False):
        result = ops.drift_upload(newer.name, newer.getvalue(), dataset)
        st.session_state["ops_drift_result"] = result
if "ops_drift_result" in st.session_state:
    result = st.session_state["ops_drift_result"]
    if result.drift is None:
        st.info("This version has no drift reference: retrain it to monitor drift.")
    else:
        st.caption(
            f"{result.drift.shoppers:,} shoppers and {result.drift.events:,} events against "
            f"{result.drift.reference_shoppers:,} shoppers of the training log. Thresholds "
            "grow for small samples (calibrated on the demo-store generator)."
        )
        table(ops.drift_frame(result), name="drift", key="ops_drift_table")
        for note in result.drift.notes:
            st.caption(f"Note: {note}")

# ---------------------------------------------------------------------------------- alerts
st.subheader("Open alerts")
alerts = ops.alerts_frame()
if alerts.empty:
    st.success("No open alerts.")
else:
    table(alerts, name="alerts", key="ops_alerts")
    a_left, a_right = st.columns([1, 3])
    alert_id = a_right.selectbox("Alert", alerts["id"].tolist(), key="ops_alert_choice")
    if a_left.button("Resolve", key="ops_alert_resolve"):
        ops.resolve_alert(int(alert_id))
        st.rerun()
