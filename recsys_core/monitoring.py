"""Monitoring: health of the served version, data drift, quality regression and alerts.

Drift is measured by :mod:`recsys_core.drift` (its names are re-exported here).

Alerts
------
Rows in a SQLite database, ``$RECSYS_HOME/monitoring.db`` (severity, time, what, suggested
action). An alert is identified by a key (e.g. ``online-retail:drift:event_mix``): raising it
again while it is open updates it instead of adding a row; a later check that finds the
condition gone resolves it. ``python -m recsys_core monitor`` exits 1 while a critical alert
is open, so cron or a scheduler can act on it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import id_values
from recsys_core.drift import (  # noqa: F401 - re-exported: monitoring's vocabulary
    ACTIVITY_BINS,
    ITEM_GROUPS,
    SMOOTHING,
    THRESHOLDS,
    DriftMetric,
    DriftReport,
    Severity,
    Threshold,
    drift_report,
    psi,
    reference_profile,
)
from recsys_core.paths import recsys_home

# ---------------------------------------------------------------------------------- quality


def quality_check(lab: Any, events: pd.DataFrame, *, min_shoppers: int = 30) -> dict[str, Any]:
    """Score the served models on a newer log and compare with the version's recorded metrics.

    Every single-stage model with recorded metrics recommends (top ``k``, seen items kept,
    as in ``evaluate``) for the newer log's shoppers it knows; the relevant items are what
    they bought in it. Returns ``{model: {"recorded", "now", "change", "shoppers"}}`` for
    the metric ``ndcg@k``.
    """
    from recsys_core.metrics import ranking_metrics

    recorded = lab.manifest.get("metrics") or {}
    k = int(recorded.get("k", 10))
    key = f"ndcg@{k}"
    relevant_events = events[(events[Columns.EVENT] == "purchase").to_numpy()]
    if relevant_events.empty:
        relevant_events = events
    relevant = pd.DataFrame(
        {
            Columns.USER: id_values(relevant_events[Columns.USER]).to_numpy(),
            Columns.ITEM: id_values(relevant_events[Columns.ITEM]).to_numpy(),
        }
    ).drop_duplicates()
    out: dict[str, Any] = {}
    for name, values in (recorded.get("models") or {}).items():
        model = lab.models.get(name)
        before = values.get(key) if isinstance(values, dict) else None
        if model is None or before is None or not hasattr(model, "users_"):
            continue
        if model.stage_one_models:  # single-stage models only (see the docstring)
            continue
        known = [u for u in relevant[Columns.USER].unique() if u in model.users_]
        if len(known) < min_shoppers:
            continue
        reco = model.recommend(known, k, filter_seen=False)
        now = ranking_metrics(reco, relevant[relevant[Columns.USER].isin(known)], k)[key]
        change = (now - before) / before if before else 0.0
        out[name] = {
            "metric": key,
            "recorded": round(float(before), 5),
            "now": round(float(now), 5),
            "change": round(float(change), 4),
            "shoppers": len(known),
        }
    return out


#: Relative drop of ndcg@k against the recorded value that raises a warning / critical alert.
QUALITY_WARNING_DROP = 0.3
QUALITY_CRITICAL_DROP = 0.6


# ---------------------------------------------------------------------------------- alerts


def alerts_db(home: Path | None = None) -> Path:
    """``$RECSYS_HOME/monitoring.db``."""
    return (home or recsys_home()) / "monitoring.db"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    dataset TEXT,
    version TEXT,
    severity TEXT NOT NULL,
    what TEXT NOT NULL,
    action TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    times INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'open',
    resolved_at TEXT,
    resolution TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_alert_per_key ON alerts(key) WHERE status = 'open';
"""


