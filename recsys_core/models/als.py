"""Implicit-feedback ALS (implicit's CPU ``AlternatingLeastSquares``) with explanations."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from pydantic import Field

from recsys_core.errors import UnknownUserError
from recsys_core.models.adapters import FactorRecommender, single_threaded_blas
from recsys_core.models.interface import RecommenderConfig, check_k


class ALSConfig(RecommenderConfig):
    """Settings of :class:`ALSRecommender`.

    Event weights are not a model setting: they shape the interaction matrix
    (:class:`~recsys_core.interactions.EventWeights`) before the model sees it.
    """

    factors: int = Field(64, ge=1, description="Number of latent factors.")
    regularization: float = Field(0.01, ge=0, description="L2 regularisation of the factors.")
    alpha: float = Field(
        1.0,
        gt=0,
        description="Confidence scaling: a cell's confidence is alpha times its weight.",
    )
    iterations: int = Field(15, ge=1, description="Number of alternating sweeps.")
    use_cg: bool = Field(
        True, description="Use the conjugate-gradient solver (faster) instead of Cholesky."
    )
    num_threads: int = Field(
        0,
        ge=0,
        description=(
            "Threads for fitting and batch recommendation; 0 uses every core. Results are "
            "identical for any value (each user's / item's solve is independent)."
        ),
    )


class ALSRecommender(FactorRecommender):
    """Weighted matrix factorisation for implicit feedback (Hu, Koren and Volinsky 2008).

    ``score`` is the dot product of user and item factors. Training is reproducible: the
    same seed and matrix give bit-identical factors, whatever ``num_threads``.
    """

    name: ClassVar[str] = "als"
    config_class: ClassVar[type[RecommenderConfig]] = ALSConfig
    config: ALSConfig

    def _new_implicit_model(self) -> AlternatingLeastSquares:
        cfg = self.config
        return AlternatingLeastSquares(
            factors=cfg.factors,
            regularization=cfg.regularization,
            alpha=cfg.alpha,
            dtype=np.float32,
            use_cg=cfg.use_cg,
            iterations=cfg.iterations,
            calculate_training_loss=False,
            num_threads=cfg.num_threads,
            random_state=cfg.seed,
        )

    def explain(self, user_id: str, item_id: str, k: int = 5) -> list[tuple[str, float]]:
        """Which of the user's past items make the model recommend ``item_id``.

        "Because you interacted with X": implicit's ``AlternatingLeastSquares.explain``
        splits the score into one contribution per item in the user's training history.

        Parameters
        ----------
        user_id:
            A training user.
        item_id:
            Any item the model knows.
        k:
            Number of past items to return.

        Returns
        -------
        list of (str, float)
            ``(past item id, contribution)``, largest contribution first; at most ``k``.
            Empty when the user has no training history.

        Raises
        ------
        UnknownUserError, UnknownItemError
            The user or item is not in the training data.
        ConfigError
            ``k`` is not a positive whole number.
        """
        self._check_fitted()
        k = check_k(k)
        user = int(self.users_.to_internal([user_id])[0])
        if user < 0:
            raise UnknownUserError(
                f"unknown user id {user_id!r}: the 'als' model knows {self.n_users} users; "
                "explanations need a user from the training data"
            )
        item = int(self._item_rows([item_id])[1][0])  # UnknownItemError for a stranger
        # implicit solves a factors x factors system here; with OpenBLAS's thread pool on a
        # busy machine that took ~290 ms instead of ~9 ms single-threaded.
        with single_threaded_blas():
            _, contributions, _ = self.model_.explain(user, self.user_items_, item, N=k)
        return [
            (str(self.items_.to_external([other])[0]), float(score))
            for other, score in contributions
        ]
