"""EASE: the closed-form linear item-item autoencoder (Steck, "Embarrassingly Shallow
Autoencoders for Sparse Data", WWW 2019).

With ``X`` the binary users x items matrix and ``P = (X^T X + lambda I)^-1``, the item-item
weights are ``B = I - P diag(1 / diag(P))`` (zero diagonal) and a user's scores are
``x_u B``. One dense ``n_items x n_items`` inverse: fine up to a few tens of thousands of
items, so the catalog size is capped (``max_items``) with a clear error above it.
Shevchenko et al. (2024) find EASE the most consistent performer over 30 datasets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from pydantic import Field

from recsys_core.errors import ConfigError, DataValidationError
from recsys_core.interactions import IdMap
from recsys_core.models.interface import RecommenderConfig
from recsys_core.models.matrix import MatrixRecommender

#: Users scored per dense block in recommend / score_items.
_BATCH = 2048


class CatalogTooLargeError(ConfigError, DataValidationError):
    """The catalog is larger than EASE's dense ``max_items`` allows.

    A :class:`~recsys_core.errors.ConfigError` (a setting decides it) that is also a
    :class:`~recsys_core.errors.DataValidationError`, so ``evaluate`` skips the model on such
    a log and runs the others.
    """


class EASEConfig(RecommenderConfig):
    """Settings of :class:`EASERecommender`."""

    l2: float = Field(
        250.0,
        gt=0,
        description="L2 regularisation lambda added to the diagonal of the item Gram matrix.",
    )
    max_items: int = Field(
        20_000,
        ge=1,
        description=(
            "Largest catalog EASE trains on: it inverts a dense items x items matrix "
            "(8 * n_items^2 bytes, 3.2 GB at 20,000 items). Raise it when the machine has "
            "the memory."
        ),
    )


class EASERecommender(MatrixRecommender):
    """Steck's EASE on binary interactions (any event with a positive weight counts as 1).

    ``score`` is ``x_u B[:, i]``; ``similar_items`` ranks item ``j``'s row of ``B`` (how much
    an interaction with ``j`` raises each other item); ``score_items`` equals the scores of
    ``recommend``.
    """

    name: ClassVar[str] = "ease"
    config_class: ClassVar[type[RecommenderConfig]] = EASEConfig
    config: EASEConfig

    weights_: np.ndarray  # B, float32, items x items, zero diagonal
    _binary: sp.csr_matrix

    def _fit_model(self, matrix: sp.csr_matrix) -> None:
        n_items = matrix.shape[1]
        if n_items > self.config.max_items:
            raise CatalogTooLargeError(
                f"EASE needs a dense {n_items:,} x {n_items:,} matrix but its setting "
                f"max_items is {self.config.max_items:,}: raise `max_items` (e.g. "
                f"--param ease.max_items={n_items}) if the machine has about "
                f"{8 * n_items**2 / 1e9:.1f} GB free, or use itemknn / als for this catalog"
            )
        binary = _binary(matrix)
        gram = np.asarray((binary.T @ binary).todense(), dtype=np.float64)
        gram[np.diag_indices(n_items)] += self.config.l2
        inverse = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
        weights = -inverse / np.diag(inverse)[None, :]
        weights[np.diag_indices(n_items)] = 0.0
        self.weights_ = weights.astype(np.float32)

    def _set_training_data(self, users: IdMap, items: IdMap, matrix: sp.csr_matrix) -> None:
        super()._set_training_data(users, items, matrix)
        self._binary = _binary(matrix)

    def _user_scores(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._binary[rows] @ self.weights_, dtype=np.float64)

    def _recommend_rows(
        self, rows: np.ndarray, n: int, filter_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        ids = np.empty((len(rows), n), dtype=np.int64)
        out = np.empty((len(rows), n), dtype=np.float64)
        for start in range(0, len(rows), _BATCH):
            block = rows[start : start + _BATCH]
            scores = self._user_scores(block)
            if filter_seen:
                seen = self._binary[block].tocoo()
                scores[seen.row, seen.col] = -np.inf
            ids[start : start + len(block)], out[start : start + len(block)] = _top_n(scores, n)
        return ids, out

    def _similar_rows(self, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        return _top_n(np.asarray(self.weights_[rows], dtype=np.float64), n)

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.empty(len(users), dtype=np.float64)
        for start in range(0, len(users), _BATCH):
            u = users[start : start + _BATCH]
            columns = self.weights_[:, items[start : start + _BATCH]].T  # pairs x items
            out[start : start + len(u)] = np.asarray(
                self._binary[u].multiply(columns).sum(axis=1), dtype=np.float64
            ).ravel()
        return out

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_}

    def _restore_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        weights = np.asarray(arrays["weights"], dtype=np.float32)
        if weights.shape != (self.n_items, self.n_items):
            raise ValueError(f"EASE weights {weights.shape} do not match {self.n_items} items")
        self.weights_ = weights
        self._binary = _binary(self.user_items_)


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    binary = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    binary.data = (binary.data > 0).astype(np.float32)
    binary.eliminate_zeros()
    return binary


def _top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best columns of each row, best first (ties by column index)."""
    n = min(n, scores.shape[1])
    if n < scores.shape[1]:
        part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    else:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    chosen = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -chosen), axis=-1)
    ids = np.take_along_axis(part, order, axis=1)
    return ids.astype(np.int64), np.take_along_axis(chosen, order, axis=1)
