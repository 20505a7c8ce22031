"""The Operations page's pieces that are not widgets: tables, backup bytes, uploads, monitoring.

Everything goes through :mod:`recsys_core.serving.registry` and :mod:`recsys_core.monitoring`;
the page only draws. The process's :class:`~recsys_core.serving.live.LiveService` (one per
dataset, shared by sessions) answers the page's probe and supplies the health window.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from recsys_core.monitoring import AlertStore, MonitorResult, health, run_monitor
from recsys_core.paths import recsys_home
from recsys_core.serving import backup, registry
from recsys_core.serving.live import LiveService


@st.cache_resource(show_spinner=False, max_entries=8)
def live_service(dataset: str) -> LiveService:
    """The process's live service of ``dataset`` (follows its ACTIVE pointer)."""
    return LiveService(dataset)


def record_answer(
    folder: Path | None, seconds: float, degraded: bool, error: Exception | None = None
) -> None:
    """Record an answer the app gave from the version in ``folder`` in the health window of
    its dataset's live service (what this page's health shows). No-op for an unsaved lab."""
    if folder is not None:
        live_service(folder.parent.name).record(seconds, degraded, error)


def default_dataset() -> str | None:
    """The dataset last activated (the CLI's default), else the first with versions."""
    last = registry.last_pointer()
    names = registry.datasets()
    if last is not None and last[0] in names:
        return last[0]
    return names[0] if names else None


#: The versions table's columns shown on the page (the download has every model's NDCG):
#: they fit a 1280 px window (issue 24, 6).
VERSION_COLUMNS = ["active", "version", "created", "size (MB)", "verification", "best model"]
VERSION_COLUMNS += ["problems"]


def _best(headline: dict[str, float]) -> str:
    """The version's best model by NDCG@10, e.g. ``ranker (0.472)``; a dash without one."""
    scored = {m: v for m, v in headline.items() if v is not None and v == v}
    if not scored:
        return "—"
    model = max(scored, key=lambda m: scored[m])
    return f"{model} ({scored[model]:.3f})"


def versions_frame(dataset: str, *, verify: bool = True) -> pd.DataFrame:
    """One row per saved version: active, created, size, verification, its best model by
    NDCG@10, models, each model's NDCG@10 and problems."""
    rows = []
    for v in registry.list_versions(dataset, verify=verify):
        rows.append(
            {
                "active": v["active"],
                "version": v["version"],
                "created": str(v["created"]).replace("T", " ").split("+")[0][:16],
                "size (MB)": round(v["size_bytes"] / 1e6, 2),
                "verification": v["verification"],
                "best model": _best(v["headline"]),
                "models": ", ".join(v["models"]),
                **{f"ndcg@10 {m}": value for m, value in v["headline"].items()},
                "problems": "; ".join(f"{k}: {p}" for k, p in v["problems"].items()),
            }
        )
    return pd.DataFrame(rows)


def history_frame(dataset: str) -> pd.DataFrame:
    """The activation history of ``dataset`` (newest first)."""
    rows = registry.activation_history(dataset)
    columns = ["time", "user", "from", "to", "why", "note"]
    return pd.DataFrame(rows, columns=[*columns, "dataset"])[columns]


def health_of(dataset: str) -> dict[str, Any]:
    """Health of the dataset's active version with the live service's answer window."""
    live = live_service(dataset)
    with contextlib.suppress(Exception):  # reported by health() below as down
        live.refresh()  # load (or reload after a change) before reporting
    return health(dataset, live=live)


def make_backup() -> tuple[str, bytes, backup.BackupResult]:
    """A fresh backup archive (file name, bytes, what was written), kept under $RECSYS_HOME."""
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = recsys_home() / "backups"
    path = folder / f"recsys-backup-{stamp}.tar.zst"
    result = backup.backup(path)
    return path.name, path.read_bytes(), result


def _spooled(name: str, data: bytes) -> Path:
    folder = recsys_home() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = "".join(Path(name).suffixes[-2:]) or ".bin"
    with tempfile.NamedTemporaryFile(dir=folder, suffix=suffix, delete=False) as fh:
        fh.write(data)
    return Path(fh.name)


