"""Benchmark: LightGBM's row-wise vs column-wise histograms with the ranker's settings.

    OMP_NUM_THREADS=1 python bench/bench_lgb_modes.py [--rows 300000] [--trees 100]

A seeded frame shaped like the ranker's training rows (51 float64 features: sparse counts,
columns with NaN, small integers, dense values; a rare positive class) is fitted with the
purchase model's LightGBM settings once with ``force_row_wise`` (what the lab uses) and once
with ``force_col_wise``. Prints the CPU seconds of each fit and whether the trees are the same
(the model text without its parameter lines).

It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import lightgbm as lgb
import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--trees", type=int, default=100)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    n, f = args.rows, 51
    X = rng.normal(size=(n, f))
    counts = np.where(rng.uniform(size=(n, 20)) < 0.7, 0.0, np.abs(X[:, :20]) * 10).round()
    X[:, :20] = counts
    X[:, 20:30][rng.uniform(size=(n, 10)) < 0.2] = np.nan
    X[:, 30:35] = rng.integers(0, 5, size=(n, 5))
    logit = -3.5 + X[:, 0] * 0.1 + np.nan_to_num(X[:, 21]) + 0.5 * X[:, 40] + X[:, 31] * 0.3
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    settings = dict(
        objective="binary", learning_rate=0.1, num_leaves=63, min_child_samples=100,
        subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0,
        random_state=42, n_jobs=1, deterministic=True, verbose=-1,
    )  # fmt: skip
    trees = {}
    for mode in ("force_row_wise", "force_col_wise"):
        started = time.process_time()
        model = lgb.LGBMClassifier(n_estimators=args.trees, **settings, **{mode: True}).fit(X, y)
        print(f"{mode:<15} {time.process_time() - started:6.1f} CPU s")
        text = model.booster_.model_to_string().split("end of trees")[0]
        trees[mode] = "\n".join(line for line in text.splitlines() if "force_" not in line)
    print(f"same trees: {trees['force_row_wise'] == trees['force_col_wise']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
