"""The purchase classifier: LightGBM (scikit-learn API) plus a probability calibrator.

:class:`PurchaseModel` is an ordinary scikit-learn classifier: ``__init__`` stores settings,
``fit(X, y)`` returns ``self``, ``predict_proba`` gives calibrated probabilities and
``decision_function`` the classifier's raw margin (log-odds before calibration, the scale
SHAP explains).

Calibration
-----------
The rows are split by group (the shopper) into a *fit* part that trains LightGBM and a
held-out *calibration* part (``calibration_fraction`` of the shoppers, seeded). The
calibrator learns from the held-out part's margins *of the served model* (with several fold
models: their mean margin, exactly what is served). Two calibrators are compared by
two-fold cross-validation on that part (again split by shopper), each fitted on one half
and scored by log loss on the other:

* ``isotonic``: :class:`sklearn.isotonic.IsotonicRegression` (monotone step function,
  linear interpolation between its thresholds, clipped at the ends);
* ``sigmoid`` (Platt): :class:`sklearn.linear_model.LogisticRegression` on the margin,
  ``p = 1 / (1 + exp(-(coef * margin + intercept)))``.

The one with the lower mean log loss is refitted on the whole calibration part (or the
method is fixed by ``calibration``). With ``cross_fit_folds=K`` the fit part's shoppers are
split into ``K`` folds and one LightGBM model is trained per fold on the other ``K - 1``;
the served margin is the mean of the ``K`` models' margins (and SHAP values are the mean
of their SHAP values, so ``base + contributions = served margin`` still holds). The models
stay separate LightGBM boosters: nothing edits LightGBM's model format.
Probabilities are clipped to ``[1e-6, 1 - 1e-6]``.

Saved folder (no pickle)
------------------------
``booster_0.txt``, ``booster_1.txt``, ...
    LightGBM's own text models (``Booster.save_model``), one per fold model.
``calibrator.json`` (written last)
    ``{"format_version", "feature_names", "params", "boosters", "calibration": {...}}``:
    the method and the isotonic ``x``/``y`` or the Platt ``coef``/``intercept``.
"""

from __future__ import annotations

import inspect
import json
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, Literal, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GroupKFold

from recsys_core.errors import ArtifactError, DataValidationError, ModelNotTrainedError
from recsys_core.io_utils import atomic_write_text
from recsys_core.ranking.calibration import (
    CalibrationMethod,
    Calibrator,
    _group_split,
    _require_both_classes,
    choose_calibrator,
    top_of_lists,
)
from recsys_core.ranking.fit_memory import train_booster_on_rows
from recsys_core.ranking.objectives import Objective, window_weights

__all__ = ["Calibrator", "CalibrationMethod", "PurchaseModel", "group_codes"]

#: Version of the saved-folder layout (2: separate fold boosters, calibrated on held-out
#: margins of their mean; 1 held one hand-averaged booster and cannot be read).
PURCHASE_MODEL_FORMAT: Final = 2
BOOSTER_FILE: Final = "booster_{}.txt"
CALIBRATOR_FILE: Final = "calibrator.json"

#: Whether this LightGBM's scikit-learn ``fit`` takes ``eval_X``/``eval_y`` (4.7+).
_EVAL_XY: Final = "eval_X" in inspect.signature(lgb.LGBMClassifier.fit).parameters


def group_codes(groups: np.ndarray | pd.Series) -> np.ndarray:
    """Each row's group as its rank among the sorted distinct groups (int64).

    Every split of the fit (the calibration part, the early-stopping part, the fold models'
    :class:`~sklearn.model_selection.GroupKFold`) orders the groups as :func:`numpy.unique`
    does, so the ranks split the rows exactly as the groups themselves; the groups (shopper
    ids, text) are hashed once here instead of sorted as text by each split (the grocery
    ranker's 1.8M rows: 3.9 -> 0.5 CPU s for all of them, ``bench/bench_group_splits.py``).
    """
    codes, _ = pd.factorize(np.asarray(groups).ravel(), sort=True, use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64)


