"""Shared code of the single-stage models: one users x items interaction matrix.

Single-stage models share :class:`MatrixRecommender`: integer indices inside, external
string ids at the boundary (:class:`~recsys_core.interactions.IdMap`), one users x items
training matrix. A concrete model implements a handful of index-level hooks
(``_fit_model``, ``_recommend_rows``, ``_similar_rows``, ``_score_pairs``,
``_state_arrays``, ``_restore_state``).

Cold start (single-stage models)
--------------------------------
A user who is not in the training id map, or who has no training interactions, gets the
most popular training items (number of distinct training users, ties broken by item id).
Their rows carry ``cold_start=True`` and ``score`` is that popularity count, so it is not on
the same scale as the model's own scores.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_core.columns import Columns
from recsys_core.errors import DataValidationError, UnknownItemError
from recsys_core.interactions import IdMap, InteractionMatrix
from recsys_core.models.interface import (
    PADDING_SCORE,
    SIMILAR_ITEM,
    Progress,
    Recommender,
    RecommenderConfig,
    check_k,
    check_pairs,
    empty_recommendations,
    recommendation_frame,
    unique_ids,
)
from recsys_core.models.persistence import load_matrix_model, save_matrix_model

__all__ = ["MatrixRecommender"]


def _first_k_valid(valid: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first ``k`` valid cells of each row; return the mask and 1-based ranks."""
    ranks = np.cumsum(valid, axis=1)
    keep = valid & (ranks <= k)
    return keep, ranks


