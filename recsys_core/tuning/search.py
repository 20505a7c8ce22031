"""The search behind ``python -m recsys_core tune``: optuna TPE on a validation window.

Protocol
--------
1. The log is split exactly as ``evaluate`` splits it (:func:`training_part`); only the
   training part is handed on. The test period is never read.
2. A validation window is cut from that training part (:func:`validation_split`): the last
   ``validation_days`` before the test cutoff (temporal), or — without timestamps — a seeded
   per-user hold-out of the training events.
3. Per model (ALS, item-kNN, BPR), an optuna study (TPE sampler, seeded) proposes event
   weights and the model's hyperparameters; each trial fits on the validation window's
   training part and is scored by NDCG@k of its lists for the validation shoppers, with and
   without the items they already bought (purchases only, the filter ``evaluate`` applies:
   :func:`recsys_core.policy.recommend_with_policy`; the better one decides the repeat
   default). The
   first trial is always the scaled defaults (and the built-in preset, if any), so the
   chosen settings are never worse on validation than those.
4. ALS is fitted in stages of 5 iterations; after each stage the trial reports its NDCG and
   the median pruner stops trials that trail the others' median at that stage.
5. The budget is shared between the models (ALS half, BPR 30 %, item-kNN 20 %, time a model
   leaves unused goes to the next); a trial is not started when the longest trial of that
   model so far would overrun the model's share.

The chosen settings come back as a :class:`~recsys_core.presets.Preset` that
:func:`tune_dataset` saves (:mod:`recsys_core.tuning.settings`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from pydantic import Field

from recsys_core.columns import Columns
from recsys_core.configs import SplitConfig
from recsys_core.data.schema import Dataset
from recsys_core.errors import ConfigError, DataValidationError
from recsys_core.evaluation import json_safe, relevant_items
from recsys_core.interactions import EventWeights, InteractionMatrix
from recsys_core.metrics import per_user_ranking_metrics, ranking_metrics
from recsys_core.models import MODEL_REGISTRY, Recommender
from recsys_core.models.adapters import single_threaded_blas
from recsys_core.models.registry import SearchSpace, cold_start_model, spec, tunable_models
from recsys_core.policy import ListContext, ListPolicy, Repeats, recommend_with_policy
from recsys_core.presets import PRESETS, Preset, preset_for
from recsys_core.provenance import data_checksum
from recsys_core.repeats import bought_pairs, repeat_profile
from recsys_core.split import Split, random_split, split_events, temporal_split
from recsys_core.tuning.defaults import scaled_defaults
from recsys_core.tuning.guard import keep_only_real_gains
from recsys_core.tuning.results import (  # noqa: F401 - re-exported
    TrialRecord,
    TuneProgress,
    TuneResult,
    TuneStatus,
    _no_progress,
    _short,
    _window_of,
)
from recsys_core.tuning.settings import TunedSettings, save_tuned

#: Models the search knows, in the order it tunes them (those with a registered search space).
TUNABLE_MODELS: tuple[str, ...] = tunable_models()
#: Share of the budget each model gets (renormalised over the models asked for).
BUDGET_SHARE: dict[str, float] = {
    m: space.budget_share for m in TUNABLE_MODELS if (space := spec(m).search_space) is not None
}


def _space(model: str) -> SearchSpace:
    """The registered search space of ``model`` (ConfigError when it has none)."""
    space = spec(model).search_space
    if space is None:
        raise ConfigError(f"the {model!r} model has no tuning search space")
    return space


_EVENT_KEYS = ("view", "cart", "favorite")


class TuneConfig(SplitConfig):
    """Settings of one search."""

    models: list[str] = Field(
        default_factory=lambda: list(TUNABLE_MODELS),
        description="Models to tune: als, itemknn, bpr.",
    )
    budget_minutes: float = Field(5.0, gt=0, description="Wall-clock budget of the search.")
    trials: int | None = Field(
        None, ge=1, description="At most this many trials per model (default: the budget)."
    )
    k: int = Field(10, ge=1, le=200, description="List length NDCG is measured at.")
    validation_days: float = Field(
        30, gt=0, description="Length of the validation window before the test cutoff."
    )


# --------------------------------------------------------------------------- data the tuner sees


def training_part(events: pd.DataFrame, config: TuneConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The training part of the split ``evaluate`` makes, and how it was cut.

    Only this part is handed to the search; the test part is not touched here either (no
    counts of it are taken).
    """
    split = split_events(
        events,
        test_days=config.test_days,
        cutoff=config.cutoff,
        test_events=tuple(config.relevant_events),
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    info: dict[str, Any] = {"method": split.method}
    if split.cutoff is not None:
        info["test_cutoff"] = str(split.cutoff)
    return split.train, info


def validation_split(train: pd.DataFrame, config: TuneConfig) -> Split:
    """The validation window cut from the training part (see the module docstring)."""
    if Columns.TIMESTAMP in train.columns:
        return temporal_split(
            train, test_days=config.validation_days, test_events=tuple(config.relevant_events)
        )
    return random_split(train, test_fraction=config.test_fraction, seed=config.seed)


@dataclass
class _Validation:
    """The validation window, prepared once: users, relevant pairs, matrices."""

    split: Split
    relevant: pd.DataFrame
    users: list[str]
    k: int
    bought: pd.DataFrame
    bought_is_seen: bool
    #: Shoppers never come back to an item (the repeat rule's "seen"): the filtered lists
    #: leave out every seen item, as evaluate's do.
    removes_seen: bool = False
    _matrices: dict[EventWeights, InteractionMatrix] = field(default_factory=dict)

    def matrix(self, weights: EventWeights) -> InteractionMatrix:
        if weights not in self._matrices:
            if len(self._matrices) > 8:
                self._matrices.clear()
            # the same events give the same id maps whatever the weights: build them once
            built = next(iter(self._matrices.values()), None)
            maps = {} if built is None else {"users": built.users, "items": built.items}
            self._matrices[weights] = InteractionMatrix.from_events(
                self.split.train, weights, **maps
            )
        return self._matrices[weights]

    def ndcg(self, reco: pd.DataFrame) -> float:
        return float(ranking_metrics(reco, self.relevant, self.k)[f"ndcg@{self.k}"])

    def per_user(self, model: Recommender, setting: _Best) -> np.ndarray:
        """NDCG@k of each validation shopper (same repeat rule as the setting's score)."""
        reco = self.filtered_lists(model) if setting.filter_seen else self.lists(model, "keep")
        column = per_user_ranking_metrics(reco, self.relevant, self.k)[f"ndcg@{self.k}"]
        return column.reindex(self.users).fillna(0.0).to_numpy(dtype=np.float64)

    def lists(self, model: Recommender, repeats: Repeats) -> pd.DataFrame:
        """The validation lists under the list policy ``repeats`` (the one policy function)."""
        context = ListContext(bought=None if self.bought_is_seen else self.bought)
        return recommend_with_policy(model, self.users, self.k, ListPolicy(repeats), context)

    def filtered_lists(self, model: Recommender) -> pd.DataFrame:
        """Lists without already-bought items (every seen item when shoppers never return)."""
        return self.lists(model, "leave-out-seen" if self.removes_seen else "leave-out-bought")

    def score(self, model: Recommender) -> tuple[float, bool]:
        """NDCG of the lists with and without the items the shopper already bought (what
        ``evaluate``'s repeat rule does); the better one, and whether filtering won."""
        keep = self.ndcg(self.lists(model, "keep"))
        filtered = self.ndcg(self.filtered_lists(model))
        return (filtered, True) if filtered > keep else (keep, False)


def _prepare(train: pd.DataFrame, config: TuneConfig) -> _Validation:
    split = validation_split(train, config)
    relevant = relevant_items(split, config.relevant_events)
    users = [str(u) for u in pd.unique(relevant[Columns.USER])]
    if not users:
        raise DataValidationError(
            "the validation window before the test period has no shoppers with history and a "
            f"{'/'.join(config.relevant_events)}; use a longer log or a shorter "
            "--validation-days"
        )
    bought = bought_pairs(split.train)
    seen = split.train[[Columns.USER, Columns.ITEM]].drop_duplicates()
    removes_seen = repeat_profile(split.train).removes == "seen"
    return _Validation(
        split, relevant, users, config.k, bought, len(bought) == len(seen), removes_seen
    )


# --------------------------------------------------------------------------- search spaces


def _present_events(train: pd.DataFrame) -> list[str]:
    counts = train[Columns.EVENT].value_counts()
    return [e for e in _EVENT_KEYS if counts.get(e, 0) > 0]


def _has_quantities(train: pd.DataFrame) -> bool:
    if Columns.QUANTITY not in train.columns:
        return False
    bought = train[(train[Columns.EVENT] == "purchase").to_numpy()]
    return bool(len(bought)) and bool((bought[Columns.QUANTITY].fillna(1) != 1).any())


def _suggest_weights(
    trial: optuna.Trial, events: Sequence[str], quantities: bool, base: EventWeights
) -> EventWeights:
    values: dict[str, Any] = {}
    for event in events:
        values[event] = trial.suggest_float(f"w_{event}", 0.05, 5.0, log=True)
    values["log_scale"] = trial.suggest_categorical("log_scale", [False, True])
    if quantities:
        values["use_quantity"] = trial.suggest_categorical("use_quantity", [False, True])
    return base.model_copy(update=values)


def _enqueued(
    model: str, preset: Preset, events: Sequence[str], quantities: bool
) -> dict[str, Any]:
    """``preset``'s settings for ``model`` as the search's parameter names."""
    weights = preset.model_weights.get(model, preset.weights)
    space = _space(model)
    out: dict[str, Any] = {}
    if space.tunes_weights:
        out.update({f"w_{e}": float(getattr(weights, e)) for e in events})
        out["log_scale"] = weights.log_scale
        if quantities:
            out["use_quantity"] = weights.use_quantity
    params = dict(preset.model_params.get(model, {}))
    params.pop("num_threads", None)
    out.update(space.enqueue(params))
    return out


# --------------------------------------------------------------------------- one trial


def _fit_staged(
    model_name: str,
    stage: int,
    params: dict[str, Any],
    matrix: InteractionMatrix,
    trial: optuna.Trial,
    validation: _Validation,
    seed: int,
) -> tuple[float, bool]:
    """Fit ``stage`` iterations at a time (an implicit factor model such as ALS), report
    NDCG after each stage, prune.

    Continuing implicit's fit from the current factors runs the same sweeps as one fit with
    all the iterations, so the chosen ``iterations`` reproduce the score.
    """
    total = int(params["iterations"])
    stages = [*range(stage, total, stage), total]
    model = MODEL_REGISTRY[model_name](**{**params, "iterations": stages[0], "seed": seed})
    model = model.fit(matrix)
    done = stages[0]
    value, filtered = 0.0, False
    for step in stages:
        if step > done:
            implicit_model: Any = model.model_  # type: ignore[attr-defined]
            implicit_model.iterations = step - done
            with single_threaded_blas():
                implicit_model.fit(model.user_items_, show_progress=False)
            done = step
        value, filtered = validation.score(model)
        trial.report(value, step)
        if step < total and trial.should_prune():
            raise optuna.TrialPruned()
    return value, filtered


def _run_trial(
    model_name: str,
    trial: optuna.Trial,
    validation: _Validation,
    base: Preset,
    events: Sequence[str],
    quantities: bool,
    seed: int,
) -> tuple[float, bool, dict[str, Any], EventWeights]:
    space = _space(model_name)
    if not space.tunes_weights:
        weights = base.model_weights.get(model_name, base.weights)
    else:
        weights = _suggest_weights(trial, events, quantities, base.weights)
    params = space.suggest(trial)
    matrix = validation.matrix(weights)
    if space.staged_iterations is not None:
        value, filtered = _fit_staged(
            model_name, space.staged_iterations, params, matrix, trial, validation, seed
        )
    else:
        model = MODEL_REGISTRY[model_name](**params, seed=seed).fit(matrix)
        value, filtered = validation.score(model)
    return value, filtered, params, weights


# --------------------------------------------------------------------------- the search


@dataclass
class _Best:
    value: float
    filter_seen: bool
    params: dict[str, Any]
    weights: EventWeights


def tune_training_events(
    train: pd.DataFrame,
    config: TuneConfig | None = None,
    *,
    start_from: Sequence[Preset] = (),
    progress: TuneProgress | None = None,
) -> TuneResult:
    """Search settings on a validation window cut from ``train`` (the training part only).

    Parameters
    ----------
    train:
        The events before the test period (see :func:`training_part`); nothing else is read.
    config:
        Models, budget, trials, seed.
    start_from:
        Settings tried first besides the scaled defaults of ``train`` (e.g. a built-in preset).
    progress:
        Called after every trial with a :class:`TuneStatus`.

    Raises
    ------
    ConfigError
        An unknown model name.
    DataValidationError
        The validation window has no shoppers to score.
    """
    config = config or TuneConfig()
    progress = progress or _no_progress
    models = list(dict.fromkeys(config.models))
    unknown = [m for m in models if m not in TUNABLE_MODELS]
    if unknown or not models:
        raise ConfigError(
            f"cannot tune {unknown or 'no models'}; choose from {', '.join(TUNABLE_MODELS)}"
        )
    started = time.perf_counter()
    budget = config.budget_minutes * 60.0
    validation = _prepare(train, config)
    defaults = scaled_defaults(train)
    starts = [defaults, *start_from]
    events = _present_events(validation.split.train)
    quantities = _has_quantities(validation.split.train)
    popularity = MODEL_REGISTRY[cold_start_model()]().fit(validation.matrix(EventWeights()))
    popularity_ndcg, _ = validation.score(popularity)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    records: list[TrialRecord] = []
    best: dict[str, _Best] = {}
    default_ndcg: dict[str, float] = {}
    defaults_of: dict[str, _Best] = {}
    stopped = "every model used its share of the budget"
    if config.trials is not None:
        stopped = f"{config.trials} trials per model or the budget, whichever came first"

    def report(model_name: str, message: str, record: TrialRecord | None = None) -> None:
        """Tell ``progress`` where the search stands (the best score over every model)."""
        name = max(best, key=lambda m: best[m].value) if best else None
        value = best[name].value if name is not None else None
        elapsed = time.perf_counter() - started
        progress(
            TuneStatus(message, model_name, len(records), value, name, elapsed, budget, record)
        )

    for index, model_name in enumerate(models):
        elapsed = time.perf_counter() - started
        shares = [BUDGET_SHARE[m] for m in models[index:]]
        model_deadline = elapsed + (budget - elapsed) * BUDGET_SHARE[model_name] / sum(shares)
        sampler = optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=5)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
        study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
        queued = []
        for preset in starts:
            params = _enqueued(model_name, preset, events, quantities)
            if params not in queued:
                queued.append(params)
                study.enqueue_trial(params, skip_if_exists=True)
        report(model_name, f"tuning {model_name}")
        durations: list[float] = []
        while True:
            now = time.perf_counter() - started
            if config.trials is not None and len(durations) >= config.trials:
                break
            estimate = max(durations) if durations else 0.0
            if durations and now + estimate > model_deadline:
                break
            if not durations and now >= budget:
                break
            trial = study.ask()
            trial_start = time.perf_counter()
            state, score, filtered, note = "complete", None, None, ""
            try:
                score, filtered, params, weights = _run_trial(
                    model_name, trial, validation, defaults, events, quantities, config.seed
                )
                study.tell(trial, score)
                if model_name not in best or score > best[model_name].value:
                    best[model_name] = _Best(score, filtered, params, weights)
                if trial.number == 0:  # the scaled defaults
                    default_ndcg[model_name] = score
                    defaults_of[model_name] = _Best(score, filtered, params, weights)
            except optuna.TrialPruned:
                state = "pruned"
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            except (ValueError, ArithmeticError, MemoryError) as exc:
                state, note = "failed", str(exc)[:200]
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            seconds = time.perf_counter() - trial_start
            durations.append(seconds)
            record = TrialRecord(
                model_name, trial.number, state, score, seconds, filtered, dict(trial.params), note
            )
            records.append(record)
            report(model_name, f"{model_name} trial {trial.number}: {state}", record)

    def per_user_ndcg(model_name: str, setting: _Best) -> np.ndarray:
        model = MODEL_REGISTRY[model_name](**setting.params, seed=config.seed)
        return validation.per_user(model.fit(validation.matrix(setting.weights)), setting)

    guard = keep_only_real_gains(best, defaults_of, per_user_ndcg, seed=config.seed)
    preset = _chosen_preset(defaults, best)
    return TuneResult(
        preset=preset,
        trials=records,
        default_ndcg=default_ndcg,
        best_ndcg={m: b.value for m, b in best.items()},
        popularity_ndcg=popularity_ndcg,
        seconds=time.perf_counter() - started,
        budget_seconds=budget,
        validation=_describe_validation(validation),
        stopped=stopped,
        k=config.k,
        guard=guard,
    )


