"""The model registry: the one owner of model names and of what the lab knows about each.

Every model of the lab is registered here once, with

* its **name** (command line, JSON, saved folders) and a **label** in the shop's words;
* where its class lives (imported on first use, so ``import recsys_core.models`` stays light
  and a model package may import :mod:`recsys_core.models` itself);
* its **capabilities** as flags the callers read (timestamps needed, probabilities, a
  two-stage model, slow to train, an optional extra it needs installed); a test checks each
  flag against the class's own declaration (:class:`~recsys_core.models.interface.Recommender`);
* its **fallback rank** in the service's chain (``None``: not in the chain);
* the **label of its similarity score** and where a short similar-items list is filled from;
* its **tuning search space** (:class:`SearchSpace`);
* whether a lab trains it and ``evaluate`` runs it by default.

Nothing else in ``recsys_core`` spells a model name as a string: callers use the constants
below (``ALS``, ``RANKER``, ...) or ask the registry (:func:`fallback_chain`,
:func:`purchase_model`, :func:`tunable_models`, ...). ``tests/core/models/test_model_registry.py``
fails when a model name appears as a string literal outside this module and the model's own
module (or, for a model living in its own package such as :mod:`recsys_core.ranking`, that
package).

Adding a model
--------------
1. Write the class (a :class:`~recsys_core.models.interface.Recommender`, usually a
   :class:`~recsys_core.models.matrix.MatrixRecommender` with its hooks) in its own
   module, e.g. ``recsys_core/models/ease.py``, with ``name: ClassVar[str] = "ease"``.
2. Register it at the end of this module, one call::

       EASE: Final = "ease"
       register(ModelSpec(
           EASE, "EASE (item-item regression)", "recsys_core.models.ease", "EASERecommender",
           similarity_label="EASE weight", similar_fill=(ALS, ITEMKNN, POPULARITY),
       ))

   and add its module to nothing else: the CLI, the API, the app's model pickers, evaluation,
   training, tuning (when it has a ``search_space``) and the name test all read the registry.
   The shared contract tests (``tests/core/models/test_contract.py``) run it automatically.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from importlib.util import find_spec
from typing import Any, Final

from recsys_core.columns import Columns
from recsys_core.errors import ConfigError

__all__ = [
    "ALS",
    "ALS_SPARK",
    "BPR",
    "BUY_AGAIN",
    "EASE",
    "ITEMKNN",
    "POPULARITY",
    "RANKER",
    "SASREC",
    "ModelSpec",
    "SearchSpace",
    "all_specs",
    "cold_start_model",
    "evaluated_by_default",
    "fallback_chain",
    "model_class",
    "model_names",
    "optional_models",
    "purchase_model",
    "recommendable_models",
    "register",
    "similar_item_models",
    "single_stage_models",
    "spec",
    "trained_by_default",
    "tunable_models",
]

# ------------------------------------------------------------------ the names (one place)

POPULARITY: Final = "popularity"
ITEMKNN: Final = "itemknn"
BPR: Final = "bpr"
ALS: Final = "als"
ALS_SPARK: Final = "als-spark"
RANKER: Final = "ranker"
BUY_AGAIN: Final = "buy-again"
EASE: Final = "ease"
SASREC: Final = "sasrec"


@dataclass(frozen=True)
class SearchSpace:
    """How the validation-window search (:mod:`recsys_core.tuning.search`) tunes a model.

    Attributes
    ----------
    suggest:
        ``suggest(trial) -> params``: one trial's settings (an Optuna trial).
    enqueue:
        ``enqueue(params) -> params``: a preset's settings completed with the search's
        own parameters (the first trial starts from them).
    budget_share:
        Share of the search budget (renormalised over the models asked for).
    order:
        Models are tuned in this order (lowest first).
    tunes_weights:
        The event weights are searched with the model's settings.
    staged_iterations:
        Fit this many iterations at a time and report after each (pruning); ``None``: one
        fit per trial.
    """

    suggest: Callable[[Any], dict[str, Any]]
    enqueue: Callable[[dict[str, Any]], dict[str, Any]]
    budget_share: float
    order: int
    tunes_weights: bool = True
    staged_iterations: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    """Everything the lab knows about one model (see the module docstring).

    Attributes
    ----------
    name:
        Command line, JSON and folder name.
    label:
        The model in the shop's words (reports, pickers).
    module, class_name:
        Where the class lives (imported on first use).
    requires_timestamps, scores_are_probabilities, two_stage, slow_to_train:
        The class's capabilities (checked against it by the tests).
    optional_module:
        A module that must be importable to *train* the model (an optional extra, e.g.
        ``pyspark``); ``None``: always available.
    fallback_rank:
        Position in the service's fallback chain (lower answers first); ``None``: the
        model is only served when asked for.
    similarity_label:
        What its similar-items score is, in words; ``None``: no similar items.
    similar_fill:
        Where a short similar-items list is filled from, in order.
    search_space:
        How tuning searches its settings; ``None``: not tuned.
    trained_by_default, evaluated_by_default:
        Part of a lab / of ``evaluate`` when no model list is given.
    cold_start:
        Answers anyone (the last step of the fallback chain).
    explains:
        What its lists can be explained by, in words (the model-selection table).
    """

    name: str
    label: str
    module: str
    class_name: str
    requires_timestamps: bool = False
    scores_are_probabilities: bool = False
    two_stage: bool = False
    slow_to_train: bool = False
    optional_module: str | None = None
    fallback_rank: int | None = None
    similarity_label: str | None = None
    similar_fill: tuple[str, ...] = ()
    search_space: SearchSpace | None = field(default=None, compare=False)
    trained_by_default: bool = False
    evaluated_by_default: bool = False
    cold_start: bool = False
    explains: str = ""

    @property
    def cls(self) -> type[Any]:
        """The recommender class (imported on first use)."""
        found: type[Any] = getattr(import_module(self.module), self.class_name)
        return found

    def can_train_on(self, columns: Collection[str]) -> bool:
        """Whether it can be trained on a log with these columns, from what it declares
        (timestamps), without importing its class: the ranker's imports LightGBM and
        scikit-learn, which the app's first page does not need (issue 24). The class's own
        ``cannot_train_on`` says why not; a test checks that the two agree."""
        return not (self.requires_timestamps and Columns.TIMESTAMP not in columns)

    @property
    def installed(self) -> bool:
        """Whether the optional extra it needs to train is installed."""
        return self.optional_module is None or find_spec(self.optional_module) is not None


_REGISTRY: dict[str, ModelSpec] = {}


def register(model: ModelSpec) -> ModelSpec:
    """Add a model (its name must be new)."""
    if model.name in _REGISTRY:
        raise ValueError(f"model {model.name!r} is registered twice")
    _REGISTRY[model.name] = model
    return model


def spec(name: str) -> ModelSpec:
    """The registered model ``name``.

    Raises
    ------
    ConfigError
        Unknown name (the message lists the registered ones).
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; choose one of: " + ", ".join(sorted(_REGISTRY))
        ) from None


