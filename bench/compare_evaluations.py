"""Compare two ``evaluate --json`` outputs figure by figure (timings and memory left out).

    python bench/compare_evaluations.py before.json after.json [--decimals 4]

Prints every fold's NDCG@k per model side by side and every figure that differs when
rounded to ``--decimals``; exits 1 when any does. Used to show that a speed change leaves
every figure of a (multi-fold) evaluation unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: Keys that measure the machine, not the models.
MEASURED = {
    "fit_seconds",
    "recommend_seconds",
    "fit_memory_mb",
    "model_mb",
    "created",
    "train_seconds",
    "latency_ms",
}
#: Top-level parts compared.
PARTS = (
    "models",
    "folds",
    "summary",
    "comparisons",
    "classifier",
    "order_classifier",
    "overall_probability",
    "segments",
    "overlap",
)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b.0.c": leaf}`` of a JSON value, without :data:`MEASURED` keys."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key not in MEASURED:
                out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}.{i}"))
        return out
    return {prefix: value}


def same(a: Any, b: Any, decimals: int) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return round(a, decimals) == round(b, decimals) or (a != a and b != b)
    return bool(a == b)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--decimals", type=int, default=4)
    args = parser.parse_args()
    before = json.loads(args.before.read_text())
    after = json.loads(args.after.read_text())
    k = before.get("k", 10)
    for i, (fb, fa) in enumerate(
        zip(before.get("folds", []), after.get("folds", []), strict=False)
    ):
        key = f"ndcg@{k}"
        nan = float("nan")
        row = ", ".join(
            f"{m} {fb['models'][m][key]:.4f}/{fa['models'].get(m, {}).get(key, nan):.4f}"
            for m in fb["models"]
        )
        print(f"fold {i + 1} ({str(fb.get('cutoff'))[:10]}) NDCG@{k} before/after: {row}")
    differ = 0
    compared = 0
    for part in PARTS:
        a, b = flatten(before.get(part)), flatten(after.get(part))
        for key in sorted(set(a) | set(b)):
            if "time" in key or "seconds" in key or key.endswith("_mb"):
                continue
            compared += 1
            if not same(a.get(key), b.get(key), args.decimals):
                differ += 1
                print(f"DIFFERS {part}.{key}: {a.get(key)!r} -> {b.get(key)!r}")
    print(f"{compared} figures compared at {args.decimals} decimals, {differ} differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
