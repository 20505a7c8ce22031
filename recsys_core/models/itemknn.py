"""Item-item nearest neighbours (implicit's BM25 / cosine / TF-IDF recommenders)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import (
    BM25Recommender,
    CosineRecommender,
    ItemItemRecommender,
    TFIDFRecommender,
)
from implicit.utils import ParameterWarning
from pydantic import Field

from recsys_core.errors import UnknownUserError
from recsys_core.models.adapters import ImplicitRecommender
from recsys_core.models.interface import RecommenderConfig, check_k


class ItemKNNConfig(RecommenderConfig):
    """Settings of :class:`ItemKNNRecommender`."""

    weighting: Literal["bm25", "cosine", "tfidf"] = Field(
        "bm25",
        description=(
            "How interactions are weighted before item-item similarity: 'bm25' (damps "
            "heavy users and very popular items), 'cosine' or 'tfidf'."
        ),
    )
    neighbours: int = Field(
        20, ge=1, description="Neighbours kept per item in the similarity matrix (implicit's K)."
    )
    k1: float = Field(
        1.2, gt=0, description="BM25 term saturation (implicit's K1); only for 'bm25'."
    )
    b: float = Field(
        0.75, ge=0, le=1, description="BM25 length normalisation (implicit's B); only for 'bm25'."
    )
    num_threads: int = Field(
        0,
        ge=0,
        description=(
            "Threads for fitting and batch recommendation; 0 uses every core. Results are "
            "identical for any value."
        ),
    )


class ItemKNNRecommender(ImplicitRecommender):
    """Recommend items similar to those the user interacted with.

    A user's score for item ``i`` is ``sum_j r_uj * sim(j, i)`` over the user's items ``j``
    (weights ``r_uj`` from the interaction matrix). Items with score 0 (no neighbour among
    the user's items) are not recommended, so a user may get fewer than ``k`` rows.

    Attributes
    ----------
    model_ : implicit.nearest_neighbours.ItemItemRecommender
        The fitted implicit model.
    """

    name: ClassVar[str] = "itemknn"
    config_class: ClassVar[type[RecommenderConfig]] = ItemKNNConfig
    config: ItemKNNConfig

    model_: ItemItemRecommender
    _similarity_t: sp.csr_matrix

    @property
    def similarity_(self) -> sp.csr_matrix:
        """Item x item similarity (row ``j``: the neighbours of item ``j``)."""
        self._check_fitted()
        return self.model_.similarity

    def _new_implicit_model(self) -> ItemItemRecommender:
        cfg = self.config
        if cfg.weighting == "bm25":
            return BM25Recommender(
                K=cfg.neighbours, K1=cfg.k1, B=cfg.b, num_threads=cfg.num_threads
            )
        if cfg.weighting == "cosine":
            return CosineRecommender(K=cfg.neighbours, num_threads=cfg.num_threads)
        return TFIDFRecommender(K=cfg.neighbours, num_threads=cfg.num_threads)

    def _fit_model(self, matrix: sp.csr_matrix) -> None:
        model = self._new_implicit_model()
        with warnings.catch_warnings():
            # implicit's own weighting hands a COO matrix to its kNN kernel and then warns
            # about the (cheap) conversion; nothing the caller can fix
            warnings.simplefilter("ignore", ParameterWarning)
            model.fit(matrix, show_progress=False)
        self._set_model(model)

    def _set_model(self, model: ItemItemRecommender) -> None:
        self.model_ = model
        self._similarity_t = model.similarity.T.tocsr()

    def _valid_scores(self, scores: np.ndarray) -> np.ndarray:
        # implicit fills short rows with score-0 items (even seen ones): not recommendations
        return scores > 0

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        user_rows = self.user_items_[users].astype(np.float64)
        neighbour_rows = self._similarity_t[items]
        return np.asarray(user_rows.multiply(neighbour_rows).sum(axis=1), dtype=np.float64).ravel()

    def explain(self, user_id: str, item_id: str, k: int = 5) -> list[tuple[str, float]]:
        """Which of the user's past items make the model recommend ``item_id``: its
        neighbours in the user's history, each with its share of the score (the user's
        weight of that item x its similarity to ``item_id``; the shares add up to the score).

        Returns
        -------
        list of (str, float)
            ``(past item id, contribution)``, largest first, at most ``k``; only items with a
            positive contribution (an item that is not a neighbour adds nothing).

        Raises
        ------
        UnknownUserError, UnknownItemError
            The user or item is not in the training data.
        """
        self._check_fitted()
        k = check_k(k)
        user = int(self.users_.to_internal([user_id])[0])
        if user < 0:
            raise UnknownUserError(
                f"unknown user id {user_id!r}: the {self.name!r} model knows {self.n_users} "
                "users; explanations need a user from the training data"
            )
        item = int(self._item_rows([item_id])[1][0])  # UnknownItemError for a stranger
        start, end = self.user_items_.indptr[user], self.user_items_.indptr[user + 1]
        history = self.user_items_.indices[start:end]
        weights = self.user_items_.data[start:end].astype(np.float64)
        similarity = np.asarray(self._similarity_t[item].toarray(), dtype=np.float64).ravel()
        shares = weights * similarity[history]
        order = np.lexsort((history, -shares))
        top = [j for j in order if shares[j] > 0][:k]
        return [(str(self.items_.to_external([history[j]])[0]), float(shares[j])) for j in top]

    def _state_arrays(self) -> dict[str, np.ndarray]:
        sim = self.model_.similarity
        return {
            "similarity_data": sim.data,
            "similarity_indices": sim.indices,
            "similarity_indptr": sim.indptr,
            "similarity_shape": np.asarray(sim.shape, dtype=np.int64),
        }

    def _restore_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        shape = tuple(int(v) for v in arrays["similarity_shape"])
        if shape != (self.n_items, self.n_items):
            raise ValueError(f"similarity shape {shape} does not match {self.n_items} items")
        similarity = sp.csr_matrix(
            (
                arrays["similarity_data"],
                arrays["similarity_indices"],
                arrays["similarity_indptr"],
            ),
            shape=shape,
        )
        model = self._new_implicit_model()
        # implicit's own unpickling hook: sets `similarity` and rebuilds the native scorer
        model.__setstate__({**model.__dict__, "similarity": similarity})
        self._set_model(model)