def model_class(name: str) -> type[Any]:
    """The recommender class of model ``name`` (ConfigError for an unknown name)."""
    return spec(name).cls


def all_specs() -> list[ModelSpec]:
    """Every registered model, in registration order."""
    return list(_REGISTRY.values())


def model_names() -> tuple[str, ...]:
    """Every registered model name, in registration order."""
    return tuple(_REGISTRY)


def single_stage_models() -> tuple[str, ...]:
    """Models trained on the interaction matrix alone (not two-stage)."""
    return tuple(m.name for m in _REGISTRY.values() if not m.two_stage)


def trained_by_default() -> tuple[str, ...]:
    """Models a lab trains when no list is given."""
    return tuple(m.name for m in _REGISTRY.values() if m.trained_by_default)


def evaluated_by_default() -> tuple[str, ...]:
    """Models ``evaluate`` runs when no list is given."""
    return tuple(m.name for m in _REGISTRY.values() if m.evaluated_by_default)


def optional_models() -> tuple[str, ...]:
    """Models that need an optional extra to train."""
    return tuple(m.name for m in _REGISTRY.values() if m.optional_module is not None)


def fallback_chain() -> tuple[str, ...]:
    """The service's fallback chain, first to last."""
    ranked = [m for m in _REGISTRY.values() if m.fallback_rank is not None]
    return tuple(m.name for m in sorted(ranked, key=lambda m: m.fallback_rank or 0))


