"""Benchmark: the whole pipeline on a demo store of N events, and implicit vs Spark ALS.

Usage::

    python bench/bench_pipeline.py --events 1000000 [--ranker-shoppers 20000]
        [--feature-engine embedded|spark] [--scoring-chunk 2000] [--workers 2] [--no-als]
        [--scoring-shoppers N] [--compare-factors 64] [--compare-iterations N] [--no-spark]
        [--spark-master local[*]]
    python bench/bench_pipeline.py --events 3000000 --feature-engines embedded,spark

Every stage prints wall and CPU seconds (the process, its threads and children, Spark's JVM
included) and its peak memory; the ranker fit also prints each step's (windows, folds, the
cutoff's stage one); the end prints a Markdown table of the stages.

Stages (each printed with its wall time, the peak resident memory *during* the stage —
this process plus its child processes such as Spark's JVM, sampled every 0.1 s from
``/proc`` — and the process's peak so far, ``ru_maxrss``):

1. ``generate``: the seeded demo store (shoppers and items scale with the events like
   ``bench/bench_demo_store.py``: 3000 shoppers and 800 items per 200k events);
2. ``validate``: :func:`~recsys_core.data.schema.validate_events` on the log;
3. ``matrix``: the weighted interaction matrix (the demo-store preset's weights);
4. ``als fit``: implicit's ALS with the demo-store preset (what ``train`` serves);
5. ``top-10 all shoppers``: ``recommend`` for every shopper (one batch call);
6. ``ranker fit``: the two-stage purchase model on every event, its classifier trained on a
   seeded sample of ``--ranker-shoppers`` shoppers (``training_shoppers``: stage one and the
   features see every shopper's events), features on ``--feature-engine``;
7. ``ranker all shoppers``: top-10 with purchase probabilities for *every* shopper,
   :func:`~recsys_core.ranking.batch_scoring.score_all_shoppers` in chunks of
   ``--scoring-chunk`` shoppers on ``--workers`` forked worker processes (their CPU is
   counted; the peak is printed as the sum of resident sizes, which counts the ranker's
   pages the workers share with the parent once per process, and as PSS, which counts
   them once).

``--no-als`` skips stages 4-5 (the served ALS) to time the ranker alone.
``--scoring-shoppers N`` scores a seeded N of the shoppers in stage 7 (a time-limited run)
and prints the linear extrapolation to all of them.

``--feature-engines embedded,spark`` instead builds the ranker's behaviour snapshot at the
log's end on each engine, then each feature group written in Narwhals alone, and prints a
table of wall/CPU/peak per step, the ratio to the first engine and whether the tables are
equal.

``--sample-sweep 500,1000,2000,0`` instead measures which training sample is large enough:
for each size (0: every shopper) it fits the ranker on the events before a validation cutoff
(the last 30 days of the log, purchases relevant, shoppers with history only) and prints
NDCG@10 with a 95% interval (per-shopper normal approximation) and the fit's time and peak.

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
import warnings
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
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
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


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return 0


def tree_pss_mb() -> float:
    """Proportional memory (PSS) of this process and its descendants, in MB: pages shared
    by forked scoring workers and their parent (the fitted ranker, copy on write) count
    once in total, where a sum of resident sizes counts them in every process. Reading it
    walks each process's page tables (~10-30 ms for a few GB): sample it seldom."""
    pid = os.getpid()
    children = _descendants(pid)
    if not children:
        return _rss_pages(pid) * PAGE / 2**20
    return (_pss_kb(pid) + sum(_pss_kb(p) for p in children)) / 1024


