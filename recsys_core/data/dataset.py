"""The :class:`Dataset`: one event log, its catalog and the id maps, canonical once.

Ids are canonicalised where a log enters the lab (:func:`~recsys_core.data.schema.validate_events`,
the loaders, the demo-store generator, uploads) and when a :class:`Dataset` is built; everything
after that trusts them (RecTools' ``Dataset.construct`` habit: the dataset owns the id maps).

The canonical id
----------------
A shopper or item id is a Python ``str`` (the text a user typed or the file held; a float such
as ``12346.0`` in a file becomes ``12346`` in :func:`validate_events`). In a frame it is held as

- pandas ``category`` whose categories are strings: the event log's ``user_id`` and ``item_id``
  (what the loaders, the generator and saved labs hold; compact at 10M rows), or
- a pandas string column (``str``, pandas' default for text, or ``string``, or ``object``
  holding only ``str``): catalogs, recommendation lists, splits' test users.

:func:`ensure_canonical` checks a frame is in that form and raises :class:`DataValidationError`
otherwise, instead of silently re-casting. :func:`canonical_ids` is the one place where ids from
outside (API/CLI arguments, a test's integer frame, a saved artifact) are turned into strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from recsys_core.columns import EVENT_TYPES, Columns
from recsys_core.errors import DataValidationError
from recsys_core.interactions import IdMap

#: The id columns of an event log.
ID_COLUMNS: tuple[str, str] = (Columns.USER, Columns.ITEM)


def is_canonical_ids(values: pd.Series | pd.Index) -> bool:
    """Whether ``values`` hold canonical ids (strings; a category of strings counts).

    Cheap for ``category`` and string dtypes; an ``object`` column is scanned once.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = values.cat.categories if isinstance(values, pd.Series) else values.categories
        return len(cats) == 0 or pd.api.types.is_string_dtype(cats.dtype)
    if isinstance(dtype, pd.StringDtype):
        return True
    if dtype.kind == "O":
        return pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")
    return False


def ensure_canonical(
    frame: pd.DataFrame,
    columns: Sequence[str] = ID_COLUMNS,
    *,
    where: str = "",
) -> pd.DataFrame:
    """Return ``frame`` unchanged if its id ``columns`` are canonical, else raise.

    Columns the frame does not have are not checked.

    Raises
    ------
    DataValidationError
        Naming the column, its dtype and how to fix it (build the frame through
        :class:`Dataset` / :func:`~recsys_core.data.schema.validate_events`, or pass the ids
        through :func:`canonical_ids`).
    """
    for col in columns:
        if col in frame.columns and not is_canonical_ids(frame[col]):
            place = f" in {where}" if where else ""
            raise DataValidationError(
                f"column {col!r}{place} holds {frame[col].dtype} ids, not canonical text ids. "
                "Load the log through the lab's loaders (validate_events) or build a Dataset, "
                "or convert the column with recsys_core.data.dataset.canonical_ids."
            )
    return frame


def canonical_ids(values: pd.Series | pd.Index | np.ndarray | Iterable[object]) -> Any:
    """Ids from outside the lab as canonical strings: the one id cast at an input boundary.

    A Series or Index comes back as one of pandas' string dtype (a string column is returned as
    it is, without a copy); anything else (a list of API/CLI arguments, an array read from a
    saved artifact) as an ``object`` array of ``str``. The conversion is ``str(value)``, so the
    integer ``12346`` becomes ``"12346"`` (the id the loaders give that shopper).
    """
    if isinstance(values, pd.Series | pd.Index):
        dtype = values.dtype
        if isinstance(dtype, pd.StringDtype) and dtype.na_value is np.nan:
            return values  # already pandas' default ``str``: what the cast would give
        return values.astype(str)
    arr = values if isinstance(values, np.ndarray) else np.asarray(list(values), dtype=object)
    if arr.dtype.kind == "U":
        return arr.astype(object)
    return np.asarray(pd.Series(arr, dtype=object).astype(str).to_numpy(), dtype=object)


def id_values(values: pd.Series, *, where: str = "") -> pd.Series:
    """A canonical id column as plain text, for counting, joining and set operations.

    A ``category`` column is decoded (its unused categories would otherwise show up in
    ``value_counts`` and joins); a text column is returned as it is. Nothing is re-cast: a
    column that is not canonical raises, as :func:`ensure_canonical` does.
    """
    if not is_canonical_ids(values):
        place = f" in {where}" if where else ""
        raise DataValidationError(
            f"{values.name or 'the id column'!s}{place} holds {values.dtype} ids, not canonical "
            "text ids: build the frame through a Dataset or pass it through canonical_ids"
        )
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.na_value is np.nan:
        return values
    return pd.Series(
        values.to_numpy(dtype=object), index=values.index, name=values.name, dtype="str"
    )


