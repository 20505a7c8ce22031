"""Saving and loading a behaviour snapshot as ``.npy``/``.npz`` files (no pickle)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, Protocol, TypeVar

import numpy as np
import pandas as pd

from recsys_core.errors import ArtifactError
from recsys_core.interactions import IdMap
from recsys_core.ranking.features.registry import FeatureRegistry


class SavedSnapshot(Protocol):
    """What :func:`save_snapshot` writes of a
    :class:`~recsys_core.ranking.features.snapshot.BehaviourSnapshot`."""

    @property
    def users(self) -> IdMap: ...
    @property
    def items(self) -> IdMap: ...
    @property
    def cutoff(self) -> pd.Timestamp: ...
    @property
    def tables(self) -> Mapping[str, np.ndarray]: ...
    def features(self, user_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray: ...


__all__ = ["CORE_ARRAYS", "load_snapshot", "save_snapshot"]

#: Arrays of a saved snapshot that are not a lookup group's tables.
CORE_ARRAYS: Final = ("pair_keys", "pair_values", "user_values", "item_values")

_Snapshot = TypeVar("_Snapshot", bound=SavedSnapshot)


def save_snapshot(snapshot: SavedSnapshot, folder: Path) -> None:
    """Write ``snapshot`` to ``folder`` (``users.npy``, ``items.npy``, ``tables.npz``)."""
    folder.mkdir(parents=True, exist_ok=True)
    snapshot.users.save(folder / "users.npy")
    snapshot.items.save(folder / "items.npy")
    arrays: dict[str, np.ndarray] = {
        "cutoff_ns": np.asarray([snapshot.cutoff.value], dtype=np.int64),
        **{name: getattr(snapshot, name) for name in CORE_ARRAYS},
        **snapshot.tables,
    }
    np.savez(folder / "tables.npz", **arrays)  # type: ignore[arg-type]


def load_snapshot(
    cls: Callable[..., _Snapshot], folder: Path, registry: FeatureRegistry
) -> _Snapshot:
    """Read a snapshot written by :func:`save_snapshot` (with the same feature groups).

    Raises
    ------
    ArtifactError
        Missing or corrupted files, or tables of inconsistent shapes.
    """
    users = IdMap.load(folder / "users.npy")
    items = IdMap.load(folder / "items.npy")
    try:
        with np.load(folder / "tables.npz", allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        core = {name: arrays.pop(name) for name in (*CORE_ARRAYS, "cutoff_ns")}
    except Exception as exc:  # zip, OS, key and value errors all mean a bad file
        raise ArtifactError(f"cannot read behaviour tables in {folder}: {exc}") from exc
    snapshot = cls(
        cutoff=pd.Timestamp(int(core.pop("cutoff_ns")[0])),
        users=users,
        items=items,
        tables=arrays,
        registry=registry,
        **core,
    )
    expected = {
        "pair_values": len(registry.names("pair")),
        "user_values": len(registry.names("user")),
        "item_values": len(registry.names("item")),
    }
    rows = {"user_values": len(users), "item_values": len(items)}
    for name, width in expected.items():
        arr = getattr(snapshot, name)
        if arr.ndim != 2 or arr.shape[1] != width or arr.shape[0] != rows.get(name, arr.shape[0]):
            raise ArtifactError(f"behaviour table {name} in {folder} has shape {arr.shape}")
    try:  # every lookup group finds its tables
        empty = np.zeros(0, dtype=np.int64)
        snapshot.features(empty, empty)
    except (KeyError, IndexError, ValueError) as exc:
        raise ArtifactError(
            f"the behaviour tables in {folder} do not fit this version's features ({exc}): "
            "retrain the ranker"
        ) from exc
    return snapshot
