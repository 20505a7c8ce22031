"""Tuned settings per built-in dataset (event weighting and model hyperparameters).

Chosen by ``bench/tune_als.py``: every candidate setting is scored on a *validation* window
(the 30 days before the evaluation cutoff, training on what precedes them) and the best one
is kept; the test period is not used for the choice. Which settings apply to a log (a saved
``tune`` result, these presets, or settings scaled to the log) is decided in one place,
:func:`recsys_core.tuning.settings_for`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from recsys_core.interactions import EventWeights
from recsys_core.models.registry import ALS, ALS_SPARK, BPR, ITEMKNN


class Preset(BaseModel):
    """Settings that suit one dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: EventWeights = Field(default_factory=EventWeights, description="Event weights.")
    model_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-model hyperparameters."
    )
    model_weights: dict[str, EventWeights] = Field(
        default_factory=dict, description="Per-model event weights that replace ``weights``."
    )
    filter_seen: bool | None = Field(
        None,
        description="Leave the items the shopper already bought (purchases) out of the lists "
        "(True), keep them (False), or let the training data's repeat rate decide (None, "
        "recsys_core.repeats).",
    )
    source: str = Field("library defaults", description="Where these settings come from.")


PRESETS: dict[str, Preset] = {
    # Validation NDCG@10 0.274 (ALS) / 0.287 (item-kNN) / 0.223 (BPR); see README "Tuning".
    "online-retail": Preset(
        weights=EventWeights(log_scale=True),
        model_params={
            ALS: {"factors": 256, "regularization": 10.0, "alpha": 0.5},
            ITEMKNN: {"weighting": "bm25", "neighbours": 5, "b": 0.75},
            BPR: {"factors": 128, "learning_rate": 0.01, "regularization": 0.001},
        },
        # BM25 does its own damping: item-kNN was best on raw counts.
        model_weights={ITEMKNN: EventWeights()},
        source="bench/tune_als.py on the 2011-10-09..2011-11-08 validation window",
    ),
    # Validation NDCG@10 0.288 (ALS) / 0.304 (item-kNN).
    "demo-store": Preset(
        weights=EventWeights(),
        model_params={
            ALS: {"factors": 256, "regularization": 10.0, "alpha": 1.0},
            ITEMKNN: {"weighting": "cosine", "neighbours": 5},
        },
        source="bench/tune_als.py --dataset demo-store (validation window before the cutoff)",
    ),
}


#: Spark MLlib's ALS (``als-spark``) per dataset. Spark is fed ``alpha * weight - 1`` with
#: its own alpha 1 (``confidence="implicit"``), so a cell's confidence is implicit's
#: ``alpha * weight`` (floored just above 1); but Spark scales the regularisation by each
#: row's count (ALS-WR), so ``regularization`` is on that scale (0.04 x the median ~30
#: items per shopper and shoppers per item is ~1.2 per row, ~12 at the 99th percentile;
#: implicit's is a flat 10). Chosen by
#: ``bench/tune_als_spark.py`` on the same validation window, event weighting, rank and
#: iterations as the implicit preset (validation NDCG@10 0.2603 vs implicit's 0.2738; see
#: README "Training on Apache Spark"); merged into :func:`preset_for`.
SPARK_ALS_PARAMS: dict[str, dict[str, Any]] = {
    "online-retail": {
        "factors": 256,
        "regularization": 0.04,
        "alpha": 0.5,
        "confidence": "implicit",
    },
}


def preset_for(dataset: str) -> Preset:
    """The built-in preset of a dataset (with its Spark ALS settings), or library defaults.

    Most callers want :func:`recsys_core.tuning.settings_for`, which also knows saved
    ``tune`` results and the scaled defaults for logs without a preset.
    """
    preset = PRESETS.get(dataset, Preset())
    spark = SPARK_ALS_PARAMS.get(dataset)
    if spark is None:
        return preset
    return preset.model_copy(
        update={"model_params": {**preset.model_params, ALS_SPARK: dict(spark)}}
    )
