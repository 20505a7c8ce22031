"""The calibrator: a fitted map from the purchase classifier's margin to a probability.

Isotonic (monotone step function, linear interpolation between its thresholds) or Platt
(sigmoid) scaling; see :mod:`recsys_core.ranking.purchase_model` for how one is chosen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GroupShuffleSplit

from recsys_core.errors import DataValidationError

__all__ = ["CalibrationMethod", "Calibrator", "choose_calibrator", "top_of_lists"]

CalibrationMethod = Literal["isotonic", "sigmoid"]

_EPS: Final = 1e-6


@dataclass(frozen=True)
class Calibrator:
    """A fitted map from the classifier's margin to a probability.

    Attributes
    ----------
    method:
        ``isotonic`` or ``sigmoid``.
    x, y:
        Isotonic thresholds (margins, increasing) and their probabilities.
    coef, intercept:
        Platt scaling parameters.
    """

    method: CalibrationMethod
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    coef: float = 1.0
    intercept: float = 0.0

    @classmethod
    def fit(cls, method: CalibrationMethod, margin: np.ndarray, label: np.ndarray) -> Calibrator:
        """Fit a calibrator of the given ``method`` on margins and 0/1 labels."""
        margin = np.asarray(margin, dtype=np.float64)
        label = np.asarray(label, dtype=np.float64)
        if method == "isotonic":
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(margin, label)
            return cls(
                "isotonic",
                x=np.asarray(iso.X_thresholds_, dtype=np.float64),
                y=np.asarray(iso.y_thresholds_, dtype=np.float64),
            )
        platt = LogisticRegression(C=np.inf).fit(margin[:, None], label.astype(np.int64))
        return cls("sigmoid", coef=float(platt.coef_[0, 0]), intercept=float(platt.intercept_[0]))

    def predict(self, margin: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of ``margin`` (clipped to ``[1e-6, 1 - 1e-6]``)."""
        margin = np.asarray(margin, dtype=np.float64)
        if self.method == "isotonic":
            prob = np.interp(margin, self.x, self.y)
        else:
            prob = 1.0 / (1.0 + np.exp(-(self.coef * margin + self.intercept)))
        return np.clip(prob, _EPS, 1.0 - _EPS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        if self.method == "isotonic":
            return {"method": "isotonic", "x": self.x.tolist(), "y": self.y.tolist()}
        return {"method": "sigmoid", "coef": self.coef, "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        """Rebuild from :meth:`to_dict` output (``KeyError``/``ValueError`` if malformed)."""
        method = data["method"]
        if method == "isotonic":
            x = np.asarray(data["x"], dtype=np.float64)
            y = np.asarray(data["y"], dtype=np.float64)
            if x.ndim != 1 or x.shape != y.shape or len(x) == 0:
                raise ValueError("isotonic thresholds must be two equal-length lists")
            return cls("isotonic", x=x, y=y)
        if method == "sigmoid":
            return cls("sigmoid", coef=float(data["coef"]), intercept=float(data["intercept"]))
        raise ValueError(f"unknown calibration method {method!r}")


def _require_both_classes(label: np.ndarray, name: str) -> None:
    """DataValidationError unless ``label`` holds both purchases and non-purchases."""
    if len(np.unique(label)) < 2:
        raise DataValidationError(
            f"the purchase model's {name} part has no "
            f"{'purchases' if label.sum() == 0 else 'non-purchases'}: the label "
            "period is too short or there are too few shoppers; use a longer log"
        )


def _group_split(groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (first part, second part) splitting whole groups at random.

    :class:`sklearn.model_selection.GroupShuffleSplit` with ``round(fraction * groups)``
    groups (at least one, at most all but one) in the second part.
    """
    n_groups = len(np.unique(groups))
    n_second = min(n_groups - 1, max(1, int(round(fraction * n_groups))))
    second = np.zeros(len(groups), dtype=bool)
    if n_second < 1:
        return ~second, second
    splitter = GroupShuffleSplit(n_splits=1, test_size=n_second, random_state=seed)
    _, second_rows = next(splitter.split(np.zeros((len(groups), 1)), groups=groups))
    second[second_rows] = True
    return ~second, second


def top_of_lists(score: np.ndarray, lists: np.ndarray, k: int | None) -> np.ndarray:
    """Whether each row is among the ``k`` highest ``score`` rows of its list (ties: the
    earlier row first), as a boolean mask in row order; every row with ``k=None``."""
    if k is None:
        return np.ones(len(score), dtype=bool)
    order = np.lexsort((np.arange(len(score)), -np.asarray(score), np.asarray(lists)))
    ordered = np.asarray(lists)[order]
    new_list = np.r_[True, ordered[1:] != ordered[:-1]] if len(order) else np.zeros(0, bool)
    start = np.maximum.accumulate(np.where(new_list, np.arange(len(order)), 0))
    top = np.empty(len(order), dtype=bool)
    top[order] = np.arange(len(order)) - start < k
    return top


def choose_calibrator(
    method: Literal["auto", "isotonic", "sigmoid"],
    margin: np.ndarray,
    label: np.ndarray,
    group: np.ndarray,
    seed: int,
) -> tuple[Calibrator, dict[str, float]]:
    """The calibrator of ``method``, or with ``auto`` isotonic or sigmoid, whichever has the
    lower two-fold (by group, seeded) log loss, refitted on all rows; and those log losses
    (empty when ``method`` is fixed)."""
    if method != "auto":
        return Calibrator.fit(method, margin, label), {}
    half_a, half_b = _group_split(group, 0.5, seed)
    losses: dict[str, float] = {}
    methods: tuple[CalibrationMethod, ...] = ("isotonic", "sigmoid")
    for candidate in methods:
        fold_losses = []
        for train, test in ((half_a, half_b), (half_b, half_a)):
            if len(np.unique(label[train])) < 2:
                continue
            prob = Calibrator.fit(candidate, margin[train], label[train]).predict(margin[test])
            fold_losses.append(log_loss(label[test], prob, labels=[0, 1]))
        losses[candidate] = float(np.mean(fold_losses)) if fold_losses else math.inf
    best: CalibrationMethod = min(methods, key=lambda m: losses[m])
    return Calibrator.fit(best, margin, label), losses
