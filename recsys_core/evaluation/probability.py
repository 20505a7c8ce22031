"""Probability quality: the purchase classifier on its candidates, the order model on every
known shopper, and the number a product manager acts on, the overall probability
(order x purchase), over every known shopper's served list.

The overall probability is evaluated where it is used: for every shopper with training
history (not only the test buyers), each item of the list the lab would serve gets
``order_probability(shopper) x purchase_probability(shopper, item)``, and the label is 1 when
the shopper bought that item in the test window (a shopper who does not order makes every
item a 0). Both models must predict the same horizon, the test window's ``test_days``;
otherwise the block says so instead of scoring a mismatched product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import ID_COLUMNS, id_values
from recsys_core.metrics import classifier_metrics, reliability_table
from recsys_core.ranking.order_model import score_order_model

#: Column of the ranker's lists holding the purchase probability.
PURCHASE_PROBABILITY = "purchase_probability"


def classifier_block(
    frame: pd.DataFrame, relevant: pd.DataFrame
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """AUC, log loss, Brier and ECE (both binnings) of the ranker's scored test candidates.

    Returns the metrics and the reliability tables by binning (``uniform``, ``quantile``).
    """
    keys = pd.MultiIndex.from_arrays([id_values(relevant[c]) for c in ID_COLUMNS])
    cand = pd.MultiIndex.from_arrays(
        [id_values(frame[Columns.USER]), id_values(frame[Columns.ITEM])]
    )
    y_true = cand.isin(keys).astype(np.int8)
    y_prob = frame["purchase_probability"].to_numpy(dtype=np.float64)
    metrics = classifier_metrics(y_true, y_prob)
    metrics["candidates"] = float(len(frame))
    metrics["positive_rate"] = float(y_true.mean()) if len(y_true) else float("nan")
    metrics["mean_predicted"] = float(y_prob.mean()) if len(y_prob) else float("nan")
    metrics["candidate_recall"] = float(
        len(cand[cand.isin(keys)].unique()) / max(len(keys.unique()), 1)
    )
    tables = {
        strategy: reliability_table(y_true, y_prob, strategy=strategy)
        for strategy in ("uniform", "quantile")
    }
    return metrics, tables


def order_block(
    train: pd.DataFrame,
    test: pd.DataFrame,
    cutoff: pd.Timestamp,
    *,
    test_days: float,
    seed: int,
) -> tuple[dict[str, float], pd.Series, pd.Series]:
    """Fit the order model on ``train`` and score every shopper with history.

    Returns the metrics of :func:`recsys_core.ranking.order_model.evaluate_order_model`
    (same fit, same population), each shopper's order probability, and the same before the
    validation window's recalibration (for the before/after figures only).
    """
    metrics, _, probability, raw = score_order_model(
        train, test, cutoff, test_days=test_days, seed=seed
    )
    return metrics, probability, raw


def horizon_labels(
    test: pd.DataFrame,
    cutoff: pd.Timestamp,
    test_days: float,
    relevant_events: Sequence[str],
) -> pd.DataFrame:
    """``user_id, item_id`` bought in ``[cutoff, cutoff + test_days)``: the labels of the
    overall probability.

    Both models predict ``test_days`` ahead, but the test period runs to the log's last
    event from the midnight on or before ``last event - test_days``, so it is up to a day
    longer (Online Retail's: 30.5 days). Counting that extra part as purchases the models
    were asked about makes the product look too low. The relevant events fall back to every
    event type when the window has none of them, as the ranking metrics' do.
    """
    end = pd.Timestamp(cutoff) + pd.Timedelta(days=test_days)
    inside = test[(test[Columns.TIMESTAMP] < end).to_numpy()]
    mask = inside[Columns.EVENT].isin(list(relevant_events)).to_numpy()
    chosen = inside[mask] if mask.any() else inside
    return pd.DataFrame(
        {c: id_values(chosen[c]).to_numpy(dtype=object) for c in ID_COLUMNS}
    ).drop_duplicates(ignore_index=True)


def overall_probability_block(
    served: pd.DataFrame,
    order_probability: pd.Series,
    relevant: pd.DataFrame,
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Log loss, Brier, AUC and ECE (both binnings) of order x purchase.

    Parameters
    ----------
    served:
        The served lists of every known shopper (``user_id, item_id`` and
        ``purchase_probability``).
    order_probability:
        Each shopper's probability of ordering in the window (index: ``user_id``).
    relevant:
        ``user_id, item_id`` bought in the test window.

    Returns
    -------
    The metrics (with ``pairs``, ``shoppers``, ``positive_rate``, ``mean_predicted``) and the
    reliability tables by binning (``uniform``, ``quantile``).
    """
    users = id_values(served[Columns.USER])
    order = order_probability.reindex(users).to_numpy(dtype=np.float64)
    known = np.isfinite(order)
    purchase = served[PURCHASE_PROBABILITY].to_numpy(dtype=np.float64)
    y_prob = np.clip(order[known] * purchase[known], 0.0, 1.0)
    keys = pd.MultiIndex.from_arrays([id_values(relevant[c]) for c in ID_COLUMNS])
    pairs = pd.MultiIndex.from_arrays([users[known], id_values(served[Columns.ITEM])[known]])
    y_true = pairs.isin(keys).astype(np.int8)
    metrics: dict[str, Any] = classifier_metrics(y_true, y_prob)
    metrics["pairs"] = float(len(y_prob))
    metrics["shoppers"] = float(users[known].nunique())
    metrics["positive_rate"] = float(y_true.mean()) if len(y_true) else float("nan")
    metrics["mean_predicted"] = float(y_prob.mean()) if len(y_prob) else float("nan")
    metrics["population"] = (
        "every shopper with training history x the list served to them; a shopper who "
        "does not order in the test window makes each of their items a 0"
    )
    metrics["parts"] = overall_probability_parts(
        users[known], order[known], purchase[known], y_true, set(id_values(relevant[Columns.USER]))
    )
    tables = {
        strategy: reliability_table(y_true, y_prob, strategy=strategy)
        for strategy in ("uniform", "quantile")
    }
    return metrics, tables


def overall_probability_parts(
    users: np.ndarray,
    order: np.ndarray,
    purchase: np.ndarray,
    y_true: np.ndarray,
    buyers: set[str],
) -> dict[str, Any]:
    """Which half of order x purchase is off: each part against what happened.

    ``order``: the order model's mean over the scored shoppers against the share who bought
    anything in the window (``buyers``). ``purchase_given_order``: the purchase model's mean
    over the served pairs of the shoppers who did order against the share of those pairs
    bought, with both ECEs. ``observed_order_x_purchase``: both ECEs of the product with the
    order probability replaced by what happened (1 if the shopper ordered, else 0), which
    leaves only the purchase part's error. ``ratio`` is observed / predicted (1: right on
    average). ``gap`` splits the product's mean error exactly in two,
    ``observed - predicted = order_part + purchase_part`` with
    ``order_part = mean((ordered - order) * purchase)`` (the order model's error where the
    served probability is) and ``purchase_part = mean(ordered * (bought - purchase))``.
    """
    shopper = pd.DataFrame({"user": users, "order": order}).drop_duplicates("user")
    ordered_shopper = shopper["user"].isin(buyers).to_numpy()
    ordered = pd.Index(users).isin(buyers)
    parts: dict[str, Any] = {
        "order": _part(float(shopper["order"].mean()), float(ordered_shopper.mean()))
        | {"shoppers": float(len(shopper))},
    }
    order_part = float(np.mean((ordered - order) * purchase))
    purchase_part = float(np.mean(ordered * (y_true - purchase)))
    parts["gap"] = {
        "total": order_part + purchase_part,
        "order_part": order_part,
        "purchase_part": purchase_part,
    }
    if ordered.any():
        given = _part(float(purchase[ordered].mean()), float(y_true[ordered].mean()))
        given["pairs"] = float(ordered.sum())
        if 0 < y_true[ordered].sum() < ordered.sum():
            quality = classifier_metrics(y_true[ordered], purchase[ordered])
            given["ece"], given["ece_quantile"] = quality["ece"], quality["ece_quantile"]
        parts["purchase_given_order"] = given
        observed = classifier_metrics(y_true, np.where(ordered, purchase, 0.0))
        parts["observed_order_x_purchase"] = {
            "ece": observed["ece"],
            "ece_quantile": observed["ece_quantile"],
        }
    return parts


def _part(predicted: float, observed: float) -> dict[str, float]:
    ratio = observed / predicted if predicted > 0 else float("nan")
    return {"mean_predicted": predicted, "observed": observed, "ratio": ratio}


def horizon_mismatch(model: Any, test_days: float) -> str | None:
    """Why order x purchase cannot be scored for ``model`` (``None`` when it can)."""
    horizon = getattr(getattr(model, "config", None), "horizon_days", None)
    if horizon is None or float(horizon) == float(test_days):
        return None
    return (
        f"the purchase model predicts {horizon:g} days ahead but the test window (and the "
        f"order model) is {test_days:g} days: the product would mix two horizons. Evaluate "
        f"with --test-days {horizon:g} or set ranker.horizon_days={test_days:g}"
    )
