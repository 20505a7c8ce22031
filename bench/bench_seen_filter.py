"""Validation NDCG@10 of the scaled defaults: keep, remove already-bought, remove all seen.

Why the repeat rule removes only *bought* items (``recsys_core.policy.recommend_with_policy``),
not every seen one: on 500-shopper demo-store variants, ALS and item-kNN with the scaled
defaults are scored on the validation window before the test period (the test period is not
read), with lists that keep everything, leave out the items the shopper bought (purchase
events), or leave out every item the shopper has seen (views too). Also printed: what the
training data's repeat rate (``recsys_core.repeats``) would choose. A second table gives the
test-period NDCG@10 of ``evaluate`` with its default rule and with ``--keep-bought``.
Run: ``python bench/bench_seen_filter.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys_core.evaluation import EvaluationConfig, evaluate  # noqa: E402
from recsys_core.interactions import InteractionMatrix  # noqa: E402
from recsys_core.models import create_model  # noqa: E402
from recsys_core.policy import ListContext, ListPolicy, recommend_with_policy  # noqa: E402
from recsys_core.repeats import bought_pairs, repeat_profile  # noqa: E402
from recsys_core.tuning import scaled_defaults  # noqa: E402
from recsys_core.tuning.search import TuneConfig, _prepare, training_part  # noqa: E402
from recsys_core.tuning.variants import demo_variant  # noqa: E402


def main() -> None:
    config = TuneConfig()
    print("| variant | model | repeat rule | keep | remove bought | remove seen |")
    print("|---|---|---|---|---|---|")
    for variant in ("no-repurchases", "views-few-purchases", "demo"):
        train, _ = training_part(demo_variant(variant).events, config)
        validation = _prepare(train, config)
        preset = scaled_defaults(train)
        matrix = InteractionMatrix.from_events(validation.split.train, preset.weights)
        bought = bought_pairs(validation.split.train)
        rule = "remove bought" if repeat_profile(validation.split.train).filter_seen else "keep"
        for name in ("als", "itemknn"):
            model = create_model(name, **preset.model_params[name]).fit(matrix)
            keep = validation.ndcg(model.recommend(validation.users, 10, filter_seen=False))
            unbought = validation.ndcg(
                recommend_with_policy(
                    model, validation.users, 10, ListPolicy("leave-out-bought"), ListContext(bought)
                )
            )
            remove = validation.ndcg(model.recommend(validation.users, 10, filter_seen=True))
            print(f"| {variant} | {name} | {rule} | {keep:.4f} | {unbought:.4f} | {remove:.4f} |")

    models = ["popularity", "itemknn", "bpr", "als"]
    print()
    print("| variant | rule | " + " | ".join(models) + " |")
    print("|---|---|" + "---|" * len(models))
    for variant in ("no-repurchases", "views-few-purchases"):
        dataset = demo_variant(variant)
        for label, flag in (("--keep-bought", False), ("default", None)):
            config_eval = EvaluationConfig(
                models=models, filter_bought=flag, new_items_variant=False
            )
            result = evaluate(dataset, config_eval)
            rule = f"{label} ({result.split['already_bought']['removes']})"
            ndcg = " | ".join(f"{result.models[m].metrics['ndcg@10']:.4f}" for m in models)
            print(f"| {variant} | {rule} | {ndcg} |")


if __name__ == "__main__":
    main()
