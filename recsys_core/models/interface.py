"""The recommender contract: one interface for every model (implicit's ``RecommenderBase`` habit).

Every model of the lab — the single-stage ones (popularity, item-kNN, BPR, ALS) and the
two-stage ranker (:class:`~recsys_core.ranking.ranker.TwoStageRanker`) — is a
:class:`Recommender`, and every one passes the shared contract tests
(``tests/core/models/test_contract.py``). The contract:

* ``__init__`` only stores validated settings (scikit-learn habit; fitted attributes end
  with ``_``); unknown or invalid settings are a :class:`~recsys_core.errors.ConfigError`.
* :meth:`Recommender.fit_log` learns from an event log (optionally up to a ``cutoff``) and
  returns the model; a model may also offer its own ``fit``.
* :meth:`Recommender.recommend` returns a recommendation frame: the columns of
  :data:`RECOMMENDATION_COLUMNS` (``user_id, item_id, score, rank, cold_start``; a model
  whose scores are probabilities adds ``purchase_probability`` = ``score``), at most ``k``
  rows per user, ranks ``1..k``, scores not increasing with rank, sorted by user then rank.
  Users the model cannot personalise for get a non-personalised list flagged
  ``cold_start=True``. ``filter_seen`` (required: no model has a filtering default of its
  own) leaves out items the user interacted with in training.
* :meth:`Recommender.similar_items` returns a similar-items frame
  (:data:`SIMILAR_ITEMS_COLUMNS`), the item itself excluded;
  :class:`~recsys_core.errors.UnknownItemError` for an item the model does not know.
* :meth:`Recommender.score_items` scores (user, item) pairs on the scale of
  ``recommend``'s non-cold-start scores; NaN where the user or item is unknown.
* :meth:`Recommender.save` writes a folder without pickle (``config.json`` last);
  :meth:`Recommender.load` / :func:`recsys_core.models.load_model` read it back
  (:mod:`recsys_core.models.persistence`).

Capabilities
------------
What callers must know about a model is declared on its class, never inferred from its
name, so a new model works without new branches:

``requires_timestamps``
    Training needs event timestamps (time windows); such a model is skipped, with
    :meth:`Recommender.cannot_train_on`'s reason, on a log without them.
``scores_are_probabilities``
    ``score`` is a calibrated probability (of a purchase in the next period). Such a model
    also provides ``warm_candidate_frame(user_ids)`` (every candidate scored, with a
    ``purchase_probability`` column) and accepts it back as ``recommend(...,
    candidates=frame)``, so the lists and the probability metrics come from one scoring.
``stage_one_models``
    Names of the single-stage models this one is built on (its candidate generators);
    :meth:`Recommender.stage_one_model` returns them fitted. Empty for a single-stage model.
``slow_to_train``
    Fitting takes long enough (tens of seconds or more on Online Retail) that the app
    trains it in the background after the quick models.

Single-stage models share :class:`~recsys_core.models.matrix.MatrixRecommender` (one users
x items training matrix, integer indices inside, cold start by popularity).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys_core.columns import RECO_COLUMNS, Columns
from recsys_core.data.dataset import canonical_ids
from recsys_core.errors import (
    ConfigError,
    ModelNotTrainedError,
)
from recsys_core.interactions import InteractionMatrix
from recsys_core.models.persistence import load_folder

#: Extra boolean column of recommendation frames: True for cold-start (popularity) rows.
COLD_START: Final = "cold_start"
#: Column of similar-item frames holding the neighbour's id.
SIMILAR_ITEM: Final = "similar_item_id"

#: Columns of a recommendation frame, in order.
RECOMMENDATION_COLUMNS: Final[tuple[str, ...]] = (*RECO_COLUMNS, COLD_START)
#: Columns of a similar-items frame, in order.
SIMILAR_ITEMS_COLUMNS: Final[tuple[str, ...]] = (
    Columns.ITEM,
    SIMILAR_ITEM,
    Columns.SCORE,
    Columns.RANK,
)

#: Result rows of the index-level hooks scoring this low are padding (implicit pads short
#: rows with id -1 and score -FLT_MAX), never recommendations.
PADDING_SCORE: Final = -0.5 * float(np.finfo(np.float32).max)

#: Progress callback of :meth:`Recommender.fit_log`: a message and the fraction done.
Progress = Callable[[str, float], None]


class RecommenderConfig(BaseModel):
    """Settings every recommender has; each model extends it with its hyperparameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(
        42,
        ge=0,
        description="Random seed. The same seed and the same data give the same model.",
    )


