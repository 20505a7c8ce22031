"""Monitoring: health of the served version, data drift, quality regression and alerts.

Drift
-----
Every saved version stores reference bins of its training log (``drift_reference.json``,
:func:`reference_profile`). :func:`drift_report` compares a newer log against them:

* **shopper activity**: events per shopper, in bins at the reference's deciles;
* **item popularity**: events per item group, the reference's items in ten groups of equal
  event mass (most popular first) plus one group of items the reference never saw;
* **event mix**: share of views, carts, favourites and purchases;
* **new items**: share of the newer log's events on items the reference never saw;
* **new shoppers**: share of the newer log's shoppers the reference never saw (reported,
  never alerted on: a shop always has new shoppers, and their normal share depends on the
  periods compared).

The first three use the population stability index, ``PSI = sum (q - p) ln(q / p)`` over
bins, with both distributions smoothed (half an observation added to every bin, so an empty
bin does not make it infinite).

**Thresholds are calibrated, not fixed.** A sample's PSI grows with its noise, about as a
chi-square over the sample size, so a fixed cut-off either misses real shifts in large logs
or raises alarms on most small ones. Each metric alarms when its value exceeds
``floor + scale * (1 / n_new + 1 / n_reference)`` where ``n`` counts shoppers (the unit
that is sampled: events of one shopper are not independent). ``scale`` and ``floor`` were
chosen from the no-drift distribution measured with the demo-store generator
(``bench/bench_drift.py``: PSI of many no-drift samples of 100 to 10,000 shoppers against a
reference of the same store); the same script measures the false-alarm and detection rates
quoted in the README. Activity depends on the length of the period, so compare logs that
cover similar periods.

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
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsys_core.columns import EVENT_TYPES, Columns
from recsys_core.paths import recsys_home

Severity = Literal["info", "warning", "critical"]

#: Bins of the activity distribution (deciles of events per shopper; ties merge bins).
ACTIVITY_BINS = 10
#: Item groups of equal reference event mass (plus one for items the reference never saw).
ITEM_GROUPS = 10
#: Added to every bin's count before PSI (empty-bin smoothing).
SMOOTHING = 0.5
REFERENCE_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Threshold:
    """Alarm when ``value > floor + scale * (1 / n_new + 1 / n_reference)`` (n in shoppers)."""

    scale: float
    floor: float

    def at(self, n_new: int, n_reference: int) -> float:
        """The threshold for samples of these sizes."""
        return self.floor + self.scale * (1.0 / max(n_new, 1) + 1.0 / max(n_reference, 1))


#: Calibrated with ``bench/bench_drift.py --calibrate`` (demo store, seed 5, 300 no-drift
#: samples per size): ``scale`` is above the largest 99.8th percentile of
#: ``value / (1/n_new + 1/n_ref)`` over samples of 100..10,000 shoppers (activity 28.6,
#: popularity 5.3, event mix 5.9 below the floor), ``floor`` above the raw 99.8th percentile at
#: 10,000 shoppers (at most 0.0022). New items never occur without drift there; their floor of
#: 2 % of events is a judgement (real shops add products). Rates measured with another seed.
THRESHOLDS: dict[str, Threshold] = {
    "shopper_activity": Threshold(scale=30.0, floor=0.005),
    "item_popularity": Threshold(scale=8.0, floor=0.005),
    "event_mix": Threshold(scale=4.0, floor=0.005),
    "new_items": Threshold(scale=1.0, floor=0.02),
}


# ---------------------------------------------------------------------------------- reference


def _per_shopper(events: pd.DataFrame) -> pd.Series:
    return events.groupby(events[Columns.USER].astype(str), observed=True).size()


def reference_profile(events: pd.DataFrame) -> dict[str, Any]:
    """Reference bins of a training log (stored with the version as JSON).

    Also holds the number of distinct shoppers per item, from which the popularity model
    can be rebuilt when its files are damaged.
    """
    users = events[Columns.USER].astype(str)
    items = events[Columns.ITEM].astype(str)
    activity = _per_shopper(events).to_numpy(dtype=float)
    qs = np.quantile(activity, np.linspace(0, 1, ACTIVITY_BINS + 1)[1:-1]) if len(activity) else []
    edges = sorted({float(q) for q in qs})
    item_counts = items.value_counts()
    order = item_counts.sort_values(ascending=False, kind="stable")
    mass_before = (order.cumsum() - order) / max(float(order.sum()), 1.0)
    groups = np.minimum((mass_before.to_numpy() * ITEM_GROUPS).astype(int), ITEM_GROUPS - 1)
    item_group = dict(zip(order.index.tolist(), groups.tolist(), strict=True))
    shoppers_per_item = (
        pd.DataFrame({"u": users.to_numpy(), "i": items.to_numpy()})
        .drop_duplicates()
        .groupby("i")
        .size()
    )
    timestamps = events[Columns.TIMESTAMP] if Columns.TIMESTAMP in events.columns else None
    span = None
    if timestamps is not None and timestamps.notna().any():
        span = float((timestamps.max() - timestamps.min()) / pd.Timedelta(days=1))
    return {
        "format_version": REFERENCE_FORMAT_VERSION,
        "events": int(len(events)),
        "shoppers": int(users.nunique()),
        "period_days": span,
        "activity_edges": edges,
        "activity_counts": _bin_counts(activity, edges).tolist(),
        "item_group": item_group,
        "item_group_counts": _group_counts(items, item_group).tolist(),
        "event_mix": _event_counts(events),
        "item_shoppers": {str(k): int(v) for k, v in shoppers_per_item.items()},
        "shopper_ids": sorted(users.unique().tolist()),
    }


def _bin_counts(values: np.ndarray, edges: list[float]) -> np.ndarray:
    bins = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    return np.bincount(bins, minlength=len(edges) + 1)


def _group_counts(items: pd.Series, item_group: dict[str, int]) -> np.ndarray:
    groups = items.map(item_group).fillna(ITEM_GROUPS).astype(int).to_numpy()
    return np.bincount(groups, minlength=ITEM_GROUPS + 1)


def _event_counts(events: pd.DataFrame) -> dict[str, int]:
    counts = events[Columns.EVENT].astype(str).value_counts()
    out = {e: int(counts.get(e, 0)) for e in EVENT_TYPES}
    other = int(counts.sum()) - sum(out.values())
    if other:
        out["other"] = other
    return out


def psi(reference: np.ndarray | list[float], actual: np.ndarray | list[float]) -> float:
    """Population stability index of two count vectors over the same bins (smoothed)."""
    p = np.asarray(reference, dtype=float) + SMOOTHING
    q = np.asarray(actual, dtype=float) + SMOOTHING
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


# ---------------------------------------------------------------------------------- drift


@dataclass
class DriftMetric:
    """One drift measure against its calibrated threshold."""

    name: str
    value: float
    threshold: float | None
    drifted: bool
    detail: str

    @property
    def severity(self) -> Severity:
        """``critical`` beyond twice the threshold, ``warning`` beyond it, else ``info``."""
        if not self.drifted or self.threshold is None:
            return "info"
        return "critical" if self.value > 2 * self.threshold else "warning"


@dataclass
class DriftReport:
    """Drift of a newer log against a version's reference bins."""

    shoppers: int
    events: int
    reference_shoppers: int
    metrics: list[DriftMetric]
    notes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> list[DriftMetric]:
        """Metrics beyond their thresholds."""
        return [m for m in self.metrics if m.drifted]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "shoppers": self.shoppers,
            "events": self.events,
            "reference_shoppers": self.reference_shoppers,
            "metrics": [{**asdict(m), "severity": m.severity} for m in self.metrics],
            "notes": self.notes,
        }


