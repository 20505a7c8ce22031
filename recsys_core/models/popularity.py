"""The popularity baseline: everyone gets the items most training users interacted with."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from recsys_core.models.interface import RecommenderConfig
from recsys_core.models.matrix import MatrixRecommender


class PopularityConfig(RecommenderConfig):
    """Settings of :class:`PopularityRecommender` (only the shared ``seed``, unused)."""


class PopularityRecommender(MatrixRecommender):
    """Items ranked by the number of distinct training users, ties broken by item id.

    ``score`` is that number of users. ``similar_items`` ranks items by co-occurrence: the
    number of users who interacted with both items (items with none in common are left out).
    ``score_items`` gives the item's popularity whatever the (known) user.
    """

    name: ClassVar[str] = "popularity"
    config_class: ClassVar[type[RecommenderConfig]] = PopularityConfig
    config: PopularityConfig

    def _fit_model(self, matrix: sp.csr_matrix) -> None:
        """Nothing to learn: the popularity ranking is kept by the base class."""

    def _valid_scores(self, scores: np.ndarray) -> np.ndarray:
        return scores > 0

    def _recommend_rows(
        self, rows: np.ndarray, n: int, filter_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` items of the popularity ranking that each user has not seen.

        Works on positions in the ranking without building a users x catalog array: with a
        user's seen positions sorted as ``s_0 < s_1 < ...`` and ``t_m = s_m - m``, the
        ``j``-th unseen position is ``j + #{m : t_m <= j}`` (one ``searchsorted`` for all
        users at once).
        """
        n_items = self.n_items
        wanted = np.arange(n, dtype=np.int64)
        positions = np.broadcast_to(wanted, (len(rows), n))
        if filter_seen:
            rank_of = np.empty(n_items, dtype=np.int64)
            rank_of[self._popular_order] = np.arange(n_items)
            seen = self.user_items_[rows]
            starts = seen.indptr[:-1].astype(np.int64)
            owner = np.repeat(np.arange(len(rows), dtype=np.int64), np.diff(seen.indptr))
            seen_pos = rank_of[seen.indices]
            order = np.lexsort((seen_pos, owner))
            seen_pos = seen_pos[order]
            shifted = seen_pos - (np.arange(len(seen_pos)) - starts[owner])
            stride = np.int64(n_items + n + 1)  # keys of different users never interleave
            keys = owner * stride + shifted
            queries = np.arange(len(rows), dtype=np.int64)[:, None] * stride + wanted
            positions = wanted + np.searchsorted(keys, queries, side="right") - starts[:, None]
        inside = positions < n_items
        ids = np.where(inside, self._popular_order[np.minimum(positions, n_items - 1)], -1)
        scores = np.where(inside, self.item_popularity_[np.maximum(ids, 0)], -np.inf)
        return ids, scores

    def _similar_rows(self, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        binary = self.user_items_.copy()
        binary.data = (binary.data > 0).astype(np.float32)
        binary.eliminate_zeros()
        item_users = binary.T.tocsr()
        co_counts = np.asarray((item_users[rows] @ binary).todense(), dtype=np.float64)
        # most users in common first, ties by item index
        index = np.broadcast_to(np.arange(self.n_items), co_counts.shape)
        order = np.lexsort((index, -co_counts), axis=-1)[:, :n]
        return order, np.take_along_axis(co_counts, order, axis=1)

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.asarray(self.item_popularity_[items], dtype=np.float64)
