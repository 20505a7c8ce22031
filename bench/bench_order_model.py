"""The shopper-level order model on a built-in dataset: fit time, AUC, ECE.

    python bench/bench_order_model.py [--dataset online-retail] [--test-days 30]

Fits on the events before the evaluation cutoff (the same temporal split as ``evaluate``)
and scores every shopper with history by "ordered anything in the test period". Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.ranking.order_model import evaluate_order_model  # noqa: E402
from recsys_core.split import split_events  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--test-days", type=float, default=30.0)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    split = split_events(dataset.events, test_days=args.test_days)
    assert split.cutoff is not None, "the order model needs timestamps"
    start = time.perf_counter()
    metrics, reliability = evaluate_order_model(
        split.train, split.test, split.cutoff, test_days=args.test_days
    )
    seconds = time.perf_counter() - start
    print(f"dataset {args.dataset}, cutoff {split.cutoff}, fit + score {seconds:.1f} s")
    for key in (
        "shoppers",
        "order_rate",
        "mean_predicted",
        "mean_predicted_before_recalibration",
        "auc",
        "logloss",
        "logloss_before_recalibration",
        "brier",
        "ece",
        "ece_quantile",
        "ece_before_recalibration",
        "ece_quantile_before_recalibration",
    ):
        print(f"  {key:<15} {metrics[key]:.4f}")
    print(reliability.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
