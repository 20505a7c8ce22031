"""Evaluation figures under each repeat rule on a seeded demo store (a before/after check).

Run it on two commits and compare the JSON: the list policy (``recsys_core.policy``) must not
move evaluation's figures where nothing asked for a change.

    python bench/bench_policy_eval.py out.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys_core.data.demo_store import generate_demo_store  # noqa: E402
from recsys_core.data.schema import Dataset  # noqa: E402
from recsys_core.evaluation import EvaluationConfig, evaluate  # noqa: E402

VARIANTS = {
    "default": {},
    "filter_bought": {"filter_bought": True},
    "filter_seen": {"filter_seen": True},
    "keep": {"filter_bought": False},
}


def main(out: str) -> None:
    events, catalog = generate_demo_store(n_users=800, n_items=300, n_events=60_000, seed=4)
    dataset = Dataset("demo-cmp", events, catalog, source="bench_policy_eval")
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for label, extra in VARIANTS.items():
        config = EvaluationConfig(
            models=["popularity", "itemknn", "bpr", "als"], new_items_variant=True, **extra
        )
        result = evaluate(dataset, config)
        figures[label] = {
            name: {
                key: round(value, 6)
                for key, value in model.metrics.items()
                if isinstance(value, float) and "seconds" not in key and "mb" not in key
            }
            for name, model in result.models.items()
        }
        print(label, {name: m["ndcg@10"] for name, m in figures[label].items()})
    Path(out).write_text(json.dumps(figures, indent=1, sort_keys=True), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "policy_eval.json")
