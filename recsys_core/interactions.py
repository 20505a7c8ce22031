"""External ids <-> integer indices, and the weighted users x items interaction matrix.

Models work on indices 0..n-1; everything at the boundary speaks external ids (strings).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from recsys_core.columns import EVENT_TYPES, Columns
from recsys_core.errors import ArtifactError, DataValidationError


@dataclass(frozen=True)
class IdMap:
    """A frozen, ordered map between external ids (strings) and indices ``0..n-1``.

    Build one with :meth:`from_values`; the order is the sorted order of the unique ids, so
    the same ids always give the same indices.
    """

    external_ids: np.ndarray
    _index: pd.Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = np.asarray(self.external_ids, dtype=object)
        object.__setattr__(self, "external_ids", ids)
        index = pd.Index(ids, dtype=object)
        if not index.is_unique:
            raise ValueError("IdMap ids must be unique")
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_values(cls, values: Iterable[object] | pd.Series | np.ndarray) -> IdMap:
        """Build a map from any ids (duplicates allowed); ids are turned into strings."""
        if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
            # Count codes rather than remove_unused_categories(), which sorts and copies
            # the whole column (2-3 s at 10M rows).
            codes = values.cat.codes.to_numpy()
            used = np.bincount(codes[codes >= 0], minlength=len(values.cat.categories)) > 0
            cats = values.cat.categories[used]
            uniq = np.unique(np.asarray(cats.astype(str), dtype=object))
        else:
            arr = pd.Series(
                list(values) if not isinstance(values, pd.Series | np.ndarray) else values
            )
            uniq = np.unique(np.asarray(arr.astype(str), dtype=object))
        return cls(uniq)

    def __len__(self) -> int:
        return len(self.external_ids)

    def __contains__(self, external_id: object) -> bool:
        return str(external_id) in self._index

    def to_internal(self, ids: Iterable[object] | pd.Series, *, missing: int = -1) -> np.ndarray:
        """Indices of ``ids``; ids that are not in the map get ``missing`` (default -1)."""
        keys = pd.Series(ids if isinstance(ids, pd.Series) else list(ids))
        if isinstance(keys.dtype, pd.CategoricalDtype):
            codes = self._index.get_indexer(keys.cat.categories.astype(str))
            out = np.where(keys.cat.codes.to_numpy() >= 0, codes[keys.cat.codes.to_numpy()], -1)
        else:
            out = self._index.get_indexer(keys.astype(str))
        out = np.asarray(out, dtype=np.int64)
        if missing != -1:
            out[out < 0] = missing
        return out

    def to_external(self, indices: Iterable[int] | np.ndarray) -> np.ndarray:
        """External ids of ``indices`` (an object array of strings)."""
        return self.external_ids[np.asarray(indices, dtype=np.int64)]

    def save(self, path: Path) -> None:
        """Save as ``.npy`` of fixed-width unicode (no pickle)."""
        np.save(path, self.external_ids.astype(str), allow_pickle=False)

    @classmethod
    def load(cls, path: Path) -> IdMap:
        """Load a map written by :meth:`save`."""
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"cannot read id map {path}: {exc}") from exc
        return cls(arr.astype(object))


class EventWeights(BaseModel):
    """How much each behaviour counts in the interaction matrix.

    A user-item cell is the sum of the weights of that pair's events (optionally times the
    purchase quantity), then ``log1p``-damped when ``log_scale`` is set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    view: float = Field(1.0, ge=0, description="Weight of one product view.")
    cart: float = Field(3.0, ge=0, description="Weight of one add-to-cart.")
    favorite: float = Field(3.0, ge=0, description="Weight of one add-to-favourites.")
    purchase: float = Field(5.0, ge=0, description="Weight of one purchase (order line).")
    use_quantity: bool = Field(
        False, description="Multiply purchase weight by the quantity bought (capped at 100)."
    )
    log_scale: bool = Field(
        False, description="Apply log1p to the summed cell values (damps heavy reorderers)."
    )

    def as_mapping(self) -> Mapping[str, float]:
        """Weight per event name."""
        return {e: float(getattr(self, e)) for e in EVENT_TYPES}


