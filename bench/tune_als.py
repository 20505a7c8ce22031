"""Produce a built-in dataset's preset with the same search as ``python -m recsys_core tune``.

The search (:func:`recsys_core.tuning.search.tune_dataset`) sees only the training part of the
evaluation split and scores settings on the validation window before the test period. This
script then scores the chosen settings *once* on the test period next to the current preset,
and prints the ``Preset(...)`` to paste into ``recsys_core/presets.py``. Nothing is saved
under ``$RECSYS_HOME``.

Run: ``python bench/tune_als.py [--dataset online-retail] [--budget-minutes 4]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.evaluation import EvaluationConfig, evaluate  # noqa: E402
from recsys_core.presets import PRESETS, Preset, preset_for  # noqa: E402
from recsys_core.tuning.search import TuneConfig, tune_dataset  # noqa: E402


def test_ndcg(dataset_name: str, preset: Preset, models: list[str], k: int) -> dict[str, float]:
    """NDCG@k on the test period with exactly ``preset``'s settings."""
    config = EvaluationConfig(
        models=models,
        k=k,
        weights=preset.weights,
        model_params={m: dict(p) for m, p in preset.model_params.items()},
        model_weights=dict(preset.model_weights),
        filter_seen=preset.filter_seen,
        new_items_variant=False,
    )
    result = evaluate(load_dataset(dataset_name), config)
    return {m: round(r.metrics[f"ndcg@{k}"], 4) for m, r in result.models.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--models", default="als,itemknn,bpr")
    parser.add_argument("--budget-minutes", type=float, default=4.0)
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    models = args.models.split(",")
    config = TuneConfig(
        models=models,
        budget_minutes=args.budget_minutes,
        trials=args.trials,
        seed=args.seed,
        k=args.k,
    )
    result, _ = tune_dataset(load_dataset(args.dataset), config, save=False)
    print(result.trials_frame().to_string(), flush=True)
    print(f"validation: {result.summary()['validation']}")
    print(f"validation ndcg@{args.k}: defaults {result.default_ndcg}, tuned {result.best_ndcg}")
    chosen = test_ndcg(args.dataset, result.preset, models, args.k)
    print(f"test ndcg@{args.k} of the chosen settings: {chosen}")
    if args.dataset in PRESETS:
        current = test_ndcg(args.dataset, preset_for(args.dataset), models, args.k)
        print(f"test ndcg@{args.k} of the current preset: {current}")
    print("preset for recsys_core/presets.py:")
    print(repr(result.preset))


if __name__ == "__main__":
    main()
