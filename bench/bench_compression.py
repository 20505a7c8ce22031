"""Compressed ALS factors on Online Retail: bytes, NDCG@10 on the test window, latency.

ALS (the dataset's preset) is fitted on the events before the last 30 days; each codec's
factors (:mod:`recsys_core.serving.compression`) recommend the top 10 for every test shopper
(seen items kept, as the service answers), scored against the purchases of the test window;
latency is the service's ALS answer for 150 different shoppers (p50/p99, one process).

Run: ``python bench/bench_compression.py [--dataset online-retail]``
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.evaluation import relevant_items  # noqa: E402
from recsys_core.interactions import InteractionMatrix  # noqa: E402
from recsys_core.metrics import ranking_metrics  # noqa: E402
from recsys_core.models import create_model  # noqa: E402
from recsys_core.presets import preset_for  # noqa: E402
from recsys_core.serving import RecommendationService, TrainedLab  # noqa: E402
from recsys_core.serving.compression import (  # noqa: E402
    CODECS,
    ServingConfig,
    encode,
    stored_bytes,
    with_codec,
)
from recsys_core.split import temporal_split  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    data = load_dataset(args.dataset)
    split = temporal_split(data.events, test_days=30, test_events=("purchase",))
    preset = preset_for(data.name)
    matrix = InteractionMatrix.from_events(split.train, preset.weights)
    als = create_model("als", **preset.model_params.get("als", {})).fit(matrix)
    relevant = relevant_items(split, ("purchase",))
    test_users = sorted(set(relevant["user_id"]) & set(als.users_.external_ids))
    lab = TrainedLab(args.dataset, "bench", "", data.catalog, {"als": als})
    rng = np.random.default_rng(0)
    shoppers = [str(u) for u in rng.choice(test_users, size=151, replace=False)]
    print(f"ALS {als.config.factors} factors, {len(test_users)} test shoppers, k={args.k}")
    print("(one run; the machine was shared with other jobs)\n")
    print("| factors | factor bytes | vs float32 | NDCG@10 | change | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    base_ndcg = None
    base_bytes = None
    for codec in CODECS:
        size = sum(
            stored_bytes(encode(f, codec))
            for f in (als.model_.user_factors, als.model_.item_factors)
        )
        model = with_codec(als, codec)
        reco = model.recommend(test_users, args.k, filter_seen=False)
        ndcg = ranking_metrics(reco, relevant, args.k)[f"ndcg@{args.k}"]
        base_ndcg = ndcg if base_ndcg is None else base_ndcg
        base_bytes = size if base_bytes is None else base_bytes
        service = RecommendationService(replace(lab), ServingConfig(als_factors=codec))
        service.recommend(shoppers[0], args.k, "als", policy="lab-rule")
        times = []
        for user in shoppers[1:]:
            start = time.perf_counter()
            service.recommend(user, args.k, "als", policy="lab-rule")
            times.append((time.perf_counter() - start) * 1000)
        print(
            f"| {codec} | {size / 1e6:.2f} MB | {size / base_bytes:.2f}x | {ndcg:.4f} | "
            f"{ndcg - base_ndcg:+.4f} | {np.percentile(times, 50):.3f} | "
            f"{np.percentile(times, 99):.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
