"""Batch scoring of every shopper against a bare ``implicit`` batch call (prints figures).

* bare: the served ALS model's implicit ``recommend`` for every training shopper in one call
  (ids and scores only, implicit's own threads on every core, one BLAS thread);
* batch: ``score_batch(lab, "als", 10)`` — the same shoppers through the model's own batch
  scoring (one call), with the validity and cold-start rules of ``recommend``, external ids
  (categorical columns) and a DataFrame (what ``python -m recsys_core batch`` writes, without
  the Parquet write);
* the ranker for every shopper (``score_batch(lab, "ranker", 10)``), unless ``--no-ranker``.

Each timing is the best of ``--repeats`` (the ranker: one run). Run after training::

    python bench/bench_batch.py [--dataset online-retail] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.models.adapters import single_threaded_blas  # noqa: E402
from recsys_core.policy import ListPolicy  # noqa: E402
from recsys_core.serving import load_lab, resolve_version  # noqa: E402
from recsys_core.serving.batch import score_batch  # noqa: E402

KEEP = ListPolicy("keep")  # every list as the model ranks it


def _best(action, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-ranker", action="store_true")
    args = parser.parse_args()
    lab = load_lab(resolve_version(args.dataset))
    als = lab.models["als"]
    rows = np.arange(als.n_users)
    inner = als.model_
    threads = inner.num_threads

    def bare() -> None:
        inner.num_threads = 0  # every core, as a bare call would use
        try:  # one BLAS thread, as implicit itself recommends, so OpenMP is not oversubscribed
            with single_threaded_blas():
                inner.recommend(rows, als.user_items_, N=10, filter_already_liked_items=False)
        finally:
            inner.num_threads = threads

    bare_s = _best(bare, args.repeats)
    batch_s = _best(lambda: score_batch(lab, "als", 10, policy=KEEP), args.repeats)
    print(f"{als.n_users:,} shoppers, top 10; best of {args.repeats}; machine shared\n")
    print("| job | seconds | vs bare implicit |")
    print("|---|---|---|")
    print(f"| bare implicit ALS batch call | {bare_s:.3f} | 1.00x |")
    print(f"| batch scoring, ALS | {batch_s:.3f} | {batch_s / bare_s:.2f}x |")
    if not args.no_ranker:
        start = time.perf_counter()
        result = score_batch(lab, "ranker", 10, policy=KEEP)
        ranker_s = time.perf_counter() - start
        print(f"| batch scoring, ranker ({result.users:,} shoppers) | {ranker_s:.1f} | - |")


if __name__ == "__main__":
    main()
