"""Small documented hyperparameter search for ALS and item-kNN (Online Retail protocol).

Selection is honest: every setting is scored on a *validation* split (the 30 days before the
evaluation cutoff, training on what precedes them); the setting chosen there is then scored
once on the real test period. Run: ``python bench/tune_als.py [--dataset online-retail]``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys_core.columns import Columns  # noqa: E402
from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.evaluation import relevant_items  # noqa: E402
from recsys_core.interactions import EventWeights, InteractionMatrix  # noqa: E402
from recsys_core.metrics import ranking_metrics  # noqa: E402
from recsys_core.models import create_model  # noqa: E402
from recsys_core.split import Split, temporal_split  # noqa: E402

WEIGHTINGS = {
    "count": EventWeights(),
    "log": EventWeights(log_scale=True),
    "qty+log": EventWeights(use_quantity=True, log_scale=True),
}


def score(split: Split, name: str, params: dict[str, Any], weighting: str, k: int) -> float:
    relevant = relevant_items(split, ("purchase",))
    users = list(pd.unique(relevant[Columns.USER]))
    matrix = InteractionMatrix.from_events(split.train, WEIGHTINGS[weighting])
    model = create_model(name, seed=42, **params).fit(matrix)
    reco = model.recommend(users, k, filter_seen=False)
    return ranking_metrics(reco, relevant, k)[f"ndcg@{k}"]


def search(
    name: str, grid: list[tuple[str, dict[str, Any]]], val: Split, test: Split, k: int
) -> None:
    rows = []
    for weighting, params in grid:
        start = time.perf_counter()
        nd = score(val, name, params, weighting, k)
        rows.append((nd, weighting, params))
        print(
            f"{name} {weighting:<8} {params} validation ndcg@{k}={nd:.4f} "
            f"({time.perf_counter() - start:.1f}s)",
            flush=True,
        )
    best_val, weighting, params = max(rows, key=lambda r: r[0])
    nd_test = score(test, name, params, weighting, k)
    print(
        f"CHOSEN {name}: weighting={weighting} {params}: validation ndcg@{k}={best_val:.4f}, "
        f"test ndcg@{k}={nd_test:.4f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--models", default="als,itemknn,bpr", help="Which searches to run.")
    args = parser.parse_args()
    which = set(args.models.split(","))
    ds = load_dataset(args.dataset)
    test = temporal_split(ds.events, test_days=30, test_events=("purchase",))
    val = temporal_split(test.train, test_days=30, test_events=("purchase",))
    print(f"test cutoff {test.cutoff}, validation cutoff {val.cutoff}", flush=True)
    als_grid = [
        (w, {"factors": f, "regularization": r, "alpha": a})
        for w, f, r, a in itertools.product(
            WEIGHTINGS, (64, 128, 256), (0.1, 1.0, 10.0), (0.5, 1.0, 5.0)
        )
    ]
    if "als" in which:
        search("als", als_grid, val, test, args.k)
    knn_grid = [
        (w, {"weighting": "bm25", "neighbours": n, "b": b})
        for w, n, b in itertools.product(("count", "log"), (5, 10, 20, 50), (0.5, 0.75, 1.0))
    ] + [("count", {"weighting": "cosine", "neighbours": n}) for n in (5, 10, 20, 50)]
    if "itemknn" in which:
        search("itemknn", knn_grid, val, test, args.k)
    bpr_grid = [
        ("count", {"factors": f, "learning_rate": lr, "regularization": r, "iterations": 100})
        for f, lr, r in itertools.product((64, 128), (0.01, 0.05), (0.01, 0.001))
    ]
    if "bpr" in which:
        search("bpr", bpr_grid, val, test, args.k)


if __name__ == "__main__":
    main()
