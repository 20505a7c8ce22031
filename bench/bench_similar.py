"""Similar items: the service's way (implicit's ``similar_items`` on ALS factors) against the
seed's (scikit-learn ``cosine_similarity`` over the whole item matrix, then a sort).

Synthetic ALS-like item factors (``--factors`` 64, float32, seeded) at 20,000 and 100,000
items. For each answer (the 10 items most similar to one item):

* seed: ``cosine_similarity(F)`` (n x n) then ``argsort`` of the item's row — what the seed
  did per request;
* service: implicit's ``AlternatingLeastSquares.similar_items`` (normalised dot product and a
  top-k selection, no n x n matrix), with one BLAS thread as the service calls it (the
  seed's matrix product keeps BLAS's default threads).

Time is the median of ``--repeats`` answers (the seed: one, it is slow); memory is the peak
of Python-tracked allocations (``tracemalloc``, which numpy reports to) during one answer,
plus the factors. The largest catalog each serves within 8 GB is extrapolated from the
measured memory (n^2 for the seed, n for the service) and says so. The seed is not run where
its n x n matrix alone would pass ``--max-gb`` (4): its row there is extrapolated from the
20k run (time as n^2, memory as n^2).

Run: ``python bench/bench_similar.py [--sizes 20000,100000]``
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np
import threadpoolctl
from implicit.cpu.als import AlternatingLeastSquares
from sklearn.metrics.pairwise import cosine_similarity

GB = 1e9


def _peak(action) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(seconds, peak bytes) of one call."""
    tracemalloc.start()
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, float(peak)


def seed_answer(factors: np.ndarray, item: int, k: int) -> np.ndarray:
    sims = cosine_similarity(factors)
    order = np.argsort(-sims[item])
    return order[order != item][:k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--max-gb", type=float, default=4.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{args.factors} factors, top {args.k}; one run, machine shared with other jobs\n")
    print(
        "| items | seed time | seed memory | service time | service memory | time ratio | "
        "memory ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    seed_ref: tuple[int, float, float] | None = None
    largest: dict[str, float] = {}
    for n in (int(s) for s in args.sizes.split(",")):
        factors = rng.normal(size=(n, args.factors)).astype(np.float32)
        model = AlternatingLeastSquares(factors=args.factors, num_threads=1)
        model.item_factors = factors
        model.user_factors = np.zeros((1, args.factors), dtype=np.float32)
        items = rng.integers(0, n, size=args.repeats + 1)

        first = int(items[0])
        times = []
        with threadpoolctl.threadpool_limits(1, "blas"):  # as the service calls it
            _, service_peak = _peak(lambda m=model, i=first: m.similar_items(i, N=args.k + 1))
            for item in items[1:]:
                start = time.perf_counter()
                model.similar_items(int(item), N=args.k + 1)
                times.append(time.perf_counter() - start)
        service_s = statistics.median(times)
        service_mem = service_peak + factors.nbytes
        estimated = ""
        if 4.0 * n * n / GB <= args.max_gb:
            seed_s, seed_peak = _peak(lambda f=factors, i=first: seed_answer(f, i, args.k))
            seed_mem = seed_peak + factors.nbytes
            seed_ref = (n, seed_s, seed_mem)
        elif seed_ref is not None:
            ref_n, ref_s, ref_mem = seed_ref
            seed_s = ref_s * (n / ref_n) ** 2
            seed_mem = ref_mem * (n / ref_n) ** 2
            estimated = " (extrapolated)"
        else:
            service_cols = f"{service_s * 1000:.2f} ms | {service_mem / 1e6:.0f} MB"
            print(f"| {n:,} | not run | | {service_cols} | | |")
            continue
        print(
            f"| {n:,} | {seed_s:.2f} s{estimated} | {seed_mem / GB:.2f} GB{estimated} | "
            f"{service_s * 1000:.2f} ms | {service_mem / 1e6:.1f} MB | "
            f"{seed_s / service_s:,.0f}x | {seed_mem / service_mem:,.0f}x |",
            flush=True,
        )
        largest["seed"] = np.sqrt(8 * GB / (seed_mem / n**2))
        largest["service"] = 8 * GB / (service_mem / n)
    print(
        f"\nlargest catalog within 8 GB (extrapolated from the measured memory per item): "
        f"seed about {largest.get('seed', float('nan')):,.0f} items (n x n similarities), "
        f"service about {largest.get('service', float('nan')):,.0f} items (factors and norms; "
        "an answer then scans them all, so time grows linearly)"
    )


if __name__ == "__main__":
    main()
