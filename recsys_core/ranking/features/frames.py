"""Feature groups written once in Narwhals, run on pandas (embedded) or on Spark.

The groups defined here (:func:`pair_history_table` for the ``interactions``, ``recency`` and
``first_contact`` groups, :func:`user_activity_table`, :func:`item_popularity_table`) are
dataframe expressions over one table of the events before the cutoff (:func:`event_table`:
user and item index, days before the cutoff ``age``, calendar ``day``, ``buy``). The same
expression runs on

* ``embedded`` (default): the pandas frame in this process, no server;
* ``spark``: a Spark DataFrame read from a Parquet copy of that table, in the shared session
  of :func:`recsys_core.models.als_spark.spark_session` (``local[*]`` or a cluster).

Only the aggregated tables (one row per user or per item) come back; the feature groups in
:mod:`.user_groups` and :mod:`.item_groups` scatter them into arrays indexed like the
snapshot. Why Narwhals and not Ibis is measured in ``docs/ranker-at-scale.md``.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import narwhals as nw
import numpy as np
import pandas as pd

from recsys_core.columns import EVENT_TYPES

__all__ = [
    "FEATURE_ENGINES",
    "FeatureEngine",
    "event_table",
    "gather",
    "gather_pairs",
    "item_popularity_table",
    "pair_history_table",
    "user_activity_table",
]

#: Where the dataframe-layer groups run.
FeatureEngine = Literal["embedded", "spark"]
FEATURE_ENGINES: tuple[FeatureEngine, ...] = ("embedded", "spark")


class EventColumns(Protocol):
    """What :func:`event_table` reads of the events before the cutoff (a
    :class:`~recsys_core.ranking.features.past.PastEvents` has it all)."""

    @property
    def u(self) -> Any: ...
    @property
    def i(self) -> Any: ...
    @property
    def age(self) -> Any: ...
    @property
    def day(self) -> Any: ...
    @property
    def is_purchase(self) -> Any: ...
    @property
    def codes(self) -> Any: ...
    @property
    def qty(self) -> Any: ...
    @property
    def engine(self) -> str: ...
    @property
    def spark_master(self) -> str | None: ...


def event_table(past: EventColumns) -> Any:
    """The events before the cutoff as a Narwhals frame on ``past.engine``.

    Columns: ``u``, ``i`` (snapshot indices), ``age`` (days before the cutoff), ``day``
    (calendar day), ``buy`` (a purchase), ``code`` (index in ``EVENT_TYPES``), ``qty``.

    Raises
    ------
    EngineUnavailableError
        ``engine="spark"`` without pyspark or Java (the message says what to install).
    """
    frame = pd.DataFrame(
        {
            "u": np.asarray(past.u, dtype=np.int64),
            "i": np.asarray(past.i, dtype=np.int64),
            "age": past.age,
            "day": past.day,
            "buy": past.is_purchase,
            "code": np.asarray(past.codes, dtype=np.int64),
            "qty": past.qty,
        }
    )
    if past.engine == "embedded":
        return nw.from_native(frame, eager_only=True)
    if past.engine != "spark":
        raise ValueError(f"unknown feature engine {past.engine!r}; use one of {FEATURE_ENGINES}")
    return nw.from_native(_spark_frame(frame, past.spark_master))


def _spark_frame(frame: pd.DataFrame, master: str | None) -> Any:
    """``frame`` as a cached Spark DataFrame (through a Parquet file: Arrow's fast path;
    ``createDataFrame`` of a pandas frame is ~10x slower). The file is removed when the
    Spark frame is garbage-collected."""
    from recsys_core.models.als_spark import spark_session, spark_work_dir

    spark = spark_session(master)
    path = spark_work_dir() / f"events-{uuid.uuid4().hex}.parquet"
    frame.to_parquet(path, index=False)
    native = spark.read.parquet(str(path)).cache()
    native.count()  # materialise the cache before the file can go
    weakref.finalize(native, _remove, path)
    return native


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _collect(frame: Any) -> pd.DataFrame:
    """A Narwhals frame (eager or lazy, any backend) as a pandas frame."""
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect(backend="pandas")
    collected: pd.DataFrame = frame.to_pandas()
    return collected


def gather(
    table: pd.DataFrame, key: str, n: int, names: Sequence[str], fill: float = 0.0
) -> dict[str, np.ndarray]:
    """Columns ``names`` of an aggregated ``table`` scattered to arrays of length ``n``
    indexed by its ``key`` column (``fill`` where a key has no row or a null)."""
    rows = table[key].to_numpy(dtype=np.int64)
    out = {}
    for name in names:
        column = np.full(n, fill, dtype=np.float64)
        column[rows] = table[name].to_numpy(dtype=np.float64, na_value=fill)
        out[name] = column
    return out


#: Pair-history columns per event type: (count column, days-since column).
PAIR_EVENT_COLUMNS: Final = {
    "view": ("ui_views", "ui_days_since_view"),
    "cart": ("ui_carts", "ui_days_since_cart"),
    "favorite": ("ui_favorites", "ui_days_since_favorite"),
    "purchase": ("ui_purchases", "ui_days_since_purchase"),
}


def pair_history_table(events: Any) -> pd.DataFrame:
    """Per (user ``u``, item ``i``) with history: events of each type, units bought, days
    since the newest event of each type (null: none) and since the first event."""
    flags, ages = {}, {}
    for event, (count, since) in PAIR_EVENT_COLUMNS.items():
        is_event = nw.col("code") == EVENT_TYPES.index(event)
        flags[count] = is_event.cast(nw.Int64)
        ages[since] = nw.when(is_event).then(nw.col("age"))
    flagged = events.with_columns(
        bought_qty=nw.when(nw.col("buy")).then(nw.col("qty")).otherwise(0.0), **flags, **ages
    )
    table = flagged.group_by("u", "i").agg(
        *(nw.col(name).sum() for name in flags),
        nw.col("bought_qty").sum().alias("ui_quantity"),
        *(nw.col(name).min() for name in ages),
        nw.col("age").max().alias("ui_days_since_first"),
    )
    return _collect(table)


def gather_pairs(
    table: pd.DataFrame, pair_keys: np.ndarray, n_items: int, names: Sequence[str], fill: float
) -> dict[str, np.ndarray]:
    """Columns ``names`` of a per-(``u``, ``i``) table as arrays aligned with the sorted
    ``pair_keys`` (``u * n_items + i``); ``fill`` where a pair has no row or a null."""
    keys = table["u"].to_numpy(dtype=np.int64) * np.int64(n_items) + table["i"].to_numpy(
        dtype=np.int64
    )
    rows = np.searchsorted(pair_keys, keys)
    out = {}
    for name in names:
        column = np.full(len(pair_keys), fill, dtype=np.float64)
        column[rows] = table[name].to_numpy(dtype=np.float64, na_value=fill)
        out[name] = column
    return out


def user_activity_table(events: Any) -> pd.DataFrame:
    """Per user ``u``: events, distinct items, events in the last 30 days, days since the
    last and the first event; order days and days since the last purchase (null: never)."""
    flagged = events.with_columns(recent=(nw.col("age") < 30).cast(nw.Int64))
    activity = flagged.group_by("u").agg(
        nw.len().alias("user_events"),
        nw.col("i").n_unique().alias("user_items"),
        nw.col("recent").sum().alias("user_events_30d"),
        nw.col("age").min().alias("user_days_since_last_event"),
        nw.col("age").max().alias("user_tenure_days"),
    )
    orders = (
        flagged.filter(nw.col("buy"))
        .group_by("u")
        .agg(
            nw.col("day").n_unique().alias("user_orders"),
            nw.col("age").min().alias("user_days_since_last_purchase"),
        )
    )
    return _collect(activity.join(orders, on="u", how="left"))


def item_popularity_table(events: Any) -> tuple[pd.DataFrame, int]:
    """Per item ``i``: distinct buyers overall, in the last 30 and 7 days and 30 to 90 days
    ago (``buyers_before``), events in the last 30 days; and the number of distinct buyers
    in the last 30 days over all items."""
    buys = events.filter(nw.col("buy")).with_columns(
        w30=(nw.col("age") < 30).cast(nw.Int64),
        w7=(nw.col("age") < 7).cast(nw.Int64),
        before=((nw.col("age") >= 30) & (nw.col("age") < 90)).cast(nw.Int64),
    )
    buyers = buys.group_by("i", "u").agg(
        nw.col("w30").max(), nw.col("w7").max(), nw.col("before").max()
    )
    per_item = buyers.group_by("i").agg(
        nw.len().alias("item_buyers"),
        nw.col("w30").sum().alias("item_buyers_30d"),
        nw.col("w7").sum().alias("item_buyers_7d"),
        nw.col("before").sum().alias("buyers_before"),
    )
    recent = events.filter(nw.col("age") < 30).group_by("i").agg(nw.len().alias("item_events_30d"))
    active = _collect(
        buyers.filter(nw.col("w30") == 1).select(nw.col("u").n_unique().alias("active"))
    )
    table = pd.concat(
        [_collect(per_item).set_index("i"), _collect(recent).set_index("i")], axis=1
    ).rename_axis("i")
    return table.reset_index(), int(active["active"].iloc[0]) if len(active) else 0
