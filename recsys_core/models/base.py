"""One interface for every recommender (implicit's ``RecommenderBase`` and RecTools' habits).

Every model works on integer indices inside and speaks external string ids at the boundary
(:class:`~recsys_core.interactions.IdMap`). The base class owns everything the models share:

* fitting bookkeeping (id maps, the training users x items CSR, item popularity);
* turning index results into recommendation frames (``user_id, item_id, score, rank,
  cold_start``), including the cold-start answer for unknown users;
* filtering seen items, dropping padding, never returning more than ``k`` rows;
* saving to and loading from a folder without pickle.

A concrete model implements a handful of index-level hooks (``_fit_model``,
``_recommend_rows``, ``_similar_rows``, ``_score_pairs``, ``_state_arrays``,
``_restore_state``).

Cold start
----------
A user who is not in the training id map, or who has no training interactions, gets the
most popular training items (number of distinct training users, ties broken by item id).
Their rows carry ``cold_start=True`` and ``score`` is that popularity count, so it is not on
the same scale as the model's own scores.

Saved folder layout (format version 1)
--------------------------------------
``config.json``
    ``{"model": name, "format_version": 1, "config": {...}, "n_users", "n_items",
    "implicit_version"}``; written last, so an interrupted save has no ``config.json``.
``users.npy``, ``items.npy``
    The id maps (:meth:`IdMap.save`).
``arrays.npz``
    The training matrix (``user_items_data``, ``user_items_indices``,
    ``user_items_indptr``, ``user_items_shape``) and the model's own arrays; read with
    ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar, Final, Self, cast

import numpy as np
import pandas as pd
import scipy.sparse as sp
import threadpoolctl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys_core.columns import RECO_COLUMNS, Columns
from recsys_core.errors import (
    ArtifactError,
    ConfigError,
    DataValidationError,
    ModelNotTrainedError,
    UnknownItemError,
)
from recsys_core.interactions import IdMap, InteractionMatrix

#: Version of the saved-folder layout; bump when it changes incompatibly.
FORMAT_VERSION: Final = 1

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

CONFIG_FILE: Final = "config.json"
USERS_FILE: Final = "users.npy"
ITEMS_FILE: Final = "items.npy"
ARRAYS_FILE: Final = "arrays.npz"

_USER_ITEMS_KEYS: Final = (
    "user_items_data",
    "user_items_indices",
    "user_items_indptr",
    "user_items_shape",
)

# implicit pads short result rows with id -1 and score -FLT_MAX; anything this low is padding.
_PADDING_SCORE: Final = -0.5 * float(np.finfo(np.float32).max)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS (OpenBLAS/MKL) to one thread for the duration of the block.

    implicit runs its own OpenMP thread pool; letting BLAS start another one on top of it
    oversubscribes the cores (implicit warns about this) and can make training ~10x slower.
    """
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


@lru_cache(maxsize=1)
def _blas_controller() -> threadpoolctl.ThreadpoolController:
    """The process's BLAS libraries, found once: ``threadpool_limits`` rescans every loaded
    library on each call (~10 ms, more than an ALS answer takes)."""
    return threadpoolctl.ThreadpoolController()


class RecommenderConfig(BaseModel):
    """Settings every recommender has; each model extends it with its hyperparameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(
        42,
        ge=0,
        description="Random seed. The same seed and the same data give the same model.",
    )


def _format_validation_error(model_name: str, exc: ValidationError) -> str:
    """One readable sentence per invalid setting of a model config."""
    problems = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "(config)"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown setting {field!r}")
        else:
            problems.append(f"{field}={err.get('input')!r}: {err['msg']}")
    return f"invalid settings for model {model_name!r}: " + "; ".join(problems)


def _check_k(k: int) -> int:
    """Validate the number of results asked for."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be a positive whole number of results, got {k!r}")
    return int(k)


def _unique_ids(ids: Iterable[object]) -> np.ndarray:
    """Ids as strings, duplicates removed (first occurrence kept)."""
    if isinstance(ids, str):
        raise TypeError("pass a sequence of ids, e.g. ['u1'], not a single string")
    values = pd.unique(pd.Series(list(ids), dtype=object).astype(str))
    return np.asarray(values, dtype=object)


