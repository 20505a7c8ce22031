"""Training objectives and row weights of the purchase classifier's LightGBM models.

The purchase model's trees learn ``objective="binary"`` by default (log loss of "bought in
the label window"). Two other settings change *what the trees learn from the same rows*,
never which rows there are nor how the served margin becomes a probability (the calibrator
still maps the served margin of held-out shoppers to a probability):

* a **ranking objective** (``lambdarank`` or ``rank_xendcg``): the rows are grouped in lists,
  one per shopper and training window (what one served list ranks), and LightGBM learns to
  order each list; its margin is a ranking score, not a log-odds, so early stopping watches
  NDCG@10 of the stopping shoppers' lists instead of their log loss
  (:func:`ranking_rows`, :func:`booster_params`);
* **weights by training-window age** (:func:`window_weights`): the newest window's rows
  weigh 1 and each older window's ``decay`` times the next newer one's.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import numpy as np

__all__ = [
    "RANKING_OBJECTIVES",
    "Objective",
    "booster_params",
    "ranking_rows",
    "window_ages",
    "window_weights",
]

Objective = Literal["binary", "lambdarank", "rank_xendcg"]

#: Objectives that learn the order of each list (LightGBM query groups).
RANKING_OBJECTIVES: Final = frozenset({"lambdarank", "rank_xendcg"})

#: The list depth early stopping scores a ranking objective at (NDCG@10, a served list).
STOP_AT: Final = 10


def booster_params(params: dict[str, Any], stopping: bool) -> dict[str, Any]:
    """``params`` of a LightGBM model with what its objective needs to stop.

    A ranking objective is stopped by NDCG@:data:`STOP_AT` of the stopping lists (its
    margin is no log-odds, so their log loss means nothing); a binary model's parameters
    are returned unchanged.
    """
    if params.get("objective") not in RANKING_OBJECTIVES:
        return params
    return {**params, "metric": ["ndcg"] if stopping else [], "eval_at": [STOP_AT]}


def ranking_rows(rows: np.ndarray, lists: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order that makes each list of ``rows`` contiguous, and the list sizes.

    Parameters
    ----------
    rows:
        Row positions.
    lists:
        The list code (an integer) of every row position (``lists[rows]`` are ``rows``'s).

    Returns
    -------
    order, sizes:
        ``rows[order]`` holds each list's rows together (lists by code, rows in their
        original order within a list); ``sizes`` are the lists' lengths in that order
        (LightGBM's ``group``).
    """
    codes = np.asarray(lists)[np.asarray(rows)]
    order = np.argsort(codes, kind="stable")
    _, sizes = np.unique(codes[order], return_counts=True)
    return order, sizes


def window_ages(cutoffs: np.ndarray) -> np.ndarray:
    """Each row's training-window age: 0 for the newest window cutoff, 1 for the one before..."""
    values = np.asarray(cutoffs)
    distinct, codes = np.unique(values, return_inverse=True)
    return (len(distinct) - 1 - codes.ravel()).astype(np.int64)


def window_weights(ages: np.ndarray | None, decay: float) -> np.ndarray | None:
    """Row weights ``decay ** age`` (``None``: unweighted, when ``decay`` is 1 or no ages)."""
    if ages is None or decay == 1.0:
        return None
    return np.power(float(decay), np.asarray(ages, dtype=np.float64))