def cold_start_model() -> str:
    """The model that answers anyone (the chain's last step)."""
    return next(m.name for m in _REGISTRY.values() if m.cold_start)


def purchase_model() -> str:
    """The two-stage purchase model (its scores are calibrated probabilities)."""
    return next(m.name for m in _REGISTRY.values() if m.scores_are_probabilities)


def recommendable_models() -> tuple[str, ...]:
    """Every model the service can be asked for lists."""
    return model_names()


def similar_item_models() -> tuple[str, ...]:
    """Models with similar items (a similarity score label)."""
    return tuple(m.name for m in _REGISTRY.values() if m.similarity_label is not None)


def tunable_models() -> tuple[str, ...]:
    """Models the validation-window search tunes, in the order it tunes them."""
    tuned = [(m.search_space.order, m.name) for m in _REGISTRY.values() if m.search_space]
    return tuple(name for _, name in sorted(tuned))


def labels() -> Mapping[str, str]:
    """Each model's label in the shop's words."""
    return {m.name: m.label for m in _REGISTRY.values()}


# ------------------------------------------------------------------ search spaces

#: ALS reports its validation NDCG after every this many iterations (for pruning).
ALS_STAGE: Final = 5


def _suggest_als(trial: Any) -> dict[str, Any]:
    return {
        "factors": trial.suggest_categorical("factors", [16, 32, 64, 128, 256]),
        "regularization": trial.suggest_float("regularization", 1e-3, 100.0, log=True),
        "alpha": trial.suggest_float("alpha", 0.01, 50.0, log=True),
        "iterations": trial.suggest_int("iterations", 5, 30, step=ALS_STAGE),
    }


