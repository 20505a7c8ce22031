"""Benchmark: ``evaluate --models all`` on a generated grocery-shaped log, per stage.

Usage::

    OMP_NUM_THREADS=1 python bench/bench_grocery.py [--lines 1000000] [--shoppers 30000]
        [--items 25000] [--days 120] [--models all] [--ranker-shoppers N] [--keep PATH]
        [--data PATH] [--json OUT]

Stages (each printed with its wall time, the CPU seconds of this process (all threads; on a
busy machine the wall time inflates, the CPU time much less) and the peak resident memory of
this process *during* the stage, sampled every 0.1 s from ``/proc``; the process's overall
peak is ``ru_maxrss``, what ``/usr/bin/time -v`` reports as "Maximum resident set size"):

1. ``generate``: :func:`bench.grocery_log.generate_grocery_log` (seeded: purchases only,
   baskets of 1 + Poisson(9) lines, 70 % of lines from each shopper's 20 staples, prices),
   written to Parquet;
2. ``load``: :func:`~recsys_core.data.loaders.load_event_file` (what ``--data`` does);
3. the evaluation (:func:`recsys_core.evaluation.evaluate`, the same call as
   ``python -m recsys_core evaluate --data LOG --models all``), split into the steps its
   progress messages name (validation pass, then ``fitting X`` / ``recommending with X``
   per model, the classifier metrics, bootstrap, the order model).

``all`` is every model of the evaluation's default list (not the optional ``sasrec``).
``--ranker-shoppers N`` trains the ranker on a seeded sample of N shoppers
(``training_shoppers``; 0: every shopper); the default is the ranker's own setting (10,000).

``--data PATH`` reads a log written before (``--keep`` or ``bench/grocery_log.py --out``)
instead of generating one; ``--json OUT`` writes the evaluation's JSON (what ``evaluate
--json`` writes) for ``bench/compare_evaluations.py``.

It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import PAGE, PeakSampler, _rss_pages, peak_rss_mb, tree_rss_mb  # noqa: E402
from grocery_log import generate_grocery_log  # noqa: E402

from recsys_core.data.loaders import load_event_file  # noqa: E402
from recsys_core.evaluation import ALL_MODELS, EvaluationConfig, evaluate  # noqa: E402
from recsys_core.models.registry import purchase_model  # noqa: E402


class StageLog:
    """Stage boundaries from the evaluation's progress messages and the RSS peak of each.

    The process's own resident memory is sampled every ``interval`` seconds; its child
    processes (found by scanning ``/proc``, ~4 ms of CPU on a machine with 100 processes, 4 %
    of a core at 10 scans a second, all counted in the stages' CPU seconds) every
    ``tree_interval`` seconds. ``evaluate`` starts no processes (Spark models aside).
    """

    def __init__(self, interval: float = 0.1, tree_interval: float = 2.0) -> None:
        self.interval = interval
        self.tree_interval = tree_interval
        self.stages: list[list[object]] = []  # [label, start, end, peak MB, cpu0, cpu1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def progress(self, message: str, fraction: float) -> None:
        label = re.sub(r"^fold \d+/\d+: ", "", message)
        label = re.sub(r"\d[\d,]*", "N", label)  # "scored 2,000 of ..." -> one stage
        now, cpu = time.perf_counter(), time.process_time()
        if self.stages and self.stages[-1][0] == label:
            return
        if self.stages:
            self.stages[-1][2], self.stages[-1][5] = now, cpu
        self.stages.append([label, now, None, tree_rss_mb(), cpu, None])
        print(f"  [{fraction:4.0%}] {message}", flush=True)

    def _run(self) -> None:
        pid, children, scanned = os.getpid(), 0.0, 0.0
        while not self._stop.is_set():
            if time.perf_counter() - scanned >= self.tree_interval:
                children, scanned = (
                    tree_rss_mb() - _rss_pages(pid) * PAGE / 2**20,
                    time.perf_counter(),
                )
            if self.stages:
                now = _rss_pages(pid) * PAGE / 2**20 + max(children, 0.0)
                self.stages[-1][3] = max(float(self.stages[-1][3]), now)  # type: ignore[arg-type]
            self._stop.wait(self.interval)

    def __enter__(self) -> StageLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.stages:
            self.stages[-1][2], self.stages[-1][5] = time.perf_counter(), time.process_time()


def generate(args: argparse.Namespace, path: Path) -> tuple[str, float, float, float]:
    """Generate the log into ``path``: the stage row (label, wall s, peak MB, CPU s)."""
    with PeakSampler() as sampler:
        t, c = time.perf_counter(), time.process_time()
        log = generate_grocery_log(args.lines, args.shoppers, args.items, args.days, args.seed)
        log.to_parquet(path, index=False)
        cpu = time.process_time() - c
        row = ("generate", time.perf_counter() - t, sampler.peak, cpu)
    print(
        f"grocery log: {len(log):,} purchase lines, {log['user_id'].nunique():,} shoppers, "
        f"{log['item_id'].nunique():,} items, {args.days} days (seed {args.seed})",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--shoppers", type=int, default=30_000)
    parser.add_argument("--items", type=int, default=25_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="all")
    parser.add_argument("--ranker-shoppers", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="Write the log here too.")
    parser.add_argument("--data", type=Path, default=None, help="Read this log, do not generate.")
    parser.add_argument("--json", type=Path, default=None, help="Write the evaluation's JSON.")
    args = parser.parse_args(argv)
    models = list(ALL_MODELS) if args.models == "all" else args.models.split(",")
    rows: list[tuple[str, float, float, float]] = []  # label, wall s, peak MB, CPU s
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.data or args.keep or Path(tmp) / "grocery.parquet"
        if args.data is not None:
            print(f"grocery log: {path} (read, not generated)", flush=True)
        else:
            rows.append(generate(args, path))
        with PeakSampler() as sampler:
            t, c = time.perf_counter(), time.process_time()
            dataset = load_event_file(path)
            rows.append(("load", time.perf_counter() - t, sampler.peak, time.process_time() - c))
    params = {}
    if args.ranker_shoppers is not None:  # 0: every shopper
        params[purchase_model()] = {"training_shoppers": args.ranker_shoppers or None}
    config = EvaluationConfig(models=models, model_params=params)
    with StageLog() as stages:
        t, c = time.perf_counter(), time.process_time()
        result = evaluate(dataset, config, progress=stages.progress)
        evaluation = (time.perf_counter() - t, time.process_time() - c)
    if args.json is not None:
        args.json.write_text(result.dumps(), encoding="utf-8")
    for label, start, end, peak, cpu0, cpu1 in stages.stages:
        wall, cpu = float(end) - float(start), float(cpu1) - float(cpu0)  # type: ignore[arg-type]
        rows.append((f"  {label}", wall, float(peak), cpu))  # type: ignore[arg-type]
    peak_all = max(r[2] for r in rows)
    rows.append(("evaluate (all of the above)", evaluation[0], peak_all, evaluation[1]))
    print(f"\n{'stage':<56} {'wall s':>8} {'CPU s':>8} {'peak MB':>8}")
    for label, seconds, peak, cpu in rows:
        print(f"{label[:56]:<56} {seconds:8.1f} {cpu:8.1f} {peak:8.0f}")
    print(
        f"\ntotal {time.perf_counter() - started:.1f} s; process peak (ru_maxrss) "
        f"{peak_rss_mb():.0f} MB; models: {', '.join(models)}"
    )
    k = result.k
    for name, res in result.models.items():
        low, high = (res.ci95 or {}).get(f"ndcg@{k}", (float("nan"), float("nan")))
        print(
            f"{name:<12} ndcg@{k} {res.metrics[f'ndcg@{k}']:.4f} (95% {low:.4f}-{high:.4f})  "
            f"fit {res.fit_seconds:.1f} s  lists {res.recommend_seconds:.1f} s"
        )
    summary = getattr(result.models.get(purchase_model()), "model", None)
    if summary is not None:
        print(f"ranker training rows: {summary.training_summary_}")
    for name, why in result.skipped.items():
        print(f"{name:<12} skipped: {why[:100]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