def _describe_validation(validation: _Validation) -> dict[str, Any]:
    split = validation.split
    out: dict[str, Any] = {
        "method": split.method,
        "users": len(validation.users),
        "train_events": int(len(split.train)),
    }
    if split.cutoff is not None:
        out["cutoff"] = str(split.cutoff)
        out["end"] = str(split.test[Columns.TIMESTAMP].max()) if len(split.test) else None
    return out


def _chosen_preset(defaults: Preset, best: dict[str, _Best]) -> Preset:
    """The scaled defaults with each tuned model's best settings put in."""
    params = {m: dict(p) for m, p in defaults.model_params.items()}
    for name, b in best.items():
        params[name] = dict(b.params)
    # the main weights are the first tuned model's that searches them (ALS's, else
    # item-kNN's); other models keep theirs where they differ
    searched = [m for m in TUNABLE_MODELS if _space(m).tunes_weights]
    main = next((best[m].weights for m in searched if m in best), defaults.weights)
    model_weights = {name: b.weights for name, b in best.items() if b.weights != main}
    filter_seen = defaults.filter_seen
    if best:
        top = max(best, key=lambda m: best[m].value)
        filter_seen = best[top].filter_seen
    return Preset(
        weights=main,
        model_params=params,
        model_weights=model_weights,
        filter_seen=filter_seen,
        source="python -m recsys_core tune (validation window before the test period)",
    )


def tune_dataset(
    dataset: Dataset,
    config: TuneConfig | None = None,
    *,
    progress: TuneProgress | None = None,
    save: bool = True,
) -> tuple[TuneResult, TunedSettings]:
    """Tune on ``dataset``'s training part and (by default) save the result for this data.

    The built-in preset of the dataset, if any, is tried first next to the scaled defaults.
    """
    config = config or TuneConfig()
    checksum = data_checksum(dataset.events)
    train, split_info = training_part(dataset.events, config)
    start_from = [preset_for(dataset.name)] if dataset.name in PRESETS else []
    result = tune_training_events(train, config, start_from=start_from, progress=progress)
    summary = result.summary()
    summary["split"] = split_info
    summary["models"] = list(dict.fromkeys(config.models))
    summary["seed"] = config.seed
    summary["budget_minutes"] = config.budget_minutes
    summary["max_trials"] = config.trials
    tuned = TunedSettings(
        dataset=dataset.name,
        data_sha256=checksum,
        created=result.created,
        preset=result.preset,
        search=json_safe(summary),
        validation_window=_window_of(summary),
    )
    if save:
        save_tuned(tuned)
    return result, tuned