def format_validation_error(model_name: str, exc: ValidationError) -> str:
    """One readable sentence per invalid setting of a model config."""
    problems = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "(config)"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown setting {field!r}")
        else:
            problems.append(f"{field}={err.get('input')!r}: {err['msg']}")
    return f"invalid settings for model {model_name!r}: " + "; ".join(problems)


def check_k(k: int) -> int:
    """Validate the number of results asked for (ConfigError otherwise)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be a positive whole number of results, got {k!r}")
    return int(k)


def unique_ids(ids: Iterable[object]) -> np.ndarray:
    """Ids as strings, duplicates removed (first occurrence kept)."""
    if isinstance(ids, str):
        raise TypeError("pass a sequence of ids, e.g. ['u1'], not a single string")
    values = pd.unique(canonical_ids(list(ids)))  # API/CLI arguments: the input boundary
    return np.asarray(values, dtype=object)


def check_pairs(n_users: int, n_items: int) -> None:
    """ValueError unless ``score_items`` got one item per user."""
    if n_users != n_items:
        raise ValueError(
            f"score_items needs one item per user: got {n_users} users and {n_items} items"
        )


class Recommender(ABC):
    """A top-k recommender: the contract every model of the lab satisfies.

    Parameters
    ----------
    config:
        A config object of the model's config class, or a mapping of settings.
    **overrides:
        Settings that replace those in ``config`` (e.g. ``factors=32``).

    Raises
    ------
    ConfigError
        An unknown setting or an invalid value; the message lists each problem.
    """

    #: Name on the command line, in JSON and in saved folders.
    name: ClassVar[str]
    #: The pydantic model holding this recommender's settings.
    config_class: ClassVar[type[BaseModel]] = RecommenderConfig

    #: Training needs event timestamps (see the module docstring, "Capabilities").
    requires_timestamps: ClassVar[bool] = False
    #: ``score`` is a calibrated purchase probability.
    scores_are_probabilities: ClassVar[bool] = False
    #: Names of the models this one is built on (empty: a single-stage model).
    stage_one_models: ClassVar[tuple[str, ...]] = ()
    #: Fitting is slow enough for the app to train it in the background.
    slow_to_train: ClassVar[bool] = False

    config: BaseModel

    def __init__(
        self, config: BaseModel | Mapping[str, Any] | None = None, **overrides: Any
    ) -> None:
        if isinstance(config, BaseModel):
            if not isinstance(config, self.config_class):
                raise ConfigError(
                    f"model {self.name!r} takes a {self.config_class.__name__}, "
                    f"got a {type(config).__name__}"
                )
            settings = config.model_dump()
        else:
            settings = dict(config or {})
        settings.update(overrides)
        try:
            self.config = self.config_class.model_validate(settings)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(self.name, exc)) from None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ fitting

    @property
    @abstractmethod
    def is_fitted(self) -> bool:
        """Whether :meth:`fit_log` (or :meth:`load`) has run."""

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise ModelNotTrainedError(
                f"the {self.name!r} model is not trained yet: call fit() or load a saved model"
            )

    @classmethod
    def cannot_train_on(cls, events: pd.DataFrame) -> str | None:
        """Why this model cannot be trained on ``events`` (``None`` when it can).

        Only requirements known before fitting are checked (timestamps); a fit that finds
        the log unusable raises :class:`~recsys_core.errors.DataValidationError` itself.
        """
        if cls.requires_timestamps and Columns.TIMESTAMP not in events.columns:
            return f"the {cls.name!r} model needs timestamps; this log has none"
        return None

    @abstractmethod
    def fit_log(
        self,
        events: pd.DataFrame,
        catalog: pd.DataFrame | None = None,
        *,
        cutoff: pd.Timestamp | str | None = None,
        matrix: InteractionMatrix | None = None,
        progress: Progress | None = None,
    ) -> Self:
        """Learn from an event log; the one training call every model answers.

        Parameters
        ----------
        events:
            Canonical event log; events at or after ``cutoff`` are not used.
        catalog:
            Optional item catalog (models that use item attributes read it).
        cutoff:
            The instant the recommendations are for (default: after the last event).
        matrix:
            The training events (those before ``cutoff``) as a weighted interaction
            matrix, when the caller has built one: single-stage models learn from it
            as given; a model that builds its own ignores it. Built from ``events`` with
            the default weights when omitted.
        progress:
            Called with a message and the fraction done, for progress bars.

        Returns
        -------
        Self
            The fitted model.

        Raises
        ------
        DataValidationError
            A log the model cannot learn from.
        """

    # ------------------------------------------------------------------ answering

    @abstractmethod
    def recommend(self, user_ids: Sequence[str], k: int = 10, *, filter_seen: bool) -> pd.DataFrame:
        """Top-``k`` items for each user (a recommendation frame, see the module docstring).

        ``filter_seen`` has no default: the caller says whether the items the user
        interacted with in training may be listed (lists for shoppers are produced under
        a :class:`~recsys_core.policy.ListPolicy` by
        :func:`~recsys_core.policy.recommend_with_policy`).
        """

    @abstractmethod
    def similar_items(self, item_ids: Sequence[str], k: int = 10) -> pd.DataFrame:
        """The ``k`` items most similar to each given item (the item itself excluded)."""

    @abstractmethod
    def score_items(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """Score of each (user, item) pair on :meth:`recommend`'s scale; NaN when unknown."""

    @abstractmethod
    def known_users(self) -> list[str]:
        """Every user the model can personalise for (the others get the cold-start list)."""

    def stage_one_model(self, name: str) -> Recommender:
        """The fitted stage-one model ``name`` (one of :attr:`stage_one_models`).

        Raises
        ------
        ConfigError
            ``name`` is not one of this model's stage-one models.
        """
        raise ConfigError(
            f"model {self.name!r} is not built on a {name!r} model; its stage-one models: "
            + (", ".join(self.stage_one_models) or "none")
        )

    # ------------------------------------------------------------------ persistence

    @abstractmethod
    def save(self, path: Path | str) -> None:
        """Save the fitted model to folder ``path`` (created if needed; no pickle).

        Raises
        ------
        ModelNotTrainedError
            The model has not been fitted.
        """

    @classmethod
    def load(cls, path: Path | str) -> Self:
        """Load a model saved by :meth:`save`.

        Called on :class:`Recommender` itself it dispatches on the saved model name (like
        :func:`~recsys_core.models.load_model`); called on a model class it checks the
        folder holds that model.

        Raises
        ------
        ArtifactError
            The folder is missing, incomplete, corrupted, of another format version, or
            holds a different model.
        """
        return load_folder(Path(path), cls)

    @classmethod
    @abstractmethod
    def _load_folder(cls, folder: Path, metadata: Mapping[str, Any]) -> Self:
        """Rebuild the model from its folder; ``metadata`` is its ``config.json``.

        Checks the format version; ArtifactError for anything missing or inconsistent.
        """


def recommendation_frame(
    users: np.ndarray,
    items: np.ndarray,
    scores: np.ndarray,
    ranks: np.ndarray,
    *,
    cold_start: bool,
) -> pd.DataFrame:
    """A recommendation frame (:data:`RECOMMENDATION_COLUMNS`) from its columns."""
    return pd.DataFrame(
        {
            Columns.USER: pd.Series(users, dtype=str),
            Columns.ITEM: pd.Series(items, dtype=str),
            Columns.SCORE: np.asarray(scores, dtype=np.float64),
            Columns.RANK: np.asarray(ranks, dtype=np.int64),
            COLD_START: np.full(len(users), cold_start, dtype=bool),
        }
    )


def empty_recommendations() -> pd.DataFrame:
    empty = np.array([], dtype=object)
    return recommendation_frame(empty, empty, empty, empty, cold_start=False)
