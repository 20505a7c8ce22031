"""The runner: models x folds -> one :class:`~recsys_core.evaluation.result.EvaluationResult`.

With one fold (the default) the result is the one split's. With ``folds = N`` the log is cut
into N consecutive test windows (:func:`recsys_core.split.rolling_origin_splits`); every
fold is evaluated the same way, the top-level result is the last (most recent) fold's, and
``folds`` / ``summary`` hold every fold and the mean, min and max over them.

Every choice is made before the test window it is measured on: the "best single-stage
model" of the ranker's ratio is the best on the validation window just before each test
window (the previous fold's test window, or, for the first fold, the same length cut from
its training part); tuned settings whose window reaches the test window are ignored
(:func:`recsys_core.tuning.settings_for`'s ``test_cutoff``).

Folds share the ranker's work that is the same computation: each training window's rows
and the stage fitted at the previous fold's cutoff are built once per run
(:mod:`recsys_core.ranking.window_cache`); every figure is what fresh builds give.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from recsys_core.data.schema import Dataset
from recsys_core.errors import ConfigError, DataValidationError
from recsys_core.evaluation.config import (
    ALL_MODELS,
    OPTIONAL_MODELS,
    SINGLE_STAGE_MODELS,
    EvaluationConfig,
    ProgressCallback,
    no_progress,
)
from recsys_core.evaluation.fold import evaluate_split
from recsys_core.evaluation.protocol import fold_splits
from recsys_core.evaluation.result import EvaluationResult, fold_entry, fold_label, fold_summary
from recsys_core.evaluation.selection import selection_table
from recsys_core.models.registry import ALS_SPARK, purchase_model
from recsys_core.provenance import data_checksum
from recsys_core.ranking.config import RANKER_DEFAULTS_CHOSEN_ON, ranker_defaults_note
from recsys_core.ranking.window_cache import WindowCache, using_window_cache
from recsys_core.split import Split, temporal_split


def evaluate(
    dataset: Dataset,
    config: EvaluationConfig | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> EvaluationResult:
    """Fit every configured model on each fold and measure it.

    Parameters
    ----------
    dataset:
        The event log and catalog.
    config:
        Models, ``k``, split, folds and hyperparameters; defaults to
        :class:`~recsys_core.evaluation.config.EvaluationConfig`.
    progress:
        Called with a message and the fraction done, for progress bars.

    Raises
    ------
    ConfigError
        Unknown model names.
    DataValidationError
        A log that leaves no test users, or a fold that cannot be cut.
    """
    config = config or EvaluationConfig()
    report = progress or no_progress
    unknown = [m for m in config.models if m not in (*ALL_MODELS, *OPTIONAL_MODELS)]
    if unknown:
        raise ConfigError(
            f"unknown model(s) {unknown}; choose from {[*ALL_MODELS, *OPTIONAL_MODELS]}"
        )
    if ALS_SPARK in config.models:
        from recsys_core.models.als_spark import require_spark

        require_spark()  # say what to install before any work is done

    report("splitting the log", 0.0)
    splits, relevant_events = fold_splits(dataset.events, config)
    checksum = data_checksum(dataset.events)
    n = len(splits)
    results: list[EvaluationResult] = []
    # the ranker's training windows of one fold are (mostly) the next fold's: built once
    cache = WindowCache() if n > 1 and purchase_model() in config.models else None
    for f, split in enumerate(splits):

        def fold_progress(message: str, fraction: float, f: int = f) -> None:
            prefix = f"fold {f + 1}/{n}: " if n > 1 else ""
            report(prefix + message, (f + fraction) / n)

        best, chosen_on = None, None
        if config.choose_on_validation and _needs_choice(config):
            previous = results[-1] if results else None
            best, chosen_on = _best_on_validation(
                dataset, config, split, relevant_events, previous, checksum, fold_progress
            )
        if cache is not None:
            cache.store = f < n - 1  # the last fold keeps nothing for later
        with using_window_cache(cache):
            results.append(
                evaluate_split(
                    dataset,
                    config,
                    split,
                    relevant_events,
                    checksum=checksum,
                    progress=fold_progress,
                    best_single_stage=best,
                    chosen_on=chosen_on,
                )
            )
        if f < n - 1:
            for res in results[-1].models.values():  # keep the metrics, free the models
                res.model = None
                res.recommendations = res.recommendations.iloc[0:0]
    if cache is not None:
        cache.clear()
    report("done", 1.0)
    main = results[-1]
    if n > 1:
        main.folds = [fold_entry(r) for r in results]
        main.summary = fold_summary(main.folds)
        ratios = [
            fold["ranker_vs_best_single_stage"]["ratio"]
            for fold in main.folds
            if fold.get("ranker_vs_best_single_stage")
        ]
        if ratios:
            main.comparisons["ranker_vs_best_single_stage_over_folds"] = {
                "ratios": ratios,
                "mean": sum(ratios) / len(ratios),
                "min": min(ratios),
                "max": max(ratios),
                "best_in_every_fold": all(r > 1 for r in ratios),
            }
        if purchase_model() in config.models:
            main.notes.extend(note_optimistic_ranker_folds(dataset.name, main.folds))
        main.notes.append(
            f"{n} rolling-origin folds of {config.test_days:g} days"
            if main.split.get("method") == "temporal"
            else f"{n} seeded random hold-outs"
        )
    main.selection = selection_table(main)
    return main


def note_optimistic_ranker_folds(dataset: str, folds: list[dict[str, Any]]) -> list[str]:
    """Mark each fold whose test window starts before the window the ranker's defaults were
    checked on ends (``fold["ranker_defaults"]``), and return one note naming them (the
    per-fold notes of earlier folds are not kept in the result)."""
    late = []
    for fold in folds:
        note = ranker_defaults_note(dataset, fold.get("cutoff"))
        if note is not None:
            fold["ranker_defaults"] = note
            late.append(fold_label(fold))
    if not late:
        return []
    window = RANKER_DEFAULTS_CHOSEN_ON
    return [
        f"the ranker's defaults were checked on {window['dataset']}'s validation window "
        f"{window['start']} .. {window['end']}, which reaches the test windows from "
        f"{', '.join(late)}: the ranker's figures (and ratios) in those folds are optimistic"
    ]


def _needs_choice(config: EvaluationConfig) -> bool:
    singles = [m for m in config.models if m in SINGLE_STAGE_MODELS]
    return purchase_model() in config.models and bool(singles)


def _best_on_validation(
    dataset: Dataset,
    config: EvaluationConfig,
    split: Split,
    relevant_events: tuple[str, ...],
    previous: EvaluationResult | None,
    checksum: str,
    progress: ProgressCallback,
) -> tuple[str | None, str | None]:
    """The single-stage model with the best NDCG@k on the window before ``split``'s test
    window, and a sentence saying which window that was (``None`` when none can be cut)."""
    metric = f"ndcg@{config.k}"
    singles = [m for m in config.models if m in SINGLE_STAGE_MODELS]
    if previous is not None and previous.split.get("cutoff") is not None:
        scores = {m: previous.models[m].metrics[metric] for m in singles if m in previous.models}
        where = (
            f"chosen on the previous fold's test window (from {previous.split['cutoff']}), "
            "before this test window"
        )
    else:
        validation = _validation_split(split, config, relevant_events)
        if validation is None:
            return None, None
        progress("choosing the best single-stage model on the validation window", 0.0)
        light = config.model_copy(
            update={"models": singles, "bootstrap_resamples": 0, "new_items_variant": False}
        )
        try:
            checked = evaluate_split(
                dataset,
                light,
                validation,
                relevant_events,
                checksum=checksum,
                progress=lambda _m, _f: None,
                light=True,
            )
        except DataValidationError:
            return None, None
        scores = {m: r.metrics[metric] for m, r in checked.models.items()}
        where = (
            f"chosen on the validation window {pd.Timestamp(validation.cutoff).date()} .. "
            f"{split.cutoff.date() if split.cutoff is not None else 'cutoff'} "
            f"({config.test_days:g} days before the test window, trained on what precedes it)"
        )
    if not scores:
        return None, None
    best = max(scores, key=lambda m: scores[m])
    return best, f"{where}: {best} NDCG {scores[best]:.4f}"


def _validation_split(
    split: Split, config: EvaluationConfig, relevant_events: tuple[str, ...]
) -> Split | None:
    """The window of ``test_days`` just before ``split``'s test window (temporal only)."""
    if split.cutoff is None:
        return None
    start = split.cutoff - pd.Timedelta(days=config.test_days)
    try:
        return temporal_split(
            split.train,
            test_days=config.test_days,
            cutoff=start,
            test_events=relevant_events,
        )
    except DataValidationError:
        return None
