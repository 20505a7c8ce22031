"""The shopper-level order model: the chance a shopper orders at all in the next period.

The purchase model (:mod:`recsys_core.ranking.ranker`) answers "if this shopper orders in
the next ``horizon_days``, is this item in it?" — a *conditional* probability. A shopper
dormant for a year can have 36 % there. :class:`OrderModel` answers the other half, "does
this shopper order at all in the next ``horizon_days``?", so that

    overall probability = order probability x purchase probability (conditional).

Features (:data:`ORDER_FEATURES`) are recency / frequency / monetary and activity figures of
each shopper computed only from events strictly before a cutoff (:func:`shopper_features`).
An *order* is a day on which the shopper bought something (logs carry no invoice id).

Training rows come from ``training_windows`` label windows before the cutoff, like the
ranker's: for window ``w`` the window cutoff is ``c_w = cutoff - H - (w - 1) * H``; the rows
are every shopper with an event before ``c_w``, their features use events ``< c_w`` only, and
the label is "bought anything in ``[c_w, c_w + H)``". The classifier is the same calibrated
LightGBM as the purchase model (:class:`~recsys_core.ranking.purchase_model.PurchaseModel`,
shoppers as groups), so it is calibrated, saved without pickle and explained with SHAP the
same way.

The shop's order rate drifts (Online Retail's grows from September to the Christmas peak),
so a model calibrated on its pooled windows under-predicts the next one. The classifier's
probability is therefore recalibrated on a **validation window before the cutoff**
(``recalibrate_on_validation_window``): a copy of the model is fitted on the events before
``cutoff - H``, scores every shopper it knows, and a sigmoid (Platt) map from the logit of
that probability to "ordered in ``[cutoff - H, cutoff)``" is fitted and then applied to the
final model's probabilities. Nothing at or after ``cutoff`` is read. Every path that reads
an order probability (evaluation's :func:`score_order_model`, serving, batch scoring, SHAP's
``order_probability``) goes through :meth:`OrderModel.predict_frame` /
:meth:`OrderModel.order_probability`, so they all get the same recalibrated number.

Saved folder (no pickle): ``classifier/`` (LightGBM text model and calibrator JSON),
``features.parquet`` (the feature table at the cutoff) and ``config.json`` (written last).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_ids
from recsys_core.errors import ArtifactError, ConfigError, DataValidationError, ModelNotTrainedError
from recsys_core.io_utils import atomic_write_text
from recsys_core.ranking.calibration import Calibrator
from recsys_core.ranking.features import events_before, require_timestamps
from recsys_core.ranking.order_features import (
    ORDER_FEATURE_LABELS,
    ORDER_FEATURES,
    ShopperFeatureTables,
    order_labels,
    shopper_features,
)
from recsys_core.ranking.purchase_model import PurchaseModel

__all__ = [
    "ORDER_FEATURES",
    "ORDER_FEATURE_LABELS",
    "ORDER_PROBABILITY",
    "OrderModel",
    "OrderModelConfig",
    "build_order_training_frame",
    "order_labels",
    "shopper_features",
]

#: Column name of the shopper-level probability in answers and frames.
ORDER_PROBABILITY: Final = "order_probability"
ORDER_MODEL_FORMAT: Final = 1


class OrderModelConfig(BaseModel):
    """Settings of :class:`OrderModel`.

    The defaults (11 windows, early stopping after 30 trees without improvement, at most
    500) were chosen on Online Retail's validation window (cutoff 2011-10-09, training on
    what precedes it): against 6 windows and 4 x 200 fixed trees, log loss 0.5228 -> 0.5174
    and ECE 0.039 -> 0.029 (equal-width) / 0.041 -> 0.030 (equal-mass), with about 70
    trees per fold model instead of 200 (``python bench/tune_ranker.py --validation
    --order-sweep '[{"training_windows": 6, "n_estimators": 200, "early_stopping_rounds": 0},
    {}]'``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon_days: float = Field(
        30.0, gt=0, description="Length of the period the order probability is about, in days."
    )
    training_windows: int = Field(
        11,
        ge=1,
        le=24,
        description=(
            "Consecutive label windows before the cutoff used to train (as many as the log "
            "holds, up to this many; 11 covers a year of 30-day windows)."
        ),
    )
    n_estimators: int = Field(
        500,
        ge=1,
        description="Boosted trees of the LightGBM classifier (a cap with early stopping).",
    )
    learning_rate: float = Field(0.05, gt=0, le=1, description="Shrinkage of each tree.")
    num_leaves: int = Field(15, ge=2, description="Maximum leaves per tree.")
    min_child_samples: int = Field(50, ge=1, description="Minimum training rows in a leaf.")
    cross_fit_folds: int = Field(
        4, ge=0, le=10, description="Shopper folds of the cross-fitted classifier (0: held out)."
    )
    early_stopping_rounds: int = Field(
        30,
        ge=0,
        description=(
            "0: n_estimators trees per model. R >= 1: n_estimators is a cap and each model "
            "stops when its left-out shoppers' log loss has not improved for R trees."
        ),
    )
    fold_workers: int = Field(
        2,
        ge=1,
        le=16,
        description=(
            "Cross-fitted fold models trained at the same time (threads, one LightGBM "
            "thread each). The models do not depend on it (each is seeded and deterministic "
            "and kept in fold order); 2 uses both cores of a 2-core machine."
        ),
    )
    recalibrate_on_validation_window: bool = Field(
        True,
        description=(
            "Refit the probability map on the window just before the cutoff: a copy of the "
            "model fitted H days earlier scores that window and a sigmoid (Platt) map of its "
            "logit is fitted to who ordered (see the module docstring). Chosen over isotonic, "
            "a logit shift and none on Online Retail's three folds before the test window."
        ),
    )
    seed: int = Field(42, description="Seed of LightGBM and the shopper folds.")


