"""The result object of ``evaluate``: per-model results, folds and their summary, its JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class ModelResult:
    """Everything measured for one model."""

    name: str
    metrics: dict[str, float]
    fit_seconds: float
    recommend_seconds: float
    model_mb: float
    params: dict[str, Any]
    per_user: pd.DataFrame
    recommendations: pd.DataFrame
    new_items_metrics: dict[str, float] = field(default_factory=dict)
    #: Peak growth of the resident set while the model trained, MB (NaN: not measured;
    #: :mod:`recsys_core.evaluation.memory`).
    fit_memory_mb: float = float("nan")
    #: 95 % bootstrap interval ``[low, high]`` of each metric (over test shoppers).
    ci95: dict[str, list[float]] = field(default_factory=dict)
    #: The fitted model (kept so reports and the app can explain it without refitting).
    model: Any = field(default=None, repr=False)


@dataclass
class EvaluationResult:
    """The outcome of :func:`evaluate`: per-model and per-user metrics plus provenance."""

    dataset: str
    k: int
    split: dict[str, Any]
    models: dict[str, ModelResult]
    classifier: dict[str, float] | None = None
    #: Reliability table of the purchase probabilities, 10 equal-width bins.
    reliability: pd.DataFrame | None = None
    #: The same with 10 equal-mass (quantile) bins.
    reliability_quantile: pd.DataFrame | None = None
    overlap: dict[str, float] = field(default_factory=dict)
    #: The shopper-level order model (does the shopper order at all in the test period).
    order_classifier: dict[str, float] | None = None
    #: Metrics by shopper segment (recsys_core.segments.evaluation_segments).
    segments: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Models that could not run on this log and why (e.g. the ranker without timestamps).
    skipped: dict[str, str] = field(default_factory=dict)
    #: Paired-bootstrap model comparisons (:mod:`recsys_core.evaluation.intervals`).
    comparisons: dict[str, Any] = field(default_factory=dict)
    #: Order x purchase probability over every known shopper's served list (or why not).
    overall_probability: dict[str, Any] | None = None
    #: With ``--folds N`` (N > 1): one entry per fold, oldest first (``cutoff``, ``models``,
    #: ...); the top-level models, split and comparisons are the last fold's.
    folds: list[dict[str, Any]] = field(default_factory=list)
    #: With folds: ``{model: {metric: {"mean", "min", "max"}}}`` over the folds.
    summary: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    #: The one-table answer: quality, cost and explanations per model, and the lab's
    #: recommendation (:func:`recsys_core.evaluation.selection.selection_table`).
    selection: dict[str, Any] | None = None

    def metrics_table(self) -> pd.DataFrame:
        """One row per model: every metric, fit and recommend time and model size."""
        rows = []
        for name, res in self.models.items():
            row: dict[str, Any] = {"model": name, **res.metrics}
            row["fit_seconds"] = res.fit_seconds
            row["recommend_seconds"] = res.recommend_seconds
            row["model_mb"] = res.model_mb
            row["fit_memory_mb"] = res.fit_memory_mb
            rows.append(row)
        return pd.DataFrame(rows).set_index("model")

    def to_json(self) -> dict[str, Any]:
        """The JSON of ``evaluate --json`` (DESIGN.md), with a few extra keys."""
        models: dict[str, Any] = {}
        for name, res in self.models.items():
            entry: dict[str, Any] = dict(res.metrics)
            entry["fit_seconds"] = round(res.fit_seconds, 4)
            entry["recommend_seconds"] = round(res.recommend_seconds, 4)
            entry["model_mb"] = round(res.model_mb, 4)
            entry["fit_memory_mb"] = round(res.fit_memory_mb, 1)
            entry["params"] = res.params
            if res.new_items_metrics:
                entry["new_items_only"] = res.new_items_metrics
            if res.ci95:
                entry["ci95"] = res.ci95
            models[name] = entry
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "k": self.k,
            "split": self.split,
            "models": models,
            "skipped": dict(self.skipped),
            "comparisons": self.comparisons,
            "classifier": self.classifier,
            "order_classifier": self.order_classifier,
            "overall_probability": self.overall_probability,
            "selection": self.selection,
            "segments": self.segments,
            "overlap": self.overlap,
            "config": self.config,
            "provenance": self.provenance,
            "notes": self.notes,
        }
        if self.folds:
            out["folds"] = self.folds
            out["summary"] = self.summary
        if self.reliability is not None:
            out["reliability"] = self.reliability.to_dict(orient="records")
        if self.reliability_quantile is not None:
            out["reliability_quantile"] = self.reliability_quantile.to_dict(orient="records")
        return json_safe(out)

    def dumps(self) -> str:
        """Strict JSON text (NaN becomes null)."""
        return json.dumps(self.to_json(), indent=2)


def json_safe(value: Any) -> Any:
    """Replace NaN/inf with None and numpy scalars with Python ones, recursively."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def fold_entry(result: EvaluationResult) -> dict[str, Any]:
    """One fold of ``folds``: its cutoff, test shoppers, model metrics and ratio."""
    return json_safe(
        {
            "cutoff": result.split.get("cutoff"),
            "method": result.split.get("method"),
            "seed": result.split.get("seed"),
            "test_users": result.split.get("test_users"),
            "models": {
                name: {
                    **res.metrics,
                    "fit_seconds": round(res.fit_seconds, 4),
                    "fit_memory_mb": round(res.fit_memory_mb, 1),
                }
                for name, res in result.models.items()
            },
            "skipped": dict(result.skipped),
            "ranker_vs_best_single_stage": result.comparisons.get("ranker_vs_best_single_stage"),
            "overall_probability": result.overall_probability,
        }
    )


def fold_label(fold: dict[str, Any]) -> str:
    """How a fold is named in tables and charts: its test window's start date, or its seed."""
    if fold.get("cutoff"):
        return str(fold["cutoff"])[:10]
    return f"seed {fold.get('seed')}"


def fold_summary(folds: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{model: {metric: {"mean", "min", "max", "folds"}}}`` over the folds a model ran in."""
    values: dict[str, dict[str, list[float]]] = {}
    for fold in folds:
        for name, metrics in fold["models"].items():
            for metric, value in metrics.items():
                if isinstance(value, int | float) and value is not None:
                    values.setdefault(name, {}).setdefault(metric, []).append(float(value))
    return {
        name: {
            metric: {
                "mean": float(np.mean(vals)),
                "min": float(np.min(vals)),
                "max": float(np.max(vals)),
                "folds": len(vals),
            }
            for metric, vals in metrics.items()
        }
        for name, metrics in values.items()
    }
