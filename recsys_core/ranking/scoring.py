"""Turning scored candidates into recommendation frames."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsys_core.models.interface import recommendation_frame
from recsys_core.ranking.config import PURCHASE_PROBABILITY

__all__ = ["cold_start_frame", "probability_frame"]


def probability_frame(
    users: Sequence[object] | np.ndarray,
    items: Sequence[object] | np.ndarray,
    probability: Sequence[float] | np.ndarray,
    ranks: Sequence[int] | np.ndarray,
    *,
    cold_start: bool,
) -> pd.DataFrame:
    """A recommendation frame whose score is the probability, with its own column too."""
    prob = np.asarray(probability, dtype=np.float64)
    frame = recommendation_frame(
        np.asarray(users, dtype=object),
        np.asarray(items, dtype=object),
        prob,
        np.asarray(ranks, dtype=np.int64),
        cold_start=cold_start,
    )
    frame.insert(4, PURCHASE_PROBABILITY, prob)
    return frame


def cold_start_frame(users: np.ndarray, items: np.ndarray, rates: np.ndarray) -> pd.DataFrame:
    """The cold-start list (``items`` with their base ``rates``) for each of ``users``."""
    n = len(items)
    return probability_frame(
        np.repeat(users, n),
        np.tile(items, len(users)),
        np.tile(rates, len(users)),
        np.tile(np.arange(1, n + 1), len(users)),
        cold_start=True,
    )
