"""Bayesian Personalised Ranking (implicit's CPU ``BayesianPersonalizedRanking``)."""

from __future__ import annotations

from typing import ClassVar

from implicit.cpu.bpr import BayesianPersonalizedRanking
from pydantic import Field

from recsys_core.models.adapters import FactorRecommender
from recsys_core.models.interface import RecommenderConfig


class BPRConfig(RecommenderConfig):
    """Settings of :class:`BPRRecommender`."""

    factors: int = Field(64, ge=1, description="Number of latent factors.")
    learning_rate: float = Field(0.01, gt=0, description="SGD learning rate.")
    regularization: float = Field(0.01, ge=0, description="L2 regularisation of the factors.")
    iterations: int = Field(100, ge=1, description="Passes (epochs) over the interactions.")
    verify_negative_samples: bool = Field(
        True, description="Resample negatives the user actually interacted with."
    )
    num_threads: int = Field(
        1,
        ge=0,
        description=(
            "Training threads (0 = every core). implicit's BPR updates the factors from "
            "several threads without locks (Hogwild), so any value other than 1 makes "
            "training non-reproducible even with a fixed seed."
        ),
    )


class BPRRecommender(FactorRecommender):
    """Matrix factorisation trained to rank interacted items above sampled other items.

    Interactions count as positives whatever their weight. ``score`` is the dot product of
    user and item factors. implicit adds an item-bias column: ``item_factors_`` has
    ``factors + 1`` columns and ``user_factors_`` a last column of ones.
    """

    name: ClassVar[str] = "bpr"
    #: ~10 s more than the others on Online Retail: the app trains it in the background.
    slow_to_train: ClassVar[bool] = True
    config_class: ClassVar[type[RecommenderConfig]] = BPRConfig
    config: BPRConfig

    def _new_implicit_model(self) -> BayesianPersonalizedRanking:
        cfg = self.config
        return BayesianPersonalizedRanking(
            factors=cfg.factors,
            learning_rate=cfg.learning_rate,
            regularization=cfg.regularization,
            iterations=cfg.iterations,
            verify_negative_samples=cfg.verify_negative_samples,
            num_threads=cfg.num_threads,
            random_state=cfg.seed,
        )
