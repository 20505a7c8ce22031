"""NDCG@10 on the test period: popularity, library defaults, scaled defaults, preset, tuned.

For Online Retail, the built-in demo store, a 500-shopper demo store and its three variants
(:mod:`recsys_core.tuning.variants`): the search (``tune``, training part only) runs with a
small budget, then every set of settings is evaluated once on the test period with the usual
protocol (``evaluate``). Whether lists keep the items a shopper has already seen follows the
settings that apply to the dataset (scaled defaults or preset) in every column but "tuned",
which uses the search's choice. Nothing is saved (a temporary ``$RECSYS_HOME``).

Run: ``python bench/bench_tuning.py [--datasets online-retail,demo-store,...]
[--budget-minutes 3] [--variant-budget-minutes 0.5]``. Figures are from one run; the machine
may be shared, so tuning times are rough.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.data.schema import Dataset  # noqa: E402
from recsys_core.evaluation import EvaluationConfig, evaluate  # noqa: E402
from recsys_core.interactions import EventWeights  # noqa: E402
from recsys_core.models import MODEL_REGISTRY  # noqa: E402
from recsys_core.presets import PRESETS, Preset, preset_for  # noqa: E402
from recsys_core.tuning import scaled_defaults  # noqa: E402
from recsys_core.tuning.search import TuneConfig, training_part, tune_dataset  # noqa: E402
from recsys_core.tuning.variants import VARIANTS, demo_variant  # noqa: E402

MODELS = ["als", "itemknn", "bpr"]


def library_defaults() -> Preset:
    """Every model's own defaults with the default event weights (view 1, cart 3, favourite 3,
    purchase 5) and no filtering: what an untuned log got before scaled defaults."""
    params = {}
    for name in MODELS:
        fields = MODEL_REGISTRY[name].config_class.model_fields
        params[name] = {
            key: f.default for key, f in fields.items() if key not in ("seed", "num_threads")
        }
    return Preset(weights=EventWeights(), model_params=params, source="library defaults")


def test_ndcg(dataset: Dataset, preset: Preset, k: int) -> dict[str, float]:
    """NDCG@k on the test period with exactly ``preset``'s settings."""
    config = EvaluationConfig(
        models=["popularity", *MODELS],
        k=k,
        weights=preset.weights,
        model_params={m: dict(p) for m, p in preset.model_params.items()},
        model_weights={m: preset.model_weights.get(m, preset.weights) for m in MODELS},
        filter_seen=preset.filter_seen,
        new_items_variant=False,
    )
    result = evaluate(dataset, config)
    return {m: r.metrics[f"ndcg@{k}"] for m, r in result.models.items()}


def load(name: str) -> Dataset:
    if name in ("online-retail", "demo-store"):
        return load_dataset(name)
    return demo_variant(name)


def main() -> None:
    parser = argparse.ArgumentParser()
    names = ["online-retail", "demo-store", "demo", *VARIANTS]
    parser.add_argument("--datasets", default=",".join(names))
    parser.add_argument("--budget-minutes", type=float, default=3.0, help="Built-in datasets.")
    parser.add_argument("--variant-budget-minutes", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    os.environ["RECSYS_HOME"] = tempfile.mkdtemp(prefix="bench_tuning_")
    rows = []
    for name in args.datasets.split(","):
        dataset = load(name)
        budget = args.budget_minutes if name in PRESETS else args.variant_budget_minutes
        start = time.perf_counter()
        config = TuneConfig(models=MODELS, budget_minutes=budget, seed=args.seed, k=args.k)
        result, _ = tune_dataset(dataset, config, save=False)
        tuning_seconds = time.perf_counter() - start
        sets: dict[str, Preset] = {
            "library": library_defaults(),
            # scaled to the training part, as evaluate does
            "scaled": scaled_defaults(training_part(dataset.events, config)[0]),
        }
        if dataset.name in PRESETS:
            sets["preset"] = preset_for(dataset.name)
        sets["tuned"] = result.preset
        scores = {label: test_ndcg(dataset, preset, args.k) for label, preset in sets.items()}
        for model in MODELS:
            rows.append(
                {
                    "dataset": dataset.name,
                    "model": model,
                    "popularity": scores["library"]["popularity"],
                    **{label: s[model] for label, s in scores.items()},
                    "trials": sum(1 for t in result.trials if t.model == model),
                    "tuning_s": tuning_seconds,
                    "filter_seen": result.preset.filter_seen,
                }
            )
        print(f"{dataset.name}: tuned in {tuning_seconds:.0f} s; {scores}", flush=True)
    print()
    head = "| dataset | model | popularity | library defaults | scaled defaults | preset | tuned "
    print(head + "| trials | tuning s |")
    print("|" + "---|" * 9)
    for r in rows:
        preset = f"{r['preset']:.4f}" if "preset" in r else "-"
        print(
            f"| {r['dataset']} | {r['model']} | {r['popularity']:.4f} | {r['library']:.4f} | "
            f"{r['scaled']:.4f} | {preset} | {r['tuned']:.4f} | {r['trials']} | "
            f"{r['tuning_s']:.0f} |"
        )


if __name__ == "__main__":
    main()