def _first_k_valid(valid: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first ``k`` valid cells of each row; return the mask and 1-based ranks."""
    ranks = np.cumsum(valid, axis=1)
    keep = valid & (ranks <= k)
    return keep, ranks


class Recommender(ABC):
    """A top-k recommender over one users x items interaction matrix.

    ``__init__`` only stores settings (scikit-learn habit); :meth:`fit` learns and returns
    ``self``; fitted attributes end with ``_``.

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

    Attributes
    ----------
    users_, items_ : IdMap
        Training id maps (rows and columns of ``user_items_``).
    user_items_ : scipy.sparse.csr_matrix
        The training users x items matrix (float32); used to filter seen items.
    item_popularity_ : numpy.ndarray
        Number of distinct training users per item (the cold-start ranking).
    """

    #: Name on the command line and in saved folders.
    name: ClassVar[str]
    #: The pydantic model holding this recommender's settings.
    config_class: ClassVar[type[RecommenderConfig]] = RecommenderConfig

    config: RecommenderConfig
    users_: IdMap
    items_: IdMap
    user_items_: sp.csr_matrix
    item_popularity_: np.ndarray
    _popular_order: np.ndarray

    def __init__(
        self, config: RecommenderConfig | Mapping[str, Any] | None = None, **overrides: Any
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
            raise ConfigError(_format_validation_error(self.name, exc)) from None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ fitting

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has run."""
        return hasattr(self, "user_items_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise ModelNotTrainedError(
                f"the {self.name!r} model is not trained yet: call fit() or load a saved model"
            )

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
        with single_threaded_blas():
            self._fit_model(matrix)
        self._set_training_data(interactions.users, interactions.items, matrix)
        return self

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

    # ------------------------------------------------------------------ model hooks

    @abstractmethod
    def _fit_model(self, matrix: sp.csr_matrix) -> None:
        """Fit on the cleaned training matrix (BLAS limited to one thread)."""

    @abstractmethod
    def _recommend_rows(
        self, rows: np.ndarray, n: int, filter_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` item indices and scores for user indices ``rows`` (one batch call).

        Returns two ``(len(rows), m)`` arrays sorted by decreasing score. Padding (id < 0 or
        score ~ -FLT_MAX) and seen items are removed by the caller, so a model may return
        them.
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

    def recommend(
        self, user_ids: Sequence[str], k: int = 10, *, filter_seen: bool = True
    ) -> pd.DataFrame:
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
        k = _check_k(k)
        users = _unique_ids(user_ids)
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
        valid = (ids >= 0) & np.isfinite(scores) & (scores > _PADDING_SCORE)
        valid &= self._valid_scores(scores)
        if filter_seen:
            valid &= ~self._seen_mask(rows, ids)
        keep, ranks = _first_k_valid(valid, k)
        row_of = np.broadcast_to(np.arange(len(rows))[:, None], ids.shape)
        return _recommendation_frame(
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
        return _recommendation_frame(
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
        items = _unique_ids(item_ids)
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
        k = _check_k(k)
        items, rows = self._item_rows(item_ids)
        if not len(items):
            return _empty_similar_items()
        ids, scores = self._similar_rows(rows, min(k + 1, self.n_items))
        ids = np.asarray(ids, dtype=np.int64).reshape(len(rows), -1)
        scores = np.asarray(scores, dtype=np.float64).reshape(len(rows), -1)
        valid = (ids >= 0) & np.isfinite(scores) & (scores > _PADDING_SCORE)
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
        if len(users) != len(items):
            raise ValueError(
                f"score_items needs one item per user: got {len(users)} users and "
                f"{len(items)} items"
            )
        out = np.full(len(users), np.nan, dtype=np.float64)
        known = (users >= 0) & (items >= 0)
        if known.any():
            out[known] = self._score_pairs(users[known], items[known])
        return out

    # ------------------------------------------------------------------ persistence

    def save(self, path: Path | str) -> None:
        """Save the fitted model to folder ``path`` (created if needed; no pickle).

        Raises
        ------
        ModelNotTrainedError
            The model has not been fitted.
        """
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_FILE).unlink(missing_ok=True)  # an interrupted save stays unloadable
        self.users_.save(folder / USERS_FILE)
        self.items_.save(folder / ITEMS_FILE)
        state = self._state_arrays()
        clash = [key for key in state if key.startswith("user_items_")]
        if clash:
            raise RuntimeError(f"model arrays may not use reserved names: {clash}")
        m = self.user_items_
        arrays = {
            "user_items_data": m.data,
            "user_items_indices": m.indices,
            "user_items_indptr": m.indptr,
            "user_items_shape": np.asarray(m.shape, dtype=np.int64),
            **state,
        }
        np.savez(folder / ARRAYS_FILE, **arrays)
        metadata = {
            "model": self.name,
            "format_version": FORMAT_VERSION,
            "config": self.config.model_dump(mode="json"),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "implicit_version": _package_version("implicit"),
        }
        (folder / CONFIG_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path | str) -> Self:
        """Load a model saved by :meth:`save`.

        Called on :class:`Recommender` itself it dispatches on the saved model name (like
        :func:`load_model`); called on a subclass it checks the folder holds that model.

        Raises
        ------
        ArtifactError
            The folder is missing, incomplete, corrupted, of another format version, or
            holds a different model.
        """
        folder = Path(path)
        metadata = read_metadata(folder)
        from recsys_core.models import MODEL_REGISTRY  # the registry imports this module

        name = metadata["model"]
        target = MODEL_REGISTRY.get(name)
        if target is None:
            raise ArtifactError(
                f"{folder} holds an unknown model {name!r}; known models: "
                + ", ".join(sorted(MODEL_REGISTRY))
            )
        if not issubclass(target, cls):
            raise ArtifactError(
                f"{folder} holds a {name!r} model, not {cls.name!r}; use load_model() to "
                "load any model"
            )
        return cast(Self, target._from_folder(folder, metadata))

    @classmethod
    def _from_folder(cls, folder: Path, metadata: Mapping[str, Any]) -> Recommender:
        try:
            model = cls(metadata.get("config") or {})
        except ConfigError as exc:
            raise ArtifactError(
                f"saved config in {folder / CONFIG_FILE} is invalid: {exc}"
            ) from exc
        users = IdMap.load(folder / USERS_FILE)
        items = IdMap.load(folder / ITEMS_FILE)
        arrays = _read_arrays(folder / ARRAYS_FILE)
        try:
            shape = tuple(int(v) for v in arrays["user_items_shape"])
            matrix = sp.csr_matrix(
                (
                    arrays["user_items_data"],
                    arrays["user_items_indices"],
                    arrays["user_items_indptr"],
                ),
                shape=shape,
            )
            if shape != (len(users), len(items)):
                raise ValueError(
                    f"matrix shape {shape} does not match {len(users)} users x {len(items)} items"
                )
            model._set_training_data(users, items, matrix)
            state = {k: v for k, v in arrays.items() if k not in _USER_ITEMS_KEYS}
            with single_threaded_blas():
                model._restore_state(state)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise ArtifactError(
                f"saved {cls.name!r} model in {folder} is inconsistent ({exc}); "
                "save it again or restore a backup"
            ) from exc
        return model


def read_metadata(folder: Path) -> dict[str, Any]:
    """Read and check ``config.json`` of a saved model folder.

    Raises
    ------
    ArtifactError
        Missing folder or file, invalid JSON, missing keys or another format version.
    """
    if not folder.is_dir():
        raise ArtifactError(f"model folder {folder} does not exist: train and save a model first")
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise ArtifactError(
            f"{folder} has no {CONFIG_FILE}: it is not a saved model, or the save was "
            "interrupted; save the model again"
        )
    try:
        metadata = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot read {config_path}: {exc}") from exc
    if not isinstance(metadata, dict) or not isinstance(metadata.get("model"), str):
        raise ArtifactError(f"{config_path} does not name a model (no 'model' key)")
    found = metadata.get("format_version")
    if found != FORMAT_VERSION:
        raise ArtifactError(
            f"{config_path} has format version {found!r}; this version of the lab reads "
            f"version {FORMAT_VERSION}: retrain and save the model again"
        )
    if not isinstance(metadata.get("config", {}), dict):
        raise ArtifactError(f"{config_path}: 'config' must be an object")
    return metadata


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` (no pickle); ArtifactError when missing or corrupt."""
    try:
        # open the file ourselves: np.load leaks the handle when the archive is truncated
        with path.open("rb") as file, np.load(file, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path} is missing: the saved model is incomplete") from exc
    except (
        OSError,
        ValueError,
        EOFError,
        KeyError,
        TypeError,
        AttributeError,
        zipfile.BadZipFile,
    ) as exc:
        raise ArtifactError(f"{path} is corrupted or not a numpy archive ({exc})") from exc


def _package_version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _recommendation_frame(
    users: np.ndarray,
    items: np.ndarray,
    scores: np.ndarray,
    ranks: np.ndarray,
    *,
    cold_start: bool,
) -> pd.DataFrame:
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
    return _recommendation_frame(empty, empty, empty, empty, cold_start=False)


def _empty_similar_items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.ITEM: pd.Series([], dtype=str),
            SIMILAR_ITEM: pd.Series([], dtype=str),
            Columns.SCORE: np.array([], dtype=np.float64),
            Columns.RANK: np.array([], dtype=np.int64),
        }
    )


class ImplicitRecommender(Recommender):
    """Shared code of recommenders backed by an implicit model (item-kNN, BPR, ALS).

    Subclasses build the implicit CPU model in :meth:`_new_implicit_model`; batch
    recommendation and similar items go through implicit's own batch calls.

    Attributes
    ----------
    model_ : Any
        The fitted implicit model.
    """

    model_: Any

    @abstractmethod
    def _new_implicit_model(self) -> Any:
        """An unfitted implicit CPU model built from :attr:`config`."""

    def _recommend_rows(
        self, rows: np.ndarray, n: int, filter_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        # One BLAS thread: scoring a few users is tiny, and on busy cores OpenBLAS's thread
        # pool made a single ALS call 3x slower (its threads wait for each other).
        with single_threaded_blas():
            ids, scores = self.model_.recommend(
                rows, self.user_items_[rows], N=n, filter_already_liked_items=filter_seen
            )
        return np.asarray(ids), np.asarray(scores)

    def _similar_rows(self, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        with single_threaded_blas():
            ids, scores = self.model_.similar_items(rows, N=n)
        return np.asarray(ids), np.asarray(scores)


class FactorRecommender(ImplicitRecommender):
    """Shared code of implicit's matrix-factorisation models (BPR, ALS)."""

    @property
    def user_factors_(self) -> np.ndarray:
        """User factors, ``(n_users, n_factors)`` numpy array."""
        self._check_fitted()
        return np.asarray(self.model_.user_factors)

    @property
    def item_factors_(self) -> np.ndarray:
        """Item factors, ``(n_items, n_factors)`` numpy array."""
        self._check_fitted()
        return np.asarray(self.model_.item_factors)

    def _fit_model(self, matrix: sp.csr_matrix) -> None:
        model = self._new_implicit_model()
        model.fit(matrix, show_progress=False)
        self.model_ = model

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        user_factors: np.ndarray = self.model_.user_factors[users]
        item_factors: np.ndarray = self.model_.item_factors[items]
        scores: np.ndarray = np.einsum("ij,ij->i", user_factors, item_factors)
        return scores.astype(np.float64)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _restore_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        user_factors, item_factors = arrays["user_factors"], arrays["item_factors"]
        if user_factors.ndim != 2 or item_factors.ndim != 2:
            raise ValueError("factor arrays must be two-dimensional")
        if user_factors.shape[0] != self.n_users or item_factors.shape[0] != self.n_items:
            raise ValueError(
                f"factors cover {user_factors.shape[0]} users and {item_factors.shape[0]} "
                f"items, the id maps {self.n_users} and {self.n_items}"
            )
        if user_factors.shape[1] != item_factors.shape[1]:
            raise ValueError("user and item factors have different widths")
        model = self._new_implicit_model()
        model.user_factors = np.ascontiguousarray(user_factors, dtype=model.dtype)
        model.item_factors = np.ascontiguousarray(item_factors, dtype=model.dtype)
        self.model_ = model
