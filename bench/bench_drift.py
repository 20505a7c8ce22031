"""Drift thresholds: false-alarm rate on no-drift samples, detection rate of a clear shift.

Usage::

    python bench/bench_drift.py                 # rates with the thresholds in monitoring.py
    python bench/bench_drift.py --calibrate     # the no-drift quantiles the thresholds come from

A demo store (``generate_demo_store``, default 30,000 shoppers, 800 items, 900,000 events over
180 days) is cut in time: the first 90 days are the training log (the reference bins), the
last 90 days the "newer log". A **no-drift sample** is ``n`` shoppers drawn from the newer
log with all their events there (same shop, same catalog, a later period). A **shifted
sample** is such a sample where 20 % of the events move to 200 items the training log never
saw and half of the views are dropped (a changed event mix). A sample raises an alarm when
any metric of :func:`recsys_core.monitoring.drift_report` exceeds its threshold.

``--calibrate`` prints, per metric and sample size, the 99.8th percentile of
``value / (1/n_new + 1/n_ref)`` and of the raw value over no-drift samples: the thresholds'
``scale`` is about the largest of the former, ``floor`` covers the raw value at the largest
sizes. Calibrate with one seed and measure the rates with another (the defaults do).
It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys_core.data.demo_store import generate_demo_store  # noqa: E402
from recsys_core.monitoring import THRESHOLDS, drift_report, reference_profile  # noqa: E402

SIZES = (100, 300, 1000, 3000, 10_000)
SHIFT_SIZES = (1000, 3000, 10_000)


def build(seed: int, users: int, events: int) -> tuple[dict, pd.DataFrame]:
    """The reference profile (first 90 days) and the newer log (last 90 days)."""
    log, _ = generate_demo_store(n_users=users, n_items=800, n_events=events, seed=seed, days=180)
    cut = log["timestamp"].min().normalize() + pd.Timedelta(days=90)
    reference = reference_profile(log[log["timestamp"] < cut])
    newer = log[log["timestamp"] >= cut].reset_index(drop=True)
    newer["user_id"] = newer["user_id"].astype(str)
    newer["item_id"] = newer["item_id"].astype(str)
    newer["event"] = newer["event"].astype(str)
    return reference, newer


def sample(
    newer: pd.DataFrame, codes: np.ndarray, n: int, rng: np.random.Generator
) -> pd.DataFrame:
    """All events of ``n`` random shoppers of the newer log."""
    chosen = rng.choice(codes.max() + 1, size=n, replace=False)
    mask = np.isin(codes, chosen)
    return newer[mask]


def shift(
    events: pd.DataFrame, rng: np.random.Generator, new: float = 0.2, views: float = 0.5
) -> pd.DataFrame:
    """A share ``new`` of events on 200 new items, a share ``views`` of the views dropped."""
    events = events.copy()
    moved = rng.random(len(events)) < new
    events.loc[moved, "item_id"] = [f"NEW{i:03d}" for i in rng.integers(0, 200, moved.sum())]
    is_view = (events["event"] == "view").to_numpy()
    drop = is_view & (rng.random(len(events)) < views)
    return events[~drop]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--seed", type=int, default=None, help="default 5 calibrate, 11 rates")
    parser.add_argument("--users", type=int, default=30_000)
    parser.add_argument("--events", type=int, default=900_000)
    parser.add_argument("--repeats", type=int, default=300, help="no-drift samples per size")
    parser.add_argument("--shift-repeats", type=int, default=100)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else (5 if args.calibrate else 11)
    start = time.perf_counter()
    reference, newer = build(seed, args.users, args.events)
    codes = newer["user_id"].astype("category").cat.codes.to_numpy()
    n_ref = reference["shoppers"]
    pool = codes.max() + 1
    print(
        f"seed {seed}: reference {n_ref:,} shoppers / {reference['events']:,} events (90 days), "
        f"newer log {pool:,} shoppers / {len(newer):,} events (90 days); "
        f"built in {time.perf_counter() - start:.1f} s"
    )
    rng = np.random.default_rng(seed + 1000)
    rows = []
    for n in SIZES:
        for _ in range(args.repeats):
            report = drift_report(reference, sample(newer, codes, min(n, pool), rng))
            for m in report.metrics:
                if m.threshold is None:
                    continue
                rows.append(
                    {
                        "n": n,
                        "metric": m.name,
                        "value": m.value,
                        "scaled": m.value / (1 / report.shoppers + 1 / n_ref),
                        "alarm": m.drifted,
                        "i": len(rows) // len(THRESHOLDS),
                    }
                )
    null = pd.DataFrame(rows)
    if args.calibrate:
        table = null.groupby(["metric", "n"]).agg(
            scaled_q998=("scaled", lambda s: s.quantile(0.998)),
            value_q998=("value", lambda s: s.quantile(0.998)),
            value_median=("value", "median"),
        )
        print(table.round(4).to_string())
        print("current thresholds:", {k: (t.scale, t.floor) for k, t in THRESHOLDS.items()})
    per_sample = null.groupby(["n", "i"])["alarm"].any().groupby("n").mean()
    per_metric = null.groupby(["metric"])["alarm"].mean()
    print("no-drift false-alarm rate (any metric) by sample size in shoppers:")
    for n, rate in per_sample.items():
        print(f"  {n:>6,}: {rate:6.2%}  ({args.repeats} samples)")
    print(f"  overall: {null.groupby(['n', 'i'])['alarm'].any().mean():.2%}")
    print("  per metric:", ", ".join(f"{k} {v:.2%}" for k, v in per_metric.items()))
    for label, new, views in (
        ("a clear shift (20 % of events on new items, half the views dropped)", 0.2, 0.5),
        ("a mild shift (3 % of events on new items, 15 % of the views dropped)", 0.03, 0.15),
    ):
        print(f"detection rate of {label}:")
        for n in SHIFT_SIZES:
            hits = {"any": 0, "new_items": 0, "event_mix": 0, "item_popularity": 0}
            for _ in range(args.shift_repeats):
                events = shift(sample(newer, codes, min(n, pool), rng), rng, new, views)
                drifted = {m.name for m in drift_report(reference, events).drifted}
                hits["any"] += bool(drifted)
                for name in ("new_items", "event_mix", "item_popularity"):
                    hits[name] += name in drifted
            rates = ", ".join(f"{k} {v / args.shift_repeats:.0%}" for k, v in hits.items())
            print(f"  {n:>6,}: {rates}  ({args.shift_repeats} samples)")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