def canonical_event_frame(frame: pd.DataFrame, columns: Sequence[str] = ID_COLUMNS) -> pd.DataFrame:
    """``frame`` with its id ``columns`` canonical: canonical ones kept, others cast once.

    The frame is not copied when every id column is already canonical.
    """
    todo = [c for c in columns if c in frame.columns and not is_canonical_ids(frame[c])]
    if not todo:
        return frame
    return frame.assign(**{c: canonical_ids(frame[c]) for c in todo})


@dataclass(frozen=True)
class Dataset:
    """An event log with its catalog, provenance and id maps, canonicalised once.

    Building one makes ``events``' ``user_id``/``item_id`` and the catalog's ``item_id``
    canonical (see the module docstring): ids that already are stay untouched (no copy), others
    (e.g. integers in a test frame) are turned into strings here, once. Everything downstream
    reads the ids as they are.

    Attributes
    ----------
    name:
        Short name (``online-retail``, ``demo-store``, or the uploaded file's name).
    events:
        Canonical event log, sorted by timestamp when present.
    catalog:
        One row per item: ``item_id``, ``title`` and where known ``category``, ``brand``,
        ``price``.
    source:
        Where the data came from (a path or a description).
    notes:
        Things the user should know (rows dropped by a loader, a file read by its content
        rather than its extension, no timestamps, ...).
    """

    name: str
    events: pd.DataFrame
    catalog: pd.DataFrame
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "events", canonical_event_frame(self.events))
        if isinstance(self.catalog, pd.DataFrame):
            object.__setattr__(self, "catalog", canonical_event_frame(self.catalog, [Columns.ITEM]))

    @property
    def has_timestamps(self) -> bool:
        """Whether the log carries timestamps (a temporal split is possible)."""
        return Columns.TIMESTAMP in self.events.columns

    @property
    def user_id_map(self) -> IdMap:
        """Shoppers: external id <-> index ``0..n-1`` (sorted ids; shared by views)."""
        cached: IdMap | None = self.__dict__.get("_user_map")
        if cached is None:
            cached = IdMap.from_values(self.events[Columns.USER])
            object.__setattr__(self, "_user_map", cached)
        return cached

    @property
    def item_id_map(self) -> IdMap:
        """Items: external id <-> index ``0..n-1`` over the log's and the catalog's items."""
        cached: IdMap | None = self.__dict__.get("_item_map")
        if cached is None:
            ids: pd.Series | np.ndarray = self.events[Columns.ITEM]
            if isinstance(self.catalog, pd.DataFrame) and Columns.ITEM in self.catalog.columns:
                ids = np.concatenate(
                    [IdMap.from_values(ids).external_ids, self.catalog[Columns.ITEM].to_numpy()]
                )
            cached = IdMap.from_values(ids)
            object.__setattr__(self, "_item_map", cached)
        return cached

    @property
    def prices(self) -> pd.Series:
        """Catalog price per item id (float; empty when the catalog has no prices).

        For display: features that must not see the future take prices from the events
        before their cutoff instead.
        """
        cat = self.catalog
        if not isinstance(cat, pd.DataFrame) or Columns.PRICE not in cat.columns:
            return pd.Series(dtype="float64", name=Columns.PRICE)
        return pd.Series(
            cat[Columns.PRICE].to_numpy(dtype="float64"),
            index=pd.Index(cat[Columns.ITEM].to_numpy(), name=Columns.ITEM),
            name=Columns.PRICE,
        )

    def before(self, cutoff: pd.Timestamp | str) -> Dataset:
        """The events strictly before ``cutoff``, with the same catalog and id maps.

        Raises
        ------
        DataValidationError
            The log has no timestamps (there is no "before"; use a random split instead).
        """
        if not self.has_timestamps:
            raise DataValidationError(
                f"the dataset {self.name!r} has no timestamps, so it has no view before a "
                "cutoff: add a 'timestamp' column or use a random split"
            )
        when = pd.Timestamp(cutoff)
        earlier = self.events[self.events[Columns.TIMESTAMP].to_numpy() < when.to_datetime64()]
        view = replace(self, events=earlier)
        # the maps are caches, not fields: dataclasses.replace (e.g. forgetting a shopper)
        # builds fresh ones; only a view keeps its parent's
        object.__setattr__(view, "_user_map", self.user_id_map)
        object.__setattr__(view, "_item_map", self.item_id_map)
        return view

    def summary(self) -> dict[str, Any]:
        """Counts a user wants to see first: events, users, items, events by type, period."""
        ev = self.events
        counts = ev[Columns.EVENT].value_counts()
        out: dict[str, Any] = {
            "name": self.name,
            "events": int(len(ev)),
            "users": int(ev[Columns.USER].nunique()),
            "items": int(ev[Columns.ITEM].nunique()),
            "events_by_type": {e: int(counts.get(e, 0)) for e in EVENT_TYPES},
            "has_timestamps": self.has_timestamps,
        }
        if self.has_timestamps and len(ev):
            out["first_event"] = str(ev[Columns.TIMESTAMP].min())
            out["last_event"] = str(ev[Columns.TIMESTAMP].max())
        return out
