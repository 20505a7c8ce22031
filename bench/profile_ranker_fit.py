"""Profile and time the ranker's fit on the demo store (section 6 of docs/ranker-at-scale.md).

Usage::

    OMP_NUM_THREADS=1 python bench/profile_ranker_fit.py EVENTS SHOPPERS OUT [--profile]

Generates the demo store of ``EVENTS`` events as ``bench_pipeline.py`` does, fits
``TwoStageRanker(seed=42, training_shoppers=SHOPPERS)`` and prints, at each progress mark,
the wall time, the process's CPU seconds and the main thread's (what ran on one core). With
``--profile`` the fit runs under cProfile (``OUT.prof`` and the top functions printed).
Writes the fold models' text (``OUT.models.txt``) and ``recommend`` of 300 shoppers with
probabilities (``OUT.reco.parquet``) so that two checkouts' fits can be compared bit for bit.
It prints figures; it asserts nothing.
"""

from __future__ import annotations

import cProfile
import hashlib
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys_core.data.dataset import id_values  # noqa: E402
from recsys_core.data.demo_store import generate_demo_store  # noqa: E402
from recsys_core.data.schema import validate_events  # noqa: E402
from recsys_core.ranking import TwoStageRanker  # noqa: E402


def main() -> None:
    n_events, shoppers, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    n_users = max(1, round(3000 * n_events / 200_000))
    n_items = max(1, round(800 * n_events / 200_000))
    events, catalog = generate_demo_store(n_users, n_items, n_events, seed=42)
    events = validate_events(events, source="demo store")
    wall, cpu, main_cpu = time.perf_counter(), time.process_time(), time.thread_time()

    def progress(message: str, fraction: float) -> None:
        print(
            f"  [{time.perf_counter() - wall:7.1f}s wall {time.process_time() - cpu:7.1f}s cpu "
            f"{time.thread_time() - main_cpu:7.1f}s this thread] {message} "
            f"(load {os.getloadavg()[0]:.1f})",
            flush=True,
        )

    ranker = TwoStageRanker(seed=42, training_shoppers=shoppers)
    profile = cProfile.Profile() if "--profile" in sys.argv else None
    if profile is not None:
        profile.enable()
    ranker.fit(events, catalog, progress=progress)
    if profile is not None:
        profile.disable()
    print(
        f"FIT wall {time.perf_counter() - wall:.1f} cpu {time.process_time() - cpu:.1f} "
        f"main-thread cpu {time.thread_time() - main_cpu:.1f} "
        f"rows {ranker.training_summary_['rows']}",
        flush=True,
    )
    if profile is not None:
        profile.dump_stats(out + ".prof")
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(40)
    texts = [b.model_to_string() for b in ranker.purchase_model_.boosters_]
    Path(out + ".models.txt").write_text("\n=====\n".join(texts))
    digest = hashlib.sha256("".join(texts).encode()).hexdigest()[:16]
    print("MODELS sha", digest, [b.num_trees() for b in ranker.purchase_model_.boosters_])
    users = sorted(set(id_values(events["user_id"])))
    chosen = users[:: max(1, len(users) // 300)][:300]
    ranker.recommend(chosen, 10, filter_seen=False).to_parquet(out + ".reco.parquet")


if __name__ == "__main__":
    main()
