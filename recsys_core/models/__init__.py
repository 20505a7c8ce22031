"""Recommenders behind one interface: popularity, item-kNN, BPR, ALS (implicit) and ALS on Spark.

>>> from recsys_core.models import create_model, load_model
>>> model = create_model("als", factors=32).fit(matrix)      # doctest: +SKIP
>>> model.recommend(["u1"], k=10)                            # doctest: +SKIP
>>> model.save(path); load_model(path)                       # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from recsys_core.errors import ConfigError
from recsys_core.models.als import ALSConfig, ALSRecommender
from recsys_core.models.als_spark import ALSSparkConfig, ALSSparkRecommender
from recsys_core.models.base import (
    COLD_START,
    FORMAT_VERSION,
    RECOMMENDATION_COLUMNS,
    SIMILAR_ITEM,
    SIMILAR_ITEMS_COLUMNS,
    Recommender,
    RecommenderConfig,
)
from recsys_core.models.bpr import BPRConfig, BPRRecommender
from recsys_core.models.itemknn import ItemKNNConfig, ItemKNNRecommender
from recsys_core.models.popularity import PopularityConfig, PopularityRecommender

#: Model name (command line, JSON, saved folders) -> recommender class.
MODEL_REGISTRY: Final[dict[str, type[Recommender]]] = {
    cls.name: cls
    for cls in (
        PopularityRecommender,
        ItemKNNRecommender,
        BPRRecommender,
        ALSRecommender,
        ALSSparkRecommender,  # trains on Spark (optional install); loads and serves without it
    )
}


def create_model(name: str, **params: Any) -> Recommender:
    """Build an unfitted recommender by name.

    Parameters
    ----------
    name:
        One of :data:`MODEL_REGISTRY` (``popularity``, ``itemknn``, ``bpr``, ``als``,
        ``als-spark``).
    **params:
        Settings of that model's config (e.g. ``factors=32``, ``seed=7``).

    Raises
    ------
    ConfigError
        Unknown model name (the message lists the valid ones) or invalid settings.
    """
    cls = MODEL_REGISTRY.get(name)
    if cls is None:
        raise ConfigError(
            f"unknown model {name!r}; choose one of: " + ", ".join(sorted(MODEL_REGISTRY))
        )
    return cls(**params)


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
    "PopularityConfig",
    "PopularityRecommender",
    "Recommender",
    "RecommenderConfig",
    "create_model",
    "load_model",
]
