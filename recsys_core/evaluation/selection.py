"""The one table that answers the seed's question — which model, and why — as data.

For each model: its quality (NDCG@k, the mean with min and max over folds, or the 95 %
bootstrap interval with one fold), train time, memory while training, answer latency per
shopper, size on disk and what it can explain; and the lab's recommendation in one sentence.
The reports and the Model lab draw it; nothing here renders.

The recommendation: the model with the best mean NDCG@k, unless a model that trains faster
is not clearly behind it — paired: it matches or beats the best in at least one fold, or
(one fold) the paired-bootstrap interval of their difference includes 0 — in which case the
faster one is recommended and the sentence says so.
"""

from __future__ import annotations

from typing import Any

from recsys_core.evaluation.result import EvaluationResult
from recsys_core.models.registry import spec


def selection_table(result: EvaluationResult) -> dict[str, Any]:
    """``{"metric", "rows": [...], "recommendation", "memory"}`` for ``result``."""
    metric = f"ndcg@{result.k}"
    test_users = max(int(result.split.get("test_users") or 0), 1)
    rows: list[dict[str, Any]] = []
    for name, res in result.models.items():
        spread = (result.summary.get(name) or {}).get(metric)
        if spread:
            mean, low, high, basis = spread["mean"], spread["min"], spread["max"], "folds"
            fit = (result.summary[name].get("fit_seconds") or {}).get("mean", res.fit_seconds)
            memory = (result.summary[name].get("fit_memory_mb") or {}).get(
                "mean", res.fit_memory_mb
            )
        else:
            mean = res.metrics.get(metric, float("nan"))
            low, high = (res.ci95.get(metric) or [mean, mean])[:2]
            basis, fit, memory = "95% interval", res.fit_seconds, res.fit_memory_mb
        rows.append(
            {
                "model": name,
                metric: mean,
                "low": low,
                "high": high,
                "spread": basis,
                "train_seconds": fit,
                "ms_per_shopper": 1000.0 * res.recommend_seconds / test_users,
                "size_mb": res.model_mb,
                "train_memory_mb": memory,
                "explains": spec(name).explains,
            }
        )
    best = max(rows, key=lambda r: r[metric])["model"] if rows else None
    return {
        "metric": metric,
        "rows": rows,
        "recommendation": recommend(rows, metric, _not_clearly_behind(result, best, metric)),
        "memory": (
            "train_memory_mb: peak growth of the process's resident memory while the model "
            "trained (sampled every 20 ms; mean over folds); size_mb: the saved model on disk"
        ),
    }


def _not_clearly_behind(result: EvaluationResult, best: str | None, metric: str) -> set[str]:
    """Models the best does not clearly beat (paired over folds or over test shoppers)."""
    if best is None:
        return set()
    if result.folds:
        return {
            name
            for fold in result.folds
            for name, metrics in fold["models"].items()
            if name != best
            and (metrics.get(metric) or 0.0) >= (fold["models"].get(best, {}).get(metric) or 0.0)
        }
    differences = result.comparisons.get("differences") or {}
    close = set()
    for name in result.models:
        pair = differences.get(f"{best}-{name}") or differences.get(f"{name}-{best}") or {}
        interval = (pair.get(metric) or {}).get("ci95")
        if interval and min(interval) <= 0 <= max(interval):
            close.add(name)
    return close


def recommend(
    rows: list[dict[str, Any]], metric: str, close_to_best: set[str] | None = None
) -> str:
    """One sentence: the model to use and why.

    ``close_to_best``: models the best does not clearly beat (paired); ``None`` falls back
    to overlapping spreads.
    """
    if not rows:
        return "no model ran"
    best = max(rows, key=lambda r: r[metric])

    def is_close(r: dict[str, Any]) -> bool:
        if close_to_best is not None:
            return r["model"] in close_to_best
        return bool(r["high"] >= best["low"])

    faster = [
        r
        for r in rows
        if r is not best and is_close(r) and r["train_seconds"] < best["train_seconds"]
    ]
    if faster:
        pick = min(faster, key=lambda r: r["train_seconds"])
        return (
            f"{pick['model']}: its {metric} ({pick[metric]:.4f}) is not clearly behind the best, "
            f"{best['model']} ({best[metric]:.4f}, {best['spread']}), and it trains in "
            f"{pick['train_seconds']:.1f} s instead of {best['train_seconds']:.1f} s"
        )
    runner_up = max((r for r in rows if r is not best), key=lambda r: r[metric], default=None)
    versus = (
        f" ahead of {runner_up['model']} ({runner_up[metric]:.4f}) in every fold or beyond the "
        "paired interval"
        if runner_up is not None
        else ""
    )
    return (
        f"{best['model']}: the best {metric} ({best[metric]:.4f}),{versus}; it trains in "
        f"{best['train_seconds']:.1f} s and explains with {best['explains']}"
    )