def restore_report(result: backup.RestoreResult) -> list[tuple[str, str]]:
    """What a restore did, as ``(level, message)`` lines for the page: ``success`` (what was
    added, healed or kept, and the versions it activated), ``info`` (damaged pointer files it
    rewrote: ``ACTIVE`` of a dataset, ``LAST``) and ``warning`` (what it could not put right:
    the restore did not fully succeed)."""
    lines = [
        (
            "success",
            f"Restored: {len(result.added)} added, {len(result.healed)} healed, "
            f"{len(result.unchanged)} already intact, in {result.seconds:.1f} s.",
        )
    ]
    if result.activated:
        active = ", ".join(f"{ds}: {v}" for ds, v in sorted(result.activated.items()))
        lines.append(("success", f"Activated the backup's versions ({active})."))
    if result.repaired:
        lines.append(
            (
                "info",
                "Repaired damaged pointer file(s): "
                + ", ".join(f"`models/{p}`" for p in result.repaired)
                + " (they now name a version that exists).",
            )
        )
    lines += [("warning", f"Not repaired: {problem}") for problem in result.problems]
    return lines


def restore_upload(name: str, data: bytes) -> backup.RestoreResult:
    """Restore an uploaded backup (verified completely before anything changes)."""
    path = _spooled(name, data)
    try:
        return backup.restore(path)
    finally:
        path.unlink(missing_ok=True)


def drift_upload(name: str, data: bytes, dataset: str) -> MonitorResult:
    """Drift and quality of an uploaded newer log against the dataset's active version."""
    from recsys_core.data.loaders import load_event_file

    path = _spooled(name, data)
    try:
        events = load_event_file(path).events
    finally:
        path.unlink(missing_ok=True)
    return run_monitor(dataset, events, live=live_service(dataset))


def drift_frame(result: MonitorResult) -> pd.DataFrame:
    """The drift metrics of a monitor run as a table."""
    if result.drift is None:
        return pd.DataFrame()
    return pd.DataFrame(
        [
            {
                "metric": m.name,
                "value": m.value,
                "threshold": m.threshold,
                "drift": m.drifted,
                "severity": m.severity,
                "detail": m.detail,
            }
            for m in result.drift.metrics
        ]
    )


def alerts_frame() -> pd.DataFrame:
    """Open alerts, most severe first."""
    rows = AlertStore().alerts()
    columns = ["id", "severity", "last_seen", "times", "what", "action"]
    return pd.DataFrame(rows, columns=[*columns, "key"])[columns]


def resolve_alert(alert_id: int) -> bool:
    """Acknowledge (resolve) an open alert."""
    return AlertStore().resolve_id(alert_id, "acknowledged on the Operations page")


def metric_history(versions: list[dict[str, Any]]) -> pd.DataFrame:
    """Recorded headline metrics per trained version (oldest first), one row per (version,
    model): ``version, created, model, ndcg, revenue_per_shopper, calibration_error``.

    ``versions`` is :func:`recsys_core.serving.registry.list_versions`'s answer; versions
    without recorded metrics are left out. The calibration error (ECE) is the purchase
    model's, on the ranker's row.
    """
    rows = []
    for version in versions:
        metrics = version.get("metrics") or {}
        k = metrics.get("k", 10)
        classifier = metrics.get("classifier") or {}
        for model, entry in (metrics.get("models") or {}).items():
            rows.append(
                {
                    "version": version["version"],
                    "created": version.get("created"),
                    "model": model,
                    "ndcg": entry.get(f"ndcg@{k}"),
                    "revenue_per_shopper": entry.get(f"revenue@{k}"),
                    "calibration_error": classifier.get("ece") if model == "ranker" else None,
                }
            )
    columns = ["version", "created", "model", "ndcg", "revenue_per_shopper", "calibration_error"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["created"] = pd.to_datetime(frame["created"], utc=True, errors="coerce")
    for column in columns[3:]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame.sort_values(["created", "version", "model"], kind="stable", ignore_index=True)


def dataset_versions(dataset: str) -> list[dict[str, Any]]:
    """The saved versions of ``dataset`` (newest first), unverified (quick)."""
    return registry.list_versions(dataset)
