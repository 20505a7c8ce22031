"""Stage one of the purchase model: candidate items per user, with ALS and item-kNN scores.

:class:`CandidateGenerator` fits an ALS and an item-kNN recommender on the events before a
cutoff and proposes, for each user,

* the top ``n_als`` items of ALS and the top ``n_itemknn`` items of item-kNN (seen items
  included: shoppers, wholesalers above all, reorder), and
* up to ``n_history`` items from the user's own history, most recently used first.

Every candidate carries both models' scores and ranks (the stage-one features of
:data:`~recsys_core.ranking.features.STAGE_ONE_FEATURES`): ``als_score`` is the dot product of
the factors, ``itemknn_score`` the sum of similarities to the user's items; ranks are exact
1-based positions among all items (item-kNN rank is NaN where its score is 0, i.e. no
similar item in the user's history). Scores are computed in blocks of users with dense
matrix products, never with a loop per user.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_ids
from recsys_core.errors import ArtifactError, ModelNotTrainedError, UnknownUserError
from recsys_core.interactions import EventWeights, IdMap, InteractionMatrix
from recsys_core.models import ALSConfig, ALSRecommender, ItemKNNConfig, ItemKNNRecommender
from recsys_core.ranking.features import STAGE_ONE_FEATURES, events_before
from recsys_core.ranking.stage_one_kernel import candidate_cells

__all__ = ["CandidateGenerator"]

#: Score-matrix cells per block (users x items); bounds memory to a few tens of MB.
_BLOCK_CELLS: Final = 4_000_000


class CandidateGenerator:
    """ALS + item-kNN + own-history candidates, fitted on the events before a cutoff.

    Parameters
    ----------
    als, itemknn:
        Settings of the two stage-one recommenders.
    event_weights:
        Weights of the interaction matrix both recommenders learn from.
    n_als, n_itemknn:
        Candidates taken from each recommender's top list (0 disables one).
    n_history:
        Most recently used items of the user's own history added as candidates.

    Attributes
    ----------
    cutoff_ : pandas.Timestamp
        Only events strictly before it were used.
    als_ : ALSRecommender
    itemknn_ : ItemKNNRecommender
    users_, items_ : IdMap
        The stage-one id maps (users and items with events before the cutoff).
    history_indptr_, history_items_ : numpy.ndarray
        CSR-style lists of each user's items (indices into ``items_``), most recent first,
        at most ``n_history`` each.
    """

    cutoff_: pd.Timestamp
    als_: ALSRecommender
    itemknn_: ItemKNNRecommender
    history_indptr_: np.ndarray
    history_items_: np.ndarray

    def __init__(
        self,
        *,
        als: ALSConfig | None = None,
        itemknn: ItemKNNConfig | None = None,
        event_weights: EventWeights | None = None,
        n_als: int = 100,
        n_itemknn: int = 200,
        n_history: int = 500,
    ) -> None:
        self.als = als or ALSConfig()
        self.itemknn = itemknn or ItemKNNConfig()
        self.event_weights = event_weights or EventWeights()
        self.n_als = n_als
        self.n_itemknn = n_itemknn
        self.n_history = n_history
        self._scoring: tuple[np.ndarray, sp.csr_matrix] | None = None

    # ------------------------------------------------------------------ fitting

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` or :meth:`load` has run."""
        return hasattr(self, "history_items_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise ModelNotTrainedError("the candidate generator is not fitted: call fit() first")

    @property
    def users_(self) -> IdMap:
        """Users the stage-one models know."""
        self._check_fitted()
        return self.als_.users_

    @property
    def items_(self) -> IdMap:
        """Items the stage-one models know."""
        self._check_fitted()
        return self.als_.items_

    def fit(self, events: pd.DataFrame, cutoff: pd.Timestamp) -> Self:
        """Fit ALS and item-kNN on the events strictly before ``cutoff``.

        Parameters
        ----------
        events:
            Canonical event log with timestamps; later events are ignored.
        cutoff:
            The instant the candidates are for.

        Returns
        -------
        Self
        """
        cutoff = pd.Timestamp(cutoff)
        past = events_before(events, cutoff)
        matrix = InteractionMatrix.from_events(past, self.event_weights)
        self.als_ = ALSRecommender(self.als).fit(matrix)
        self.itemknn_ = ItemKNNRecommender(self.itemknn).fit(matrix)
        self._scoring = None
        self.cutoff_ = cutoff
        self._set_history(past, matrix.users, matrix.items)
        return self

    def _set_history(self, past: pd.DataFrame, users: IdMap, items: IdMap) -> None:
        """Each user's items, most recently used first (ties by item index)."""
        u = users.to_internal(past[Columns.USER])
        i = items.to_internal(past[Columns.ITEM])
        ts = past[Columns.TIMESTAMP].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        last = pd.DataFrame({"u": u, "i": i, "ts": ts}).groupby(["u", "i"], sort=False)["ts"].max()
        pu = last.index.get_level_values("u").to_numpy(dtype=np.int64)
        pi = last.index.get_level_values("i").to_numpy(dtype=np.int64)
        order = np.lexsort((pi, -last.to_numpy(), pu))
        pu, pi = pu[order], pi[order]
        position = np.arange(len(pu)) - np.searchsorted(pu, pu)
        keep = position < self.n_history
        pu, pi = pu[keep], pi[keep]
        self.history_indptr_ = np.r_[0, np.cumsum(np.bincount(pu, minlength=len(users)))].astype(
            np.int64
        )
        self.history_items_ = pi.astype(np.int64)

    # ------------------------------------------------------------------ scoring

    def _block_size(self) -> int:
        return max(1, _BLOCK_CELLS // max(1, len(self.items_)))

    def _scoring_arrays(self) -> tuple[np.ndarray, sp.csr_matrix]:
        """ALS item factors (transposed) and the kNN similarity in float64, built once."""
        if self._scoring is None:
            self._scoring = (
                np.ascontiguousarray(self.als_.item_factors_.T, dtype=np.float64),
                sp.csr_matrix(self.itemknn_.similarity_, dtype=np.float64),
            )
        return self._scoring

    def _score_block(self, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        """Scores and exact ranks of every item for user indices ``rows``.

        Returns ``als_score, als_rank, knn_score, knn_rank`` as ``(len(rows), n_items)``
        arrays (ranks 1-based, float; item-kNN rank NaN where its score is not positive).
        """
        als, knn = self._block_scores(rows)
        return (als, _ranks(als), knn, np.where(knn > 0, _ranks(knn), np.nan))

    def _block_scores(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ALS and item-kNN scores of every item for user indices ``rows``."""
        item_factors, similarity = self._scoring_arrays()
        als = self.als_.user_factors_[rows].astype(np.float64) @ item_factors
        knn_rows = self.itemknn_.user_items_[rows].astype(np.float64)
        return als, np.asarray((knn_rows @ similarity).todense())

    def candidates(self, user_ids: Sequence[str]) -> pd.DataFrame:
        """Candidate items of each user with their stage-one scores.

        Parameters
        ----------
        user_ids:
            Users known to the stage-one models; duplicates are answered once.

        Returns
        -------
        pandas.DataFrame
            ``user_id``, ``item_id`` (str) and :data:`STAGE_ONE_FEATURES`; one row per
            distinct (user, candidate item), users in the given order, items by index.

        Raises
        ------
        UnknownUserError
            A user without events before the cutoff.
        """
        self._check_fitted()
        users, rows = self._known_rows(user_ids)
        r, i, values = self.candidate_cells(rows)
        if len(r) == 0:
            return _empty_candidates()
        # ids from _known_rows and the item IdMap: already canonical str
        frame = pd.DataFrame({Columns.USER: users[r], Columns.ITEM: self.items_.to_external(i)})
        for column, name in enumerate(STAGE_ONE_FEATURES):
            frame[name] = values[:, column]
        return frame

    def candidate_cells(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`candidates` by indices: ``(positions, items, values)``.

        ``positions`` index ``rows`` (stage-one user indices, distinct), ``items`` the
        stage-one items; ``values`` is ``(n, 4)`` float64 in the order of
        :data:`STAGE_ONE_FEATURES`. Rows in the order of ``rows``, each one's items
        ascending (what :meth:`candidates` returns, without ids).
        """
        self._check_fitted()
        rows = np.asarray(rows, dtype=np.int64)
        positions: list[np.ndarray] = []
        items: list[np.ndarray] = []
        values: list[np.ndarray] = []
        step = self._block_size()
        for start in range(0, len(rows), step):
            block = rows[start : start + step]
            r, i, v = self._block_cells(block)
            positions.append(start + r)
            items.append(i)
            values.append(v)
        if not positions:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4))
        return np.concatenate(positions), np.concatenate(items), np.concatenate(values)

    def _block_cells(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate cells of one block of users: linear in the items
        (:func:`~recsys_core.ranking.stage_one_kernel.candidate_cells`), or by sorting each
        row where a score is not finite."""
        item_factors, similarity = self._scoring_arrays()
        als = self.als_.user_factors_[block].astype(np.float64) @ item_factors
        knn_sparse = sp.csr_matrix(self.itemknn_.user_items_[block].astype(np.float64) @ similarity)
        starts = self.history_indptr_[block]
        sizes = self.history_indptr_[block + 1] - starts
        hist_rows, hist_items = self._history_cells(block)
        fast = candidate_cells(
            als, knn_sparse, np.r_[0, np.cumsum(sizes)], hist_items, self.n_als, self.n_itemknn
        )
        if fast is not None:
            return fast
        # the ranks of _score_block, computed only where a candidate needs one
        knn = np.asarray(knn_sparse.todense())
        als_sorted, knn_sorted = np.sort(als, axis=1), np.sort(knn, axis=1)
        chosen = np.zeros(als.shape, dtype=bool)
        if self.n_als:
            chosen |= _top_mask(als, self.n_als, als_sorted)
        if self.n_itemknn:
            chosen |= _top_mask(knn, self.n_itemknn, knn_sorted) & (knn > 0)  # NaN rank at 0
        chosen[hist_rows, hist_items] = True
        r, i = np.nonzero(chosen)
        columns = [
            als[r, i],
            _cell_ranks(als, r, i, als_sorted),
            knn[r, i],
            _positive_cell_ranks(knn, r, i, knn_sorted),
        ]
        return r.astype(np.int64), i.astype(np.int64), np.column_stack(columns)

    def score_pairs(
        self, user_ids: Sequence[str] | np.ndarray, item_ids: Sequence[str] | np.ndarray
    ) -> np.ndarray:
        """Stage-one scores and ranks of arbitrary (user, item) pairs.

        Parameters
        ----------
        user_ids, item_ids:
            Same-length sequences; pair ``j`` is ``(user_ids[j], item_ids[j])``.

        Returns
        -------
        numpy.ndarray
            ``(n, 4)`` float64 in the order of :data:`STAGE_ONE_FEATURES`; NaN where the
            user or the item is unknown to the stage-one models.
        """
        self._check_fitted()
        u = self.users_.to_internal(list(user_ids))
        i = self.items_.to_internal(list(item_ids))
        if len(u) != len(i):
            raise ValueError(f"got {len(u)} users and {len(i)} items; pass one item per user")
        out = np.full((len(u), len(STAGE_ONE_FEATURES)), np.nan)
        known = (u >= 0) & (i >= 0)
        if not known.any():
            return out
        rows, inverse = np.unique(u[known], return_inverse=True)
        known_at = np.flatnonzero(known)
        step = self._block_size()
        for start in range(0, len(rows), step):
            block = rows[start : start + step]
            als, knn = self._block_scores(block)
            sel = (inverse >= start) & (inverse < start + len(block))
            r, c = inverse[sel] - start, i[known_at[sel]]
            out[known_at[sel]] = np.column_stack(
                [als[r, c], _cell_ranks(als, r, c), knn[r, c], _positive_cell_ranks(knn, r, c)]
            )
        return out

    def _known_rows(self, user_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(user_ids, str):
            raise TypeError("pass a sequence of user ids, e.g. ['u1'], not a single string")
        users = np.asarray(pd.unique(canonical_ids(list(user_ids))), dtype=object)
        rows = self.users_.to_internal(users)
        if (rows < 0).any():
            unknown = ", ".join(repr(str(x)) for x in users[rows < 0][:5])
            raise UnknownUserError(
                f"unknown user id {unknown}: no events before {self.cutoff_}; candidates exist "
                "only for users with history (use the cold-start list for new shoppers)"
            )
        return users.astype(object), rows

    def _history_cells(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(block row, item index) of every history candidate of users ``rows``."""
        starts = self.history_indptr_[rows]
        sizes = self.history_indptr_[rows + 1] - starts
        block_rows = np.repeat(np.arange(len(rows)), sizes)
        offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return block_rows, self.history_items_[np.repeat(starts, sizes) + offsets]

    # ------------------------------------------------------------------ persistence

    def save(self, folder: Path) -> None:
        """Save both recommenders (their own format) and the history lists."""
        self._check_fitted()
        folder.mkdir(parents=True, exist_ok=True)
        self.als_.save(folder / "als")
        self.itemknn_.save(folder / "itemknn")
        np.savez(
            folder / "history.npz",
            history_indptr=self.history_indptr_,
            history_items=self.history_items_,
            cutoff_ns=np.asarray([self.cutoff_.value], dtype=np.int64),
        )

    def load(self, folder: Path) -> Self:
        """Restore a generator saved by :meth:`save` (settings come from ``__init__``).

        Raises
        ------
        ArtifactError
            Missing or corrupted files, or models and history that do not fit together.
        """
        als = ALSRecommender.load(folder / "als")
        itemknn = ItemKNNRecommender.load(folder / "itemknn")
        try:
            with np.load(folder / "history.npz", allow_pickle=False) as data:
                indptr = data["history_indptr"]
                items = data["history_items"]
                cutoff = pd.Timestamp(int(data["cutoff_ns"][0]))
        except Exception as exc:  # zip, OS, key and value errors all mean a bad file
            raise ArtifactError(f"cannot read {folder / 'history.npz'}: {exc}") from exc
        same_maps = len(als.users_) == len(itemknn.users_) and len(als.items_) == len(
            itemknn.items_
        )
        if (
            not same_maps
            or len(indptr) != len(als.users_) + 1
            or (len(items) and items.max() >= len(als.items_))
        ):
            raise ArtifactError(f"the stage-one models in {folder} do not fit together")
        self.als_, self.itemknn_, self.cutoff_ = als, itemknn, cutoff
        self._scoring = None
        self.history_indptr_, self.history_items_ = indptr.astype(np.int64), items.astype(np.int64)
        return self


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every cell within its row, highest score first (ties by column)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty(scores.shape, dtype=np.float64)
    np.put_along_axis(
        ranks, order, np.broadcast_to(np.arange(1, scores.shape[1] + 1.0), scores.shape), axis=1
    )
    return ranks


def _top_mask(scores: np.ndarray, n: int, ordered: np.ndarray | None = None) -> np.ndarray:
    """``_ranks(scores) <= n`` without ranking: the cells above each row's ``n``-th largest
    score, and of the cells equal to it the first ones by column (a stable sort's order).
    ``ordered``: ``np.sort(scores, axis=1)`` when already at hand."""
    m = scores.shape[1]
    if n >= m:
        return np.ones(scores.shape, dtype=bool)
    if ordered is None:
        threshold = np.partition(scores, m - n, axis=1)[:, m - n][:, None]
    else:
        threshold = ordered[:, m - n][:, None]
    above = scores > threshold
    equal = scores == threshold
    chosen = above | equal
    room = n - above.sum(axis=1)  # at least 1: one equal cell always fits
    crowded = np.flatnonzero(equal.sum(axis=1) > room)  # rows where ties must be cut
    if len(crowded):
        chosen[crowded] = above[crowded] | (
            equal[crowded] & (np.cumsum(equal[crowded], axis=1) <= room[crowded][:, None])
        )
    return chosen


def _cell_ranks(
    scores: np.ndarray, r: np.ndarray, c: np.ndarray, ordered: np.ndarray | None = None
) -> np.ndarray:
    """``_ranks(scores)[r, c]``: each cell's 1-based rank in its row, highest first, ties by
    column, counted from a value-sorted copy of the row (``ordered``, computed when not
    given; an order of magnitude faster than the stable argsort) instead of ranking every
    cell."""
    out = np.empty(len(r), dtype=np.float64)
    if len(r) == 0:
        return out
    order = np.argsort(r, kind="stable")
    rows, cols = r[order], c[order]
    present = np.unique(rows)
    lines = np.sort(scores[present], axis=1) if ordered is None else ordered[present]
    width = scores.shape[1]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    ranks = np.empty(len(rows), dtype=np.float64)
    for line, (a, b) in zip(lines, zip(starts, ends, strict=True), strict=True):
        row = rows[a]
        values = scores[row, cols[a:b]]
        right = np.searchsorted(line, values, side="right")
        rank = (width - right + 1).astype(np.float64)  # 1 + cells scoring higher
        tied = right - np.searchsorted(line, values, side="left") > 1
        if tied.any():
            rank[tied] += _equal_before(scores[row], cols[a:b][tied])
        ranks[a:b] = rank
    out[order] = ranks
    return out


def _positive_cell_ranks(
    scores: np.ndarray, r: np.ndarray, c: np.ndarray, ordered: np.ndarray | None = None
) -> np.ndarray:
    """:func:`_cell_ranks` where the score is positive, NaN elsewhere (item-kNN's rank)."""
    out = np.full(len(r), np.nan)
    positive = scores[r, c] > 0
    out[positive] = _cell_ranks(scores, r[positive], c[positive], ordered)
    return out


def _equal_before(line: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For each column of ``cols``: how many columns before it hold the same value."""
    at = np.flatnonzero(np.isin(line, line[cols]))
    values = line[at]
    order = np.lexsort((at, values))  # by value, then column
    values, at = values[order], at[order]
    first = np.r_[True, values[1:] != values[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(values)), 0))
    before = np.zeros(len(line), dtype=np.int64)
    before[at] = np.arange(len(values)) - group_start
    return before[cols]


def _empty_candidates() -> pd.DataFrame:
    frame = pd.DataFrame(
        {Columns.USER: pd.Series([], dtype=str), Columns.ITEM: pd.Series([], dtype=str)}
    )
    for name in STAGE_ONE_FEATURES:
        frame[name] = np.array([], dtype=np.float64)
    return frame
