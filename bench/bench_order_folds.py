"""Benchmark: the order model over an evaluation's folds, with and without shared shopper
tables.

    OMP_NUM_THREADS=1 python bench/bench_order_folds.py [--dataset online-retail | --data PATH]
        [--folds 4] [--test-days 30] [--mode both|shared|fresh]

Fits the order model of every fold exactly as ``evaluate --folds N`` does
(:func:`~recsys_core.ranking.order_model.score_order_model` on each fold's training part,
inside one :class:`~recsys_core.ranking.window_cache.WindowCache` that keeps nothing on the
last fold) and prints, per mode, the CPU seconds of this process (all threads; a figure the
machine's load inflates much less than wall time), the wall time, how many shopper tables
(:func:`~recsys_core.ranking.order_features.shopper_features`) were built, and whether the
two modes' probabilities and metrics are equal.

* ``shared``: the code as it is (each cutoff's table built once per fit and once per run);
* ``fresh``: every table built afresh, as before the tables were shared (the
  :class:`~recsys_core.ranking.order_features.ShopperFeatureTables` lookup bypassed).

It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.data.loaders import load_event_file  # noqa: E402
from recsys_core.evaluation import EvaluationConfig  # noqa: E402
from recsys_core.evaluation.protocol import fold_splits  # noqa: E402
from recsys_core.ranking import order_features  # noqa: E402
from recsys_core.ranking.order_features import ShopperFeatureTables  # noqa: E402
from recsys_core.ranking.order_model import score_order_model  # noqa: E402
from recsys_core.ranking.window_cache import WindowCache, using_window_cache  # noqa: E402


def run(events_of_folds: list[tuple[Any, Any, Any]], test_days: float, fresh: bool) -> dict:
    """Fit and score the order model of every fold; figures and each fold's outputs."""
    original_call = ShopperFeatureTables.__call__
    original_build = order_features.shopper_features
    builds = [0]

    def counted(frame: pd.DataFrame, cutoff: Any) -> pd.DataFrame:
        builds[0] += 1
        return original_build(frame, cutoff)

    order_features.shopper_features = counted  # type: ignore[assignment]
    if fresh:
        ShopperFeatureTables.__call__ = lambda self, cutoff: counted(self.events, cutoff)  # type: ignore[method-assign]
    cache = WindowCache()
    outputs = []
    try:
        t, c = time.perf_counter(), time.process_time()
        for f, (train, test, cutoff) in enumerate(events_of_folds):
            cache.store = f < len(events_of_folds) - 1
            with using_window_cache(cache):
                metrics, _, probability, _ = score_order_model(
                    train, test, cutoff, test_days=test_days, seed=42
                )
            outputs.append((metrics, probability))
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    finally:
        order_features.shopper_features = original_build  # type: ignore[assignment]
        ShopperFeatureTables.__call__ = original_call  # type: ignore[method-assign]
    return {"wall": wall, "cpu": cpu, "builds": builds[0], "outputs": outputs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--data", type=Path, default=None, help="A log file instead.")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--test-days", type=float, default=30.0)
    parser.add_argument("--mode", choices=("both", "shared", "fresh"), default="both")
    args = parser.parse_args(argv)
    dataset = load_event_file(args.data) if args.data else load_dataset(args.dataset)
    config = EvaluationConfig(folds=args.folds, test_days=args.test_days)
    splits, _ = fold_splits(dataset.events, config)
    folds = [(s.train, s.test, s.cutoff) for s in splits]
    print(f"{dataset.name}: {len(folds)} folds, cutoffs {[str(s.cutoff.date()) for s in splits]}")
    modes = ["fresh", "shared"] if args.mode == "both" else [args.mode]
    results = {mode: run(folds, args.test_days, fresh=mode == "fresh") for mode in modes}
    print(f"\n{'mode':<8} {'CPU s':>8} {'wall s':>8} {'tables built':>13}")
    for mode, res in results.items():
        print(f"{mode:<8} {res['cpu']:8.1f} {res['wall']:8.1f} {res['builds']:13d}")
    if len(results) == 2:
        same = all(
            json.dumps(a[0], sort_keys=True) == json.dumps(b[0], sort_keys=True)
            and np.array_equal(a[1].to_numpy(), b[1].to_numpy())
            and a[1].index.equals(b[1].index)
            for a, b in zip(results["fresh"]["outputs"], results["shared"]["outputs"], strict=True)
        )
        ratio = results["fresh"]["cpu"] / max(results["shared"]["cpu"], 1e-9)
        print(
            f"\nfresh/shared CPU {ratio:.2f}x; every fold's metrics and probabilities equal: {same}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