@dataclass(frozen=True)
class InteractionMatrix:
    """A users x items CSR matrix (float32) with the id maps that label its rows and columns."""

    matrix: sp.csr_matrix
    users: IdMap
    items: IdMap

    @property
    def shape(self) -> tuple[int, int]:
        """(number of users, number of items)."""
        return (len(self.users), len(self.items))

    @property
    def nnz(self) -> int:
        """Number of non-zero user-item cells."""
        return int(self.matrix.nnz)

    @classmethod
    def from_events(
        cls,
        events: pd.DataFrame,
        weights: EventWeights | None = None,
        *,
        users: IdMap | None = None,
        items: IdMap | None = None,
    ) -> InteractionMatrix:
        """Aggregate an event log into a weighted matrix.

        Parameters
        ----------
        events:
            Canonical event log (``user_id``, ``item_id``, ``event``, optional ``quantity``).
        weights:
            Per-event weights; defaults to :class:`EventWeights` ().
        users, items:
            Fixed id maps (e.g. the training maps when building a test matrix); events whose
            ids are not in them are dropped. Built from ``events`` when omitted.
        """
        weights = weights or EventWeights()
        if events.empty and (users is None or items is None):
            raise DataValidationError(
                "cannot build an interaction matrix from an empty event log: "
                "load a log with at least one event"
            )
        users = users if users is not None else IdMap.from_values(events[Columns.USER])
        items = items if items is not None else IdMap.from_values(events[Columns.ITEM])
        rows = users.to_internal(events[Columns.USER])
        cols = items.to_internal(events[Columns.ITEM])
        ev = events[Columns.EVENT]
        if isinstance(ev.dtype, pd.CategoricalDtype):
            cat_w = np.array(
                [weights.as_mapping().get(str(c), 0.0) for c in ev.cat.categories], dtype=np.float32
            )
            values = cat_w[ev.cat.codes.to_numpy()]
        else:
            values = ev.map(weights.as_mapping()).fillna(0.0).to_numpy(dtype=np.float32)
        if weights.use_quantity and Columns.QUANTITY in events.columns:
            qty = events[Columns.QUANTITY].to_numpy(dtype=np.float32, na_value=1.0)
            is_purchase = (ev == "purchase").to_numpy()
            values = np.where(is_purchase, values * np.clip(qty, 1.0, 100.0), values)
        keep = (rows >= 0) & (cols >= 0) & (values > 0)
        mat = sp.coo_matrix(
            (values[keep], (rows[keep], cols[keep])),
            shape=(len(users), len(items)),
            dtype=np.float32,
        ).tocsr()
        mat.sum_duplicates()
        if weights.log_scale:
            mat.data = np.log1p(mat.data).astype(np.float32)
        mat.eliminate_zeros()
        return cls(mat, users, items)

    def user_items(self, user_index: int) -> np.ndarray:
        """Item indices the user has interacted with."""
        m = self.matrix
        return np.asarray(m.indices[m.indptr[user_index] : m.indptr[user_index + 1]])


def write_matrix_parquet(
    matrix: sp.csr_matrix, path: Path, *, rows_per_group: int = 2_000_000
) -> Path:
    """Write a users x items matrix as Parquet triples for a distributed engine (Spark).

    Columns ``user`` and ``item`` (32-bit indices into the matrix's id maps) and
    ``confidence`` (float32, the event-weighted cell value). The file is written in row
    groups straight from the CSR arrays, so no large frame is built in memory.

    Parameters
    ----------
    matrix:
        The weighted interaction matrix (e.g. :attr:`InteractionMatrix.matrix`).
    path:
        The Parquet file to write (its folder must exist).
    rows_per_group:
        Non-zero cells per Parquet row group.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    csr = sp.csr_matrix(matrix)
    if max(csr.shape) > np.iinfo(np.int32).max:
        raise DataValidationError(
            f"a {csr.shape[0]:,} x {csr.shape[1]:,} matrix does not fit 32-bit indices"
        )
    schema = pa.schema([("user", pa.int32()), ("item", pa.int32()), ("confidence", pa.float32())])
    # one int32 per cell (40 MB at 10M cells); the cells themselves are written in slices
    users = np.repeat(np.arange(csr.shape[0], dtype=np.int32), np.diff(csr.indptr))
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, max(csr.nnz, 1), rows_per_group):
            stop = min(start + rows_per_group, csr.nnz)
            table = pa.table(
                {
                    "user": users[start:stop],
                    "item": csr.indices[start:stop].astype(np.int32, copy=False),
                    "confidence": csr.data[start:stop].astype(np.float32, copy=False),
                },
                schema=schema,
            )
            writer.write_table(table)
    return path
