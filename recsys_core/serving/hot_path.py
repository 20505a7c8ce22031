"""The service's hot path: one shopper's answer from arrays prepared when a lab is loaded.

The models' public methods (``recommend``, ``similar_items``, ``purchase_probability``)
take lists of ids and return DataFrames: right for batches, but for one shopper their
overhead (id lookups through pandas, frames, sorting, a fresh BLAS thread limit) is 50x the
arithmetic. Here each model is prepared once:

* id -> index maps are plain dicts, titles an array aligned with the model's items, the
  popularity (cold-start) list precomputed;
* each shopper's training row is read straight from the CSR arrays;
* the purchase model's trees are compiled (:mod:`recsys_core.serving.compiled_trees`) and a
  shopper's candidate features are gathered with the same array lookups the ranker uses.

Every step computes exactly what the models' own methods compute (the same implicit calls,
the same stage-one block, the same feature tables, bit-identical tree margins), so the
answers do not change; ``tests/core/serving/test_service_golden.py`` checks them against
answers recorded before this module existed.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_core.errors import ConfigError, UnknownItemError
from recsys_core.models.adapters import ImplicitRecommender
from recsys_core.models.blas import blas_controller, single_threaded_blas
from recsys_core.models.interface import PADDING_SCORE
from recsys_core.models.matrix import MatrixRecommender
from recsys_core.models.registry import POPULARITY

if TYPE_CHECKING:  # numba: imported when a purchase model's trees are first compiled
    from recsys_core.serving.compiled_trees import CompiledTrees

#: Shoppers whose ranked candidates a prepared ranker keeps (about 5 KB each).
RANKED_CACHE_SIZE = 1024

#: Behaviour features whose sum says the shopper already interacted with the item.


@dataclass(frozen=True)
class TopItems:
    """One shopper's top list from one model, before titles and JSON.

    ``item_ids`` are external ids; ``rows`` their indices in the answering model's item map
    (``None`` for the ranker, whose list carries its own ``probabilities``).
    """

    item_ids: np.ndarray
    titles: np.ndarray
    scores: np.ndarray
    cold_start: bool
    rows: np.ndarray | None = None
    probabilities: np.ndarray | None = None


def check_k(k: int) -> int:
    """A positive whole number of results, or a ConfigError."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be a positive whole number of results, got {k!r}")
    return int(k)


def titles_for(item_ids: np.ndarray, titles: pd.Series) -> np.ndarray:
    """Titles aligned with ``item_ids`` (the id itself where the catalog has none)."""
    ids = pd.Index(np.asarray(item_ids, dtype=object))  # a model's IdMap: canonical str
    found = titles.reindex(ids)
    text = found.astype(str).to_numpy()  # display text, not an id
    return np.where(found.isna().to_numpy(), ids.to_numpy(), text).astype(object)


@lru_cache(maxsize=1)
def _blas_single_threaded() -> bool:
    """Whether every BLAS library of this process already runs one thread (``serve`` starts
    its workers so), checked once: then the per-answer limit (~20-50 µs of threadpoolctl
    bookkeeping) is skipped."""
    infos = blas_controller().select(user_api="blas").info()
    return bool(infos) and all(int(i.get("num_threads", 0)) == 1 for i in infos)


def _positions(ids: np.ndarray) -> dict[str, int]:
    return {str(v): i for i, v in enumerate(ids)}


