"""Paired-bootstrap intervals over test shoppers, and the ranker's ratio to the best
single-stage model (that model chosen on a validation window, never on the test window)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from recsys_core.evaluation.config import SINGLE_STAGE_MODELS
from recsys_core.evaluation.result import ModelResult
from recsys_core.metrics import UserBootstrap, percentile_interval
from recsys_core.models.registry import purchase_model


def bootstrap_intervals(
    results: Mapping[str, ModelResult],
    k: int,
    users: pd.Index,
    *,
    n_resamples: int = 1000,
    seed: int = 42,
    best_single_stage: str | None = None,
    chosen_on: str | None = None,
) -> dict[str, Any]:
    """Fill each result's ``ci95`` and return the paired model comparisons.

    One seeded :class:`~recsys_core.metrics.UserBootstrap` over the test users serves every
    model and metric, so the same resamples are shared: the interval of a difference or a
    ratio between two models comes from the per-resample differences (a paired bootstrap).

    Every metric that is a mean over test shoppers gets an interval (and
    ``revenue_total@k``, their sum). ``coverage@k`` does not: it counts distinct items over
    all lists, and a resample holds only about 63 % of the distinct shoppers, so its
    bootstrap distribution lies below the estimate and a percentile interval would not
    contain it.

    Returns
    -------
    dict
        ``"method"`` (text), ``"differences"``: ``{"a-b": {metric: {"difference",
        "ci95"}}}`` for every pair of models, and ``"ranker_vs_best_single_stage"``:
        ``{"best_single_stage", "metric", "ratio", "ci95", "difference",
        "difference_ci95", "chosen_on"}`` when the ranker and a single-stage model ran.
        ``best_single_stage`` is the model chosen on the validation window (``chosen_on``
        says which); ``None`` falls back to the best point estimate on this test window,
        and the output says so.
    """
    boot = UserBootstrap(len(users), n_resamples=n_resamples, seed=seed)
    samples: dict[str, dict[str, np.ndarray]] = {}
    for name, res in results.items():
        frame = res.per_user.reindex(users)
        means = boot.means(frame)
        own = {col: means[:, j] for j, col in enumerate(frame.columns)}
        if f"revenue@{k}" in own:
            own[f"revenue_total@{k}"] = own[f"revenue@{k}"] * len(users)
        samples[name] = own
        res.ci95 = {
            metric: percentile_interval(values)
            for metric, values in own.items()
            if metric in res.metrics
        }
    differences: dict[str, Any] = {}
    names = list(results)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = [m for m in samples[a] if m in samples[b] and m in results[a].metrics]
            differences[f"{a}-{b}"] = {
                m: {
                    "difference": results[a].metrics[m] - results[b].metrics[m],
                    "ci95": percentile_interval(samples[a][m] - samples[b][m]),
                }
                for m in shared
            }
    out: dict[str, Any] = {
        "method": (
            f"percentile bootstrap over the {len(users):,} test shoppers, {n_resamples} "
            f"resamples (seed {seed}), the same resamples for every model (paired); "
            "coverage has no interval (a resample holds about 63 % of the distinct shoppers, "
            "so resampled coverage is biased low)"
        ),
        "differences": differences,
    }
    singles = [n for n in names if n in SINGLE_STAGE_MODELS]
    metric = f"ndcg@{k}"
    purchase = purchase_model()
    if purchase in results and singles:
        if best_single_stage in singles:
            best = str(best_single_stage)
            how = chosen_on or "chosen on a validation window before the test window"
        else:
            best = max(singles, key=lambda n: results[n].metrics[metric])
            how = (
                "chosen by its point estimate on this test window (no validation choice was "
                "available): the ratio is optimistic"
            )
        test_best = max(singles, key=lambda n: results[n].metrics[metric])
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = samples[purchase][metric] / samples[best][metric]
        point_best = results[best].metrics[metric]
        point = results[purchase].metrics[metric]
        out["ranker_vs_best_single_stage"] = {
            "best_single_stage": best,
            "metric": metric,
            "ratio": point / point_best if point_best else float("nan"),
            "ci95": percentile_interval(ratio),
            "difference": point - point_best,
            "difference_ci95": percentile_interval(
                samples[purchase][metric] - samples[best][metric]
            ),
            "chosen_on": how,
            "best_on_test_window": test_best,
        }
    return out
