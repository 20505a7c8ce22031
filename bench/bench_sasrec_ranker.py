"""The ranker with and without its optional ``sequence`` group, end to end on Online Retail.

Fits :class:`~recsys_core.ranking.ranker.TwoStageRanker` twice on the events before the
evaluate cutoff (the last 30 days are the test window): the defaults, and
``RankerConfig(sequence=...)`` (the switch, ``--sequence`` JSON, default ``{}`` = the group's
cheap defaults). Prints for each: fit wall time and CPU seconds of the process, peak
resident memory, NDCG@10 / recall@10 of the test shoppers (already-bought items kept, as the
lab serves Online Retail) and the service's uncached answer p50/p99 (one shopper per call,
``--answers`` distinct shoppers, after ``warm_up``). The sequence ranker leaves the
service's compiled hot path (it knows only the default columns), so its answers go through
the ranker's own methods: the latency shows what the switch costs per request.

Run: ``OMP_NUM_THREADS=1 python bench/bench_sasrec_ranker.py [--sequence '{}'] [--only
sequence|defaults]`` (needs torch for the sequence fit; ``--only`` gives each fit its own
process, so its peak memory is its own).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.columns import Columns  # noqa: E402
from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.evaluation import relevant_items  # noqa: E402
from recsys_core.metrics import ranking_metrics  # noqa: E402
from recsys_core.models.registry import purchase_model  # noqa: E402
from recsys_core.policy import ListPolicy  # noqa: E402
from recsys_core.ranking import TwoStageRanker  # noqa: E402
from recsys_core.serving import RecommendationService  # noqa: E402
from recsys_core.serving.lab import TrainedLab  # noqa: E402
from recsys_core.split import temporal_split  # noqa: E402

K = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequence", default="{}", help="RankerConfig.sequence (JSON)")
    parser.add_argument("--answers", type=int, default=200)
    parser.add_argument(
        "--only",
        choices=("defaults", "sequence"),
        default=None,
        help="fit one of the two (peak memory is the process's: one per process is clean)",
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}")
    dataset = load_dataset("online-retail")
    split = temporal_split(dataset.events, test_days=30, test_events=("purchase",))
    relevant = relevant_items(split, ("purchase",))
    test_users = sorted(relevant[Columns.USER].unique())
    name = purchase_model()
    rows = []
    variants = {"defaults": {}, "sequence": {"sequence": json.loads(args.sequence)}}
    for label, settings in variants.items():
        if args.only not in (None, label):
            continue
        started, cpu = time.perf_counter(), time.process_time()
        ranker = TwoStageRanker(**settings).fit(split.train, dataset.catalog, cutoff=split.cutoff)
        fit_s, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        seq_cpu = ranker.sequence_.fit_cpu_seconds_ if ranker.sequence_ is not None else 0.0
        metrics = ranking_metrics(ranker.recommend(test_users, K, filter_seen=False), relevant, K)
        service = RecommendationService(
            TrainedLab("online-retail", label, "now", dataset.catalog, {name: ranker})
        )
        service.warm_up()
        policy = ListPolicy("keep")
        warm = set(ranker.known_users())
        known = [u for u in test_users if u in warm][: args.answers]
        times, own = [], []
        for user in known:
            t0 = time.perf_counter()
            service.recommend(user, K, name, policy=policy)
            times.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()  # the ranker's own method (what the service falls back to)
            ranker.recommend([user], K, filter_seen=False)
            own.append((time.perf_counter() - t0) * 1e3)
        hot = service.prepared(name) is not None
        rows.append(
            f"| {label} | {fit_s:.0f} s | {fit_cpu:.0f} s (sasrec at the cutoff {seq_cpu:.1f}) | "
            f"{peak:.0f} MB | {metrics[f'ndcg@{K}']:.4f} | {metrics[f'recall@{K}']:.4f} | "
            f"{np.percentile(times, 50):.1f} / {np.percentile(times, 99):.1f} ms "
            f"({'hot path' if hot else 'own methods'}) | {np.percentile(own, 50):.1f} / "
            f"{np.percentile(own, 99):.1f} ms |"
        )
        print(rows[-1], flush=True)
        del ranker, service
    print(f"\ntest window from {split.cutoff}, {len(test_users)} test shoppers")
    print(
        "| ranker | fit wall | fit CPU | peak RSS so far | NDCG@10 | recall@10 | service "
        "answer p50 / p99 | ranker.recommend([one]) p50 / p99 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
