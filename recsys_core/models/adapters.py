"""Adapters around the ``implicit`` library: shared code of the item-kNN, BPR and ALS wrappers.

implicit runs its own OpenMP thread pool, so every call into it here runs with BLAS limited
to one thread (:func:`recsys_core.models.blas.single_threaded_blas`); fitting, batch
recommendation and similar items go through implicit's own batch calls.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from recsys_core.interactions import InteractionMatrix
from recsys_core.models.blas import single_threaded_blas
from recsys_core.models.matrix import MatrixRecommender

__all__ = ["FactorRecommender", "ImplicitRecommender", "single_threaded_blas"]


class ImplicitRecommender(MatrixRecommender):
    """Shared code of recommenders backed by an implicit model (item-kNN, BPR, ALS).

    Subclasses build the implicit CPU model in :meth:`_new_implicit_model`; batch
    recommendation and similar items go through implicit's own batch calls.

    Attributes
    ----------
    model_ : Any
        The fitted implicit model.
    """

    model_: Any

    @abstractmethod
    def _new_implicit_model(self) -> Any:
        """An unfitted implicit CPU model built from :attr:`config`."""

    def fit(self, interactions: InteractionMatrix) -> Self:
        """:meth:`MatrixRecommender.fit` with BLAS limited to one thread (see the module)."""
        with single_threaded_blas():
            return super().fit(interactions)

    def _recommend_rows(
        self, rows: np.ndarray, n: int, filter_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        # One BLAS thread: scoring a few users is tiny, and on busy cores OpenBLAS's thread
        # pool made a single ALS call 3x slower (its threads wait for each other).
        with single_threaded_blas():
            ids, scores = self.model_.recommend(
                rows, self.user_items_[rows], N=n, filter_already_liked_items=filter_seen
            )
        return np.asarray(ids), np.asarray(scores)

    def _similar_rows(self, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        with single_threaded_blas():
            ids, scores = self.model_.similar_items(rows, N=n)
        return np.asarray(ids), np.asarray(scores)


class FactorRecommender(ImplicitRecommender):
    """Shared code of implicit's matrix-factorisation models (BPR, ALS)."""

    @property
    def user_factors_(self) -> np.ndarray:
        """User factors, ``(n_users, n_factors)`` numpy array."""
        self._check_fitted()
        return np.asarray(self.model_.user_factors)

    @property
    def item_factors_(self) -> np.ndarray:
        """Item factors, ``(n_items, n_factors)`` numpy array."""
        self._check_fitted()
        return np.asarray(self.model_.item_factors)

    def _fit_model(self, matrix: sp.csr_matrix) -> None:
        model = self._new_implicit_model()
        model.fit(matrix, show_progress=False)
        self.model_ = model

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        user_factors: np.ndarray = self.model_.user_factors[users]
        item_factors: np.ndarray = self.model_.item_factors[items]
        scores: np.ndarray = np.einsum("ij,ij->i", user_factors, item_factors)
        return scores.astype(np.float64)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _restore_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        user_factors, item_factors = arrays["user_factors"], arrays["item_factors"]
        if user_factors.ndim != 2 or item_factors.ndim != 2:
            raise ValueError("factor arrays must be two-dimensional")
        if user_factors.shape[0] != self.n_users or item_factors.shape[0] != self.n_items:
            raise ValueError(
                f"factors cover {user_factors.shape[0]} users and {item_factors.shape[0]} "
                f"items, the id maps {self.n_users} and {self.n_items}"
            )
        if user_factors.shape[1] != item_factors.shape[1]:
            raise ValueError("user and item factors have different widths")
        model = self._new_implicit_model()
        model.user_factors = np.ascontiguousarray(user_factors, dtype=model.dtype)
        model.item_factors = np.ascontiguousarray(item_factors, dtype=model.dtype)
        self.model_ = model
