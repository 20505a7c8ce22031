"""Benchmark of the purchase model's online paths on Online Retail (prints figures only).

* one local SHAP explanation (features of one pair + TreeExplainer + labels), target <= 20 ms;
* purchase probabilities of one shopper's 100 candidates (features + LightGBM + calibration),
  target <= 20 ms.

Medians over repeats, after a warm-up. Run: ``python bench/bench_ranker.py [--repeats 50]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.explain import PurchaseExplainer  # noqa: E402
from recsys_core.ranking.ranker import TwoStageRanker  # noqa: E402
from recsys_core.split import temporal_split  # noqa: E402


def _median_ms(action: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median and 90th-percentile wall time of ``action`` in milliseconds."""
    action()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times), float(np.percentile(times, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--dataset", default="online-retail")
    args = parser.parse_args()

    data = load_dataset(args.dataset)
    split = temporal_split(data.events, test_days=30, test_events=("purchase",))
    start = time.perf_counter()
    ranker = TwoStageRanker().fit(split.train, data.catalog, cutoff=split.cutoff)
    print(f"fit on {args.dataset} (cutoff {split.cutoff}): {time.perf_counter() - start:.1f} s")
    explainer = PurchaseExplainer(ranker)

    rng = np.random.default_rng(0)
    users = rng.choice(np.asarray(split.test_users), size=20, replace=False)
    candidates = ranker.candidate_frame(list(users))
    per_user = {
        u: g.nlargest(100, "raw_score")["item_id"].tolist()
        for u, g in candidates.groupby("user_id", sort=False)
    }
    pairs = [(u, items[0]) for u, items in per_user.items()]

    state = {"i": 0}

    def one_probability_batch() -> None:
        user = users[state["i"] % len(users)]
        state["i"] += 1
        ranker.purchase_probability(str(user), per_user[str(user)])

    def one_explanation() -> None:
        user, item = pairs[state["i"] % len(pairs)]
        state["i"] += 1
        explainer.explain(user, item)

    median, p90 = _median_ms(one_probability_batch, args.repeats)
    print(
        f"purchase_probability, one shopper x 100 candidates: median {median:.1f} ms "
        f"(p90 {p90:.1f} ms; target <= 20 ms)"
    )
    median, p90 = _median_ms(one_explanation, args.repeats)
    print(
        f"local SHAP explanation, one (shopper, item): median {median:.1f} ms "
        f"(p90 {p90:.1f} ms; target <= 20 ms)"
    )
    median, p90 = _median_ms(
        lambda: ranker.recommend([str(users[0])], 10, filter_seen=False), max(5, args.repeats // 5)
    )
    print(
        f"recommend, one shopper, k=10 (all candidates scored): median {median:.1f} ms "
        f"(p90 {p90:.1f} ms)"
    )


if __name__ == "__main__":
    main()
