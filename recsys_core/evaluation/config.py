"""What ``evaluate`` runs: the model lists, :class:`EvaluationConfig` and the dataset preset."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field

from recsys_core.configs import ModelSettings, SplitConfig
from recsys_core.interactions import EventWeights
from recsys_core.models.registry import evaluated_by_default, optional_models, single_stage_models

#: Models ``evaluate`` runs by default, in the order they are reported (the registry's).
ALL_MODELS: tuple[str, ...] = evaluated_by_default()
#: The single-stage recommenders among them (everything but the two-stage ranker).
SINGLE_STAGE_MODELS: tuple[str, ...] = tuple(m for m in ALL_MODELS if m in single_stage_models())
#: Models ``evaluate`` runs only when asked by name (not part of ``all``): they need an
#: optional extra (ALS on Spark: pyspark and a Java runtime; sasrec: torch).
OPTIONAL_MODELS: tuple[str, ...] = optional_models()

#: Receives a short description of the step and the overall fraction done (0..1).
ProgressCallback = Callable[[str, float], None]


def no_progress(_message: str, _fraction: float) -> None:
    return None


class EvaluationConfig(SplitConfig, ModelSettings):
    """Settings of one evaluation run: the split and model blocks it shares with ``train`` and
    ``tune`` (:mod:`recsys_core.configs`) plus what only evaluation has."""

    models: list[str] = Field(
        default_factory=lambda: list(SINGLE_STAGE_MODELS),
        description="Models to fit and compare (popularity, itemknn, bpr, als, ranker).",
    )
    k: int = Field(10, ge=1, le=200, description="Length of each recommendation list.")
    filter_seen: bool | None = Field(
        None,
        description="True: drop every item the user interacted with (views too) from the "
        "main lists; False: keep every item (unless filter_bought is True). None: decided by "
        "filter_bought, the settings or the training data's repeat rate.",
    )
    filter_bought: bool | None = Field(
        None,
        description="Drop the items the user bought before the cutoff from the main lists "
        "(None: decided by the settings or the training data's repeat rate, see "
        "recsys_core.repeats).",
    )
    new_items_variant: bool = Field(
        True, description="Also report the variant with seen items removed from both sides."
    )
    model_weights: dict[str, EventWeights] = Field(
        default_factory=dict,
        description="Per-model event weights that replace `weights` for that model.",
    )
    bootstrap_resamples: int = Field(
        1000,
        ge=0,
        le=100_000,
        description="Bootstrap resamples of the test users for the 95 % intervals (0: none).",
    )
    folds: int = Field(
        1,
        ge=1,
        le=24,
        description="Rolling-origin folds: consecutive test windows, each test_days long, the "
        "last ending at the log's end, each trained on everything before it (seeded random "
        "hold-outs without timestamps). 1: one split, today's output.",
    )
    choose_on_validation: bool = Field(
        True,
        description="Choose the 'best single-stage model' of the ranker's ratio on the "
        "validation window before each test window (the previous fold's test window, or a "
        "window cut from the training part), never on the test window itself.",
    )


def with_preset(
    config: EvaluationConfig, dataset_name: str, preset: Any | None = None
) -> EvaluationConfig:
    """Fill unset weights and hyperparameters from ``preset`` (default: the dataset's
    built-in preset; :func:`recsys_core.tuning.settings_for` picks one)."""
    from recsys_core.presets import preset_for

    preset = preset if preset is not None else preset_for(dataset_name)
    params = {name: dict(p) for name, p in preset.model_params.items()}
    for name, own in config.model_params.items():
        params.setdefault(name, {}).update(own)
    return config.model_copy(
        update={
            "weights": config.weights or preset.weights,
            "model_params": params,
            "model_weights": {**preset.model_weights, **config.model_weights},
        }
    )
