"""Settings of the two-stage ranker and the column names of its frames."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recsys_core.interactions import EventWeights
from recsys_core.models import ALSConfig, ItemKNNConfig
from recsys_core.ranking.objectives import Objective

__all__ = [
    "LABEL",
    "PURCHASE_PROBABILITY",
    "RAW_SCORE",
    "WINDOW_CUTOFF",
    "PurchaseModelConfig",
    "RANKER_DEFAULTS_CHOSEN_ON",
    "RankerConfig",
    "ranker_defaults_note",
]

#: Column of training frames: 1 if the shopper bought the item in the label window.
LABEL: Final = "label"
#: Column of candidate frames: the classifier's margin (log-odds before calibration).
RAW_SCORE: Final = "raw_score"
#: Column of candidate and recommendation frames: the calibrated purchase probability.
PURCHASE_PROBABILITY: Final = "purchase_probability"
#: Column of training frames: the window cutoff the row's features describe.
WINDOW_CUTOFF: Final = "window_cutoff"

#: The window the ranker's defaults (candidate counts, stage-one size, feature groups,
#: classifier settings) were checked on: Online Retail's 30 days before its test window,
#: training on what precedes them (``python bench/tune_ranker.py --validation``; the table
#: is in docs/ranker.md). ``end`` is the first instant the choice did not see.
RANKER_DEFAULTS_CHOSEN_ON: Final[dict[str, str]] = {
    "dataset": "online-retail",
    "start": "2011-10-09",
    "end": "2011-11-09",
}


def ranker_defaults_note(dataset: str, test_cutoff: object) -> str | None:
    """A note when the ranker's defaults were chosen on a window that reaches the test
    window starting at ``test_cutoff`` (so its figures there are optimistic), else ``None``.

    Like :func:`recsys_core.tuning.settings_for`'s ``test_cutoff`` for tuned settings; the
    defaults are not swapped (there is nothing chosen earlier to fall back on), only named.
    """
    import pandas as pd

    chosen = RANKER_DEFAULTS_CHOSEN_ON
    if dataset != chosen["dataset"] or test_cutoff is None:
        return None
    if pd.Timestamp(chosen["end"]) <= pd.Timestamp(str(test_cutoff)):
        return None
    return (
        f"the ranker's defaults were checked on {chosen['dataset']}'s validation window "
        f"{chosen['start']} .. {chosen['end']}, which reaches this test window (from "
        f"{pd.Timestamp(str(test_cutoff)).date()}): its figures here are optimistic"
    )


class PurchaseModelConfig(BaseModel):
    """Settings of the LightGBM purchase classifier and its calibration.

    The defaults (2 fold models, learning rate 0.1, 63 leaves, early stopping after 30 trees
    without improvement) were chosen on Online Retail's validation window (cutoff
    2011-10-09) with ``bench/tune_ranker.py --validation --sweep``, against the previous 4
    fold models of 300 trees (learning rate 0.05, 31 leaves): NDCG@10 0.3328 vs 0.3329
    (paired difference -0.0002 [-0.0038, +0.0037]; with seed 7 -0.0073), about 120 trees
    served instead of 1,200, a quarter of the training CPU time. The other settings were
    chosen earlier (see docs/ranker.md for which window chose what).

    ``learning_rate`` 0.05 is the validation window's best (issue 21's third round,
    ``--sweep`` over five seeds 42, 7, 1, 2, 3: NDCG@10 0.3311 against 0.1's 0.3285, higher on
    every seed, pooled paired difference +0.0026 [+0.0010, +0.0043]) but **not the default**:
    it serves 300-420 trees instead of 120-140, so on Online Retail a ranker answer (cache
    miss) takes 1.37x as long (p50 3.1-3.4 ms against 2.3-2.5 ms, ``bench/bench_service.py``),
    the classifier's fit twice as long and ``evaluate --folds 4`` 1.16x (3 min 42 s against
    3 min 12 s), for +0.017 in the test window's ratio (docs/ranker.md). A shop that values
    that gain over serving time sets ``classifier={"learning_rate": 0.05}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_estimators: int = Field(
        500,
        ge=1,
        description=(
            "Boosted trees per model; with early stopping (the default) a cap, each model "
            "keeping the trees up to its best one (about 60-70 on Online Retail)."
        ),
    )
    learning_rate: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Shrinkage of each tree (0.05: a little better ranking, 2-3x the trees).",
    )
    num_leaves: int = Field(63, ge=2, description="Maximum leaves per tree.")
    min_child_samples: int = Field(
        100, ge=1, description="Minimum training rows in a leaf (guards against overfitting)."
    )
    subsample: float = Field(0.8, gt=0, le=1, description="Share of rows each tree sees.")
    colsample_bytree: float = Field(
        0.8, gt=0, le=1, description="Share of features each tree sees."
    )
    reg_lambda: float = Field(1.0, ge=0, description="L2 regularisation of leaf values.")
    calibration: Literal["auto", "isotonic", "sigmoid"] = Field(
        "auto",
        description=(
            "Probability calibration: 'auto' picks isotonic or sigmoid (Platt) by "
            "cross-validated log loss on the held-out shoppers."
        ),
    )
    calibration_fraction: float = Field(
        0.25,
        gt=0,
        lt=1,
        description=(
            "Share of training shoppers held out of LightGBM to fit the calibrator on the "
            "served (fold-averaged) margin."
        ),
    )
    calibration_top_k: int | None = Field(
        10,
        ge=1,
        description=(
            "K: the calibrator learns only from each held-out list's K candidates with the "
            "highest served margin (a list: one shopper in one training window), the rows a "
            "served list of K items holds; the top of a list is bought less often than "
            "pooled candidates of the same margin. None: from every held-out candidate."
        ),
    )
    cross_fit_folds: int = Field(
        2,
        ge=0,
        le=10,
        description=(
            "0: one LightGBM model. K >= 2: one model per shopper fold trained on the "
            "other folds, their margins averaged (less variance; about K-1 times the fit "
            "time). Either way the calibrator learns from the held-out shoppers."
        ),
    )
    n_jobs: int = Field(
        1,
        ge=1,
        description=(
            "LightGBM threads. 1 by default: on shared, busy cores OpenMP threads wait for "
            "each other and a 2-thread fit can take 3-5x longer than a 1-thread one."
        ),
    )
    fold_workers: int = Field(
        2,
        ge=1,
        le=16,
        description=(
            "Cross-fitted fold models trained at the same time, each in its own thread with "
            "n_jobs LightGBM threads. The models and the result do not depend on it; 2 "
            "nearly halves the fit on two free cores, 1 trains them one after another."
        ),
    )
    early_stopping_rounds: int = Field(
        30,
        ge=0,
        description=(
            "0: every model has n_estimators trees. R >= 1: n_estimators is a cap; each "
            "model stops when the log loss of shoppers it does not train on (its left-out "
            "fold, or early_stopping_fraction of the shoppers for one model) has not "
            "improved for R trees, and keeps the trees up to its best one."
        ),
    )
    early_stopping_fraction: float = Field(
        0.2,
        gt=0,
        lt=1,
        description=(
            "Share of the (non-calibration) training shoppers held out to stop a single "
            "model early (cross_fit_folds=0 with early_stopping_rounds > 0)."
        ),
    )
    objective: Objective = Field(
        "binary",
        description=(
            "What the trees learn: 'binary' (log loss of each row's label), or a ranking "
            "objective that orders each list (one shopper in one training window; early "
            "stopping then watches NDCG@10 of the left-out fold's lists). The calibrator maps "
            "the served margin to a probability either way. Needs cross_fit_folds >= 2."
        ),
    )
    window_weight_decay: float = Field(
        1.0,
        gt=0,
        le=1,
        description=(
            "Row weight of each training window relative to the next newer one (the newest "
            "weighs 1, the one before w, then w^2...); 1: every row weighs 1. Needs "
            "cross_fit_folds >= 2."
        ),
    )

    @field_validator("cross_fit_folds")
    @classmethod
    def _folds(cls, value: int) -> int:
        if value == 1:
            raise ValueError("use 0 (held-out calibration) or at least 2 folds")
        return value