class MatrixRecommender(Recommender):
    """Shared code of the single-stage models: one users x items interaction matrix.

    ``__init__`` only stores settings; :meth:`fit` learns from an
    :class:`~recsys_core.interactions.InteractionMatrix` and returns ``self``.

    Attributes
    ----------
    users_, items_ : IdMap
        Training id maps (rows and columns of ``user_items_``).
    user_items_ : scipy.sparse.csr_matrix
        The training users x items matrix (float32); used to filter seen items.
    item_popularity_ : numpy.ndarray
        Number of distinct training users per item (the cold-start ranking).
    """

    # the single-stage capabilities (see Recommender); a model may change them
    requires_timestamps: ClassVar[bool] = False
    scores_are_probabilities: ClassVar[bool] = False
    stage_one_models: ClassVar[tuple[str, ...]] = ()
    slow_to_train: ClassVar[bool] = False

    config: RecommenderConfig
    users_: IdMap
    items_: IdMap
    user_items_: sp.csr_matrix
    item_popularity_: np.ndarray
    _popular_order: np.ndarray

    # ------------------------------------------------------------------ fitting

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has run."""
        return hasattr(self, "user_items_")

    def fit(self, interactions: InteractionMatrix) -> Self:
        """Learn from a weighted users x items interaction matrix.

        Parameters
        ----------
        interactions:
            The training matrix with its id maps.

        Returns
        -------
        Self
            The fitted model.

        Raises
        ------
        DataValidationError
            The matrix has no positive interactions.
        """
        if not isinstance(interactions, InteractionMatrix):
            raise TypeError(
                f"fit() takes an InteractionMatrix, got {type(interactions).__name__}; "
                "build one with InteractionMatrix.from_events(events)"
            )
        matrix = sp.csr_matrix(interactions.matrix, dtype=np.float32, copy=True)
        if matrix.shape != interactions.shape:
            raise DataValidationError(
                f"interaction matrix shape {matrix.shape} does not match its id maps "
                f"({len(interactions.users)} users x {len(interactions.items)} items)"
            )
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        matrix.sort_indices()
        if not (matrix.data > 0).any():
            raise DataValidationError(
                "cannot train on an interaction matrix without positive interactions: "
                "check the event log and the event weights"
            )
        self._fit_model(matrix)
        self._set_training_data(interactions.users, interactions.items, matrix)
        return self

    def fit_log(
        self,
        events: pd.DataFrame,
        catalog: pd.DataFrame | None = None,
        *,
        cutoff: pd.Timestamp | str | None = None,
        matrix: InteractionMatrix | None = None,
        progress: Progress | None = None,
    ) -> Self:
        """:meth:`fit` on ``matrix``, or on the events before ``cutoff`` (default weights).

        The catalog and progress are not used: a single-stage fit is one step.
        """
        if matrix is None:
            if cutoff is not None:
                if Columns.TIMESTAMP not in events.columns:
                    raise DataValidationError(
                        "a cutoff needs event timestamps; this log has none: train without a cutoff"
                    )
                events = events[events[Columns.TIMESTAMP] < pd.Timestamp(cutoff)]
            matrix = InteractionMatrix.from_events(events)
        return self.fit(matrix)

    def _set_training_data(self, users: IdMap, items: IdMap, matrix: sp.csr_matrix) -> None:
        """Store the id maps and matrix and derive the popularity ranking."""
        self.users_ = users
        self.items_ = items
        self.user_items_ = matrix
        positive = matrix.indices[matrix.data > 0]
        self.item_popularity_ = np.bincount(positive, minlength=matrix.shape[1]).astype(np.float64)
        # most popular first, ties by item index (= sorted external id)
        self._popular_order = np.lexsort(
            (np.arange(matrix.shape[1]), -self.item_popularity_)
        ).astype(np.int64)

    @property
    def n_users(self) -> int:
        """Number of training users."""
        self._check_fitted()
        return len(self.users_)

    @property
    def n_items(self) -> int:
        """Number of items the model can recommend."""
        self._check_fitted()
        return len(self.items_)

    def known_users(self) -> list[str]:
        """The training users, in id-map order."""
        self._check_fitted()
        return [str(u) for u in self.users_.external_ids]

    # ------------------------------------------------------------------ model hooks

    @abstractmethod
    def _fit_model(self, matrix: sp.csr_matrix) -> None:
        """Fit on the cleaned training matrix."""

    @abstractmethod
    def _recommend_rows(
        self, rows: np.ndarray, n: int, filter_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` item indices and scores for user indices ``rows`` (one batch call).

        Returns two ``(len(rows), m)`` arrays sorted by decreasing score. Padding (id < 0 or
        score below :data:`PADDING_SCORE`) and seen items are removed by the caller, so a
        model may return them.
        """

    @abstractmethod
    def _similar_rows(self, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` neighbour indices and scores for item indices ``rows``.

        The item itself may be among them; the caller drops it.
        """

    @abstractmethod
    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Model score of each (user index, item index) pair, vectorised."""

    def _valid_scores(self, scores: np.ndarray) -> np.ndarray:
        """Which candidate scores are real recommendations (models may narrow this)."""
        return np.ones(scores.shape, dtype=bool)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """The model's own arrays to save (names must not start with ``user_items_``)."""
        return {}

    def _restore_state(self, arrays: Mapping[str, np.ndarray]) -> None:  # noqa: B027
        """Rebuild the fitted model from :meth:`_state_arrays` output.

        Called after the id maps and training matrix are restored. Raise ``KeyError`` or
        ``ValueError`` when the arrays do not fit; :meth:`load` reports an ArtifactError.
        """

    # ------------------------------------------------------------------ recommending

    def recommend(self, user_ids: Sequence[str], k: int = 10, *, filter_seen: bool) -> pd.DataFrame:
        """Top-``k`` items for each user.

        Parameters
        ----------
        user_ids:
            External user ids; duplicates are answered once.
        k:
            Number of items per user. Fewer rows come back when fewer items are left (a
            tiny catalog after filtering); rows are never padded.
        filter_seen:
            Leave out the items the user interacted with in training.

        Returns
        -------
        pandas.DataFrame
            Columns ``user_id``, ``item_id`` (strings), ``score`` (float), ``rank`` (1..k)
            and ``cold_start`` (bool), sorted by user then rank. Users who are unknown or
            have no training history get the most popular items with ``cold_start=True``
            and their popularity as ``score``.
        """
        self._check_fitted()
        k = check_k(k)
        users = unique_ids(user_ids)
        rows = self.users_.to_internal(users)
        history = np.diff(self.user_items_.indptr)
        warm = rows >= 0
        warm[warm] = history[rows[warm]] > 0

        parts: list[pd.DataFrame] = []
        if warm.any():
            parts.append(self._recommend_warm(users[warm], rows[warm], k, filter_seen))
        if (~warm).any():
            parts.append(self._recommend_cold(users[~warm], k))
        if not parts:
            return empty_recommendations()
        reco = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        return reco.sort_values([Columns.USER, Columns.RANK], kind="stable", ignore_index=True)

    def _recommend_warm(
        self, users: np.ndarray, rows: np.ndarray, k: int, filter_seen: bool
    ) -> pd.DataFrame:
        ids, scores = self._recommend_rows(rows, min(k, self.n_items), filter_seen)
        ids = np.asarray(ids, dtype=np.int64).reshape(len(rows), -1)
        scores = np.asarray(scores, dtype=np.float64).reshape(len(rows), -1)
        valid = (ids >= 0) & np.isfinite(scores) & (scores > PADDING_SCORE)
        valid &= self._valid_scores(scores)
        if filter_seen:
            valid &= ~self._seen_mask(rows, ids)
        keep, ranks = _first_k_valid(valid, k)
        row_of = np.broadcast_to(np.arange(len(rows))[:, None], ids.shape)
        return recommendation_frame(
            users[row_of[keep]],
            self.items_.to_external(ids[keep]),
            scores[keep],
            ranks[keep],
            cold_start=False,
        )

    def _recommend_cold(self, users: np.ndarray, k: int) -> pd.DataFrame:
        top = self._popular_order[:k]
        top = top[self.item_popularity_[top] > 0]
        n = len(top)
        return recommendation_frame(
            np.repeat(users, n),
            np.tile(self.items_.to_external(top), len(users)),
            np.tile(self.item_popularity_[top], len(users)),
            np.tile(np.arange(1, n + 1), len(users)),
            cold_start=True,
        )

    def _seen_mask(self, rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """``mask[r, j]`` is True when user ``rows[r]`` interacted with item ``ids[r, j]``."""
        sub = self.user_items_[rows]
        n_items = np.int64(self.user_items_.shape[1])
        seen_keys = (
            np.repeat(np.arange(len(rows), dtype=np.int64), np.diff(sub.indptr)) * n_items
            + sub.indices
        )
        keys = np.arange(len(rows), dtype=np.int64)[:, None] * n_items + ids
        return np.isin(keys, seen_keys)

    def seen_items(self, user_id: str) -> list[str]:
        """Items a training user interacted with (empty for an unknown user)."""
        self._check_fitted()
        row = int(self.users_.to_internal([user_id])[0])
        if row < 0:
            return []
        start, end = self.user_items_.indptr[row], self.user_items_.indptr[row + 1]
        return [str(i) for i in self.items_.to_external(self.user_items_.indices[start:end])]

    # ------------------------------------------------------------------ similar items

    def _item_rows(self, item_ids: Iterable[object]) -> tuple[np.ndarray, np.ndarray]:
        """External item ids (unique) and their indices; UnknownItemError for strangers."""
        items = unique_ids(item_ids)
        rows = self.items_.to_internal(items)
        unknown = items[rows < 0]
        if len(unknown):
            shown = ", ".join(repr(str(i)) for i in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise UnknownItemError(
                f"unknown item id {shown}{more}: the {self.name!r} model knows "
                f"{self.n_items} items from its training data; use one of those ids or "
                "retrain with a log that contains this item"
            )
        return items, rows

    def similar_items(self, item_ids: Sequence[str], k: int = 10) -> pd.DataFrame:
        """The ``k`` items most similar to each given item (the item itself excluded).

        Parameters
        ----------
        item_ids:
            External item ids known to the model; duplicates are answered once.
        k:
            Number of neighbours per item (fewer when the model has fewer).

        Returns
        -------
        pandas.DataFrame
            Columns ``item_id``, ``similar_item_id``, ``score``, ``rank``, sorted by item
            then rank.

        Raises
        ------
        UnknownItemError
            An item id the model was not trained on.
        """
        self._check_fitted()
        k = check_k(k)
        items, rows = self._item_rows(item_ids)
        if not len(items):
            return _empty_similar_items()
        ids, scores = self._similar_rows(rows, min(k + 1, self.n_items))
        ids = np.asarray(ids, dtype=np.int64).reshape(len(rows), -1)
        scores = np.asarray(scores, dtype=np.float64).reshape(len(rows), -1)
        valid = (ids >= 0) & np.isfinite(scores) & (scores > PADDING_SCORE)
        valid &= (ids != rows[:, None]) & self._valid_scores(scores)
        keep, ranks = _first_k_valid(valid, k)
        row_of = np.broadcast_to(np.arange(len(rows))[:, None], ids.shape)
        frame = pd.DataFrame(
            {
                Columns.ITEM: pd.Series(items[row_of[keep]], dtype=str),
                SIMILAR_ITEM: pd.Series(self.items_.to_external(ids[keep]), dtype=str),
                Columns.SCORE: scores[keep],
                Columns.RANK: ranks[keep].astype(np.int64),
            }
        )
        return frame.sort_values([Columns.ITEM, Columns.RANK], kind="stable", ignore_index=True)

    # ------------------------------------------------------------------ scoring pairs

    def score_items(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """Model score of each (user, item) pair, e.g. as a feature of the purchase model.

        Parameters
        ----------
        user_ids, item_ids:
            Same-length sequences of external ids; pair ``j`` is
            ``(user_ids[j], item_ids[j])``.

        Returns
        -------
        numpy.ndarray
            float64 scores on the scale of :meth:`recommend`'s (non-cold-start) scores;
            NaN where the user or the item is unknown. Seen items are scored too.
        """
        self._check_fitted()
        users = self.users_.to_internal(user_ids)
        items = self.items_.to_internal(item_ids)
        check_pairs(len(users), len(items))
        out = np.full(len(users), np.nan, dtype=np.float64)
        known = (users >= 0) & (items >= 0)
        if known.any():
            out[known] = self._score_pairs(users[known], items[known])
        return out

    # ------------------------------------------------------------------ persistence

    def save(self, path: Path | str) -> None:
        """Save the fitted model to folder ``path`` (created if needed; no pickle).

        The layout is :mod:`recsys_core.models.persistence`'s.

        Raises
        ------
        ModelNotTrainedError
            The model has not been fitted.
        """
        self._check_fitted()
        save_matrix_model(self, Path(path))

    @classmethod
    def _load_folder(cls, folder: Path, metadata: Mapping[str, Any]) -> Self:
        return load_matrix_model(cls, folder, metadata)


def _empty_similar_items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.ITEM: pd.Series([], dtype=str),
            SIMILAR_ITEM: pd.Series([], dtype=str),
            Columns.SCORE: np.array([], dtype=np.float64),
            Columns.RANK: np.array([], dtype=np.int64),
        }
    )
