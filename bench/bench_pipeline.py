"""Benchmark: the whole pipeline on a demo store of N events, and implicit vs Spark ALS.

Usage::

    python bench/bench_pipeline.py --events 1000000 [--ranker-shoppers 20000]
        [--compare-factors 64] [--compare-iterations N] [--no-spark] [--spark-master local[*]]

Stages (each printed with its wall time, the peak resident memory *during* the stage —
this process plus its child processes such as Spark's JVM, sampled every 0.1 s from
``/proc`` — and the process's peak so far, ``ru_maxrss``):

1. ``generate``: the seeded demo store (shoppers and items scale with the events like
   ``bench/bench_demo_store.py``: 3000 shoppers and 800 items per 200k events);
2. ``validate``: :func:`~recsys_core.data.schema.validate_events` on the log;
3. ``matrix``: the weighted interaction matrix (the demo-store preset's weights);
4. ``als fit``: implicit's ALS with the demo-store preset (what ``train`` serves);
5. ``top-10 all shoppers``: ``recommend`` for every shopper (one batch call);
6. ``ranker fit``: the two-stage purchase model on the events of a seeded random sample of
   ``--ranker-shoppers`` shoppers (all of their events; the other shoppers' events are left
   out of the ranker's training, not of stage 4);
7. ``ranker scoring``: top-10 with purchase probabilities for those sampled shoppers.

Then the engine comparison on the same matrix, with the same settings on both engines
(``--compare-factors``, 15 iterations, regularisation 0.1, alpha 1; ``als-spark`` feeds Spark
``alpha * w - 1`` so both engines give a cell the same confidence): implicit's fit, the
Spark session start (``--spark-master``, default ``local[*]``) and Spark's fit; it prints
the ratio and the seconds per iteration next to implicit's published benchmark.
It prints figures; it asserts nothing. The machine it ran on was shared: quote ratios from
one run.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys_core.columns import Columns  # noqa: E402
from recsys_core.data.demo_store import generate_demo_store  # noqa: E402
from recsys_core.data.schema import validate_events  # noqa: E402
from recsys_core.interactions import InteractionMatrix  # noqa: E402
from recsys_core.models import create_model  # noqa: E402
from recsys_core.presets import preset_for  # noqa: E402

T = TypeVar("T")
PAGE = resource.getpagesize()

#: implicit's own benchmark (benchmarks/README.md in benfred/implicit, Intel i7-7820x, 8
#: cores): seconds per iteration, CPU implicit vs Spark MLlib, at 64 and 256 factors.
PUBLISHED = {
    "last.fm 360k (~17.5M cells)": {64: (1.37, 43.8), 256: (5.48, 164.2)},
    "MovieLens 20M, 4+ stars (~10M cells)": {64: (2.75, 12.3), 256: (6.52, 54.0)},
}


def _rss_pages(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _descendants(root: int) -> list[int]:
    """Pids of every process below ``root`` (scans /proc; Linux only)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def tree_rss_mb() -> float:
    """Resident memory of this process and all its descendants, in MB."""
    pid = os.getpid()
    pages = _rss_pages(pid) + sum(_rss_pages(p) for p in _descendants(pid))
    return pages * PAGE / 2**20


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (``ru_maxrss``), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakSampler:
    """Samples :func:`tree_rss_mb` in a thread while a stage runs and keeps the maximum."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_mb())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self.peak = tree_rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss_mb())


RESULTS: list[tuple[str, float, float]] = []


def stage(label: str, step: Callable[[], T], *, pipeline: bool = True) -> T:
    """Run ``step``; print wall time, peak memory during it and peak so far."""
    gc.collect()
    with PeakSampler() as sampler:
        start = time.perf_counter()
        out = step()
        seconds = time.perf_counter() - start
    if pipeline:
        RESULTS.append((label, seconds, sampler.peak))
    print(
        f"{label:<26} {seconds:8.1f} s   peak during {sampler.peak:7.0f} MB   "
        f"process peak so far {peak_rss_mb():7.0f} MB",
        flush=True,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--ranker-shoppers", type=int, default=20_000, help="Shoppers the ranker trains on."
    )
    parser.add_argument("--compare-factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument(
        "--compare-iterations",
        type=int,
        default=None,
        help="Sweeps for the engine comparison (both engines); default --iterations. Fewer "
        "keep a 10M-event Spark fit short; the seconds per iteration stay comparable.",
    )
    parser.add_argument("--no-spark", action="store_true", help="Skip the Spark comparison.")
    parser.add_argument("--spark-master", default=None)
    parser.add_argument(
        "--compare-only",
        action="store_true",
        help="Only generate, build the matrix and compare the engines (skip stages 2 and 4-7).",
    )
    args = parser.parse_args(argv)
    n_events = args.events
    n_users = max(1, round(3000 * n_events / 200_000))
    n_items = max(1, round(800 * n_events / 200_000))
    preset = preset_for("demo-store")
    print(
        f"demo store: {n_events:,} events, {n_users:,} shoppers, {n_items:,} items; "
        f"{os.cpu_count()} cores (shared)",
        flush=True,
    )

    total_start = time.perf_counter()
    events, catalog = stage(
        "generate", lambda: generate_demo_store(n_users, n_items, n_events, seed=args.seed)
    )
    if not args.compare_only:
        events = stage("validate", lambda: validate_events(events, source="demo store"))
    matrix = stage("matrix", lambda: InteractionMatrix.from_events(events, preset.weights))
    print(f"  matrix {matrix.shape[0]:,} x {matrix.shape[1]:,}, {matrix.nnz:,} cells", flush=True)
    if not args.compare_only:
        run_pipeline(args, events, catalog, matrix, total_start)
    if not args.no_spark:
        compare_engines(args, matrix, len(events))
    return 0


def run_pipeline(
    args: argparse.Namespace,
    events: pd.DataFrame,
    catalog: pd.DataFrame,
    matrix: InteractionMatrix,
    total_start: float,
) -> None:
    """Stages 4-7 and the pipeline's total."""
    preset = preset_for("demo-store")
    als_params = {"iterations": args.iterations, **preset.model_params.get("als", {})}
    als = stage("als fit (implicit)", lambda: create_model("als", **als_params).fit(matrix))
    print(f"  ALS settings {als_params}", flush=True)
    shoppers = list(matrix.users.external_ids)
    reco = stage("top-10 all shoppers", lambda: als.recommend(shoppers, 10, filter_seen=False))
    print(f"  {len(reco):,} rows for {len(shoppers):,} shoppers", flush=True)
    reco = None

    from recsys_core.ranking import TwoStageRanker

    rng = np.random.default_rng(args.seed)
    sample = rng.choice(
        np.asarray(shoppers, dtype=object),
        size=min(args.ranker_shoppers, len(shoppers)),
        replace=False,
    )
    sampled = events[events[Columns.USER].astype(str).isin(set(sample))]
    print(
        f"  ranker sample: {len(sample):,} shoppers (seeded, uniform), {len(sampled):,} events",
        flush=True,
    )
    ranker = stage("ranker fit", lambda: TwoStageRanker(seed=args.seed).fit(sampled, catalog))
    scored = stage("ranker scoring", lambda: ranker.recommend(list(sample), 10, filter_seen=False))
    print(f"  {len(scored):,} scored rows", flush=True)
    total = time.perf_counter() - total_start
    ranker = scored = sampled = als = None  # free them before the engine comparison
    gc.collect()
    peak = max(p for _, _, p in RESULTS)
    print(f"PIPELINE total {total:.1f} s, peak {peak:.0f} MB (targets at 10M: 300 s, 6144 MB)")


