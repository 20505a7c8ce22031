"""Train a version of the lab: every model fitted on one dataset, with its drift reference,
repeat rule, order model and headline metrics (used by the CLI, the app and evaluation).

:func:`train_lab` returns a :class:`~recsys_core.serving.lab.TrainedLab`;
:func:`~recsys_core.serving.lab.save_lab` writes it as a versioned folder. Training lives here,
outside :mod:`recsys_core.serving`, so serving never depends on monitoring or evaluation.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from recsys_core.columns import Columns
from recsys_core.configs import ModelSettings
from recsys_core.data.schema import Dataset
from recsys_core.errors import ConfigError, RecsysError
from recsys_core.evaluation.config import EvaluationConfig, ProgressCallback, no_progress
from recsys_core.interactions import InteractionMatrix
from recsys_core.models import (
    MODEL_NAMES,
    MODEL_REGISTRY,
    MatrixRecommender,
    create_model,
    model_class,
)
from recsys_core.models.registry import (
    ALS,
    ALS_SPARK,
)
from recsys_core.monitoring import reference_profile
from recsys_core.presets import Preset
from recsys_core.provenance import data_checksum, library_versions
from recsys_core.repeats import bought_pairs, last_purchases, repeat_profile
from recsys_core.serving.lab import (
    DEFAULT_MODELS,
    FORMAT_VERSION,
    TrainedLab,
)
from recsys_core.tuning import ResolvedSettings, settings_for

__all__ = ["TrainConfig", "headline_metrics", "train_lab"]


class TrainConfig(ModelSettings):
    """What :func:`train_lab` fits."""

    models: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MODELS),
        description="Models to train; 'ranker' needs timestamps and is skipped without them.",
    )
    settings: Preset | None = Field(
        None,
        description="Settings to start from instead of those that apply to the dataset "
        "(recsys_core.tuning.settings_for); Preset() means the models' own defaults.",
    )
    headline_metrics: bool = Field(
        True,
        description="Record headline metrics at training time: the single-stage models are "
        "refitted on the log minus its last 30 days and scored on those days (the ranker is "
        "not, it is costly; the Model lab can record it).",
    )
    engine: Literal["implicit", "spark"] = Field(
        "implicit",
        description="Who trains the served 'als' model: implicit on this machine, or Spark "
        "MLlib (the 'als-spark' model, saved in the same format). With 'spark' the ranker's "
        "Narwhals feature groups run on Spark too; its own stage-one ALS stays on implicit.",
    )
    spark_master: str | None = Field(
        None, description="Spark master URL with engine='spark' (default local[*])."
    )


def train_lab(
    dataset: Dataset,
    config: TrainConfig | None = None,
    *,
    progress: ProgressCallback | None = None,
    checksum: str | None = None,
) -> TrainedLab:
    """Fit the configured models on every event of ``dataset``.

    ``checksum``: the events' :func:`~recsys_core.provenance.data_checksum` when the caller
    has it already (the app: hashing Online Retail's events again cost the first start
    about 0.3 s); computed here otherwise.

    The ranker is fitted for "now" (one second after the last event). Every model is its own
    fit: the served ``als`` and ``itemknn`` are not the ranker's stage-one models (those are
    sized for candidate generation), and each list is explained by the model that served it
    (:mod:`recsys_core.explain`).
    """
    config = config or TrainConfig()
    checksum = checksum or data_checksum(dataset.events)
    settings = (
        settings_for(dataset, checksum=checksum)
        if config.settings is None
        else ResolvedSettings(config.settings, "given", "given settings")
    )
    preset = settings.preset
    params_by_model = {name: dict(p) for name, p in preset.model_params.items()}
    for name, own in config.model_params.items():
        params_by_model.setdefault(name, {}).update(own)
    weights = config.weights or preset.weights
    config = config.model_copy(update={"weights": weights, "model_params": params_by_model})
    model_weights = dict(preset.model_weights)
    progress = progress or no_progress
    names = list(dict.fromkeys(config.models))
    unknown = [n for n in names if n not in MODEL_NAMES]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; choose from {list(MODEL_NAMES)}")
    notes: list[str] = [*settings.notes, settings.line()]
    for name in list(names):
        why_not = model_class(name).cannot_train_on(dataset.events)
        if why_not is not None:
            names.remove(name)
            notes.append(why_not)
    models: dict[str, Any] = {}
    timings: dict[str, float] = {}
    steps = len(names) + 1
    progress("building the interaction matrix", 0.0)
    # the matrix maps the log's own shoppers and items, not the Dataset's maps (docs/data.md)
    matrix = InteractionMatrix.from_events(dataset.events, weights)
    for i, name in enumerate(names):
        progress(f"training {name}", (i + 1) / steps)
        params = dict(config.model_params.get(name, {}))
        if (
            config.engine == "spark"
            and "feature_engine" in model_class(name).config_class.model_fields
        ):
            params.update(feature_engine="spark", spark_master=config.spark_master)
        start = time.perf_counter()
        if name == ALS and config.engine == "spark":
            models[ALS] = _fit_spark_als(config, params_by_model, fit_on=matrix)
            notes.append(
                "the served ALS was trained by Spark MLlib (model 'als-spark', master "
                f"{models[ALS].config.spark_master or 'default'}); the purchase model's "
                "candidates come from its own implicit ALS"
            )
            timings[name] = round(time.perf_counter() - start, 3)
            continue
        if "seed" in model_class(name).config_class.model_fields:
            params.setdefault("seed", config.seed)
        fit_on = matrix
        if name in model_weights:
            fit_on = InteractionMatrix.from_events(  # same events: the same id maps
                dataset.events, model_weights[name], users=matrix.users, items=matrix.items
            )

        def fit_progress(message: str, fraction: float, step: int = i + 1, of: str = name) -> None:
            progress(f"{of}: {message}", (step + fraction) / steps)

        model = create_model(name, **params).fit_log(
            dataset.events, dataset.catalog, matrix=fit_on, progress=fit_progress
        )
        models[name] = model
        timings[name] = round(time.perf_counter() - start, 3)
    # the shopper-level order model completes a model scoring conditional purchase chances
    needs_order_model = any(model_class(n).scores_are_probabilities for n in names)
    order_model = (
        _train_order_model(dataset, config.seed, notes, timings) if needs_order_model else None
    )
    metrics: dict[str, Any] = {}
    if config.headline_metrics:
        progress("recording headline metrics (last 30 days held out)", len(names) / steps)
        metrics = _training_metrics(dataset, config, names, notes)
    progress("done", 1.0)
    created = datetime.now(timezone.utc)
    version = created.strftime("%Y%m%d-%H%M%S")
    ordered = {n: models[n] for n in DEFAULT_MODELS if n in models}
    ordered.update({n: m for n, m in models.items() if n not in ordered})
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "dataset": dataset.name,
        "version": version,
        "created": created.isoformat(timespec="seconds"),
        "models": list(ordered),
        "fit_seconds": timings,
        "config": config.model_dump(mode="json"),
        "settings": {
            "origin": settings.origin,
            "label": settings.label,
            "filter_seen": preset.filter_seen,
            "model_weights": {n: w.model_dump() for n, w in model_weights.items()},
        },
        "data": {**dataset.summary(), "sha256": checksum},
        "library_versions": library_versions(),
        "notes": notes,
        "metrics": metrics,
        "order_model": order_model is not None,
    }
    bought = _repeat_rule(dataset, manifest)
    return TrainedLab(
        dataset=dataset.name,
        version=version,
        created=str(manifest["created"]),
        catalog=dataset.catalog,
        models=ordered,
        manifest=manifest,
        reference=reference_profile(dataset.events),
        order_model=order_model,
        bought=bought,
        last_purchases=last_purchases(dataset.events),
    )


def _repeat_rule(dataset: Dataset, manifest: dict[str, Any]) -> pd.DataFrame | None:
    """Store the training log's repeat profile (:func:`recsys_core.repeats.repeat_profile`,
    the rule evaluation applies) in ``manifest["repeats"]``; return the bought pairs when
    they are not simply every pair the models saw (else ``None``: their own filter is it)."""
    bought = bought_pairs(dataset.events)
    seen = dataset.events[[Columns.USER, Columns.ITEM]].drop_duplicates()
    same_as_seen = len(bought) == len(seen)
    profile = repeat_profile(dataset.events).to_dict()
    manifest["repeats"] = {**profile, "bought_is_seen": same_as_seen}
    return None if same_as_seen else bought


def _train_order_model(
    dataset: Dataset, seed: int, notes: list[str], timings: dict[str, float]
) -> Any | None:
    """The shopper-level order model, or ``None`` with a note when the log is too short."""
    from recsys_core.ranking.order_model import OrderModel  # LightGBM: only when trained

    start = time.perf_counter()
    try:
        model = OrderModel(seed=seed).fit(dataset.events)
    except RecsysError as exc:
        notes.append(f"the order model could not be trained: {exc}")
        return None
    timings["order"] = round(time.perf_counter() - start, 3)
    return model


def _fit_spark_als(
    config: TrainConfig, params_by_model: dict[str, dict[str, Any]], fit_on: InteractionMatrix
) -> MatrixRecommender:
    """The lab's 'als' model trained on Spark, with the dataset's Spark preset."""
    params = dict(params_by_model.get(ALS_SPARK, {}))
    params.setdefault("seed", config.seed)
    if config.spark_master is not None:
        params["spark_master"] = config.spark_master
    return MODEL_REGISTRY[ALS_SPARK](**params).fit(fit_on)


def _training_metrics(
    dataset: Dataset, config: TrainConfig, names: list[str], notes: list[str]
) -> dict[str, Any]:
    """Headline metrics of the single-stage models on the log's last 30 days (cheap)."""
    single_stage = [n for n in names if not model_class(n).stage_one_models]
    two_stage = [n for n in names if n not in single_stage]
    # two-stage models are costly to evaluate: their stage-one models stand in for them
    wanted = single_stage + [
        stage
        for n in two_stage
        for stage in model_class(n).stage_one_models
        if stage not in single_stage
    ]
    wanted = list(dict.fromkeys(wanted))
    if not wanted:
        return {}
    # the runner imports LightGBM and scikit-learn: not for a quick version (issue 24)
    from recsys_core.evaluation.runner import evaluate

    eval_config = EvaluationConfig(
        models=wanted,
        weights=config.weights,
        model_params={n: p for n, p in config.model_params.items() if n in wanted},
        seed=config.seed,
        new_items_variant=False,
    )
    try:
        result = evaluate(dataset, eval_config)
    except RecsysError as exc:
        notes.append(f"no headline metrics recorded at training: {exc}")
        return {}
    metrics = headline_metrics(result)
    metrics["recorded_by"] = "train (single-stage models, last 30 days held out)"
    return metrics


def headline_metrics(result: Any) -> dict[str, Any]:
    """What :func:`record_metrics` stores: the core of an evaluation's JSON."""
    payload = result.to_json()
    models = {
        name: {k: v for k, v in entry.items() if k not in ("params", "new_items_only")}
        for name, entry in payload["models"].items()
    }
    return {
        "k": payload["k"],
        "evaluated": payload["provenance"].get("created"),
        "split": payload["split"],
        "models": models,
        "classifier": payload.get("classifier"),
    }
