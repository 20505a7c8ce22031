"""A log where every item is consumed once: the repeat rule and tuning on it.

Reproduces the issue's public-log finding on a generated log (the demo store with one event
per shopper-item pair: a purchase when the shopper ever bought the item, else a view;
``recsys_core.tuning.variants``, ``consumed-once``, 2,000 shoppers, 400 items):

1. test-window NDCG@10 of every single-stage model with the lab's rule (the return rate
   of any event type is 0 %: lists leave out every seen item) and with the old rule (only
   bought items leave; viewed ones stay), and each model's ratio to popularity;
2. ``tune`` (1-minute budget, item-kNN and ALS) and the test-window NDCG@10 of the tuned
   settings next to the defaults, with the guard's verdict per model.

Run: ``OMP_NUM_THREADS=1 python bench/bench_no_repeat.py`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys_core.evaluation import EvaluationConfig, evaluate  # noqa: E402
from recsys_core.tuning.search import TuneConfig, tune_dataset  # noqa: E402
from recsys_core.tuning.variants import CONSUMED_ONCE, demo_variant  # noqa: E402

MODELS = ["popularity", "buy-again", "itemknn", "ease", "bpr", "als"]


def _table(title: str, result: object) -> dict[str, float]:
    models = result.models  # type: ignore[attr-defined]
    pop = models["popularity"].metrics["ndcg@10"]
    print(f"\n{title}")
    print(f"{'model':<12}{'ndcg@10':>9}  {'95% interval':<18}{'x popularity':>13}")
    out = {}
    for name, res in models.items():
        value = res.metrics["ndcg@10"]
        low, high = res.ci95.get("ndcg@10", [float("nan")] * 2)
        print(f"{name:<12}{value:>9.4f}  [{low:.4f}, {high:.4f}]{value / pop:>12.2f}x")
        out[name] = value
    return out


def main() -> None:
    os.environ["RECSYS_HOME"] = tempfile.mkdtemp(prefix="bench_no_repeat_")
    dataset = demo_variant(CONSUMED_ONCE, n_users=2000, n_items=400, n_events=160_000)
    config = EvaluationConfig(models=MODELS, new_items_variant=False, bootstrap_resamples=500)
    lab = evaluate(dataset, config)
    print(f"{len(dataset.events):,} events; rule: {lab.split['already_bought']['why']}")
    _table("lab default (every seen item left out)", lab)
    old = evaluate(dataset, config.model_copy(update={"filter_bought": True}))
    _table("old rule (only bought items left out; viewed stay)", old)

    tuned_config = TuneConfig(models=["itemknn", "als"], budget_minutes=1.0)
    result, _ = tune_dataset(dataset, tuned_config, save=True)
    print(
        f"\ntune: {len(result.trials)} trials on {result.validation['users']} validation shoppers"
    )
    for name, check in result.guard.items():
        print(f"  {name}: {check['kept']} kept: {check['why']}")
    after = evaluate(dataset, config.model_copy(update={"models": ["itemknn", "als"]}))
    print(f"settings used: {after.provenance['settings']}")
    for name in ("itemknn", "als"):
        res = after.models[name]
        low, high = lab.models[name].ci95["ndcg@10"]
        print(
            f"  {name}: tuned {res.metrics['ndcg@10']:.4f} vs defaults "
            f"{lab.models[name].metrics['ndcg@10']:.4f} "
            f"(defaults' interval [{low:.4f}, {high:.4f}])"
        )


if __name__ == "__main__":
    main()
