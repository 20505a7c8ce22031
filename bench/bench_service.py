"""Latency of the recommendation service on the saved lab (prints figures only).

For each model: ``RecommendationService.recommend(user, k=10, model)`` for 150 different
known shoppers (every call a cache miss), then the same 150 questions again (cache hits);
also ``similar`` for 150 different items. p50 and p99 per model, in one process, after one
warm-up question per model.

Run after ``python -m recsys_core train --dataset online-retail``::

    python bench/bench_service.py [--dataset online-retail] [--version V] [--users 150] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.serving import RecommendationService, load_lab, resolve_version  # noqa: E402

MODELS = ("ranker", "als", "itemknn", "bpr", "popularity")


def _timed(calls: list[Callable[[], object]]) -> np.ndarray:
    """Wall time of each call in milliseconds."""
    out = np.empty(len(calls))
    for j, call in enumerate(calls):
        start = time.perf_counter()
        call()
        out[j] = (time.perf_counter() - start) * 1000.0
    return out


def _row(times: np.ndarray) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p99_ms": round(float(np.percentile(times, 99)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--version", default=None, help="a trained version (default: active)")
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    start = time.perf_counter()
    lab = load_lab(resolve_version(args.dataset, args.version))
    service = RecommendationService(lab)
    load_s = time.perf_counter() - start
    print(f"lab {lab.dataset} {lab.version}: loaded and prepared in {load_s:.2f} s")

    known = np.asarray(lab.models["als"].users_.external_ids)
    if lab.ranker is not None:
        known = np.intersect1d(known, lab.ranker.generator_.users_.external_ids)
    rng = np.random.default_rng(0)
    chosen = rng.choice(known, size=args.users + 1, replace=False)
    warm_user, users = str(chosen[0]), [str(u) for u in chosen[1:]]
    items_all = np.asarray(lab.models["als"].items_.external_ids)
    picked = rng.choice(items_all, size=args.users + 1, replace=False)
    warm_item, items = str(picked[0]), [str(i) for i in picked[1:]]

    results: dict[str, dict[str, float]] = {}
    for model in MODELS:
        if model not in lab.models:
            continue
        service.recommend(warm_user, 10, model, policy="lab-rule")
        cold = _timed(
            [lambda u=u, m=model: service.recommend(u, 10, m, policy="lab-rule") for u in users]
        )
        cached = _timed(
            [lambda u=u, m=model: service.recommend(u, 10, m, policy="lab-rule") for u in users]
        )
        results[model] = {**_row(cold), **{f"cached_{k}": v for k, v in _row(cached).items()}}
    for model in ("als", "itemknn"):
        if model not in lab.models:
            continue
        service.similar(warm_item, 10, model)
        sim = _timed([lambda i=i, m=model: service.similar(i, 10, m) for i in items])
        results[f"similar {model}"] = _row(sim)

    print(f"\n{args.users} different known shoppers, k=10, one process (machine shared)\n")
    print("| question | p50 ms | p99 ms | cached p50 ms | cached p99 ms |")
    print("|---|---|---|---|---|")
    for name, row in results.items():
        cached_cols = (
            f"{row['cached_p50_ms']:.3f} | {row['cached_p99_ms']:.3f}"
            if "cached_p50_ms" in row
            else "- | -"
        )
        print(f"| {name} | {row['p50_ms']:.3f} | {row['p99_ms']:.3f} | {cached_cols} |")
    if args.json is not None:
        payload = {"dataset": lab.dataset, "version": lab.version, "load_seconds": load_s}
        args.json.write_text(json.dumps({**payload, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
