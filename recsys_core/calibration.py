"""Classifier metrics of predicted purchase probabilities: AUC, log loss, Brier and the
expected calibration error with equal-width or equal-mass bins (scikit-learn's
``calibration_curve`` binning), and the reliability table behind them.

Re-exported by :mod:`recsys_core.metrics`.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

#: How reliability bins are cut: equal width on [0, 1] or equal mass (quantiles).
BinningStrategy: TypeAlias = Literal["uniform", "quantile"]


# --------------------------------------------------------------------------------------
# Classifier metrics (purchase probability)
# --------------------------------------------------------------------------------------


def _binary_inputs(y_true: object, y_prob: object) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel()
    p = np.asarray(y_prob, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true and y_prob differ in length: {y.size} vs {p.size}")
    if y.size == 0:
        raise ValueError("y_true and y_prob are empty")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 0/1 (or False/True) labels")
    if np.isnan(p).any() or p.min() < 0.0 or p.max() > 1.0:
        raise ValueError("y_prob must be probabilities in [0, 1] without NaN")
    return y.astype(np.int64), p


def reliability_table(
    y_true: object,
    y_prob: object,
    n_bins: int = 10,
    strategy: BinningStrategy = "uniform",
) -> pd.DataFrame:
    """Reliability (calibration) table: predicted vs observed purchase rate per bin.

    Binning is that of :func:`sklearn.calibration.calibration_curve`:

    - ``"uniform"`` (default): ``n_bins`` equal-width bins on ``[0, 1]``;
    - ``"quantile"``: edges at the quantiles of ``y_prob``, so bins hold about equally many
      predictions (tied edges give empty bins).

    Bins are closed on the right, ``(lower, upper]``, except the first, which also holds
    its lower edge. Empty bins are left out.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``bin_lower, bin_upper, count`` (predictions in the bin),
        ``mean_predicted`` (mean ``y_prob``) and ``fraction_positive`` (mean ``y_true``).
    """
    y, p = _binary_inputs(y_true, y_prob)
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.percentile(p, np.linspace(0.0, 100.0, n_bins + 1))
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    bin_id = np.searchsorted(edges[1:-1], p)
    count = np.bincount(bin_id, minlength=n_bins)
    predicted = np.bincount(bin_id, weights=p, minlength=n_bins)
    positive = np.bincount(bin_id, weights=y.astype(np.float64), minlength=n_bins)
    filled = count > 0
    return pd.DataFrame(
        {
            "bin_lower": edges[:-1][filled],
            "bin_upper": edges[1:][filled],
            "count": count[filled],
            "mean_predicted": predicted[filled] / count[filled],
            "fraction_positive": positive[filled] / count[filled],
        }
    )


def expected_calibration_error(
    y_true: object,
    y_prob: object,
    n_bins: int = 10,
    strategy: BinningStrategy = "uniform",
) -> float:
    r"""Expected calibration error over the bins of :func:`reliability_table`.

    :math:`ECE = \sum_b \frac{n_b}{N} \lvert \bar y_b - \bar p_b \rvert`, with ``n_b`` the
    predictions in bin ``b``, ``\bar y_b`` their fraction of positives and ``\bar p_b``
    their mean predicted probability. Default: 10 equal-width bins.
    """
    table = reliability_table(y_true, y_prob, n_bins=n_bins, strategy=strategy)
    weights = table["count"].to_numpy(dtype=np.float64)
    gaps = np.abs(
        table["fraction_positive"].to_numpy(dtype=np.float64)
        - table["mean_predicted"].to_numpy(dtype=np.float64)
    )
    return float(np.sum(weights * gaps) / weights.sum())


def classifier_metrics(y_true: object, y_prob: object, n_bins: int = 10) -> dict[str, float]:
    """Quality of predicted purchase probabilities.

    Parameters
    ----------
    y_true
        1 if the user bought the item in the next period, else 0.
    y_prob
        Predicted purchase probability in ``[0, 1]``.
    n_bins
        Bins of both ECEs (see :func:`reliability_table`).

    Returns
    -------
    dict[str, float]
        ``auc`` (:func:`sklearn.metrics.roc_auc_score`; ``nan`` if ``y_true`` has a single
        class), ``logloss`` (:func:`sklearn.metrics.log_loss`, mean negative log-likelihood
        with probabilities clipped by scikit-learn), ``brier``
        (:func:`sklearn.metrics.brier_score_loss`, mean of ``(p - y)^2``), ``ece``
        (:func:`expected_calibration_error` over ``n_bins`` equal-width bins) and
        ``ece_quantile`` (the same over ``n_bins`` equal-mass bins). At a low base rate
        most predictions fall in the first equal-width bin, where a miscalibration among
        small probabilities averages out; equal-mass bins resolve it.
    """
    y, p = _binary_inputs(y_true, y_prob)
    auc = float(roc_auc_score(y, p)) if np.unique(y).size == 2 else float("nan")
    return {
        "auc": auc,
        "logloss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p, n_bins=n_bins, strategy="uniform"),
        "ece_quantile": expected_calibration_error(y, p, n_bins=n_bins, strategy="quantile"),
    }