class PreparedRecommender:
    """A single-stage recommender (popularity, item-kNN, BPR, ALS) ready for one-shopper calls."""

    def __init__(self, model: MatrixRecommender, titles: pd.Series) -> None:
        self.model = model
        self.item_ids = np.asarray(model.items_.external_ids, dtype=object)
        self.titles = titles_for(self.item_ids, titles)
        self.user_row = _positions(model.users_.external_ids)
        self.item_row = _positions(self.item_ids)
        matrix = model.user_items_
        self._indptr, self._indices, self._data = matrix.indptr, matrix.indices, matrix.data
        self._warm = np.diff(matrix.indptr) > 0
        popular = np.asarray(model._popular_order, dtype=np.int64)
        popularity = np.asarray(model.item_popularity_, dtype=np.float64)
        self._popular_rows = popular
        self._popular_scores = popularity[popular]
        # the cold-start list: most popular first, only items someone interacted with
        self._cold_rows = popular[popularity[popular] > 0]
        self._cold_scores = popularity[self._cold_rows]

    def top(self, user_id: str, k: int, filter_seen: bool) -> TopItems:
        """What ``model.recommend([user_id], k, filter_seen=...)`` answers, as arrays."""
        row = self.user_row.get(user_id, -1)
        if row < 0 or not self._warm[row]:
            rows = self._cold_rows[:k]
            return self._top(rows, self._cold_scores[:k], cold_start=True)
        n = min(k, len(self.item_ids))
        ids, scores = self._candidates(row, n, filter_seen)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        valid = (ids >= 0) & np.isfinite(scores) & (scores > PADDING_SCORE)
        valid &= self.model._valid_scores(scores)
        if filter_seen:
            valid &= ~np.isin(ids, self.seen_rows(row))
        keep = valid & (np.cumsum(valid) <= k)
        return self._top(ids[keep], scores[keep], cold_start=False)

    def _top(self, rows: np.ndarray, scores: np.ndarray, *, cold_start: bool) -> TopItems:
        return TopItems(
            item_ids=self.item_ids[rows],
            titles=self.titles[rows],
            scores=np.asarray(scores, dtype=np.float64),
            cold_start=cold_start,
            rows=rows,
        )

    def seen_rows(self, row: int) -> np.ndarray:
        """Item indices of one training shopper's interactions."""
        return self._indices[self._indptr[row] : self._indptr[row + 1]]

    def _row_matrix(self, row: int) -> sp.csr_matrix:
        """``user_items_[[row]]`` without scipy's fancy indexing (same arrays, same dtypes)."""
        start, end = self._indptr[row], self._indptr[row + 1]
        indptr = np.array([0, end - start], dtype=self._indptr.dtype)
        return sp.csr_matrix(
            (self._data[start:end], self._indices[start:end], indptr),
            shape=(1, len(self.item_ids)),
        )

    def _candidates(self, row: int, n: int, filter_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        model = self.model
        if model.name == POPULARITY and not filter_seen:
            return self._popular_rows[:n], self._popular_scores[:n]
        if isinstance(model, ImplicitRecommender):
            with nullcontext() if _blas_single_threaded() else single_threaded_blas():
                ids, scores = model.model_.recommend(
                    np.array([row]),
                    self._row_matrix(row),
                    N=n,
                    filter_already_liked_items=filter_seen,
                )
            return np.asarray(ids), np.asarray(scores)
        return model._recommend_rows(np.array([row]), n, filter_seen)

    def similar(self, item_id: str, k: int) -> TopItems:
        """What ``model.similar_items([item_id], k)`` answers, as arrays.

        Raises
        ------
        UnknownItemError
            The model was not trained on this item.
        """
        row = self.item_row.get(item_id, -1)
        if row < 0:
            self.model.similar_items([item_id], k)  # the model's own message
            raise UnknownItemError(f"unknown item id {item_id!r}")  # pragma: no cover
        ids, scores = self.model._similar_rows(np.array([row]), min(k + 1, len(self.item_ids)))
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        valid = (ids >= 0) & np.isfinite(scores) & (scores > PADDING_SCORE)
        valid &= (ids != row) & self.model._valid_scores(scores)
        keep = valid & (np.cumsum(valid) <= k)
        return self._top(ids[keep], scores[keep], cold_start=False)


class PreparedRanker:
    """The two-stage purchase model ready for one-shopper calls.

    Raises ``ValueError`` at construction when the ranker's features are not laid out as
    this module expects (the service then keeps the ranker's own methods).
    """

    def __init__(self, ranker: Any, titles: pd.Series) -> None:
        from recsys_core.ranking.features import (
            BEHAVIOUR_FEATURES,
            FEATURE_NAMES,
            SEEN_FEATURES,
            STAGE_ONE_FEATURES,
        )

        model = ranker.purchase_model_
        if tuple(FEATURE_NAMES) != (*BEHAVIOUR_FEATURES, *STAGE_ONE_FEATURES) or list(
            model.feature_names_in_
        ) != list(FEATURE_NAMES):
            raise ValueError("the ranker's features are not behaviour + stage one")
        if tuple(STAGE_ONE_FEATURES) != ("als_score", "als_rank", "itemknn_score", "itemknn_rank"):
            raise ValueError("unexpected stage-one features")
        self.ranker = ranker
        self.generator = ranker.generator_
        self.snapshot = ranker.snapshot_
        config = ranker.config
        self.n_als, self.n_itemknn = int(config.n_als), int(config.n_itemknn)
        self.gen_user_row = _positions(self.generator.users_.external_ids)
        self.snap_user_row = _positions(self.snapshot.users.external_ids)
        self.snap_item_row = _positions(self.snapshot.items.external_ids)
        self.gen_item_ids = np.asarray(self.generator.items_.external_ids, dtype=object)
        self.gen_item_row = _positions(self.gen_item_ids)
        self.gen_titles = titles_for(self.gen_item_ids, titles)
        self.gen_to_snap = self.snapshot.items.to_internal(self.gen_item_ids)
        self.seen_columns = [BEHAVIOUR_FEATURES.index(f) for f in SEEN_FEATURES]
        self.cold_items = np.asarray(ranker.cold_start_items_, dtype=object)
        self.cold_rates = np.asarray(ranker.cold_start_rates_, dtype=np.float64)
        self.cold_titles = titles_for(self.cold_items, titles)
        self.cold_rate = dict(zip(self.cold_items, self.cold_rates, strict=True))
        self._trees: list[CompiledTrees] | None | bool = False  # compiled on first use
        #: Each shopper's ranked candidates, kept for the next question with another k or
        #: filter (thread-safe LRU; a lab version never changes once trained).
        self._ranked = lru_cache(maxsize=RANKED_CACHE_SIZE)(self._rank_all)
        self._averaged = False

    # ------------------------------------------------------------------ scoring

    def margins(self, matrix: np.ndarray) -> np.ndarray:
        """The classifier's raw margins, as ``decision_function`` computes them: one model's
        margin, or the mean of the fold models' margins (summed in order, then divided), with
        each model's trees compiled; LightGBM's predict where they cannot be."""
        if self._trees is False:
            self._trees = self._compile()
        if len(matrix) == 0:
            return np.zeros(0)
        if isinstance(self._trees, list):
            total = np.zeros(len(matrix))
            for trees in self._trees:
                total += trees.raw_score(matrix)
            return total / len(self._trees) if self._averaged else total
        return np.asarray(self.ranker.purchase_model_.decision_function(matrix), dtype=np.float64)

    def _compile(self) -> list[CompiledTrees] | None:
        from recsys_core.serving.compiled_trees import CompiledTrees

        model = self.ranker.purchase_model_
        boosters = getattr(model, "boosters_", None)
        self._averaged = boosters is not None
        compiled = [CompiledTrees.from_booster(b) for b in (boosters or [model.booster_])]
        if any(c is None for c in compiled):
            return None
        return [c for c in compiled if c is not None]

    def _probability(self, margin: np.ndarray) -> np.ndarray:
        return np.asarray(self.ranker.purchase_model_.calibrator_.predict(margin), dtype=np.float64)

    def stage_one(self, gen_row: int) -> tuple[np.ndarray, ...]:
        """ALS and item-kNN scores and exact ranks of every item for one shopper."""
        block = self.generator._score_block(np.array([gen_row], dtype=np.int64))
        return tuple(np.asarray(column)[0] for column in block)

    def stage_one_of(self, gen_row: int, items: np.ndarray) -> np.ndarray:
        """``(len(items), 4)`` stage-one features of some items for one shopper.

        The numbers of :meth:`stage_one` without sorting every item twice: the same float64
        ALS product, the item-kNN row summed in the same order as scipy's sparse product
        (``np.bincount`` adds in input order), and each asked item's rank counted directly
        (items scoring higher, plus equal scores at a lower index: a stable sort's rank).
        """
        item_factors, similarity = self.generator._scoring_arrays()
        als = (self.generator.als_.user_factors_[[gen_row]].astype(np.float64) @ item_factors)[0]
        user_items = self.generator.itemknn_.user_items_
        start, end = user_items.indptr[gen_row], user_items.indptr[gen_row + 1]
        history = user_items.indices[start:end]
        weights = user_items.data[start:end].astype(np.float64)
        first = similarity.indptr[history]
        sizes = similarity.indptr[history + 1] - first
        offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        cells = np.repeat(first, sizes) + offsets
        knn = np.bincount(
            similarity.indices[cells],
            weights=np.repeat(weights, sizes) * similarity.data[cells],
            minlength=len(als),
        )
        knn_rank = _stable_ranks(knn, items)
        knn_rank[~(knn[items] > 0)] = np.nan
        return np.column_stack([als[items], _stable_ranks(als, items), knn[items], knn_rank])

    def _history(self, gen_row: int) -> np.ndarray:
        indptr = self.generator.history_indptr_
        return self.generator.history_items_[indptr[gen_row] : indptr[gen_row + 1]]

    # ------------------------------------------------------------------ answers

    def top(self, user_id: str, k: int, filter_seen: bool) -> TopItems:
        """What ``ranker.recommend([user_id], k, filter_seen=...)`` answers, as arrays."""
        gen_row = self.gen_user_row.get(user_id, -1)
        snap_row = self.snap_user_row.get(user_id, -1)
        if gen_row < 0 or snap_row < 0:
            rates = self.cold_rates[:k]
            return TopItems(
                item_ids=self.cold_items[:k],
                titles=self.cold_titles[:k],
                scores=rates,
                cold_start=True,
                probabilities=rates,
            )
        items, probability, unseen = self._ranked(gen_row, snap_row)
        if filter_seen:
            items, probability = items[unseen], probability[unseen]
        items, probability = items[:k], probability[:k]
        return TopItems(
            item_ids=self.gen_item_ids[items],
            titles=self.gen_titles[items],
            scores=probability,
            cold_start=False,
            probabilities=probability,
        )

    def _rank_all(self, gen_row: int, snap_row: int) -> tuple[np.ndarray, ...]:
        """Every candidate of one shopper, best first: ``(items, probabilities, unseen)``.

        Sorted by probability, ties (isotonic steps) by the classifier's margin, then item
        index (a stable sort). A top-``k``, with or without seen items, is a prefix of this
        list (filtering keeps the order a stable sort of the rest would give), so it is
        computed once per shopper and kept (:attr:`_ranked`, LRU) for any ``k`` and filter.
        """
        als, als_rank, knn, knn_rank = self.stage_one(gen_row)
        chosen = np.zeros(len(als), dtype=bool)
        if self.n_als:
            chosen |= als_rank <= self.n_als
        if self.n_itemknn:
            chosen |= knn_rank <= self.n_itemknn  # NaN compares False
        chosen[self._history(gen_row)] = True
        items = np.flatnonzero(chosen)
        snap_items = self.gen_to_snap[items]
        keep = snap_items >= 0
        items, snap_items = items[keep], snap_items[keep]
        users = np.full(len(items), snap_row, dtype=np.int64)
        behaviour = self.snapshot.features(users, snap_items)
        matrix = np.hstack(
            [behaviour, np.column_stack([als[items], als_rank[items], knn[items], knn_rank[items]])]
        )
        margin = self.margins(matrix)
        probability = self._probability(margin)
        unseen = ~(np.nansum(behaviour[:, self.seen_columns], axis=1) > 0)
        order = np.lexsort((-margin, -probability))
        ranked = (items[order], probability[order], unseen[order])
        for array in ranked:
            array.flags.writeable = False  # shared between answers
        return ranked

    def probabilities(self, user_id: str, item_ids: np.ndarray) -> np.ndarray:
        """Calibrated purchase probabilities of items for one shopper; NaN where unknown.

        The same numbers as ``ranker.purchase_probability`` (NaN for a shopper without
        history before the cutoff, and for items the ranker has never seen).
        """
        items = np.asarray(item_ids, dtype=object)
        out = np.full(len(items), np.nan)
        snap_row = self.snap_user_row.get(user_id, -1)
        if snap_row < 0 or not len(items):
            return out
        snap_items = np.fromiter(
            (self.snap_item_row.get(str(i), -1) for i in items), dtype=np.int64, count=len(items)
        )
        known = snap_items >= 0
        if not known.any():
            return out
        behaviour = self.snapshot.features(
            np.full(int(known.sum()), snap_row, dtype=np.int64), snap_items[known]
        )
        stage = np.full((len(behaviour), 4), np.nan)
        gen_row = self.gen_user_row.get(user_id, -1)
        if gen_row >= 0:
            gen_items = np.fromiter(
                (self.gen_item_row.get(str(i), -1) for i in items[known]),
                dtype=np.int64,
                count=len(behaviour),
            )
            ok = gen_items >= 0
            stage[ok] = self.stage_one_of(gen_row, gen_items[ok])
        out[known] = self._probability(self.margins(np.hstack([behaviour, stage])))
        return out


def _stable_ranks(scores: np.ndarray, items: np.ndarray) -> np.ndarray:
    """1-based rank of ``scores[items]`` in a stable descending sort of ``scores`` (float)."""
    mine = scores[items][:, None]
    higher = (scores[None, :] > mine).sum(axis=1)
    before = np.arange(len(scores)) < items[:, None]
    tied_before = ((scores[None, :] == mine) & before).sum(axis=1)
    return (1 + higher + tied_before).astype(np.float64)