def build_order_training_frame(
    events: pd.DataFrame,
    cutoff: pd.Timestamp | str,
    config: OrderModelConfig | None = None,
    *,
    tables: ShopperFeatureTables | None = None,
) -> pd.DataFrame:
    """Labelled shopper rows of the training windows before ``cutoff``.

    Events at or after ``cutoff`` are never read. ``tables``: the shopper tables of
    ``events`` (or of a log holding every event of ``events`` before ``cutoff``) to reuse
    (:class:`~recsys_core.ranking.order_features.ShopperFeatureTables`); built when omitted.

    Returns
    -------
    pandas.DataFrame
        ``user_id``, ``window_cutoff``, :data:`ORDER_FEATURES` and ``label``.

    Raises
    ------
    DataValidationError
        The log is too short for one window with both orders and non-orders.
    """
    config = config or OrderModelConfig()
    cutoff = pd.Timestamp(cutoff)
    horizon = pd.Timedelta(days=config.horizon_days)
    past = events_before(events, cutoff)
    start = past[Columns.TIMESTAMP].min() if len(past) else cutoff
    tables = tables or ShopperFeatureTables(past)
    frames = []
    for w in range(1, config.training_windows + 1):
        window_cutoff = cutoff - horizon * w
        if window_cutoff <= start:
            break
        features = tables(window_cutoff)
        if features.empty:
            continue
        buyers = order_labels(past, window_cutoff, window_cutoff + horizon)
        frame = features.reset_index()
        frame.insert(1, "window_cutoff", window_cutoff)
        frame["label"] = frame[Columns.USER].isin(buyers).astype(np.int64)
        frames.append(frame)
    if not frames:
        raise DataValidationError(
            f"the order model needs at least one {config.horizon_days:g}-day window with "
            f"earlier history before {cutoff}: use a longer log"
        )
    return pd.concat(frames, ignore_index=True)