def drift_report(reference: dict[str, Any], events: pd.DataFrame) -> DriftReport:
    """Compare a newer event log with a version's reference bins."""
    n_ref = int(reference.get("shoppers") or 0)
    users = events[Columns.USER].astype(str)
    items = events[Columns.ITEM].astype(str)
    n_new = int(users.nunique())
    activity = _per_shopper(events).to_numpy(dtype=float)
    edges = list(reference.get("activity_edges") or [])
    item_group = reference.get("item_group") or {}
    new_counts = _group_counts(items, item_group)
    ref_mix = reference.get("event_mix") or {}
    mix_names = sorted(set(ref_mix) | set(_event_counts(events)))
    new_mix = _event_counts(events)
    values = {
        "shopper_activity": (
            psi(reference["activity_counts"], _bin_counts(activity, edges)),
            f"{len(edges) + 1} activity bins; median {np.median(activity) if n_new else 0:.0f} "
            "events per shopper",
        ),
        "item_popularity": (
            psi(reference["item_group_counts"], new_counts),
            f"{ITEM_GROUPS} popularity groups + unseen items",
        ),
        "event_mix": (
            psi([ref_mix.get(e, 0) for e in mix_names], [new_mix.get(e, 0) for e in mix_names]),
            ", ".join(
                f"{e} {new_mix.get(e, 0) / max(len(events), 1):.0%} "
                f"(was {ref_mix.get(e, 0) / max(sum(ref_mix.values()), 1):.0%})"
                for e in mix_names
            ),
        ),
        "new_items": (
            float(new_counts[ITEM_GROUPS] / max(len(events), 1)),
            f"{items[~items.isin(item_group)].nunique():,} items the training log never saw",
        ),
    }
    metrics = []
    for name, (value, detail) in values.items():
        limit = THRESHOLDS[name].at(n_new, n_ref)
        metrics.append(DriftMetric(name, round(value, 5), round(limit, 5), value > limit, detail))
    known = set(reference.get("shopper_ids") or [])
    if known:
        new_share = float(np.mean([u not in known for u in users.unique()])) if n_new else 0.0
        metrics.append(
            DriftMetric(
                "new_shoppers",
                round(new_share, 5),
                None,
                False,
                "share of shoppers the training log never saw (reported, not alerted on)",
            )
        )
    notes = []
    span = reference.get("period_days")
    if span and Columns.TIMESTAMP in events.columns and events[Columns.TIMESTAMP].notna().any():
        new_span = float(
            (events[Columns.TIMESTAMP].max() - events[Columns.TIMESTAMP].min())
            / pd.Timedelta(days=1)
        )
        if new_span > 0 and not 0.5 <= new_span / span <= 2:
            notes.append(
                f"the newer log covers {new_span:.0f} days, the training log {span:.0f}: "
                "shopper activity is only comparable over similar periods"
            )
    return DriftReport(n_new, int(len(events)), n_ref, metrics, notes)


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
    relevant_events = events[events[Columns.EVENT].astype(str) == "purchase"]
    if relevant_events.empty:
        relevant_events = events
    relevant = pd.DataFrame(
        {
            Columns.USER: relevant_events[Columns.USER].astype(str).to_numpy(),
            Columns.ITEM: relevant_events[Columns.ITEM].astype(str).to_numpy(),
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
    if state.get("status") != "down":
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
