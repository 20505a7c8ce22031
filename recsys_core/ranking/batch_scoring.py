"""Every shopper's top-k purchase probabilities, in chunks of shoppers on a thread pool.

:func:`score_all_shoppers` answers what ``ranker.recommend(shoppers, k)`` answers, for any
number of shoppers, with memory bounded by the chunk: each chunk's candidates and features
(a few hundred rows of ~50 float64 columns per shopper) are built, scored and cut to the
top ``k`` before the next chunk starts on that worker, so the peak grows with
``chunk_size * workers``, never with the number of shoppers. Only the top-``k`` rows of
every chunk are kept.

The threads overlap well: stage one is dense matrix products (BLAS releases the GIL) and
LightGBM's prediction releases the GIL; only the pandas bookkeeping of a chunk holds it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.errors import ConfigError
from recsys_core.models.interface import check_k
from recsys_core.ranking.candidate_scoring import (
    DEFAULT_SCORING_CHUNK,
    MarginFunction,
    compact_candidates,
    scored_candidates,
)
from recsys_core.ranking.scoring import probability_frame

if TYPE_CHECKING:
    from recsys_core.ranking.ranker import TwoStageRanker

__all__ = ["DEFAULT_SCORING_CHUNK", "score_all_shoppers"]


def score_all_shoppers(
    ranker: TwoStageRanker,
    user_ids: Sequence[str] | None = None,
    k: int = 10,
    *,
    filter_seen: bool = False,
    chunk_size: int = DEFAULT_SCORING_CHUNK,
    workers: int | None = None,
    margins: MarginFunction | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> pd.DataFrame:
    """Top-``k`` of ``ranker`` for every shopper (or ``user_ids``), chunk by chunk.

    Parameters
    ----------
    ranker:
        A fitted :class:`~recsys_core.ranking.ranker.TwoStageRanker`.
    user_ids:
        Shoppers to score (duplicates answered once; shoppers without history get the
        cold-start list). Default: every shopper the ranker knows
        (:meth:`~recsys_core.ranking.ranker.TwoStageRanker.known_users`).
    k:
        Items per shopper.
    filter_seen:
        As :meth:`~recsys_core.ranking.ranker.TwoStageRanker.recommend`.
    chunk_size:
        Shoppers whose candidates are built and scored together (memory grows with it).
    workers:
        Threads scoring chunks at once (default: the number of cores).
    margins:
        Computes the classifier's margins of a feature matrix (default: the ranker's own
        LightGBM boosters); the serving layer passes its compiled trees.
    progress:
        Called with a message and the fraction of shoppers done.

    Returns
    -------
    pandas.DataFrame
        What :meth:`~recsys_core.ranking.ranker.TwoStageRanker.recommend` returns for the
        same shoppers: ``user_id``, ``item_id``, ``score``, ``rank``,
        ``purchase_probability``, ``cold_start``, sorted by shopper and rank.

    Raises
    ------
    ConfigError
        ``chunk_size`` or ``workers`` below 1, or a bad ``k``.
    """
    k = int(check_k(k))
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be at least 1, got {chunk_size}")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    ranker._check_fitted()
    users, warm = ranker._warm_users(ranker.known_users() if user_ids is None else user_ids)
    warm_users = users[warm]
    chunks = [warm_users[i : i + chunk_size] for i in range(0, len(warm_users), chunk_size)]

    def score(chunk: np.ndarray) -> pd.DataFrame:
        # ranked without the features: the chunk's ~50 feature columns are dropped before
        # the sort (it copied them twice: the shopper filter and the sorted rows)
        frame = compact_candidates(scored_candidates(ranker, list(chunk), margins))
        return ranker.recommend(list(chunk), k, filter_seen=filter_seen, candidates=frame)

    parts: list[pd.DataFrame] = []
    done = 0
    n_workers = min(workers or os.cpu_count() or 1, max(len(chunks), 1))
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        for part, chunk in zip(pool.map(score, chunks), chunks, strict=True):
            parts.append(part)
            done += len(chunk)
            if progress is not None:
                progress(f"scored {done:,} of {len(users):,} shoppers", done / max(len(users), 1))
    if (~warm).any():
        # the cold-start list
        parts.append(ranker.recommend(list(users[~warm]), k, filter_seen=filter_seen))
    if not parts:
        return probability_frame([], [], [], [], cold_start=False)
    reco = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if progress is not None:
        progress(f"scored {len(users):,} of {len(users):,} shoppers", 1.0)
    return reco.sort_values([Columns.USER, Columns.RANK], kind="stable", ignore_index=True)