class AlertStore:
    """Alerts in SQLite, deduplicated by key while open."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or alerts_db()
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def raise_alert(
        self,
        key: str,
        severity: Severity,
        what: str,
        action: str,
        *,
        dataset: str | None = None,
        version: str | None = None,
    ) -> int:
        """Open an alert, or update the open one with the same key; its id."""
        now = _now()
        with self._connect() as db:
            row = db.execute(
                "SELECT id FROM alerts WHERE key = ? AND status = 'open'", (key,)
            ).fetchone()
            if row is not None:
                db.execute(
                    "UPDATE alerts SET severity = ?, what = ?, action = ?, last_seen = ?, "
                    "times = times + 1, version = ? WHERE id = ?",
                    (severity, what, action, now, version, row["id"]),
                )
                return int(row["id"])
            cur = db.execute(
                "INSERT INTO alerts (key, dataset, version, severity, what, action, first_seen, "
                "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, dataset, version, severity, what, action, now, now),
            )
            return int(cur.lastrowid or 0)

    def resolve(self, key: str, resolution: str) -> bool:
        """Resolve the open alert with ``key`` (if any)."""
        return self._resolve("key", key, resolution)

    def resolve_id(self, alert_id: int, resolution: str = "acknowledged") -> bool:
        """Resolve one alert by id (an operator acknowledging it)."""
        return self._resolve("id", alert_id, resolution)

    def _resolve(self, column: Literal["key", "id"], value: str | int, resolution: str) -> bool:
        with self._connect() as db:
            cur = db.execute(
                "UPDATE alerts SET status = 'resolved', resolved_at = ?, resolution = ? "
                f"WHERE {column} = ? AND status = 'open'",  # column: one of two fixed names
                (_now(), resolution, value),
            )
            return cur.rowcount > 0

    def alerts(self, *, open_only: bool = True, prefix: str | None = None) -> list[dict[str, Any]]:
        """Alerts, most severe and newest first."""
        query = "SELECT * FROM alerts"
        clauses, args = [], []
        if open_only:
            clauses.append("status = 'open'")
        if prefix:
            clauses.append("key LIKE ?")
            args.append(prefix + "%")
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += (
            " ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,"
            " last_seen DESC, id DESC"
        )
        with self._connect() as db:
            return [dict(r) for r in db.execute(query, args).fetchall()]

    def has_open_critical(self) -> bool:
        """Whether any critical alert is open."""
        return any(a["severity"] == "critical" for a in self.alerts())


# ---------------------------------------------------------------------------------- health


def health(
    dataset: str | None = None,
    home: Path | None = None,
    live: Any | None = None,
    *,
    deep: bool = True,
) -> dict[str, Any]:
    """The active version's health: age, verification, broken models, answer statistics.

    ``live`` is a :class:`~recsys_core.serving.live.LiveService`; its recent answers give the
    degraded share, latency percentiles and last errors (a fresh process has none), and the
    version it pins (if any) is the one reported. ``deep=False`` verifies file sizes only,
    not checksums (cheap enough for every ``/health`` request).
    """
    from recsys_core.serving import registry

    try:
        folder = registry.resolve_version(dataset, getattr(live, "pinned", None), home)
    except Exception as exc:  # nothing trained, a missing version
        return {"status": "down", "error": str(exc)}
    manifest = registry._read_manifest(folder)
    check = registry.verify_version(folder, deep=deep)
    created = manifest.get("created")
    age_hours = None
    if created:
        age = datetime.now(timezone.utc) - datetime.fromisoformat(str(created))
        age_hours = round(age.total_seconds() / 3600, 2)
    broken = check.broken_parts()
    stats = live.stats() if live is not None else {}
    if live is not None and live.lab_broken():
        broken = {**broken, **live.lab_broken()}
    status = "ok" if check.state != "damaged" and not broken else "degraded"
    return {
        "status": status,
        "dataset": folder.parent.name,
        "version": folder.name,
        "created": created,
        "age_hours": age_hours,
        "verification": check.state,
        "problems": check.problems,
        "broken": broken,
        "answers": stats,
    }


# ---------------------------------------------------------------------------------- one run


@dataclass
class MonitorResult:
    """What one ``monitor`` run found and which alerts are open afterwards."""

    health: dict[str, Any]
    drift: DriftReport | None
    quality: dict[str, Any] | None
    alerts: list[dict[str, Any]]

    @property
    def critical(self) -> bool:
        """Whether a critical alert is open."""
        return any(a["severity"] == "critical" for a in self.alerts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "health": self.health,
            "drift": self.drift.to_dict() if self.drift is not None else None,
            "quality": self.quality,
            "alerts": self.alerts,
            "critical": self.critical,
        }


ACTIONS = {
    "down": "train a version (`python -m recsys_core train ...`), restore a backup "
    "(`registry restore ARCHIVE`) or repair the pointers (`registry rollback --dataset NAME`)",
    "verify": "restore the version from a backup (`python -m recsys_core registry restore "
    "ARCHIVE`) or roll back (`registry rollback`)",
    "drift": "retrain on recent data (`python -m recsys_core train ...`) and compare the new "
    "version's metrics before activating it",
    "quality": "evaluate on recent data and retrain, or roll back to a better version",
}


def run_monitor(
    dataset: str | None = None,
    new_events: pd.DataFrame | None = None,
    *,
    home: Path | None = None,
    live: Any | None = None,
    quality: bool = True,
) -> MonitorResult:
    """Check the active version (and a newer log, if given) and update the alerts."""
    from recsys_core.serving import registry
    from recsys_core.serving.lab import load_lab

    store = AlertStore(alerts_db(home))
    state = health(dataset, home, live)
    drift: DriftReport | None = None
    quality_result: dict[str, Any] | None = None
    down_key = f"{dataset or 'lab'}:health:down"
    if state.get("status") == "down":  # nothing can be served: the most critical state
        store.raise_alert(
            down_key,
            "critical",
            f"health: down, nothing can be served ({state.get('error')})",
            ACTIONS["down"],
            dataset=dataset,
        )
    else:
        store.resolve(down_key, "a version is served again")
        ds, version = state["dataset"], state["version"]
        for alert in store.alerts(prefix=f"{ds}:"):
            if alert["version"] not in (None, version):
                store.resolve(alert["key"], f"superseded: version {version} is active now")
        key = f"{ds}:verify"
        if state["verification"] == "damaged" or state["broken"]:
            parts = ", ".join(sorted(state["broken"])) or "files"
            store.raise_alert(
                key,
                "critical",
                f"version {version} of {ds} is damaged ({parts}): "
                + "; ".join(f"{k}: {v}" for k, v in list(state["problems"].items())[:3]),
                ACTIONS["verify"],
                dataset=ds,
                version=version,
            )
        else:
            store.resolve(key, "the active version verifies")
        if new_events is not None:
            folder = registry.resolve_version(dataset, None, home)
            lab = load_lab(folder, tolerant=True)
            if lab.reference is None:
                state.setdefault("notes", []).append(
                    f"version {version} has no drift reference (trained before monitoring "
                    "existed or damaged): retrain to monitor drift"
                )
            else:
                drift = drift_report(lab.reference, new_events)
                for metric in drift.metrics:
                    key = f"{ds}:drift:{metric.name}"
                    if metric.drifted:
                        store.raise_alert(
                            key,
                            metric.severity,
                            f"data drift in {metric.name.replace('_', ' ')}: {metric.value:.4f} "
                            f"> threshold {metric.threshold:.4f} ({metric.detail})",
                            ACTIONS["drift"],
                            dataset=ds,
                            version=version,
                        )
                    elif metric.threshold is not None:
                        store.resolve(key, f"no drift in the last check ({metric.value:.4f})")
            if quality:
                quality_result = quality_check(lab, new_events)
                for name, q in quality_result.items():
                    key = f"{ds}:quality:{name}"
                    drop = -q["change"]
                    if drop > QUALITY_WARNING_DROP:
                        store.raise_alert(
                            key,
                            "critical" if drop > QUALITY_CRITICAL_DROP else "warning",
                            f"{name} {q['metric']} fell to {q['now']:.4f} on the newer log from "
                            f"{q['recorded']:.4f} recorded at training ({drop:.0%} lower)",
                            ACTIONS["quality"],
                            dataset=ds,
                            version=version,
                        )
                    else:
                        store.resolve(key, f"{q['metric']} {q['now']:.4f} is within range")
    return MonitorResult(state, drift, quality_result, store.alerts())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
