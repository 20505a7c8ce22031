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

Single-stage models share :class:`MatrixRecommender`: integer indices inside, external
string ids at the boundary (:class:`~recsys_core.interactions.IdMap`), one users x items
training matrix. A concrete model implements a handful of index-level hooks
(``_fit_model``, ``_recommend_rows``, ``_similar_rows``, ``_score_pairs``,
``_state_arrays``, ``_restore_state``).

Cold start (single-stage models)
--------------------------------
A user who is not in the training id map, or who has no training interactions, gets the
most popular training items (number of distinct training users, ties broken by item id).
Their rows carry ``cold_start=True`` and ``score`` is that popularity count, so it is not on
the same scale as the model's own scores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys_core.columns import RECO_COLUMNS, Columns
from recsys_core.errors import (
    ConfigError,
    DataValidationError,
    ModelNotTrainedError,
    UnknownItemError,
)
from recsys_core.interactions import IdMap, InteractionMatrix
from recsys_core.models.persistence import load_folder, load_matrix_model, save_matrix_model

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
    values = pd.unique(pd.Series(list(ids), dtype=object).astype(str))
    return np.asarray(values, dtype=object)


def check_pairs(n_users: int, n_items: int) -> None:
    """ValueError unless ``score_items`` got one item per user."""
    if n_users != n_items:
        raise ValueError(
            f"score_items needs one item per user: got {n_users} users and {n_items} items"
        )


