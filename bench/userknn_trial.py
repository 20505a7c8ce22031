"""Scratch: a user-neighbour score (TIFU-KNN style) for ``bench/tune_ranker.py --variants``.

Hu et al., "Modeling Personalized Item Frequency Information for Next-basket
Recommendation" (SIGIR 2020). Per cutoff ``c``, from the purchases strictly before ``c``:

* each shopper's decayed item-frequency vector: every order-day (the calendar day of a
  purchase) weighs ``exp(-age_days / tau_days)`` (``age_days``: whole days from that day to
  ``c``); an item's value is the weight of the order-days that hold it over the weight of all
  the shopper's order-days (a decayed share of order-days, in [0, 1]);
* cosine similarity between shoppers' vectors, each shopper's ``k`` most similar other
  shoppers (positive similarity only);
* the score of (shopper, item): the similarity-weighted mean of the neighbours' values of the
  item (0 when no neighbour bought it; NaN for a shopper with no purchase before ``c``).

:func:`userknn_columns` returns ``userknn_score`` and ``userknn_rank`` (1 = the highest score
among the shopper's rows of the same cutoff; ties share the lowest rank; NaN where the score
is NaN) for rows carrying their cutoff. It is a trial, not a ranker feature.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

USERKNN_FEATURES: tuple[str, ...] = ("userknn_score", "userknn_rank")
#: the trial's defaults (``{"k": ..., "tau_days": ...}`` overrides either)
USERKNN_DEFAULTS: Mapping[str, float] = {"k": 100, "tau_days": 90.0}


def neighbour_scores(
    events: pd.DataFrame, cutoff: pd.Timestamp, k: int, tau_days: float
) -> tuple[pd.Index, pd.Index, np.ndarray, pd.Timestamp]:
    """The dense shoppers x items score matrix at ``cutoff`` (purchases strictly before it).

    Returns
    -------
    tuple
        The shoppers (row ids, text), the items (column ids, text), the scores and the
        latest event used (``< cutoff``).
    """
    past = events[(events["timestamp"] < cutoff).to_numpy()]
    past = past[(past["event"].astype(str) == "purchase").to_numpy()]
    days = past["timestamp"].dt.floor("D")
    baskets = pd.DataFrame(
        {
            "user": past["user_id"].astype(str).to_numpy(),
            "item": past["item_id"].astype(str).to_numpy(),
            "day": days.to_numpy(),
        }
    ).drop_duplicates()
    age = (pd.Timestamp(cutoff).floor("D") - baskets["day"]).dt.days.to_numpy(dtype=np.float64)
    weight = np.exp(-age / tau_days)
    users = pd.Index(np.unique(baskets["user"].to_numpy()))
    items = pd.Index(np.unique(baskets["item"].to_numpy()))
    row = users.get_indexer(baskets["user"].to_numpy())
    col = items.get_indexer(baskets["item"].to_numpy())
    freq = sp.csr_matrix((weight, (row, col)), shape=(len(users), len(items)))
    # each shopper's order-days' total weight (one per distinct day)
    per_day = baskets[["user", "day"]].drop_duplicates()
    day_age = (pd.Timestamp(cutoff).floor("D") - per_day["day"]).dt.days.to_numpy(np.float64)
    total = np.bincount(
        users.get_indexer(per_day["user"].to_numpy()),
        weights=np.exp(-day_age / tau_days),
        minlength=len(users),
    )
    freq = sp.diags(1.0 / total) @ freq
    norm = np.sqrt(np.asarray(freq.multiply(freq).sum(axis=1)).ravel())
    unit = sp.diags(1.0 / np.where(norm > 0, norm, 1.0)) @ freq
    sim = (unit @ unit.T).toarray()
    np.fill_diagonal(sim, 0.0)
    k = min(int(k), len(users) - 1)
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k > 0 else np.empty((len(users), 0))
    top_sim = np.take_along_axis(sim, top, axis=1)
    top_sim = np.where(top_sim > 0, top_sim, 0.0)
    rows = np.repeat(np.arange(len(users)), top.shape[1])
    weights = sp.csr_matrix((top_sim.ravel(), (rows, top.ravel())), shape=(len(users), len(users)))
    weights.eliminate_zeros()
    mass = np.asarray(weights.sum(axis=1)).ravel()
    scores = np.asarray((weights @ freq).todense())
    scores /= np.where(mass > 0, mass, 1.0)[:, None]
    return users, items, scores, pd.Timestamp(past["timestamp"].max())


def userknn_columns(
    events: pd.DataFrame,
    frame: pd.DataFrame,
    cutoff_column: str,
    settings: Mapping[str, float] | None = None,
) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """:data:`USERKNN_FEATURES` of ``frame``'s rows (``user_id``, ``item_id`` and
    ``cutoff_column``), one score matrix per distinct cutoff from the purchases before it.

    Returns the columns (indexed like ``frame``) and, per cutoff, what was computed (cutoff,
    last event used, shoppers, items, CPU seconds).
    """
    config = {**USERKNN_DEFAULTS, **(settings or {})}
    out = pd.DataFrame(np.nan, index=frame.index, columns=list(USERKNN_FEATURES))
    info: list[dict[str, object]] = []
    cutoffs = pd.to_datetime(frame[cutoff_column])
    score = np.full(len(frame), np.nan)
    for cutoff in sorted(cutoffs.unique()):
        cpu = time.process_time()
        at = (cutoffs == cutoff).to_numpy()
        users, items, scores, last = neighbour_scores(
            events, pd.Timestamp(cutoff), int(config["k"]), float(config["tau_days"])
        )
        u = users.get_indexer(frame.loc[at, "user_id"].astype(str).to_numpy())
        i = items.get_indexer(frame.loc[at, "item_id"].astype(str).to_numpy())
        values = np.where(i >= 0, scores[u, np.maximum(i, 0)], 0.0)
        score[np.flatnonzero(at)] = np.where(u >= 0, values, np.nan)
        info.append(
            {
                "cutoff": str(pd.Timestamp(cutoff)),
                "last_event": str(last),
                "shoppers": len(users),
                "items": len(items),
                "cpu_s": round(time.process_time() - cpu, 2),
            }
        )
    out["userknn_score"] = score
    keys = [frame["user_id"].astype(str).to_numpy(), cutoffs.to_numpy()]
    out["userknn_rank"] = (
        out["userknn_score"].groupby(keys).rank(method="min", ascending=False).to_numpy()
    )
    return out, info