class PurchaseModel(ClassifierMixin, BaseEstimator):
    """Calibrated LightGBM classifier of "the shopper buys this item in the next period".

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples, subsample,
    colsample_bytree, reg_lambda:
        LightGBM settings (:class:`lightgbm.LGBMClassifier`).
    calibration:
        ``auto`` (choose isotonic or sigmoid by cross-validated log loss on the calibration
        part), ``isotonic`` or ``sigmoid``.
    calibration_fraction:
        Share of the groups (shoppers) held out to fit the calibrator.
    random_state, n_jobs:
        Seed of LightGBM and of the fit/calibration split; LightGBM threads.
    cross_fit_folds:
        ``0`` (default): one LightGBM model on the fit part. ``K >= 2``: the fit part's
        shoppers are split into ``K`` folds and one model is trained per fold on the other
        ``K - 1`` (seed ``random_state + k``); the served margin is the mean of the ``K``
        models' margins (less variance; fit time grows about ``K - 1`` times). Either way
        the calibrator learns from the served margin of the held-out calibration part.
    fold_workers:
        Fold models trained at the same time (threads, each with ``n_jobs`` LightGBM
        threads). The fitted model does not depend on it.
    early_stopping_rounds:
        ``0`` (default): every model has ``n_estimators`` trees. ``R >= 1``: ``n_estimators``
        is a cap; each model stops once the log loss of shoppers it does not train on has
        not improved for ``R`` trees and keeps only the trees up to its best iteration (the
        saved and served model has no trees beyond it). With fold models those shoppers
        are the model's own left-out fold; with one model they are
        ``early_stopping_fraction`` of the fit part's shoppers (seeded), which LightGBM then
        does not train on (a fit part of one shopper trains without stopping). The
        calibration shoppers are never used for stopping.
    early_stopping_fraction:
        Share of the fit part's shoppers held out to stop a single model
        (``cross_fit_folds=0`` with early stopping); unused otherwise.
    calibration_top_k:
        ``None``: the calibrator learns from every held-out row; ``K``: from each held-out
        list's ``K`` rows of highest served margin, what a list serves (``fit(lists=)``).
    objective, window_weight_decay:
        The trees' objective (``binary``, or ``lambdarank`` / ``rank_xendcg`` over the
        ``fit(lists=)`` lists) and the weight ratio of each training window to the next newer
        one (``fit(window_age=)``; 1: unweighted); see :mod:`~recsys_core.ranking.objectives`.
        Either other than the default needs ``cross_fit_folds >= 2``.

    Attributes
    ----------
    boosters_ : list of lightgbm.Booster
        The fitted models (one, or one per fold); the served margin is their mean.
    best_iterations_ : list of int
        Trees kept in each model (``n_estimators`` without early stopping).
    calibrator_ : Calibrator
        Fitted on the held-out shoppers' served margins.
    feature_names_in_ : numpy.ndarray
    classes_ : numpy.ndarray
        ``[0, 1]``.
    calibration_log_loss_ : dict[str, float]
        Cross-validated log loss of each candidate calibrator (empty when fixed).
    calibration_rows_ : int
        Held-out rows the calibrator learnt from.
    """

    boosters_: list[lgb.Booster]
    best_iterations_: list[int]
    calibrator_: Calibrator
    feature_names_in_: np.ndarray
    classes_: np.ndarray
    calibration_log_loss_: dict[str, float]
    calibration_rows_: int

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 100,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        calibration: Literal["auto", "isotonic", "sigmoid"] = "auto",
        calibration_fraction: float = 0.25,
        random_state: int = 42,
        n_jobs: int = 1,
        cross_fit_folds: int = 0,
        fold_workers: int = 1,
        early_stopping_rounds: int = 0,
        early_stopping_fraction: float = 0.2,
        calibration_top_k: int | None = None,
        objective: Objective = "binary",
        window_weight_decay: float = 1.0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.cross_fit_folds = cross_fit_folds
        self.fold_workers = fold_workers
        self.early_stopping_rounds = early_stopping_rounds
        self.early_stopping_fraction = early_stopping_fraction
        self.calibration_top_k = calibration_top_k
        self.objective = objective
        self.window_weight_decay = window_weight_decay

    # ------------------------------------------------------------------ fitting

    def _classifier(self, seed: int) -> lgb.LGBMClassifier:
        return lgb.LGBMClassifier(
            objective=self.objective,
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1 else 0,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            random_state=seed,
            n_jobs=self.n_jobs,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )

    def _train(
        self,
        seed: int,
        features: pd.DataFrame,
        label: np.ndarray,
        stop: tuple[pd.DataFrame, np.ndarray] | None,
    ) -> lgb.Booster:
        """One LightGBM model; with ``stop`` rows, early-stopped and cut at its best tree."""
        classifier = self._classifier(seed)
        if stop is None or self.early_stopping_rounds <= 0:
            return classifier.fit(features, label).booster_
        stop_features, stop_label = stop
        # LightGBM 4.7 renamed eval_set to eval_X/eval_y (the old name warns)
        stop_set: dict[str, Any] = (
            {"eval_X": (stop_features,), "eval_y": (stop_label,)}
            if _EVAL_XY
            else {"eval_set": [(stop_features, stop_label)]}
        )
        classifier.fit(
            features,
            label,
            **stop_set,
            eval_metric="binary_logloss",
            callbacks=[lgb.early_stopping(int(self.early_stopping_rounds), verbose=False)],
        )
        booster = classifier.booster_
        best = int(booster.best_iteration) or booster.current_iteration()
        # keep only the trees up to the best iteration (LightGBM's own API, no text
        # editing), so what is saved, served, compiled and explained is the same model
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray | pd.Series,
        *,
        groups: np.ndarray | pd.Series | None = None,
        lists: np.ndarray | pd.Series | None = None,
        window_age: np.ndarray | pd.Series | None = None,
        progress: Callable[[str, float], None] | None = None,
    ) -> Self:
        """Train LightGBM on part of the groups and the calibrator on the rest.

        Parameters
        ----------
        X:
            Feature frame (its column names become the feature names).
        y:
            1 if the shopper bought the item in the label period, else 0.
        groups:
            Group of each row (the shopper); groups are never split between the fit and
            calibration parts. Rows are their own groups when omitted.
        lists:
            List of each row (a shopper in a window; default the groups): ``calibration_top_k``
            and the ranking objectives.
        window_age:
            Training-window age of each row (0: newest), for ``window_weight_decay``.
        progress:
            Called with a message and the fraction done as fold models finish.

        Raises
        ------
        DataValidationError
            Too little data: a part without both classes.
        """
        if not isinstance(X, pd.DataFrame):
            raise TypeError("fit() takes a DataFrame whose columns name the features")
        label = np.asarray(y).astype(np.int64).ravel()
        if len(label) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(label)}")
        group = np.arange(len(X)) if groups is None else group_codes(groups)
        folds = self.cross_fit_folds
        whole = isinstance(folds, int | np.integer) and not isinstance(folds, bool)
        if not whole or folds < 0 or folds == 1:
            raise ValueError(f"cross_fit_folds must be 0 or a whole number >= 2, got {folds!r}")
        weight = window_weights(None if window_age is None else np.asarray(window_age),
                                float(self.window_weight_decay))  # fmt: skip
        if (weight is not None or self.objective != "binary") and folds < 2:
            raise ValueError("a ranking objective or window weights need cross_fit_folds >= 2")
        row_list = group if lists is None else group_codes(lists)
        features = X.astype(np.float64)
        fit_part, cal_part = _group_split(group, self.calibration_fraction, self.random_state)
        for name, part in (("training", fit_part), ("calibration", cal_part)):
            _require_both_classes(label[part], name)
        if folds >= 2:
            # row numbers, not a copy of the fit part: each fold copies only its own rows
            self.boosters_ = self._fit_folds(
                features, np.flatnonzero(fit_part), label, group, int(folds), progress,
                row_list, weight,
            )  # fmt: skip
        elif self.early_stopping_rounds > 0 and len(np.unique(group[fit_part])) >= 2:
            # a slice of the fit part's shoppers (never the calibration part) stops the model
            train_rows, stop_rows = _group_split(
                group[fit_part], self.early_stopping_fraction, self.random_state + 2
            )
            fit_features, fit_label = features[fit_part], label[fit_part]
            _require_both_classes(fit_label[train_rows], "training")
            self.boosters_ = [
                self._train(
                    self.random_state,
                    fit_features[train_rows],
                    fit_label[train_rows],
                    (fit_features[stop_rows], fit_label[stop_rows]),
                )
            ]
        else:
            one = self._train(self.random_state, features[fit_part], label[fit_part], None)
            self.boosters_ = [one]
        self.best_iterations_ = [int(b.num_trees()) for b in self.boosters_]
        self.feature_names_in_ = np.asarray(features.columns, dtype=object)
        self.classes_ = np.array([0, 1])
        self._explainers: list[Any] | None = None
        # the calibrator sees the served margin (the fold models' mean) of held-out shoppers
        margin = self._margin(features[cal_part].to_numpy(), int(self.fold_workers))
        top = top_of_lists(margin, row_list[cal_part], self.calibration_top_k)
        _require_both_classes(label[cal_part][top], "calibration (top of the lists)")
        self.calibrator_, self.calibration_log_loss_ = choose_calibrator(
            self.calibration, margin[top], label[cal_part][top], group[cal_part][top],
            self.random_state + 1,
        )  # fmt: skip
        self.calibration_rows_ = int(top.sum())
        return self

    def _fit_folds(
        self,
        all_features: pd.DataFrame,
        rows: np.ndarray,
        all_label: np.ndarray,
        all_group: np.ndarray,
        folds: int,
        progress: Callable[[str, float], None] | None = None,
        lists: np.ndarray | None = None,
        weight: np.ndarray | None = None,
    ) -> list[lgb.Booster]:
        """One booster per shopper fold of the rows ``rows``, each trained on the other folds
        (in fold order).

        Folds come from :class:`sklearn.model_selection.GroupKFold` (whole shoppers, folds
        of about equal size).
        """
        label, group = all_label[rows], all_group[rows]
        n_groups = len(np.unique(group))
        if n_groups < folds:
            raise DataValidationError(
                f"cross-fitting with {folds} folds needs at least {folds} shoppers, got "
                f"{n_groups}: use fewer folds or a longer log"
            )
        fold = np.zeros(len(group), dtype=np.int64)
        splitter = GroupKFold(n_splits=folds)
        for k, (_, held) in enumerate(splitter.split(np.zeros((len(group), 1)), groups=group)):
            fold[held] = k
        for k in range(folds):
            _require_both_classes(label[fold != k], "training")

        finished: list[int] = []
        # one view of every row (no copy for a frame of float64 columns); each fold's rows
        # are copied, binned and released one fold at a time (fit_memory)
        matrix, names = all_features.to_numpy(), [str(c) for c in all_features.columns]

        def fit_fold(k: int) -> lgb.Booster:
            train = fold != k
            # with early stopping, the fold's own left-out shoppers stop its model
            stop = (rows[~train], label[~train]) if self.early_stopping_rounds > 0 else None
            booster = train_booster_on_rows(
                self._classifier(self.random_state + k), matrix, names, rows[train],
                label[train], stop, self.early_stopping_rounds, lists=lists, weight=weight,
            )  # fmt: skip
            finished.append(k)
            if progress is not None:
                progress(f"fold {len(finished)} of {folds} trained", len(finished) / folds)
            return booster

        # LightGBM releases the GIL while it trains, so fold models fit in parallel threads;
        # each is seeded and deterministic and they are kept in fold order: the result does
        # not depend on the number of workers.
        workers = max(1, min(int(self.fold_workers), folds))
        if workers == 1:
            return [fit_fold(k) for k in range(folds)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fit_fold, range(folds)))

    # ------------------------------------------------------------------ predicting

    def _check_fitted(self) -> None:
        if not hasattr(self, "boosters_"):
            raise ModelNotTrainedError("the purchase model is not trained: call fit() first")

    @property
    def booster_(self) -> lgb.Booster:
        """The one LightGBM model (``cross_fit_folds=0``).

        With several fold models there is no single booster to use: predictions and SHAP
        go through :meth:`decision_function` and :meth:`shap_values`, which average them.
        """
        self._check_fitted()
        if len(self.boosters_) != 1:
            raise AttributeError(
                f"the purchase model serves the mean of {len(self.boosters_)} fold models: use "
                "decision_function() and shap_values(), not one booster"
            )
        return self.boosters_[0]

    def _matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        self._check_fitted()
        if isinstance(X, pd.DataFrame):
            missing = [c for c in self.feature_names_in_ if c not in X.columns]
            if missing:
                raise ValueError(f"missing feature columns: {missing}")
            return X[list(self.feature_names_in_)].to_numpy(dtype=np.float64)
        matrix = np.asarray(X, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.feature_names_in_):
            raise ValueError(
                f"expected {len(self.feature_names_in_)} feature columns, got shape {matrix.shape}"
            )
        return matrix

    def _margin(self, matrix: np.ndarray, workers: int = 1) -> np.ndarray:
        """The served margin: the mean of the fold models' raw margins (the same bits when
        the models predict on ``workers`` threads, as in fit)."""
        if len(matrix) == 0:
            return np.zeros(0)
        raw = lambda b: np.asarray(b.predict(matrix, raw_score=True), dtype=np.float64)  # noqa: E731
        if min(workers, len(self.boosters_)) < 2:
            parts = [raw(booster) for booster in self.boosters_]
        else:
            with ThreadPoolExecutor(max_workers=min(workers, len(self.boosters_))) as pool:
                parts = list(pool.map(raw, self.boosters_))
        return sum(parts, np.zeros(len(matrix))) / len(self.boosters_)  # in the old order

    def _tree_explainers(self) -> list[Any]:
        explainers = getattr(self, "_explainers", None)
        if explainers is None:
            import shap

            explainers = [shap.TreeExplainer(b) for b in self.boosters_]
            self._explainers = explainers
        return explainers

    @property
    def expected_value(self) -> float:
        """SHAP's base value of the served margin (mean of the fold models' base values)."""
        self._check_fitted()
        values = [
            float(np.asarray(e.expected_value, dtype=np.float64).ravel()[-1])
            for e in self._tree_explainers()
        ]
        return float(np.mean(values))

    def shap_values(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """SHAP values (log-odds) of the served margin, ``(n_rows, n_features)``.

        Exact path-dependent tree SHAP of each fold model (``shap.TreeExplainer``),
        averaged: SHAP values are additive, so ``expected_value + row sum`` equals
        :meth:`decision_function` of the row.
        """
        matrix = self._matrix(X)
        total = np.zeros(matrix.shape)
        for explainer in self._tree_explainers():
            with warnings.catch_warnings():
                # shap notes that LightGBM binary output changed shape across versions
                warnings.simplefilter("ignore", UserWarning)
                values = explainer.shap_values(matrix)
            if isinstance(values, list):  # older shap: one array per class
                values = values[-1]
            values = np.asarray(values, dtype=np.float64)
            if values.ndim == 3:  # (n, features, classes)
                values = values[..., -1]
            total += values
        return total / len(self.boosters_)

    def decision_function(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The classifier's raw margin (log-odds before calibration) of each row."""
        return self._margin(self._matrix(X))

    def purchase_probability(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated probability that the shopper buys the item, one per row."""
        return self.calibrator_.predict(self.decision_function(X))

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """``(n, 2)`` calibrated probabilities of classes 0 (no purchase) and 1 (purchase)."""
        prob = self.purchase_probability(X)
        return np.column_stack([1.0 - prob, prob])

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """1 where the calibrated purchase probability is at least 0.5."""
        return (self.purchase_probability(X) >= 0.5).astype(np.int64)

    # ------------------------------------------------------------------ persistence

    def save(self, folder: Path | str) -> None:
        """Write ``booster_<k>.txt`` per fold model and ``calibrator.json`` (no pickle)."""
        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CALIBRATOR_FILE).unlink(missing_ok=True)
        for old in folder.glob(BOOSTER_FILE.format("*")):
            old.unlink()
        for k, booster in enumerate(self.boosters_):
            booster.save_model(str(folder / BOOSTER_FILE.format(k)))
        payload = {
            "format_version": PURCHASE_MODEL_FORMAT,
            "feature_names": [str(f) for f in self.feature_names_in_],
            "boosters": len(self.boosters_),
            "calibration_rows": self.calibration_rows_,
            "params": self.get_params(),
            "calibration": self.calibrator_.to_dict(),
            "calibration_log_loss": self.calibration_log_loss_,
            "lightgbm_version": lgb.__version__,
        }
        atomic_write_text(folder / CALIBRATOR_FILE, json.dumps(payload, indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path | str) -> PurchaseModel:
        """Load a model written by :meth:`save`.

        Raises
        ------
        ArtifactError
            Missing, corrupted or inconsistent files.
        """
        folder = Path(folder)
        path = folder / CALIBRATOR_FILE
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            version = payload.get("format_version")
            if version != PURCHASE_MODEL_FORMAT:
                raise ValueError(
                    f"format version {version!r}, this version of the lab reads "
                    f"{PURCHASE_MODEL_FORMAT}"
                )
            model = cls(**payload["params"])
            model.calibrator_ = Calibrator.from_dict(payload["calibration"])
            model.calibration_log_loss_ = {
                str(k): float(v) for k, v in payload.get("calibration_log_loss", {}).items()
            }
            model.calibration_rows_ = int(payload.get("calibration_rows", 0))
            names = [str(f) for f in payload["feature_names"]]
            n_boosters = int(payload["boosters"])
            if n_boosters < 1:
                raise ValueError(f"{n_boosters} boosters")
        except (
            OSError,
            UnicodeDecodeError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
        ) as exc:
            raise ArtifactError(
                f"cannot read the purchase model's {path}: {exc}; retrain and save it again"
            ) from exc
        boosters = []
        for k in range(n_boosters):
            booster_path = folder / BOOSTER_FILE.format(k)
            if not booster_path.is_file():
                raise ArtifactError(
                    f"{booster_path} is missing: the saved purchase model is incomplete"
                )
            try:
                booster = lgb.Booster(model_file=str(booster_path))
            except (lgb.basic.LightGBMError, OSError, ValueError) as exc:
                raise ArtifactError(
                    f"{booster_path} is not a readable LightGBM model: {exc}"
                ) from exc
            if booster.feature_name() != names:
                raise ArtifactError(
                    f"{booster_path} has features {booster.feature_name()[:5]}..., "
                    f"{path} lists {names[:5]}...: the files do not belong together"
                )
            boosters.append(booster)
        model.boosters_ = boosters
        model.best_iterations_ = [int(b.num_trees()) for b in boosters]
        model._explainers = None
        model.feature_names_in_ = np.asarray(names, dtype=object)
        model.classes_ = np.array([0, 1])
        return model