class OrderModel:
    """Calibrated LightGBM probability that a shopper orders in the next ``horizon_days``.

    Parameters
    ----------
    config:
        An :class:`OrderModelConfig` or a mapping of its settings.
    **overrides:
        Settings replacing those in ``config``.

    Attributes
    ----------
    cutoff_ : pandas.Timestamp
        The instant the probabilities are for.
    classifier_ : PurchaseModel
        The calibrated classifier (same class as the purchase model's).
    features_ : pandas.DataFrame
        :data:`ORDER_FEATURES` of every shopper with history at ``cutoff_``.
    recalibration_ : Calibrator or None
        The sigmoid map fitted on the validation window before ``cutoff_`` (applied to the
        logit of the classifier's probability), ``None`` when off or when the log has no
        such window (``training_summary_["recalibration"]`` says why).
    training_summary_ : dict
    """

    name: ClassVar[str] = "order"

    cutoff_: pd.Timestamp
    classifier_: PurchaseModel
    features_: pd.DataFrame
    recalibration_: Calibrator | None = None
    training_summary_: dict[str, Any]

    def __init__(
        self, config: OrderModelConfig | Mapping[str, Any] | None = None, **overrides: Any
    ) -> None:
        settings = config.model_dump() if isinstance(config, BaseModel) else dict(config or {})
        settings.update(overrides)
        try:
            self.config = OrderModelConfig.model_validate(settings)
        except ValidationError as exc:
            raise ConfigError(f"invalid order-model settings: {exc.errors()[0]['msg']}") from None
        self._known: pd.Series | None = None  # probabilities of every known shopper (lazy)

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` or :meth:`load` has run."""
        return hasattr(self, "classifier_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise ModelNotTrainedError("the order model is not trained: call fit() or load()")

    def fit(self, events: pd.DataFrame, *, cutoff: pd.Timestamp | str | None = None) -> Self:
        """Train on the windows before ``cutoff`` (default: one second after the last event).

        Each shopper table (:func:`shopper_features` at one cutoff) is built once for the
        training windows, the cutoff and the validation window's model; inside an
        evaluation over folds also once per run
        (:class:`~recsys_core.ranking.order_features.ShopperFeatureTables`).

        Raises
        ------
        DataValidationError
            No timestamps, or too short a log.
        """
        require_timestamps(events)
        if events.empty:
            raise DataValidationError("cannot train the order model on an empty event log")
        tables = ShopperFeatureTables(events)
        self._fit(events, cutoff, tables)
        # folds move forward: a later fold reads no table older than this fit's oldest
        if tables.cutoffs:
            tables.drop_shared_before(tables.cutoffs[0])
        return self

    def _fit(
        self,
        events: pd.DataFrame,
        cutoff: pd.Timestamp | str | None,
        tables: ShopperFeatureTables,
    ) -> None:
        """:meth:`fit` with the shopper tables of ``events`` (or of a longer log with the
        same events before ``cutoff``)."""
        started = time.perf_counter()
        cut = (
            events[Columns.TIMESTAMP].max() + pd.Timedelta(seconds=1)
            if cutoff is None
            else pd.Timestamp(cutoff)
        )
        train = build_order_training_frame(events, cut, self.config, tables=tables)
        cfg = self.config
        classifier = PurchaseModel(
            n_estimators=cfg.n_estimators,
            learning_rate=cfg.learning_rate,
            num_leaves=cfg.num_leaves,
            min_child_samples=cfg.min_child_samples,
            cross_fit_folds=cfg.cross_fit_folds,
            early_stopping_rounds=cfg.early_stopping_rounds,
            random_state=cfg.seed,
            n_jobs=1,
            fold_workers=cfg.fold_workers,
        )
        self.classifier_ = classifier.fit(
            train[list(ORDER_FEATURES)], train["label"], groups=train[Columns.USER].to_numpy()
        )
        self.features_ = tables(cut)
        self._known = None
        self.cutoff_ = cut
        self.recalibration_, recalibration = (
            self._fit_recalibration(events, cut, tables)
            if cfg.recalibrate_on_validation_window
            else (None, {"applied": False, "why": "turned off"})
        )
        self.training_summary_ = {
            "cutoff": str(cut),
            "rows": int(len(train)),
            "positives": int(train["label"].sum()),
            "windows": int(train["window_cutoff"].nunique()),
            "calibration": classifier.calibrator_.method,
            "recalibration": recalibration,
            "fit_seconds": round(time.perf_counter() - started, 3),
        }

    def _fit_recalibration(
        self, events: pd.DataFrame, cutoff: pd.Timestamp, tables: ShopperFeatureTables
    ) -> tuple[Calibrator | None, dict[str, Any]]:
        """The sigmoid map of the validation window ``[cutoff - H, cutoff)`` and a summary
        (the validation model's windows are this fit's shifted by one: ``tables`` has all
        but its oldest)."""
        start = cutoff - pd.Timedelta(days=self.config.horizon_days)
        past = events_before(events, cutoff)
        window = [str(start), str(cutoff)]
        validation = OrderModel(self.config, recalibrate_on_validation_window=False)
        try:
            if past.empty:
                raise DataValidationError("no events before the cutoff")
            validation._fit(past, start, tables)
        except DataValidationError as exc:
            return None, {"applied": False, "window": window, "why": f"no validation window: {exc}"}
        features = validation.features_
        label = features.index.isin(order_labels(past, start, cutoff)).astype(np.int64)
        if label.min() == label.max():
            return None, {
                "applied": False,
                "window": window,
                "why": "the validation window has only one class (all or no shoppers ordered)",
            }
        raw = validation.predict_frame(features)
        calibrator = Calibrator.fit("sigmoid", _logit(raw), label)
        return calibrator, {
            "applied": True,
            "method": "sigmoid",
            "window": window,
            "shoppers": int(len(label)),
            "order_rate": float(label.mean()),
            "mean_predicted_before": float(raw.mean()),
            "mean_predicted_after": float(calibrator.predict(_logit(raw)).mean()),
        }

    def _recalibrated(self, probability: np.ndarray) -> np.ndarray:
        if self.recalibration_ is None:
            return probability
        return self.recalibration_.predict(_logit(probability))

    # ------------------------------------------------------------------ predicting

    def order_probability(self, user_ids: Sequence[str]) -> np.ndarray:
        """Calibrated probability that each shopper orders in the next period.

        NaN for shoppers without events before the cutoff (the model knows nothing of them).
        """
        self._check_fitted()
        if self._known is None:  # every known shopper in one batch, then lookups (~µs each)
            self._known = pd.Series(self.predict_frame(self.features_), index=self.features_.index)
        ids = pd.Index([str(u) for u in user_ids])
        return self._known.reindex(ids).to_numpy(dtype=np.float64)

    def predict_frame(self, features: pd.DataFrame, *, recalibrated: bool = True) -> np.ndarray:
        """Calibrated probabilities of a feature frame (e.g. of :func:`shopper_features`).

        ``recalibrated=False``: the classifier's own calibration, without the validation
        window's map (for before/after comparisons only; every answer uses the default).
        """
        self._check_fitted()
        probability = self.classifier_.purchase_probability(features[list(ORDER_FEATURES)])
        return self._recalibrated(probability) if recalibrated else probability

    def explain(self, user_id: str) -> dict[str, Any]:
        """SHAP explanation of one shopper's order probability.

        Returns
        -------
        dict
            ``{"user_id", "order_probability", "raw_score", "base_value", "contributions":
            [{"name", "feature", "value", "contribution"}]}`` with ``base_value +
            sum(contribution) == raw_score`` (the classifier's margin, log-odds);
            contributions sorted by absolute size.

        Raises
        ------
        UnknownUserError
            The shopper has no events before the cutoff.
        """
        from recsys_core.errors import UnknownUserError

        self._check_fitted()
        uid = str(user_id)
        if uid not in self.features_.index:
            raise UnknownUserError(
                f"unknown shopper {uid!r}: the order model has no events of them before "
                f"{self.cutoff_}"
            )
        row = self.features_.loc[[uid], list(ORDER_FEATURES)].to_numpy(dtype=np.float64)
        values = self.classifier_.shap_values(row)[0]  # SHAP of the served (mean) margin
        base = float(self.classifier_.expected_value)
        raw = float(self.classifier_.decision_function(row)[0])
        order = np.argsort(-np.abs(values), kind="stable")
        return {
            "user_id": uid,
            "order_probability": float(
                self._recalibrated(self.classifier_.calibrator_.predict(np.array([raw])))[0]
            ),
            "raw_score": raw,
            "base_value": base,
            "contributions": [
                {
                    "name": ORDER_FEATURES[j],
                    "feature": ORDER_FEATURE_LABELS[ORDER_FEATURES[j]],
                    "value": None if np.isnan(row[0, j]) else float(row[0, j]),
                    "contribution": float(values[j]),
                }
                for j in order
            ],
        }

    # ------------------------------------------------------------------ persistence

    def save(self, path: Path | str) -> None:
        """Save to folder ``path`` (no pickle; ``config.json`` written last)."""
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").unlink(missing_ok=True)
        self.classifier_.save(folder / "classifier")
        self.features_.reset_index().to_parquet(folder / "features.parquet", index=False)
        metadata = {
            "model": self.name,
            "format_version": ORDER_MODEL_FORMAT,
            "config": self.config.model_dump(mode="json"),
            "cutoff": self.cutoff_.isoformat(),
            "feature_names": list(ORDER_FEATURES),
            "training": self.training_summary_,
            "recalibration": None if self.recalibration_ is None else self.recalibration_.to_dict(),
        }
        atomic_write_text(folder / "config.json", json.dumps(metadata, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path | str) -> OrderModel:
        """Load a model saved by :meth:`save`.

        Raises
        ------
        ArtifactError
            Missing, incomplete or inconsistent folder.
        """
        folder = Path(path)
        meta_path = folder / "config.json"
        try:
            metadata = json.loads(meta_path.read_text(encoding="utf-8"))
            if metadata.get("format_version") != ORDER_MODEL_FORMAT:
                raise ValueError(f"format version {metadata.get('format_version')!r}")
            if metadata.get("feature_names") != list(ORDER_FEATURES):
                raise ValueError("saved with other features: retrain")
            model = cls(metadata.get("config") or {})
            model.cutoff_ = pd.Timestamp(metadata["cutoff"])
            model.training_summary_ = dict(metadata.get("training") or {})
            recalibration = metadata.get("recalibration")
            model.recalibration_ = (
                None if recalibration is None else Calibrator.from_dict(recalibration)
            )
            features = pd.read_parquet(folder / "features.parquet")
        except ArtifactError:
            raise
        except Exception as exc:  # missing file, bad JSON, bad parquet, bad config
            raise ArtifactError(
                f"cannot read the order model in {folder}: {exc}; retrain and save it again"
            ) from exc
        model.features_ = features.set_index(Columns.USER)[list(ORDER_FEATURES)]
        model.features_.index = canonical_ids(model.features_.index)  # read from a file
        model.classifier_ = PurchaseModel.load(folder / "classifier")
        return model


def _logit(probability: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probability, dtype=np.float64), 1e-6, 1.0 - 1e-6)
    return np.log(p / (1.0 - p))


def evaluate_order_model(
    train: pd.DataFrame,
    test: pd.DataFrame,
    cutoff: pd.Timestamp | str,
    *,
    test_days: float = 30.0,
    seed: int = 42,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Fit on ``train`` (events before ``cutoff``) and score every shopper with history.

    The label is "bought anything in the test period" (``test`` events); the scored
    population is every shopper with an event before the cutoff, so the metrics describe
    the probability the app shows for anyone it knows.

    Returns
    -------
    (metrics, reliability)
        :func:`recsys_core.metrics.classifier_metrics` plus ``shoppers`` and
        ``order_rate``, and the reliability table.
    """
    from recsys_core.metrics import reliability_table

    metrics, y_true, probability, _ = score_order_model(
        train, test, cutoff, test_days=test_days, seed=seed
    )
    return metrics, reliability_table(y_true, probability.to_numpy())


def score_order_model(
    train: pd.DataFrame,
    test: pd.DataFrame,
    cutoff: pd.Timestamp | str,
    *,
    test_days: float = 30.0,
    seed: int = 42,
) -> tuple[dict[str, float], np.ndarray, pd.Series, pd.Series]:
    """The one path that fits the order model on ``train`` and scores it on ``test``:
    ``(metrics, labels, order probability of every shopper with history, the same before
    the validation window's recalibration)`` (metrics as in :func:`evaluate_order_model`,
    plus ``ece``, ``ece_quantile``, ``logloss`` and ``mean_predicted`` before
    recalibration; used by it and by evaluation's overall probability)."""
    from recsys_core.metrics import classifier_metrics

    cutoff = pd.Timestamp(cutoff)
    model = OrderModel(horizon_days=test_days, seed=seed).fit(train, cutoff=cutoff)
    features = model.features_
    buyers = order_labels(test, cutoff, cutoff + pd.Timedelta(days=test_days))
    y_true = np.asarray(features.index.isin(buyers), dtype=np.int8)
    y_prob = model.predict_frame(features)
    raw = model.predict_frame(features, recalibrated=False)
    metrics = classifier_metrics(y_true, y_prob)
    before = classifier_metrics(y_true, raw)
    for key in ("ece", "ece_quantile", "logloss"):
        metrics[f"{key}_before_recalibration"] = before[key]
    metrics["mean_predicted_before_recalibration"] = float(raw.mean()) if len(raw) else np.nan
    metrics["shoppers"] = float(len(y_true))
    metrics["order_rate"] = float(y_true.mean()) if len(y_true) else float("nan")
    metrics["mean_predicted"] = float(y_prob.mean()) if len(y_prob) else float("nan")
    index = features.index  # shopper_features: text ids
    probability = pd.Series(y_prob, index=index, name="order_probability")
    return metrics, y_true, probability, pd.Series(raw, index=index, name="order_probability")
