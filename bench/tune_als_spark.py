"""Small grid search for Spark MLlib's ALS (``als-spark``), chosen like the implicit presets.

Spark scales the regularisation by each row's interaction count (ALS-WR) and uses
confidence ``1 + alpha * value``; implicit uses a flat regularisation and ``alpha * value``.
``als-spark`` (``confidence="implicit"``) feeds Spark ``alpha * value - 1`` so the confidence
matches, but the regularisation cannot be matched: this script tunes ``regularization``
(Spark's regParam), rank and ``alpha`` on their own, with the protocol of ``bench/tune_als.py``:
every setting is scored on a *validation* window (the 30 days before the evaluation cutoff,
training on what precedes them); the chosen setting is then scored once on the real test
period, next to implicit's ALS with its preset, and the ratio is printed. The event weighting
is the dataset preset's (the same matrix for both engines).

Run::

    python bench/tune_als_spark.py [--dataset online-retail] [--factors 64]
        [--reg 0.01,0.1,1] [--alpha 1,10,40] [--iterations 15]
        [--confidence implicit,spark] [--no-test | --test-only | --implicit-checks] [--seed 42]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys_core.columns import Columns  # noqa: E402
from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.evaluation import relevant_items  # noqa: E402
from recsys_core.interactions import EventWeights, InteractionMatrix  # noqa: E402
from recsys_core.metrics import ranking_metrics  # noqa: E402
from recsys_core.models import create_model  # noqa: E402
from recsys_core.models.als_spark import (  # noqa: E402
    ALSSparkRecommender,
    spark_session,
    stop_spark_session,
)
from recsys_core.presets import preset_for  # noqa: E402
from recsys_core.split import Split, temporal_split  # noqa: E402


def ndcg(
    split: Split,
    weights: EventWeights,
    name: str,
    params: dict[str, Any],
    k: int,
    floor_confidence: bool = False,
    seed: int = 42,
) -> float:
    """NDCG@k of one model fitted on ``split.train`` for the split's test users.

    ``floor_confidence`` (implicit's ``als`` only) raises every observed cell's confidence
    ``alpha * w`` to at least ``1 + ALSSparkRecommender.CONFIDENCE_FLOOR``, what Spark gets.
    """
    relevant = relevant_items(split, ("purchase",))
    users = list(pd.unique(relevant[Columns.USER]))
    matrix = InteractionMatrix.from_events(split.train, weights)
    if floor_confidence:
        alpha = float(params.get("alpha", 1.0))
        floored = matrix.matrix.copy()
        floored.data = np.maximum(
            floored.data * alpha, 1 + ALSSparkRecommender.CONFIDENCE_FLOOR
        ).astype(np.float32)
        matrix = dataclasses.replace(matrix, matrix=floored)
        params = {**params, "alpha": 1.0}
    model = create_model(name, seed=seed, **params).fit(matrix)
    reco = model.recommend(users, k, filter_seen=False)
    return ranking_metrics(reco, relevant, k)[f"ndcg@{k}"]


def implicit_checks(
    val: Split, weights: EventWeights, preset: dict[str, Any], args: argparse.Namespace
) -> None:
    """What the engine differences cost implicit itself (validation NDCG@k, no Spark)."""
    variants: list[tuple[str, dict[str, Any], bool]] = [
        (f"rank {int(f)}", {**preset, "factors": int(f)}, False) for f in floats(args.factors)
    ]
    variants += [
        ("preset, confidence floored at 1 (as Spark gets it)", preset, True),
        ("preset, exact Cholesky solver", {**preset, "use_cg": False}, False),
    ]
    for label, params, floor in variants:
        start = time.perf_counter()
        score = ndcg(val, weights, "als", params, args.k, floor_confidence=floor, seed=args.seed)
        print(
            f"implicit als {label} {params}: validation ndcg@{args.k}={score:.4f} "
            f"({time.perf_counter() - start:.1f}s)",
            flush=True,
        )


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--factors", default="64", help="Comma-separated ranks.")
    parser.add_argument("--reg", default="0.01,0.1,1", help="Comma-separated regParam values.")
    parser.add_argument("--alpha", default="1,10,40", help="Comma-separated alpha values.")
    parser.add_argument("--iterations", default="15", help="Comma-separated sweep counts.")
    parser.add_argument(
        "--confidence",
        default="implicit",
        help="Comma-separated: 'implicit' (Spark sees alpha*w-1, confidence alpha*w as in "
        "implicit's ALS) and/or 'spark' (confidence 1+alpha*w).",
    )
    parser.add_argument(
        "--no-test", action="store_true", help="Validation grid only (no test-period scores)."
    )
    parser.add_argument(
        "--test-only",
        action="store_true",
        help="Score one setting (chosen on validation in an earlier run) on the test period "
        "only, next to implicit's ALS: saves the Spark fit on the validation window.",
    )
    parser.add_argument("--seed", type=int, default=42, help="Seed of both engines.")
    parser.add_argument(
        "--implicit-checks",
        action="store_true",
        help="No Spark: implicit's ALS on the validation window with its preset, at each "
        "--factors rank, with the confidence floored as Spark gets it, and with the exact "
        "(Cholesky) solver instead of conjugate gradient (the last takes minutes).",
    )
    args = parser.parse_args()
    k = args.k
    ds = load_dataset(args.dataset)
    preset = preset_for(args.dataset)
    weights = preset.weights
    test = temporal_split(ds.events, test_days=30, test_events=("purchase",))
    val = temporal_split(test.train, test_days=30, test_events=("purchase",))
    print(f"test cutoff {test.cutoff}, validation cutoff {val.cutoff}", flush=True)
    if args.implicit_checks:
        implicit_checks(val, weights, dict(preset.model_params.get("als", {})), args)
        return
    start = time.perf_counter()
    spark_session()
    print(f"Spark session start {time.perf_counter() - start:.1f}s", flush=True)

    rows: list[tuple[float, dict[str, Any]]] = []
    grid = itertools.product(
        [int(f) for f in floats(args.factors)],
        floats(args.reg),
        floats(args.alpha),
        [c for c in args.confidence.split(",") if c],
        [int(i) for i in floats(args.iterations)],
    )
    for factors, reg, alpha, confidence, iterations in grid:
        params = {
            "factors": factors,
            "regularization": reg,
            "alpha": alpha,
            "confidence": confidence,
            "iterations": iterations,
        }
        if args.test_only:
            rows.append((float("nan"), params))
            continue
        start = time.perf_counter()
        score = ndcg(val, weights, "als-spark", params, k, seed=args.seed)
        rows.append((score, params))
        print(
            f"als-spark {params} validation ndcg@{k}={score:.4f} "
            f"({time.perf_counter() - start:.1f}s)",
            flush=True,
        )
    if args.test_only and len(rows) != 1:
        parser.error("--test-only scores exactly one setting: give one value per option")
    best_val, best = max(rows, key=lambda r: r[0])
    if args.no_test:
        print(f"BEST als-spark {best}: validation ndcg@{k}={best_val:.4f}", flush=True)
        stop_spark_session()
        return
    implicit_params = dict(preset.model_params.get("als", {}))
    implicit_val = ndcg(val, weights, "als", implicit_params, k, seed=args.seed)
    spark_test = ndcg(test, weights, "als-spark", best, k, seed=args.seed)
    implicit_test = ndcg(test, weights, "als", implicit_params, k, seed=args.seed)
    print(
        f"CHOSEN als-spark {best}: validation ndcg@{k}={best_val:.4f} "
        f"(implicit als {implicit_params}: {implicit_val:.4f}); test ndcg@{k}={spark_test:.4f} "
        f"vs implicit {implicit_test:.4f} (ratio {spark_test / implicit_test:.3f})",
        flush=True,
    )
    stop_spark_session()


if __name__ == "__main__":
    main()