#: Samples of the resident size per sample of PSS (0.1 s apart: PSS every 2 s; at 10 Hz
#: reading PSS of a 3.7 GB parent and two workers took a third of a core).
PSS_EVERY = 20


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (``ru_maxrss``), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakSampler:
    """Samples :func:`tree_rss_mb` in a thread while a stage runs and keeps the maximum."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak = 0.0
        #: peak of :func:`tree_pss_mb` (shared pages counted once)
        self.peak_pss = 0.0
        self._window = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        count = 0
        while not self._stop.is_set():
            now = tree_rss_mb()
            self.peak = max(self.peak, now)
            if count % PSS_EVERY == 0:
                self.peak_pss = max(self.peak_pss, tree_pss_mb())
            count += 1
            self._window = max(self._window, now)
            self._stop.wait(self.interval)

    def window_peak(self) -> float:
        """Peak since the last call (the sub-stage's peak), then reset."""
        peak, self._window = self._window, tree_rss_mb()
        return max(peak, self._window)

    def __enter__(self) -> PeakSampler:
        self.peak = tree_rss_mb()
        self.peak_pss = tree_pss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss_mb())


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def cpu_seconds() -> float:
    """User + system CPU seconds of this process, its waited-for children and its live
    descendants (Spark's JVM)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    live = sum(_cpu_ticks(p) for p in _descendants(os.getpid())) / os.sysconf("SC_CLK_TCK")
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime + live


#: (stage, wall seconds, CPU seconds, peak MB during the stage) of the pipeline's stages.
RESULTS: list[tuple[str, float, float, float]] = []
#: Peak PSS during each stage of :data:`RESULTS` (MB; differs from the peak where forked
#: workers share the parent's pages).
PSS_PEAKS: list[float] = []

#: The sampler of the stage that runs now (sub-stage reports read and reset its peak).
_CURRENT: list[PeakSampler] = []


def stage(label: str, step: Callable[[], T], *, pipeline: bool = True) -> T:
    """Run ``step``; print wall and CPU time, peak memory during it and peak so far."""
    gc.collect()
    with PeakSampler() as sampler:
        _CURRENT.append(sampler)
        cpu = cpu_seconds()
        start = time.perf_counter()
        out = step()
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu
        _CURRENT.pop()
    if pipeline:
        RESULTS.append((label, seconds, cpu, sampler.peak))
        PSS_PEAKS.append(sampler.peak_pss)
    print(
        f"{label:<26} {seconds:8.1f} s  cpu {cpu:8.1f} s   peak during {sampler.peak:7.0f} MB   "
        f"(PSS {sampler.peak_pss:7.0f} MB)   process peak so far {peak_rss_mb():7.0f} MB",
        flush=True,
    )
    return out


class SubStages:
    """A ``progress`` callback that prints each step's wall time and peak memory (the
    memory profile of a long stage such as the ranker fit)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.message = "start"
        self.peak = tree_rss_mb()

    def __call__(self, message: str, fraction: float) -> None:
        now = time.perf_counter()
        sampler = _CURRENT[-1] if _CURRENT else None
        peak = max(self.peak, sampler.window_peak() if sampler else 0.0)
        print(f"    {now - self.start:7.1f} s  {peak:7.0f} MB  {self.message}", flush=True)
        self.start, self.message, self.peak = now, message, tree_rss_mb()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--ranker-shoppers", type=int, default=20_000, help="Shoppers the ranker trains on."
    )
    parser.add_argument(
        "--feature-engine", choices=("embedded", "spark"), default="embedded",
        help="Where the ranker's Narwhals feature groups run.",
    )  # fmt: skip
    parser.add_argument("--scoring-chunk", type=int, default=2_000)
    parser.add_argument(
        "--scoring-shoppers",
        type=int,
        default=0,
        help="Score a seeded subset of this many shoppers instead of all (a time-limited "
        "run on a busy machine; prints the linear extrapolation). 0: every shopper.",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Worker processes scoring the ranker's chunks (default: RECSYS_SCORING_WORKERS, "
        "else the number of cores).",
    )
    parser.add_argument("--no-als", action="store_true", help="Skip stages 4-5.")
    parser.add_argument(
        "--sample-sweep", default=None, help="Comma-separated training sample sizes (0: all)."
    )
    parser.add_argument(
        "--feature-engines",
        default=None,
        help="Only compare the ranker's feature snapshot at the log's end on these engines "
        "(e.g. embedded,spark): whole snapshot and each group written in Narwhals.",
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
    if args.sample_sweep:
        sample_sweep(args, events, catalog, [int(x) for x in args.sample_sweep.split(",")])
        return 0
    if args.feature_engines:
        events = stage("validate", lambda: validate_events(events, source="demo store"))
        compare_feature_engines(args, events, catalog, args.feature_engines.split(","))
        return 0
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
    shoppers = list(matrix.users.external_ids)
    als = None
    if not args.no_als:
        preset = preset_for("demo-store")
        als_params = {"iterations": args.iterations, **preset.model_params.get("als", {})}
        als = stage("als fit (implicit)", lambda: create_model("als", **als_params).fit(matrix))
        print(f"  ALS settings {als_params}", flush=True)
        reco = stage("top-10 all shoppers", lambda: als.recommend(shoppers, 10, filter_seen=False))
        print(f"  {len(reco):,} rows for {len(shoppers):,} shoppers", flush=True)
        reco = None

    from recsys_core.ranking import TwoStageRanker
    from recsys_core.ranking.batch_scoring import score_all_shoppers

    settings = {
        "seed": args.seed,
        "training_shoppers": args.ranker_shoppers,
        "feature_engine": args.feature_engine,
        "spark_master": args.spark_master,
    }
    ranker = stage(
        "ranker fit",
        lambda: TwoStageRanker(**settings).fit(events, catalog, progress=SubStages()),
    )
    summary = ranker.training_summary_
    print(
        f"  trained on {summary['shoppers']:,} shoppers (sample of {args.ranker_shoppers:,}, "
        f"seeded), {summary['rows']:,} rows, {len(summary['window_cutoffs'])} windows; "
        f"features on {args.feature_engine}",
        flush=True,
    )
    scoring = shoppers
    if args.scoring_shoppers:  # a seeded subset (a time-limited run; see --scoring-shoppers)
        rng = np.random.default_rng(args.seed)
        chosen = np.sort(rng.choice(len(shoppers), args.scoring_shoppers, replace=False))
        scoring = [shoppers[j] for j in chosen]
    label = "ranker all shoppers" if scoring is shoppers else "ranker scoring subset"
    scored = stage(
        label,
        lambda: score_all_shoppers(
            ranker, scoring, 10, chunk_size=args.scoring_chunk, workers=args.workers
        ),
    )
    _, seconds, cpu, _ = RESULTS[-1]
    print(
        f"  {len(scored):,} rows with probabilities for {scored[Columns.USER].nunique():,} "
        f"of {len(shoppers):,} shoppers; per 1,000 shoppers {1000 * seconds / len(scoring):.1f} "
        f"s wall, {1000 * cpu / len(scoring):.1f} s CPU",
        flush=True,
    )
    if scoring is not shoppers:
        print(
            f"  EXTRAPOLATED to all {len(shoppers):,} shoppers (linear; memory is bounded by "
            f"the chunks): {seconds * len(shoppers) / len(scoring):.0f} s wall, "
            f"{cpu * len(shoppers) / len(scoring):.0f} s CPU",
            flush=True,
        )
    total = time.perf_counter() - total_start
    ranker = scored = als = None  # free them before the engine comparison
    gc.collect()
    peak = max(p for *_, p in RESULTS)
    cpu = sum(c for _, _, c, _ in RESULTS)
    print(
        "| stage | wall s | CPU s | peak MB (RSS sum) | peak MB (PSS) |\n"
        "| --- | ---: | ---: | ---: | ---: |"
    )
    for (label, seconds, cpu_s, stage_peak), pss in zip(RESULTS, PSS_PEAKS, strict=True):
        print(f"| {label} | {seconds:.1f} | {cpu_s:.1f} | {stage_peak:,.0f} | {pss:,.0f} |")
    print(
        f"PIPELINE total {total:.1f} s wall, {cpu:.1f} s CPU, peak {peak:.0f} MB RSS sum, "
        f"{max(PSS_PEAKS):.0f} MB PSS (process max RSS {peak_rss_mb():.0f} MB; targets at "
        "10M: 600 s, 8192 MB)",
        flush=True,
    )


def sample_sweep(
    args: argparse.Namespace, events: pd.DataFrame, catalog: pd.DataFrame, sizes: list[int]
) -> None:
    """NDCG@10 on a validation window for each training sample size."""
    import math

    from recsys_core.metrics import per_user_ranking_metrics
    from recsys_core.ranking import TwoStageRanker
    from recsys_core.split import temporal_split

    split = temporal_split(events, test_days=30, test_events=("purchase",))
    known = set(split.train[Columns.USER].astype(str))
    test = split.test[split.test[Columns.EVENT].astype(str) == "purchase"]
    relevant = test[[Columns.USER, Columns.ITEM]].astype(str).drop_duplicates()
    relevant = relevant[relevant[Columns.USER].isin(known)]
    users = sorted(relevant[Columns.USER].unique())
    print(f"validation cutoff {split.cutoff}, {len(users):,} shoppers with purchases", flush=True)
    for size in sizes:
        ranker = stage(
            f"fit sample {size or 'all'}",
            lambda size=size: TwoStageRanker(seed=args.seed, training_shoppers=size or None).fit(
                split.train, catalog, cutoff=split.cutoff
            ),
            pipeline=False,
        )
        reco = ranker.recommend(users, 10, filter_seen=False)
        ndcg = per_user_ranking_metrics(reco, relevant, 10)["ndcg@10"]
        half = 1.96 * float(ndcg.std(ddof=1)) / math.sqrt(len(ndcg))
        print(
            f"SAMPLE {size or 'all':>6}  trained on {ranker.training_summary_['shoppers']:,} "
            f"shoppers, {ranker.training_summary_['rows']:,} rows  NDCG@10 {ndcg.mean():.4f} "
            f"+- {half:.4f}",
            flush=True,
        )


def compare_feature_engines(
    args: argparse.Namespace, events: pd.DataFrame, catalog: pd.DataFrame, engines: list[str]
) -> None:
    """The behaviour snapshot at the log's end (what the ranker scores with; its fit builds
    one per training window) on each engine: the whole snapshot, then the groups written in
    Narwhals one by one (load of the event table, pair history, user activity, item
    popularity). Prints the wall/CPU ratio of each step to the first engine and whether the
    tables are equal."""
    from recsys_core.models.als_spark import spark_session, stop_spark_session
    from recsys_core.ranking.features import BehaviourSnapshot
    from recsys_core.ranking.features.frames import (
        item_popularity_table,
        pair_history_table,
        user_activity_table,
    )
    from recsys_core.ranking.features.past import PastEvents

    cutoff = events[Columns.TIMESTAMP].max() + pd.Timedelta(seconds=1)
    timings: dict[str, dict[str, tuple[float, float, float]]] = {}
    outputs: dict[str, dict[str, object]] = {}

    def timed(engine: str, label: str, step: Callable[[], T]) -> T:
        before = len(RESULTS)
        out = stage(f"{label} [{engine}]", step)
        _, seconds, cpu, peak = RESULTS[before]
        timings.setdefault(engine, {})[label] = (seconds, cpu, peak)
        return out

    def sort_table(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        return table.sort_values(keys, ignore_index=True)[sorted(table.columns)]

    for engine in engines:
        if engine == "spark":
            timed(engine, "session start", lambda: spark_session(args.spark_master))
        snap = timed(
            engine,
            "snapshot",
            lambda engine=engine: BehaviourSnapshot.from_events(
                events, cutoff, catalog, engine=engine, spark_master=args.spark_master
            ),
        )
        past = PastEvents(events, cutoff, catalog, engine=engine, spark_master=args.spark_master)
        table = timed(engine, "load events", lambda past=past: past.table)
        pairs = timed(engine, "pair history", lambda table=table: pair_history_table(table))
        users = timed(engine, "user activity", lambda table=table: user_activity_table(table))
        items, active = timed(
            engine, "item popularity", lambda table=table: item_popularity_table(table)
        )
        outputs[engine] = {
            "snapshot": (snap.pair_values, snap.user_values, snap.item_values),
            "pair history": sort_table(pairs, ["u", "i"]),
            "user activity": sort_table(users, ["u"]),
            "item popularity": (sort_table(items, ["i"]), active),
        }
        snap = past = table = pairs = users = items = None
        gc.collect()
    if "spark" in engines:
        stop_spark_session()
    first = engines[0]
    print(f"| step | {' | '.join(engines)} | ratio to {first} (wall, CPU) | equal |")
    print(f"| --- | {' | '.join('---' for _ in engines)} | --- | --- |")
    labels = list(dict.fromkeys(label for engine in engines for label in timings[engine]))
    for label in labels:
        cells = []
        for engine in engines:
            seconds, cpu, peak = timings[engine].get(label, (float("nan"),) * 3)
            cells.append(f"{seconds:.1f} s wall, {cpu:.1f} s CPU, {peak:,.0f} MB")
        ratios = ", ".join(
            f"{timings[e][label][0] / max(timings[first][label][0], 1e-9):.1f}x / "
            f"{timings[e][label][1] / max(timings[first][label][1], 1e-9):.1f}x"
            for e in engines[1:]
            if label in timings[e] and label in timings[first]
        )
        equal = "-"
        if all(label in outputs[e] for e in engines):
            equal = ", ".join(
                "yes" if _same(outputs[first][label], outputs[e][label]) else "NO"
                for e in engines[1:]
            )
        print(f"| {label} | {' | '.join(cells)} | {ratios} | {equal} |", flush=True)


def _same(a: object, b: object) -> bool:
    """Equal tables or arrays (NaN equal to NaN; dtypes of counts may differ by engine)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame):
        if list(a.columns) != list(b.columns) or len(a) != len(b):
            return False
        return all(_same(a[c].to_numpy(dtype=float), b[c].to_numpy(dtype=float)) for c in a)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-9, atol=0, equal_nan=True))
    return a == b


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