def _enqueue_als(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    out.setdefault("iterations", 15)
    out["iterations"] = int(min(max(round(out["iterations"] / ALS_STAGE) * ALS_STAGE, 5), 30))
    return out


def _suggest_itemknn(trial: Any) -> dict[str, Any]:
    weighting = trial.suggest_categorical("weighting", ["bm25", "cosine", "tfidf"])
    params: dict[str, Any] = {
        "weighting": weighting,
        "neighbours": trial.suggest_int("neighbours", 2, 200, log=True),
    }
    if weighting == "bm25":
        params["b"] = trial.suggest_float("b", 0.0, 1.0)
        params["k1"] = trial.suggest_float("k1", 0.5, 2.0)
    return params


def _enqueue_itemknn(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    if out.get("weighting", "bm25") == "bm25":
        out.setdefault("b", 0.75)
        out.setdefault("k1", 1.2)
    return out


def _suggest_bpr(trial: Any) -> dict[str, Any]:
    return {
        "factors": trial.suggest_categorical("factors", [32, 64, 128]),
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.1, log=True),
        "regularization": trial.suggest_float("regularization", 1e-4, 0.1, log=True),
        "iterations": trial.suggest_int("iterations", 20, 200, step=20),
    }


def _enqueue_bpr(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    out.setdefault("iterations", 100)
    return out


# ------------------------------------------------------------------ the models

register(
    ModelSpec(
        POPULARITY,
        "best sellers (popularity)",
        "recsys_core.models.popularity",
        "PopularityRecommender",
        fallback_rank=99,
        similarity_label="shoppers with both",
        similar_fill=(ALS, ITEMKNN),
        trained_by_default=True,
        evaluated_by_default=True,
        cold_start=True,
        explains="nothing personal: the shop's bestsellers",
    )
)
register(
    ModelSpec(
        BUY_AGAIN,
        "buy again (own items by count and recency)",
        "recsys_core.models.buy_again",
        "BuyAgainRecommender",
        similarity_label="shoppers with both",
        similar_fill=(ALS, ITEMKNN, POPULARITY),
        evaluated_by_default=True,
        explains="the shopper's own past purchases (how often, how recently)",
    )
)
register(
    ModelSpec(
        ITEMKNN,
        "item-kNN (bought-together)",
        "recsys_core.models.itemknn",
        "ItemKNNRecommender",
        fallback_rank=2,
        similarity_label="co-purchase score (item-kNN)",
        similar_fill=(ALS, BPR, POPULARITY),
        search_space=SearchSpace(_suggest_itemknn, _enqueue_itemknn, budget_share=0.2, order=1),
        trained_by_default=True,
        evaluated_by_default=True,
        explains="'because you bought / viewed X' (its item-to-item neighbours)",
    )
)
register(
    ModelSpec(
        EASE,
        "EASE (item-item regression)",
        "recsys_core.models.ease",
        "EASERecommender",
        similarity_label="EASE weight",
        similar_fill=(ALS, ITEMKNN, POPULARITY),
        evaluated_by_default=True,
        explains="learned item-to-item weights (no per-item reason shown yet)",
    )
)
register(
    ModelSpec(
        BPR,
        "BPR (taste factors)",
        "recsys_core.models.bpr",
        "BPRRecommender",
        slow_to_train=True,
        similarity_label="BPR cosine",
        similar_fill=(ALS, ITEMKNN, POPULARITY),
        search_space=SearchSpace(
            _suggest_bpr, _enqueue_bpr, budget_share=0.3, order=2, tunes_weights=False
        ),
        trained_by_default=True,
        evaluated_by_default=True,
        explains="latent factors only (no per-item reason)",
    )
)
register(
    ModelSpec(
        ALS,
        "ALS (taste factors)",
        "recsys_core.models.als",
        "ALSRecommender",
        fallback_rank=1,
        similarity_label="ALS cosine",
        similar_fill=(ITEMKNN, BPR, POPULARITY),
        search_space=SearchSpace(
            _suggest_als, _enqueue_als, budget_share=0.5, order=0, staged_iterations=ALS_STAGE
        ),
        trained_by_default=True,
        evaluated_by_default=True,
        explains="'because you bought / viewed X' from its own factors; similar items",
    )
)
register(
    ModelSpec(
        ALS_SPARK,
        "ALS on Spark (taste factors)",
        "recsys_core.models.als_spark",
        "ALSSparkRecommender",
        optional_module="pyspark",
        similarity_label="ALS cosine (Spark)",
        explains="latent factors; similar items",
    )
)
register(
    ModelSpec(
        SASREC,
        "SASRec (transformer over baskets)",
        "recsys_core.models.sasrec",
        "SASRecRecommender",
        requires_timestamps=True,
        slow_to_train=True,
        optional_module="torch",
        similarity_label="SASRec embedding cosine",
        similar_fill=(ALS, ITEMKNN, POPULARITY),
        explains="item embeddings (similar items); no per-item reason",
    )
)
register(
    ModelSpec(
        RANKER,
        "the two-stage purchase model (ranker)",
        "recsys_core.ranking.ranker",
        "TwoStageRanker",
        requires_timestamps=True,
        scores_are_probabilities=True,
        two_stage=True,
        slow_to_train=True,
        fallback_rank=0,
        trained_by_default=True,
        evaluated_by_default=True,
        explains="per-feature SHAP contributions and 'because you bought X'",
    )
)
