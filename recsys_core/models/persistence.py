"""Saving and loading model folders: id maps, arrays and ``config.json``, never pickle.

Every model folder has a ``config.json`` naming the model (``"model"``) and its
``"format_version"``; :func:`load_folder` reads it, picks the model class by that name
(:func:`recsys_core.models.registry.model_class`, the two-stage ranker included) and lets the class
rebuild itself, checking its own format version with :func:`check_format_version`.

Single-stage folder layout (format version 1)
---------------------------------------------
``config.json``
    ``{"model": name, "format_version": 1, "config": {...}, "n_users", "n_items",
    "implicit_version"}``; written last, so an interrupted save has no ``config.json``.
``users.npy``, ``items.npy``
    The id maps (:meth:`~recsys_core.interactions.IdMap.save`).
``arrays.npz``
    The training matrix (``user_items_data``, ``user_items_indices``,
    ``user_items_indptr``, ``user_items_shape``) and the model's own arrays; read with
    ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np
import scipy.sparse as sp

from recsys_core.errors import ArtifactError, ConfigError
from recsys_core.interactions import IdMap
from recsys_core.models.blas import single_threaded_blas
from recsys_core.models.registry import model_class, model_names

#: A model class (this module does not import the interface: the interface imports it).
M = TypeVar("M")
R = TypeVar("R")

#: Version of the single-stage folder layout; bump when it changes incompatibly.
FORMAT_VERSION: Final = 1

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


# ---------------------------------------------------------------------------------- any model


def load_folder(folder: Path, expected: type[R]) -> R:
    """Load the model saved in ``folder``, which must be an ``expected`` (or a subclass).

    Raises
    ------
    ArtifactError
        The folder is missing, incomplete, corrupted, of another format version, or holds
        a different model.
    """
    metadata = read_metadata(folder)
    name = metadata["model"]
    if name not in model_names():
        raise ArtifactError(
            f"{folder} holds an unknown model {name!r}; known models: "
            + ", ".join(sorted(model_names()))
        )
    target = model_class(name)
    if not issubclass(target, expected):
        raise ArtifactError(
            f"{folder} holds a {name!r} model, not {getattr(expected, 'name', 'any')!r}; use "
            "load_model() to load any model"
        )
    builder: Any = target  # a Recommender class: it rebuilds itself
    loaded: R = builder._load_folder(folder, metadata)
    return loaded


def read_metadata(folder: Path, format_version: int | None = None) -> dict[str, Any]:
    """Read and check ``config.json`` of a saved model folder.

    Parameters
    ----------
    folder:
        The model folder.
    format_version:
        The version the caller reads (checked with :func:`check_format_version`); ``None``
        leaves the check to the model class.

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
    if format_version is not None:
        check_format_version(folder, metadata, format_version)
    if not isinstance(metadata.get("config", {}), dict):
        raise ArtifactError(f"{config_path}: 'config' must be an object")
    return metadata


def check_format_version(
    folder: Path, metadata: Mapping[str, Any], expected: int, noun: str = "model"
) -> None:
    """ArtifactError asking to retrain the ``noun`` unless the folder has version ``expected``."""
    found = metadata.get("format_version")
    if found != expected:
        raise ArtifactError(
            f"{folder / CONFIG_FILE} has format version {found!r}; this version of the lab "
            f"reads version {expected}: retrain and save the {noun} again"
        )


def model_from_config(cls: Callable[..., R], folder: Path, metadata: Mapping[str, Any]) -> R:
    """An unfitted ``cls`` with the settings saved in ``metadata`` (ArtifactError if invalid)."""
    try:
        return cls(metadata.get("config") or {})
    except ConfigError as exc:
        raise ArtifactError(f"saved config in {folder / CONFIG_FILE} is invalid: {exc}") from exc


def read_arrays(path: Path) -> dict[str, np.ndarray]:
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


def package_version(package: str) -> str | None:
    """Installed version of ``package`` (``None`` when it is not installed)."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------------- single-stage


def save_matrix_model(model: Any, folder: Path) -> None:
    """Write a fitted single-stage model in the layout of this module's docstring."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).unlink(missing_ok=True)  # an interrupted save stays unloadable
    model.users_.save(folder / USERS_FILE)
    model.items_.save(folder / ITEMS_FILE)
    state = model._state_arrays()
    clash = [key for key in state if key.startswith("user_items_")]
    if clash:
        raise RuntimeError(f"model arrays may not use reserved names: {clash}")
    m = model.user_items_
    arrays = {
        "user_items_data": m.data,
        "user_items_indices": m.indices,
        "user_items_indptr": m.indptr,
        "user_items_shape": np.asarray(m.shape, dtype=np.int64),
        **state,
    }
    np.savez(folder / ARRAYS_FILE, **arrays)
    metadata = {
        "model": model.name,
        "format_version": FORMAT_VERSION,
        "config": model.config.model_dump(mode="json"),
        "n_users": model.n_users,
        "n_items": model.n_items,
        "implicit_version": package_version("implicit"),
    }
    (folder / CONFIG_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


def load_matrix_model(cls: type[M], folder: Path, metadata: Mapping[str, Any]) -> M:
    """Rebuild a single-stage model saved by :func:`save_matrix_model`."""
    check_format_version(folder, metadata, FORMAT_VERSION)
    if not isinstance(metadata.get("config", {}), dict):
        raise ArtifactError(f"{folder / CONFIG_FILE}: 'config' must be an object")
    model: Any = model_from_config(cls, folder, metadata)
    users = IdMap.load(folder / USERS_FILE)
    items = IdMap.load(folder / ITEMS_FILE)
    arrays = read_arrays(folder / ARRAYS_FILE)
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
            f"saved {getattr(cls, 'name', '?')!r} model in {folder} is inconsistent ({exc}); "
            "save it again or restore a backup"
        ) from exc
    return model
