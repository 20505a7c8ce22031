"""Data drift of a newer event log against a saved version's training log.

Every saved version stores reference bins of its training log (``drift_reference.json``,
:func:`reference_profile`). :func:`drift_report` compares a newer log against them:

* **shopper activity**: events per shopper *per unit of time* (the newer log's counts scaled
  to the training log's period), in bins at the reference's deciles. It is never critical
  (a warning at most): activity changes with how a log was cut (a sample of its rows, a
  shorter or busier period) without the shop changing. Without timestamps on both sides it
  is reported as "not comparable" and not alerted on;
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
quoted in the README.

"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsys_core.columns import EVENT_TYPES, Columns
from recsys_core.data.dataset import id_values

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
    return events.groupby(id_values(events[Columns.USER]), observed=True).size()


def reference_profile(events: pd.DataFrame) -> dict[str, Any]:
    """Reference bins of a training log (stored with the version as JSON).

    Also holds the number of distinct shoppers per item, from which the popularity model
    can be rebuilt when its files are damaged.
    """
    users = id_values(events[Columns.USER])
    items = id_values(events[Columns.ITEM])
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
    counts = events[Columns.EVENT].value_counts()
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
    #: The most severe level this metric may raise (shopper activity: ``warning``).
    max_severity: Severity = "critical"

    @property
    def severity(self) -> Severity:
        """``critical`` beyond twice the threshold, ``warning`` beyond it, else ``info``
        (capped at :attr:`max_severity`)."""
        if not self.drifted or self.threshold is None:
            return "info"
        if self.value > 2 * self.threshold and self.max_severity == "critical":
            return "critical"
        return "warning"


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
    users = id_values(events[Columns.USER])
    items = id_values(events[Columns.ITEM])
    n_new = int(users.nunique())
    activity = _per_shopper(events).to_numpy(dtype=float)
    span, new_span = float(reference.get("period_days") or 0.0), _span_days(events) or 0.0
    per_time = span > 0 and new_span > 0
    if per_time:  # events per shopper over the training log's period
        activity = activity * (span / new_span)
    edges = list(reference.get("activity_edges") or [])
    item_group = reference.get("item_group") or {}
    new_counts = _group_counts(items, item_group)
    ref_mix = reference.get("event_mix") or {}
    mix_names = sorted(set(ref_mix) | set(_event_counts(events)))
    new_mix = _event_counts(events)
    values = {
        "shopper_activity": (
            psi(reference["activity_counts"], _bin_counts(activity, edges)),
            f"{len(edges) + 1} activity bins; median {np.median(activity) if n_new else 0:.1f} "
            + (
                f"events per shopper per {span:.0f} days (the newer log covers {new_span:.0f})"
                if per_time
                else "events per shopper; not comparable: a log without timestamps"
            ),
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
        if name == "shopper_activity" and not per_time:  # reported, never alerted on
            metrics.append(DriftMetric(name, round(value, 5), None, False, detail, "warning"))
            continue
        limit = THRESHOLDS[name].at(n_new, n_ref)
        cap: Severity = "warning" if name == "shopper_activity" else "critical"
        metrics.append(
            DriftMetric(name, round(value, 5), round(limit, 5), value > limit, detail, cap)
        )
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
    if per_time and not 0.5 <= new_span / span <= 2:
        notes.append(
            f"the newer log covers {new_span:.0f} days, the training log "
            f"{span:.0f}: shopper activity was scaled to the same period (a warning "
            "at most)"
        )
    return DriftReport(n_new, int(len(events)), n_ref, metrics, notes)


def _span_days(events: pd.DataFrame) -> float | None:
    """Days between a log's first and last event (``None`` without timestamps)."""
    if Columns.TIMESTAMP not in events.columns or not events[Columns.TIMESTAMP].notna().any():
        return None
    span = float(
        (events[Columns.TIMESTAMP].max() - events[Columns.TIMESTAMP].min()) / pd.Timedelta(days=1)
    )
    return span if span > 0 else None
