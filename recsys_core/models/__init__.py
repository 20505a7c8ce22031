"""Recommenders behind one interface: popularity, item-kNN, BPR, ALS (implicit), ALS on Spark
and the two-stage ranker.

>>> from recsys_core.models import create_model, load_model
>>> model = create_model("als", factors=32).fit(matrix)      # doctest: +SKIP
>>> model.recommend(["u1"], k=10)                            # doctest: +SKIP
>>> model.save(path); load_model(path)                       # doctest: +SKIP

Model names, labels, capabilities, fallback rank, similarity labels and search spaces:
:mod:`recsys_core.models.registry` (adding a model is one class plus one registration there).
The contract: :mod:`recsys_core.models.interface`; the implicit wrappers:
:mod:`recsys_core.models.adapters`; saved folders: :mod:`recsys_core.models.persistence`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from recsys_core.models.als import ALSConfig, ALSRecommender
from recsys_core.models.als_spark import ALSSparkConfig, ALSSparkRecommender
from recsys_core.models.bpr import BPRConfig, BPRRecommender
from recsys_core.models.interface import (
    COLD_START,
    RECOMMENDATION_COLUMNS,
    SIMILAR_ITEM,
    SIMILAR_ITEMS_COLUMNS,
    Recommender,
    RecommenderConfig,
)
from recsys_core.models.itemknn import ItemKNNConfig, ItemKNNRecommender
from recsys_core.models.matrix import MatrixRecommender
from recsys_core.models.persistence import FORMAT_VERSION
from recsys_core.models.popularity import PopularityConfig, PopularityRecommender
from recsys_core.models.registry import model_class, model_names, single_stage_models

#: Single-stage model name -> recommender class (from :mod:`recsys_core.models.registry`).
MODEL_REGISTRY: Final[dict[str, type[MatrixRecommender]]] = {
    name: model_class(name) for name in single_stage_models()
}

#: Every model name :func:`create_model` and :func:`load_model` know (the registry's).
MODEL_NAMES: Final[tuple[str, ...]] = model_names()


def create_model(name: str, **params: Any) -> Recommender:
    """Build an unfitted recommender by name.

    Parameters
    ----------
    name:
        One of :data:`MODEL_NAMES` (the registry's names).
    **params:
        Settings of that model's config (e.g. ``factors=32``, ``seed=7``).

    Raises
    ------
    ConfigError
        Unknown model name (the message lists the valid ones) or invalid settings.
    """
    return model_class(name)(**params)


def load_model(path: Path | str) -> Recommender:
    """Load any saved recommender, dispatching on the model name in ``config.json``.

    Raises
    ------
    ArtifactError
        Missing, incomplete or corrupted folder.
    """
    return Recommender.load(path)


__all__ = [
    "COLD_START",
    "FORMAT_VERSION",
    "MODEL_NAMES",
    "MODEL_REGISTRY",
    "RECOMMENDATION_COLUMNS",
    "SIMILAR_ITEM",
    "SIMILAR_ITEMS_COLUMNS",
    "ALSConfig",
    "ALSRecommender",
    "ALSSparkConfig",
    "ALSSparkRecommender",
    "BPRConfig",
    "BPRRecommender",
    "ItemKNNConfig",
    "ItemKNNRecommender",
    "MatrixRecommender",
    "PopularityConfig",
    "PopularityRecommender",
    "Recommender",
    "RecommenderConfig",
    "create_model",
    "load_model",
    "model_class",
]