def _first_k_valid(valid: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first ``k`` valid cells of each row; return the mask and 1-based ranks."""
    ranks = np.cumsum(valid, axis=1)
    keep = valid & (ranks <= k)
    return keep, ranks


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


class MatrixRecommender(Recommender):
    """Shared code of the single-stage models: one users x items interaction matrix.

    ``__init__`` only stores settings; :meth:`fit` learns from an
    :class:`~recsys_core.interactions.InteractionMatrix` and returns ``self``.

    Attributes
    ----------
    users_, items_ : IdMap
        Training id maps (rows and columns of ``user_items_``).
    user_items_ : scipy.sparse.csr_matrix
        The training users x items matrix (float32); used to filter seen items.
    item_popularity_ : numpy.ndarray
        Number of distinct training users per item (the cold-start ranking).
    """

    # the single-stage capabilities (see Recommender); a model may change them
    requires_timestamps: ClassVar[bool] = False
    scores_are_probabilities: ClassVar[bool] = False
    stage_one_models: ClassVar[tuple[str, ...]] = ()
    slow_to_train: ClassVar[bool] = False

    config: RecommenderConfig
    users_: IdMap
    items_: IdMap
    user_items_: sp.csr_matrix
    item_popularity_: np.ndarray
    _popular_order: np.ndarray

    # ------------------------------------------------------------------ fitting

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has run."""
        return hasattr(self, "user_items_")

    def fit(self, interactions: InteractionMatrix) -> Self:
        """Learn from a weighted users x items interaction matrix.

        Parameters
        ----------
        interactions:
            The training matrix with its id maps.

        Returns
        -------
        Self
            The fitted model.

        Raises
        ------
        DataValidationError
            The matrix has no positive interactions.
        """
        if not isinstance(interactions, InteractionMatrix):
            raise TypeError(
                f"fit() takes an InteractionMatrix, got {type(interactions).__name__}; "
                "build one with InteractionMatrix.from_events(events)"
            )
        matrix = sp.csr_matrix(interactions.matrix, dtype=np.float32, copy=True)
        if matrix.shape != interactions.shape:
            raise DataValidationError(
                f"interaction matrix shape {matrix.shape} does not match its id maps "
                f"({len(interactions.users)} users x {len(interactions.items)} items)"
            )
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        matrix.sort_indices()
        if not (matrix.data > 0).any():
            raise DataValidationError(
                "cannot train on an interaction matrix without positive interactions: "
                "check the event log and the event weights"
            )
        self._fit_model(matrix)
        self._set_training_data(interactions.users, interactions.items, matrix)
        return self

    def fit_log(
        self,
        events: pd.DataFrame,
        catalog: pd.DataFrame | None = None,
        *,
        cutoff: pd.Timestamp | str | None = None,
        matrix: InteractionMatrix | None = None,
        progress: Progress | None = None,
    ) -> Self:
        """:meth:`fit` on ``matrix``, or on the events before ``cutoff`` (default weights).

        The catalog and progress are not used: a single-stage fit is one step.
        """
        if matrix is None:
            if cutoff is not None:
                if Columns.TIMESTAMP not in events.columns:
                    raise DataValidationError(
                        "a cutoff needs event timestamps; this log has none: train without a cutoff"
                    )
                events = events[events[Columns.TIMESTAMP] < pd.Timestamp(cutoff)]
            matrix = InteractionMatrix.from_events(events)
        return self.fit(matrix)

    def _set_training_data(self, users: IdMap, items: IdMap, matrix: sp.csr_matrix) -> None:
        """Store the id maps and matrix and derive the popularity ranking."""
        self.users_ = users
        self.items_ = items
        self.user_items_ = matrix
        positive = matrix.indices[matrix.data > 0]
        self.item_popularity_ = np.bincount(positive, minlength=matrix.shape[1]).astype(np.float64)
        # most popular first, ties by item index (= sorted external id)
        self._popular_order = np.lexsort(
            (np.arange(matrix.shape[1]), -self.item_popularity_)
        ).astype(np.int64)

    @property
    def n_users(self) -> int:
        """Number of training users."""
        self._check_fitted()
        return len(self.users_)

    @property
    def n_items(self) -> int:
        """Number of items the model can recommend."""
        self._check_fitted()
        return len(self.items_)

    def known_users(self) -> list[str]:
        """The training users, in id-map order."""
        self._check_fitted()
        return [str(u) for u in self.users_.external_ids]

    # ------------------------------------------------------------------ model hooks

    @abstractmethod
    def _fit_model(self, matrix: sp.csr_matrix) -> None:
        """Fit on the cleaned training matrix."""

    @abstractmethod
    def _recommend_rows(
        self, rows: np.ndarray, n: int, filter_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` item indices and scores for user indices ``rows`` (one batch call).

        Returns two ``(len(rows), m)`` arrays sorted by decreasing score. Padding (id < 0 or
        score below :data:`PADDING_SCORE`) and seen items are removed by the caller, so a
        model may return them.
        """

    @abstractmethod
    def _similar_rows(self, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` neighbour indices and scores for item indices ``rows``.

        The item itself may be among them; the caller drops it.
        """

    @abstractmethod
    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Model score of each (user index, item index) pair, vectorised."""

    def _valid_scores(self, scores: np.ndarray) -> np.ndarray:
        """Which candidate scores are real recommendations (models may narrow this)."""
        return np.ones(scores.shape, dtype=bool)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """The model's own arrays to save (names must not start with ``user_items_``)."""
        return {}

    def _restore_state(self, arrays: Mapping[str, np.ndarray]) -> None:  # noqa: B027
        """Rebuild the fitted model from :meth:`_state_arrays` output.

        Called after the id maps and training matrix are restored. Raise ``KeyError`` or
        ``ValueError`` when the arrays do not fit; :meth:`load` reports an ArtifactError.
        """

    # ------------------------------------------------------------------ recommending

    def recommend(self, user_ids: Sequence[str], k: int = 10, *, filter_seen: bool) -> pd.DataFrame:
        """Top-``k`` items for each user.

        Parameters
        ----------
        user_ids:
            External user ids; duplicates are answered once.
        k:
            Number of items per user. Fewer rows come back when fewer items are left (a
            tiny catalog after filtering); rows are never padded.
        filter_seen:
            Leave out the items the user interacted with in training.

        Returns
        -------
        pandas.DataFrame
            Columns ``user_id``, ``item_id`` (strings), ``score`` (float), ``rank`` (1..k)
            and ``cold_start`` (bool), sorted by user then rank. Users who are unknown or
            have no training history get the most popular items with ``cold_start=True``
            and their popularity as ``score``.
        """
        self._check_fitted()
        k = check_k(k)
        users = unique_ids(user_ids)
        rows = self.users_.to_internal(users)
        history = np.diff(self.user_items_.indptr)
        warm = rows >= 0
        warm[warm] = history[rows[warm]] > 0

        parts: list[pd.DataFrame] = []
        if warm.any():
            parts.append(self._recommend_warm(users[warm], rows[warm], k, filter_seen))
        if (~warm).any():
            parts.append(self._recommend_cold(users[~warm], k))
        if not parts:
            return _empty_recommendations()
        reco = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        return reco.sort_values([Columns.USER, Columns.RANK], kind="stable", ignore_index=True)

    def _recommend_warm(
        self, users: np.ndarray, rows: np.ndarray, k: int, filter_seen: bool
    ) -> pd.DataFrame:
        ids, scores = self._recommend_rows(rows, min(k, self.n_items), filter_seen)
        ids = np.asarray(ids, dtype=np.int64).reshape(len(rows), -1)
        scores = np.asarray(scores, dtype=np.float64).reshape(len(rows), -1)
        valid = (ids >= 0) & np.isfinite(scores) & (scores > PADDING_SCORE)
        valid &= self._valid_scores(scores)
        if filter_seen:
            valid &= ~self._seen_mask(rows, ids)
        keep, ranks = _first_k_valid(valid, k)
        row_of = np.broadcast_to(np.arange(len(rows))[:, None], ids.shape)
        return recommendation_frame(
            users[row_of[keep]],
            self.items_.to_external(ids[keep]),
            scores[keep],
            ranks[keep],
            cold_start=False,
        )

    def _recommend_cold(self, users: np.ndarray, k: int) -> pd.DataFrame:
        top = self._popular_order[:k]
        top = top[self.item_popularity_[top] > 0]
        n = len(top)
        return recommendation_frame(
            np.repeat(users, n),
            np.tile(self.items_.to_external(top), len(users)),
            np.tile(self.item_popularity_[top], len(users)),
            np.tile(np.arange(1, n + 1), len(users)),
            cold_start=True,
        )

    def _seen_mask(self, rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """``mask[r, j]`` is True when user ``rows[r]`` interacted with item ``ids[r, j]``."""
        sub = self.user_items_[rows]
        n_items = np.int64(self.user_items_.shape[1])
        seen_keys = (
            np.repeat(np.arange(len(rows), dtype=np.int64), np.diff(sub.indptr)) * n_items
            + sub.indices
        )
        keys = np.arange(len(rows), dtype=np.int64)[:, None] * n_items + ids
        return np.isin(keys, seen_keys)

    def seen_items(self, user_id: str) -> list[str]:
        """Items a training user interacted with (empty for an unknown user)."""
        self._check_fitted()
        row = int(self.users_.to_internal([user_id])[0])
        if row < 0:
            return []
        start, end = self.user_items_.indptr[row], self.user_items_.indptr[row + 1]
        return [str(i) for i in self.items_.to_external(self.user_items_.indices[start:end])]

    # ------------------------------------------------------------------ similar items

    def _item_rows(self, item_ids: Iterable[object]) -> tuple[np.ndarray, np.ndarray]:
        """External item ids (unique) and their indices; UnknownItemError for strangers."""
        items = unique_ids(item_ids)
        rows = self.items_.to_internal(items)
        unknown = items[rows < 0]
        if len(unknown):
            shown = ", ".join(repr(str(i)) for i in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise UnknownItemError(
                f"unknown item id {shown}{more}: the {self.name!r} model knows "
                f"{self.n_items} items from its training data; use one of those ids or "
                "retrain with a log that contains this item"
            )
        return items, rows

    def similar_items(self, item_ids: Sequence[str], k: int = 10) -> pd.DataFrame:
        """The ``k`` items most similar to each given item (the item itself excluded).

        Parameters
        ----------
        item_ids:
            External item ids known to the model; duplicates are answered once.
        k:
            Number of neighbours per item (fewer when the model has fewer).

        Returns
        -------
        pandas.DataFrame
            Columns ``item_id``, ``similar_item_id``, ``score``, ``rank``, sorted by item
            then rank.

        Raises
        ------
        UnknownItemError
            An item id the model was not trained on.
        """
        self._check_fitted()
        k = check_k(k)
        items, rows = self._item_rows(item_ids)
        if not len(items):
            return _empty_similar_items()
        ids, scores = self._similar_rows(rows, min(k + 1, self.n_items))
        ids = np.asarray(ids, dtype=np.int64).reshape(len(rows), -1)
        scores = np.asarray(scores, dtype=np.float64).reshape(len(rows), -1)
        valid = (ids >= 0) & np.isfinite(scores) & (scores > PADDING_SCORE)
        valid &= (ids != rows[:, None]) & self._valid_scores(scores)
        keep, ranks = _first_k_valid(valid, k)
        row_of = np.broadcast_to(np.arange(len(rows))[:, None], ids.shape)
        frame = pd.DataFrame(
            {
                Columns.ITEM: pd.Series(items[row_of[keep]], dtype=str),
                SIMILAR_ITEM: pd.Series(self.items_.to_external(ids[keep]), dtype=str),
                Columns.SCORE: scores[keep],
                Columns.RANK: ranks[keep].astype(np.int64),
            }
        )
        return frame.sort_values([Columns.ITEM, Columns.RANK], kind="stable", ignore_index=True)

    # ------------------------------------------------------------------ scoring pairs

    def score_items(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """Model score of each (user, item) pair, e.g. as a feature of the purchase model.

        Parameters
        ----------
        user_ids, item_ids:
            Same-length sequences of external ids; pair ``j`` is
            ``(user_ids[j], item_ids[j])``.

        Returns
        -------
        numpy.ndarray
            float64 scores on the scale of :meth:`recommend`'s (non-cold-start) scores;
            NaN where the user or the item is unknown. Seen items are scored too.
        """
        self._check_fitted()
        users = self.users_.to_internal(user_ids)
        items = self.items_.to_internal(item_ids)
        check_pairs(len(users), len(items))
        out = np.full(len(users), np.nan, dtype=np.float64)
        known = (users >= 0) & (items >= 0)
        if known.any():
            out[known] = self._score_pairs(users[known], items[known])
        return out

    # ------------------------------------------------------------------ persistence

    def save(self, path: Path | str) -> None:
        """Save the fitted model to folder ``path`` (created if needed; no pickle).

        The layout is :mod:`recsys_core.models.persistence`'s.

        Raises
        ------
        ModelNotTrainedError
            The model has not been fitted.
        """
        self._check_fitted()
        save_matrix_model(self, Path(path))

    @classmethod
    def _load_folder(cls, folder: Path, metadata: Mapping[str, Any]) -> Self:
        return load_matrix_model(cls, folder, metadata)


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


def _empty_recommendations() -> pd.DataFrame:
    empty = np.array([], dtype=object)
    return recommendation_frame(empty, empty, empty, empty, cold_start=False)


def _empty_similar_items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.ITEM: pd.Series([], dtype=str),
            SIMILAR_ITEM: pd.Series([], dtype=str),
            Columns.SCORE: np.array([], dtype=np.float64),
            Columns.RANK: np.array([], dtype=np.int64),
        }
    )