def compare_engines(args: argparse.Namespace, matrix: InteractionMatrix, n_events: int) -> None:
    """implicit vs Spark ALS on the same matrix with the same settings."""
    from recsys_core.models.als_spark import spark_session, stop_spark_session

    it = args.compare_iterations or args.iterations
    same = {
        "factors": args.compare_factors,
        "iterations": it,
        "regularization": 0.1,
        "alpha": 1.0,
    }
    print(f"engine comparison, same matrix and settings {same}", flush=True)
    start = time.perf_counter()
    stage("implicit fit", lambda: create_model("als", **same).fit(matrix), pipeline=False)
    implicit_s = time.perf_counter() - start
    stage("spark session start", lambda: spark_session(args.spark_master), pipeline=False)
    start = time.perf_counter()
    stage(
        "spark fit",
        lambda: create_model("als-spark", spark_master=args.spark_master, **same).fit(matrix),
        pipeline=False,
    )
    spark_s = time.perf_counter() - start
    stop_spark_session()
    print(
        f"RATIO spark/implicit fit {spark_s / implicit_s:.1f}x at {matrix.nnz:,} cells; "
        f"s/iteration implicit {implicit_s / it:.2f}, spark {spark_s / it:.2f} "
        f"({os.cpu_count()} shared cores, factors {args.compare_factors})"
    )
    for name, rows in PUBLISHED.items():
        if args.compare_factors in rows:
            imp, spk = rows[args.compare_factors]
            print(
                f"  published (implicit benchmarks, i7-7820x 8 cores) {name}: implicit "
                f"{imp:.2f} s/it, Spark {spk:.1f} s/it ({spk / imp:.0f}x)"
            )
    print(f"  events per matrix cell {n_events / matrix.nnz:.2f}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
