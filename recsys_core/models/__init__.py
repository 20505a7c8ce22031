"""Recommenders behind one interface: popularity, buy-again, item-kNN, EASE, BPR, ALS
(implicit), ALS on Spark and the two-stage ranker.

>>> from recsys_core.models import create_model, load_model
>>> model = create_model("als", factors=32).fit(matrix)      # doctest: +SKIP
>>> model.recommend(["u1"], k=10)                            # doctest: +SKIP
>>> model.save(path); load_model(path)                       # doctest: +SKIP

The contract and the capabilities every model declares: :mod:`recsys_core.models.interface`;
the implicit wrappers: :mod:`recsys_core.models.adapters`; saved folders:
:mod:`recsys_core.models.persistence`.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any, Final

from recsys_core.errors import ConfigError
from recsys_core.models.als import ALSConfig, ALSRecommender
from recsys_core.models.als_spark import ALSSparkConfig, ALSSparkRecommender
from recsys_core.models.bpr import BPRConfig, BPRRecommender
from recsys_core.models.buy_again import BuyAgainConfig, BuyAgainRecommender
from recsys_core.models.ease import EASEConfig, EASERecommender
from recsys_core.models.interface import (
    COLD_START,
    RECOMMENDATION_COLUMNS,
    SIMILAR_ITEM,
    SIMILAR_ITEMS_COLUMNS,
    MatrixRecommender,
    Recommender,
    RecommenderConfig,
)
from recsys_core.models.itemknn import ItemKNNConfig, ItemKNNRecommender
from recsys_core.models.persistence import FORMAT_VERSION
from recsys_core.models.popularity import PopularityConfig, PopularityRecommender
from recsys_core.models.sasrec import SASRecRecommender  # torch only inside fit (optional extra)

#: Single-stage model name (command line, JSON, saved folders) -> recommender class.
MODEL_REGISTRY: Final[dict[str, type[MatrixRecommender]]] = {
    cls.name: cls
    for cls in (
        PopularityRecommender,
        BuyAgainRecommender,
        ItemKNNRecommender,
        EASERecommender,
        BPRRecommender,
        ALSRecommender,
        ALSSparkRecommender,  # trains on Spark (optional install); loads and serves without it
        SASRecRecommender,  # trains with torch (requirements-seq.txt); serves without it
    )
}

#: Models defined outside this package, imported on first use: name -> (module, class).
#: (The ranker pulls in LightGBM and scikit-learn; ``import recsys_core.models`` stays light.)
_ELSEWHERE: Final[dict[str, tuple[str, str]]] = {
    "ranker": ("recsys_core.ranking.ranker", "TwoStageRanker"),
}

#: Every model name :func:`create_model` and :func:`load_model` know.
MODEL_NAMES: Final[tuple[str, ...]] = (*MODEL_REGISTRY, *_ELSEWHERE)


def model_class(name: str) -> type[Recommender]:
    """The recommender class of model ``name`` (its capabilities are class attributes).

    Raises
    ------
    ConfigError
        Unknown model name (the message lists the valid ones).
    """
    cls = MODEL_REGISTRY.get(name)
    if cls is not None:
        return cls
    if name in _ELSEWHERE:
        module, attribute = _ELSEWHERE[name]
        found: type[Recommender] = getattr(import_module(module), attribute)
        return found
    raise ConfigError(f"unknown model {name!r}; choose one of: " + ", ".join(sorted(MODEL_NAMES)))


def create_model(name: str, **params: Any) -> Recommender:
    """Build an unfitted recommender by name.

    Parameters
    ----------
    name:
        One of :data:`MODEL_NAMES` (``popularity``, ``buy-again``, ``itemknn``, ``ease``,
        ``bpr``, ``als``, ``als-spark``, ``ranker``).
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
    "BuyAgainConfig",
    "BuyAgainRecommender",
    "EASEConfig",
    "EASERecommender",
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
