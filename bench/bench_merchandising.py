"""What merchandising rules cost: one shopper's answer and batch scoring, without and with a
rule set (pin, category boost, block, a segment-limited pin).

A lab (popularity, item-kNN, ALS) is trained on a seeded demo store; the service answers
each shopper uncached (``_answer_uncached``: the hot path plus the policy), and ``batch``'s
``score_batch`` scores every shopper, first under ``leave-out-bought`` alone, then with the
rules. Figures are medians of per-shopper times and the batch wall time.
Run: ``OMP_NUM_THREADS=1 python bench/bench_merchandising.py [--users 2000]``.

``--offline`` times the offline money figure of the Merchandising preview instead
(:mod:`recsys_core.merchandising_offline`) on Online Retail: fitting each ``--models`` model
on the recorded window's training part (once per version and model in the app) and one rule
set's figure on ``--sample`` test shoppers, with CPU seconds (load-independent) and the
figures: ``OMP_NUM_THREADS=1 python bench/bench_merchandising.py --offline --models
popularity,itemknn,als``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys_core.data.demo_store import generate_demo_store  # noqa: E402
from recsys_core.data.schema import Dataset  # noqa: E402
from recsys_core.merchandising import MerchandisingRule  # noqa: E402
from recsys_core.models.registry import ALS, ITEMKNN, POPULARITY  # noqa: E402
from recsys_core.policy import ListPolicy  # noqa: E402
from recsys_core.serving import RecommendationService  # noqa: E402
from recsys_core.serving.batch import score_batch  # noqa: E402
from recsys_core.training import TrainConfig, train_lab  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--offline", action="store_true", help="time the offline money figure")
    parser.add_argument("--models", default="popularity,itemknn,als")
    parser.add_argument("--sample", type=int, default=500)
    args = parser.parse_args()
    if args.offline:
        offline(args.models.split(","), args.sample)
        return
    events, catalog = generate_demo_store(
        n_users=args.users, n_items=400, n_events=args.users * 60, seed=7
    )
    lab = train_lab(
        Dataset("bench-merch", events, catalog),
        TrainConfig(models=[POPULARITY, ITEMKNN, ALS], headline_metrics=False),
    )
    service = RecommendationService(lab)
    items = catalog["item_id"].astype(str).tolist()
    category = str(catalog["category"].iloc[0])
    rules = (
        MerchandisingRule("pin", (items[-1],), position=1),
        MerchandisingRule("boost", categories=(category,), weight=1.0),
        MerchandisingRule("block", (items[0], items[1])),
        MerchandisingRule("pin", (items[-2],), position=3, segment="tenure=new"),
    )
    plain = ListPolicy("leave-out-bought", merchandising="none")
    ruled = replace(plain, rules=rules, merchandising="bench")
    users = lab.models[ALS].known_users()
    print(f"demo store: {len(users):,} shoppers, {len(items)} items; k=10")
    print("| model | policy | answer median (ms) | batch of every shopper (s) |")
    print("|---|---|---|---|")
    for model in (ALS, ITEMKNN):
        for name, policy in (("leave-out-bought", plain), ("+ 4 rules", ruled)):
            context = service.list_context()
            service._answer_uncached(users[0], 10, model, policy, context)  # warm up
            times = []
            for user in users[:300]:
                start = time.perf_counter()
                service._answer_uncached(user, 10, model, policy, context)
                times.append(time.perf_counter() - start)
            start = time.perf_counter()
            score_batch(lab, model, 10, policy=policy)
            batch = time.perf_counter() - start
            median = statistics.median(times) * 1000
            print(f"| {model} | {name} | {median:.2f} | {batch:.2f} |")


def offline(models: list[str], sample: int) -> None:
    """Fit time and one rule set's figure of the offline money per shopper (Online Retail)."""
    import resource

    from recsys_core.data.builtin import load_dataset
    from recsys_core.merchandising_offline import fit_offline_window, offline_effect

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    dataset = load_dataset("online-retail")
    catalog = dataset.catalog
    top = catalog["category"].value_counts().index[0]  # the biggest keyword
    draft = (
        MerchandisingRule("pin", (str(catalog["item_id"].iloc[0]),), position=1),
        MerchandisingRule("boost", categories=(str(top),), weight=1.0),
    )
    print(f"Online Retail; draft: {'; '.join(r.describe() for r in draft)}; sample {sample}")
    print(
        "| model | fit on the window: wall s (CPU s) | one figure: wall s (CPU s) | "
        "recorded | now | with the draft | 95 % interval of the change |"
    )
    print("|---|---|---|---|---|---|---|")
    for model in models:
        wall, used = time.perf_counter(), cpu()
        window = fit_offline_window(dataset, model, train_config={"seed": 42})
        fit = (time.perf_counter() - wall, cpu() - used)
        wall, used = time.perf_counter(), cpu()
        effect = offline_effect(window, (), draft, sample_size=sample)
        one = (time.perf_counter() - wall, cpu() - used)
        low, high = effect.change_ci
        print(
            f"| {model} | {fit[0]:.1f} ({fit[1]:.1f}) | {one[0]:.2f} ({one[1]:.2f}) | "
            f"£{effect.recorded:,.2f} | £{effect.before:,.2f} | £{effect.after:,.2f} | "
            f"£{low:,.2f} to £{high:,.2f} |"
        )


if __name__ == "__main__":
    main()