class RankerConfig(BaseModel):
    """Settings of :class:`TwoStageRanker`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon_days: float = Field(
        30.0,
        gt=0,
        description=(
            "Length of the period the purchase probability is about (and of each training "
            "label window), in days."
        ),
    )
    training_windows: int = Field(
        6,
        ge=1,
        le=12,
        description=(
            "Consecutive label windows before the cutoff used as training rows; each one "
            "refits stage one on the events before it."
        ),
    )
    window_step_days: float | None = Field(
        None,
        gt=0,
        description=(
            "Days between consecutive training window cutoffs (default: horizon_days, i.e. "
            "back-to-back windows; smaller steps give overlapping windows and more rows)."
        ),
    )
    training_users: Literal["buyers", "all"] = Field(
        "buyers",
        description=(
            "Training shoppers of a window: 'buyers' (those who order in the label window; "
            "the probability is then conditional on placing an order) or 'all'."
        ),
    )
    training_shoppers: int | None = Field(
        10_000,
        ge=2,
        description=(
            "Train on a seeded random sample of this many shoppers (drawn once from the "
            "shoppers with history before the cutoff; each window keeps those of them it "
            "would train on). Stage one and the features still see every event, and every "
            "shopper is scored. It bounds the training rows, hence the fit's memory, on big "
            "logs; a log with fewer shoppers trains on all of them (Online Retail, the demo "
            "store). None: every shopper, however many."
        ),
    )
    feature_engine: Literal["embedded", "spark"] = Field(
        "embedded",
        description=(
            "Where the feature groups written in Narwhals run: 'embedded' (pandas in this "
            "process, no server) or 'spark' (the same definitions on Spark; `train --engine "
            "spark`). Both give the same features."
        ),
    )
    spark_master: str | None = Field(
        None,
        description="Spark master URL with feature_engine='spark' (default local[*]).",
    )
    n_als: int = Field(100, ge=0, description="Candidates from the ALS top list per user.")
    n_itemknn: int = Field(200, ge=0, description="Candidates from the item-kNN top list per user.")
    n_history: int = Field(
        500, ge=0, description="Most recently used items of the user's history added as candidates."
    )
    als: ALSConfig = Field(
        default_factory=lambda: ALSConfig(factors=64, num_threads=1),
        description="Settings of the stage-one ALS model (single-threaded by default).",
    )
    itemknn: ItemKNNConfig = Field(
        default_factory=lambda: ItemKNNConfig(num_threads=1),
        description="Settings of the stage-one item-kNN model (single-threaded by default).",
    )
    event_weights: EventWeights = Field(
        default_factory=EventWeights,
        description="Event weights of the interaction matrix stage one learns from.",
    )
    classifier: PurchaseModelConfig = Field(
        default_factory=PurchaseModelConfig, description="Settings of the purchase classifier."
    )
    seed: int = Field(42, ge=0, description="Seed of the classifier and the calibration split.")
    sequence: dict[str, Any] | None = Field(
        None,
        exclude_if=lambda value: value is None,  # off: configs and saved rankers as before
        description=(
            "The optional 'sequence' feature group (the sasrec model's score and rank of each "
            "candidate, one sasrec fit per training window; needs PyTorch to train: "
            "requirements-seq.txt). None (default): off. A mapping of sasrec settings over "
            "the group's defaults ({} for those) turns it on. Off because validation showed "
            "no gain beyond the noise (docs/sequence-model.md)."
        ),
    )

    @field_validator("sequence")
    @classmethod
    def _sequence_settings(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            from recsys_core.models.sasrec import SASRecConfig

            SASRecConfig(**value)  # unknown or invalid sasrec settings fail here, by name
        return value
