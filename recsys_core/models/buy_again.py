"""The buy-again baseline: each shopper's own items first, padded with popularity.

On logs where shoppers reorder (Online Retail: wholesale customers restock the same lines), a
shopper's own most-bought items are a strong list: Li et al., "A Next Basket Recommendation
Reality Check" (TOIS 2023) find most reported gains of next-basket models come from repeat
items. A comparison without this baseline is not a comparison.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from recsys_core.columns import Columns
from recsys_core.interactions import EventWeights, InteractionMatrix
from recsys_core.models.interface import Progress, RecommenderConfig
from recsys_core.models.matrix import MatrixRecommender
from recsys_core.models.popularity import PopularityRecommender

#: Width of the recency tie-break added to a count: always below one count step.
_RECENCY_SPAN = 0.999


class BuyAgainConfig(RecommenderConfig):
    """Settings of :class:`BuyAgainRecommender`."""

    half_life_days: float | None = Field(
        None,
        gt=0,
        description=(
            "None: rank a shopper's own items by their (event-weighted) count, ties by the "
            "most recent event. A number of days: rank them by a time-decayed count instead, "
            "each event weighing 0.5 ** (age / half_life_days) at the end of training. Needs "
            "timestamps; without them the plain count is used."
        ),
    )


class BuyAgainRecommender(MatrixRecommender):
    """Each shopper's own items by count then recency, then the most popular other items.

    Scores (so that ``score_items`` and ``recommend`` agree and own items always come first):

    * an item the shopper interacted with in training scores ``1 + count + recency``, where
      ``count`` is the sum of the event weights of the pair's events (purchase 5, view 1, ...,
      :class:`~recsys_core.interactions.EventWeights` without quantities) and ``recency`` in
      ``[0, 0.999]`` is the pair's last event time scaled over the training period (0 when
      trained from a matrix without timestamps). With ``half_life_days`` the count is
      time-decayed and ``recency`` is 0.
    * any other item scores its popularity divided by ``1 + the largest popularity`` (below 1).

    With ``filter_seen=True`` the own items are all left out, so the list is the popularity
    list without seen items. ``similar_items`` is the popularity model's co-occurrence.
    """

    name: ClassVar[str] = "buy-again"
    config_class: ClassVar[type[RecommenderConfig]] = BuyAgainConfig
    config: BuyAgainConfig  # type: ignore[assignment]

    own_scores_: sp.csr_matrix

    # the popularity model's index-level hooks, reused (not inherited: a saved buy-again
    # model must not load as a popularity model)
    _unseen_popular = PopularityRecommender._recommend_rows
    _similar_rows = PopularityRecommender._similar_rows
    _valid_scores = PopularityRecommender._valid_scores

    def _fit_model(self, matrix: sp.csr_matrix) -> None:
        """From a matrix alone: the count is the matrix cell (no recency)."""
        own = matrix.copy()
        own.data = 1.0 + own.data.astype(np.float64)
        self.own_scores_ = own

    def fit_log(
        self,
        events: pd.DataFrame,
        catalog: pd.DataFrame | None = None,
        *,
        cutoff: pd.Timestamp | str | None = None,
        matrix: InteractionMatrix | None = None,
        progress: Progress | None = None,
    ) -> Self:
        """Fit as every single-stage model, then count the pairs' events and their recency.

        ``matrix`` (when given) decides the shoppers and items the model knows; the counts
        and recency come from ``events`` (before ``cutoff``).
        """
        super().fit_log(events, catalog, cutoff=cutoff, matrix=matrix, progress=progress)
        if cutoff is not None and Columns.TIMESTAMP in events.columns:
            events = events[events[Columns.TIMESTAMP] < pd.Timestamp(cutoff)]
        self.own_scores_ = self._own_scores(events, cutoff)
        return self

    def _own_scores(self, events: pd.DataFrame, cutoff: pd.Timestamp | str | None) -> sp.csr_matrix:
        rows = self.users_.to_internal(events[Columns.USER])
        cols = self.items_.to_internal(events[Columns.ITEM])
        weight = (
            pd.Series(events[Columns.EVENT].to_numpy(dtype=object))
            .map(EventWeights().as_mapping())
            .fillna(0.0)
        ).to_numpy(dtype=np.float64)
        keep = (rows >= 0) & (cols >= 0) & (weight > 0)
        rows, cols, weight = rows[keep], cols[keep], weight[keep]
        shape = self.user_items_.shape
        timed = Columns.TIMESTAMP in events.columns and keep.any()
        if timed:
            ts = events[Columns.TIMESTAMP].to_numpy()[keep].astype("datetime64[ns]")
            seconds = (ts - ts.min()).astype("timedelta64[s]").astype(np.float64)
        half_life = self.config.half_life_days
        if timed and half_life is not None:
            end = (
                (pd.Timestamp(cutoff).to_datetime64() - ts.min())
                .astype("timedelta64[s]")
                .astype(np.float64)
                if cutoff is not None
                else seconds.max()
            )
            age_days = np.maximum(end - seconds, 0.0) / 86_400.0
            weight = weight * np.power(0.5, age_days / half_life)
        counts = sp.csr_matrix((weight, (rows, cols)), shape=shape, dtype=np.float64)
        counts.sum_duplicates()
        recency = sp.csr_matrix(shape, dtype=np.float64)
        if timed and half_life is None:
            span = max(float(seconds.max()), 1.0)
            # the last event of each pair: max over duplicates (coo -> csr sums, so sort)
            pair = rows.astype(np.int64) * shape[1] + cols
            order = np.lexsort((seconds, pair))
            last = np.r_[pair[order][1:] != pair[order][:-1], True]
            chosen = order[last]
            recency = sp.csr_matrix(
                (_RECENCY_SPAN * seconds[chosen] / span, (rows[chosen], cols[chosen])),
                shape=shape,
            )
        own = counts + recency
        own.data += 1.0
        own.sort_indices()
        return sp.csr_matrix(own)

    # ------------------------------------------------------------------ scoring

    def _padding_scale(self) -> float:
        return 1.0 / (1.0 + float(self.item_popularity_.max(initial=0.0)))

    def _recommend_rows(
        self, rows: np.ndarray, n: int, filter_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Own items (best first, at most ``n``), then the ``n`` most popular unowned items."""
        pad_ids, pad_scores = self._unseen_popular(rows, n, filter_seen=True)  # type: ignore[misc]
        pad_scores = np.where(pad_ids >= 0, pad_scores * self._padding_scale(), -np.inf)
        if filter_seen:
            return pad_ids, pad_scores
        own = self.own_scores_[rows]
        width = int(min(n, np.diff(own.indptr).max(initial=0)))
        own_ids = np.full((len(rows), width), -1, dtype=np.int64)
        own_scores = np.full((len(rows), width), -np.inf)
        for r in range(len(rows)):
            start, end = own.indptr[r], own.indptr[r + 1]
            items, scores = own.indices[start:end], own.data[start:end]
            best = np.lexsort((items, -scores))[:width]
            own_ids[r, : len(best)] = items[best]
            own_scores[r, : len(best)] = scores[best]
        ids = np.concatenate([own_ids, pad_ids], axis=1)
        scores = np.concatenate([own_scores, pad_scores], axis=1)
        # own rows shorter than `width` leave -1 gaps: push them to the end of the row
        order = np.argsort(ids < 0, axis=1, kind="stable")
        return np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        own = np.asarray(self.own_scores_[users, items], dtype=np.float64).ravel()
        padding = self.item_popularity_[items] * self._padding_scale()
        return np.where(own > 0, own, padding)

    # ------------------------------------------------------------------ persistence

    def _state_arrays(self) -> dict[str, np.ndarray]:
        own = self.own_scores_
        return {"own_data": own.data, "own_indices": own.indices, "own_indptr": own.indptr}

    def _restore_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.own_scores_ = sp.csr_matrix(
            (arrays["own_data"], arrays["own_indices"], arrays["own_indptr"]),
            shape=self.user_items_.shape,
        )
