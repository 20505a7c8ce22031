"""Benchmark: the purchase model's shopper splits on text ids vs on their rank codes.

    python bench/bench_group_splits.py [--rows 1814893] [--shoppers 5472] [--repeats 3]

The grocery ranker's training rows (``bench/bench_grocery.py``: 1,814,893 rows of 5,472
shoppers) are split by shopper four times in :meth:`PurchaseModel.fit
<recsys_core.ranking.purchase_model.PurchaseModel.fit>`: the calibration part
(``_group_split``), the fold models' ``GroupKFold`` of the fit part, and the calibrator's
two halves. Each split sorts the groups (``numpy.unique``); on text ids that is a sort of
Python strings. This prints the CPU seconds of those splits on text ids (the code before)
and on :func:`~recsys_core.ranking.purchase_model.group_codes` (the code now, the codes
included), in one process, and checks that every mask is the same.

It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys_core.ranking.calibration import _group_split  # noqa: E402
from recsys_core.ranking.purchase_model import group_codes  # noqa: E402


def splits(group: np.ndarray) -> list[np.ndarray]:
    """The masks and fold numbers of :meth:`PurchaseModel.fit`'s splits (2 fold models)."""
    fit_part, cal_part = _group_split(group, 0.25, 42)
    rows = np.flatnonzero(fit_part)
    fold = np.zeros(len(rows), dtype=np.int64)
    for k, (_, held) in enumerate(
        GroupKFold(n_splits=2).split(np.zeros((len(rows), 1)), groups=group[rows])
    ):
        fold[held] = k
    half_a, half_b = _group_split(group[cal_part], 0.5, 43)
    return [fit_part, cal_part, fold, half_a, half_b]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_814_893)
    parser.add_argument("--shoppers", type=int, default=5_472)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    shoppers = np.array([f"{k:07d}" for k in rng.choice(10**6, args.shoppers, replace=False)])
    # rows grouped by shopper within each of two windows, as the training frame is
    ids = np.sort(rng.choice(shoppers, size=args.rows)).astype(object)
    ids = np.concatenate([ids[: args.rows // 2], np.sort(ids[args.rows // 2 :])[::-1]])
    timings: dict[str, list[float]] = {"text ids": [], "rank codes": []}
    results = {}
    for _ in range(args.repeats):
        c = time.process_time()
        results["text ids"] = splits(ids)
        timings["text ids"].append(time.process_time() - c)
        c = time.process_time()
        results["rank codes"] = splits(group_codes(ids))
        timings["rank codes"].append(time.process_time() - c)
    same = all(
        np.array_equal(a, b)
        for a, b in zip(results["text ids"], results["rank codes"], strict=True)
    )
    print(f"{args.rows:,} rows, {args.shoppers:,} shoppers; CPU s (best of {args.repeats}):")
    for name, values in timings.items():
        print(f"  {name:<11} {min(values):6.2f}")
    ratio = min(timings["text ids"]) / max(min(timings["rank codes"]), 1e-9)
    print(f"  ratio {ratio:.1f}x; every split identical: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
