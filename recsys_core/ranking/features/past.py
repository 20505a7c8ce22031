"""What the groups read: the events before a cutoff as arrays (:class:`PastEvents`), the
pairs being looked up (:class:`PairLookup`), and the array helpers the groups share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

import numpy as np
import pandas as pd

from recsys_core.columns import EVENT_TYPES, Columns
from recsys_core.data.dataset import id_values
from recsys_core.errors import DataValidationError
from recsys_core.interactions import IdMap
from recsys_core.ranking.features.frames import (
    FeatureEngine,
    event_table,
    gather_pairs,
    pair_history_table,
)
from recsys_core.ranking.features.registry import FeatureRegistry

__all__ = ["PairLookup", "PastEvents", "events_before", "require_timestamps"]

_DAY_NS: Final = 86_400 * 1_000_000_000
_N_EVENTS: Final = len(EVENT_TYPES)
_VIEW: Final = EVENT_TYPES.index("view")
_CART: Final = EVENT_TYPES.index("cart")
_FAVORITE: Final = EVENT_TYPES.index("favorite")
_PURCHASE: Final = EVENT_TYPES.index("purchase")


# --------------------------------------------------------------------------------------
# Array helpers
# --------------------------------------------------------------------------------------


def require_timestamps(events: pd.DataFrame) -> None:
    """Raise a readable DataValidationError when the log has no ``timestamp`` column."""
    if Columns.TIMESTAMP not in events.columns:
        raise DataValidationError(
            "the purchase model needs a 'timestamp' column to know what happened before a "
            "cutoff; this log has none: load a log with timestamps"
        )


def events_before(events: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The events strictly before ``cutoff`` (the only ones any feature may use).

    Raises
    ------
    DataValidationError
        The log has no ``timestamp`` column.
    """
    require_timestamps(events)
    return events[(events[Columns.TIMESTAMP] < cutoff).to_numpy()]


def _event_codes(events: pd.DataFrame) -> np.ndarray:
    """Index of each row's event in :data:`EVENT_TYPES` (-1 for anything else)."""
    ev = events[Columns.EVENT]
    if isinstance(ev.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in ev.cat.categories]
        lookup = np.array([EVENT_TYPES.index(c) if c in EVENT_TYPES else -1 for c in cats])
        codes = ev.cat.codes.to_numpy()
        return np.where(codes >= 0, lookup[np.maximum(codes, 0)], -1).astype(np.int64)
    return np.asarray(pd.Categorical(ev, categories=list(EVENT_TYPES)).codes, dtype=np.int64)


def _lookup(keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of sorted ``keys`` matching ``query``: (found mask, row positions clipped)."""
    if len(keys) == 0:
        return np.zeros(len(query), dtype=bool), np.zeros(len(query), dtype=np.int64)
    pos = np.searchsorted(keys, query)
    pos = np.minimum(pos, len(keys) - 1)
    return keys[pos] == query, pos


def _interval(first: np.ndarray, last: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Mean gap between ``n`` dated occasions spanning ``first..last``; NaN when n < 2."""
    out = np.full(len(n), np.nan)
    many = n >= 2
    out[many] = (last[many] - first[many]) / (n[many] - 1)
    return out


def _distinct_count(groups: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Number of distinct ``values`` per group (``groups`` in ``0..n_groups-1``)."""
    if len(groups) == 0:
        return np.zeros(n_groups)
    pairs = np.unique(np.column_stack([groups, values]), axis=0)
    return np.bincount(pairs[:, 0], minlength=n_groups).astype(np.float64)


def _catalog_column(catalog: pd.DataFrame | None, items: IdMap, column: str) -> pd.Series | None:
    """``catalog[column]`` aligned to ``items`` (None when the catalog lacks it)."""
    if catalog is None or column not in catalog.columns or Columns.ITEM not in catalog.columns:
        return None
    values = catalog[[Columns.ITEM, column]].copy()
    values[Columns.ITEM] = id_values(values[Columns.ITEM], where="the catalog")
    values = values.drop_duplicates(Columns.ITEM).set_index(Columns.ITEM)[column]
    return values.reindex(pd.Index(items.external_ids, dtype=object))


def _codes(values: pd.Series | None, n: int) -> np.ndarray:
    """Integer codes of a catalog attribute (-1 where missing)."""
    if values is None:
        return np.full(n, -1, dtype=np.int64)
    codes, _ = pd.factorize(values.astype("object").where(values.notna(), None), sort=True)
    return np.asarray(codes, dtype=np.int64)


def _share_table(
    users: np.ndarray,
    groups: np.ndarray,
    is_purchase: np.ndarray,
    n_users: int,
    *,
    with_purchases: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Per (user, group) share of the user's purchases and of their events.

    Returns sorted keys ``user * n_groups + group`` and a ``(n, 2)`` array (purchase share,
    event share) when ``with_purchases``, else ``(n, 1)`` (event share).
    """
    n_groups = int(groups.max(initial=-1)) + 1
    width = 2 if with_purchases else 1
    if n_groups == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, width))
    known = groups >= 0
    key = users[known] * np.int64(n_groups) + groups[known]
    keys, inverse = np.unique(key, return_inverse=True)
    key_user = keys // n_groups
    events = np.bincount(inverse, minlength=len(keys)).astype(np.float64)
    user_events = np.bincount(users[known], minlength=n_users).astype(np.float64)
    event_share = events / user_events[key_user]
    if not with_purchases:
        return keys.astype(np.int64), event_share[:, None]
    bought = is_purchase[known]
    purchases = np.bincount(inverse[bought], minlength=len(keys)).astype(np.float64)
    user_purchases = np.bincount(users[known][bought], minlength=n_users).astype(np.float64)
    purchase_share = np.divide(
        purchases,
        user_purchases[key_user],
        out=np.full(len(keys), np.nan),
        where=user_purchases[key_user] > 0,
    )
    return keys.astype(np.int64), np.column_stack([purchase_share, event_share])


# --------------------------------------------------------------------------------------
# What the groups read: the past events, and the pairs being looked up
# --------------------------------------------------------------------------------------


class PastEvents:
    """The events strictly before a cutoff, as arrays, for the pair, user and item groups.

    Holds one entry per event (``u``, ``i``, ``codes``, ``age``, ``day``, ``qty``,
    ``is_purchase``, ``key``) and, computed once on first use, the intermediate counts that
    more than one group reads (pairs, order days, each user's order rhythm, item buyers,
    past-only prices). A value only one group needs is computed in that group.

    Parameters
    ----------
    events:
        Canonical event log with ``timestamp`` (``quantity`` and ``price`` optional).
        Events at or after ``cutoff`` are ignored.
    cutoff:
        The instant the features describe.
    catalog:
        Optional catalog (``item_id`` and where known ``category``, ``brand``); catalog
        items without events are items too. Its ``price`` is never read.
    engine:
        Where the groups written in Narwhals (:mod:`.frames`) run: ``embedded`` (pandas,
        in this process) or ``spark``.
    spark_master:
        Spark master URL with ``engine="spark"`` (default ``$RECSYS_SPARK_MASTER`` or
        ``local[*]``).

    Raises
    ------
    DataValidationError
        No timestamps, or no event before the cutoff.
    """

    def __init__(
        self,
        events: pd.DataFrame,
        cutoff: pd.Timestamp,
        catalog: pd.DataFrame | None = None,
        *,
        engine: FeatureEngine = "embedded",
        spark_master: str | None = None,
    ) -> None:
        cutoff = pd.Timestamp(cutoff)
        past = events_before(events, cutoff)
        if past.empty:
            raise DataValidationError(
                f"no event happened before {cutoff}: the purchase model needs history before "
                "its cutoff; choose a later cutoff or a longer log"
            )
        codes = _event_codes(past)
        past = past[codes >= 0]
        codes = codes[codes >= 0]
        users = IdMap.from_values(past[Columns.USER])
        # the items of the past events and the catalog (the Dataset's item map holds the
        # items of later events too: docs/data.md); IdMap.from_values reads category codes
        item_values_seen = IdMap.from_values(past[Columns.ITEM]).external_ids
        if catalog is not None and Columns.ITEM in catalog.columns:
            item_values_seen = np.concatenate(
                [item_values_seen, catalog[Columns.ITEM].to_numpy(dtype=object)]
            )
        items = IdMap.from_values(item_values_seen)

        self.cutoff = cutoff
        self.engine: FeatureEngine = engine
        self.spark_master = spark_master
        self.events = past
        self.catalog = catalog
        self.users, self.items = users, items
        self.n_users, self.n_items = len(users), len(items)
        #: Per event: user and item index, event code, days before the cutoff (> 0),
        #: calendar day (order occasion), quantity, purchase or not, pair key.
        self.codes = codes
        self.u = users.to_internal(past[Columns.USER])
        self.i = items.to_internal(past[Columns.ITEM])
        ts = past[Columns.TIMESTAMP].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        self.age = (cutoff.value - ts) / _DAY_NS
        self.day = np.floor(ts / _DAY_NS).astype(np.int64)
        self.qty = (
            past[Columns.QUANTITY].to_numpy(dtype=np.float64, na_value=1.0)
            if Columns.QUANTITY in past.columns
            else np.ones(len(past))
        )
        self.is_purchase = codes == _PURCHASE
        self.key = self.u * np.int64(self.n_items) + self.i

    # ------------------------------------------------------------------ events

    @cached_property
    def table(self) -> Any:
        """The events as a Narwhals frame on :attr:`engine`, for the groups written in
        :mod:`.frames`."""
        return event_table(self)

    @cached_property
    def recent(self) -> np.ndarray:
        """Events of the last 30 days."""
        return self.age < 30

    # ------------------------------------------------------------------ pairs

    @cached_property
    def pair_history(self) -> dict[str, np.ndarray]:
        """Per pair (aligned with :attr:`pair_keys`): :func:`.frames.pair_history_table`'s
        counts (0 where none) and days since (NaN where none), computed once for the
        ``interactions``, ``recency`` and ``first_contact`` groups."""
        table = pair_history_table(self.table)
        counts = ["ui_views", "ui_carts", "ui_favorites", "ui_purchases", "ui_quantity"]
        since = [
            "ui_days_since_view",
            "ui_days_since_cart",
            "ui_days_since_favorite",
            "ui_days_since_purchase",
            "ui_days_since_first",
        ]
        out = gather_pairs(table, self.pair_keys, self.n_items, counts, 0.0)
        out.update(gather_pairs(table, self.pair_keys, self.n_items, since, np.nan))
        return out

    @cached_property
    def _pairs(self) -> tuple[np.ndarray, np.ndarray]:
        return np.unique(self.key, return_inverse=True)

    @property
    def pair_keys(self) -> np.ndarray:
        """Sorted keys ``user * n_items + item`` of the pairs with history."""
        return self._pairs[0]

    @property
    def pair_of(self) -> np.ndarray:
        """Per event: its row among :attr:`pair_keys`."""
        return self._pairs[1]

    @property
    def n_pairs(self) -> int:
        """Number of pairs with history."""
        return len(self.pair_keys)

    @cached_property
    def pair_user(self) -> np.ndarray:
        """Per pair: its user."""
        return self.pair_keys // self.n_items

    @cached_property
    def days_since_event(self) -> np.ndarray:
        """``(n_pairs, len(EVENT_TYPES))``: days since the pair's newest event of each type
        (NaN: none)."""
        newest_flat = np.full(self.n_pairs * _N_EVENTS, np.inf)
        np.minimum.at(newest_flat, self.pair_of * _N_EVENTS + self.codes, self.age)
        newest = newest_flat.reshape(self.n_pairs, _N_EVENTS)
        newest[np.isinf(newest)] = np.nan
        return newest

    @cached_property
    def order_days(self) -> np.ndarray:
        """Sorted distinct ``(pair, calendar day)`` rows of the purchases."""
        return np.unique(
            np.column_stack([self.pair_of[self.is_purchase], self.day[self.is_purchase]]), axis=0
        )

    @cached_property
    def ui_orders(self) -> np.ndarray:
        """Per pair: distinct days the user ordered the item."""
        return np.bincount(self.order_days[:, 0], minlength=self.n_pairs).astype(np.float64)

    @cached_property
    def _pair_order_span(self) -> tuple[np.ndarray, np.ndarray]:
        first_day = np.full(self.n_pairs, np.nan)
        last_day = np.full(self.n_pairs, np.nan)
        order_days = self.order_days
        if len(order_days):
            # order_days is sorted by (pair, day): first/last rows of each pair
            starts = np.r_[0, np.flatnonzero(np.diff(order_days[:, 0])) + 1]
            ends = np.r_[starts[1:], len(order_days)] - 1
            first_day[order_days[starts, 0]] = order_days[starts, 1]
            last_day[order_days[ends, 0]] = order_days[ends, 1]
        return first_day, last_day

    @property
    def first_order_day(self) -> np.ndarray:
        """Per pair: calendar day of its first order (NaN: never bought)."""
        return self._pair_order_span[0]

    @property
    def last_order_day(self) -> np.ndarray:
        """Per pair: calendar day of its last order (NaN: never bought)."""
        return self._pair_order_span[1]

    # ------------------------------------------------------------------ users

    @cached_property
    def user_order_days(self) -> np.ndarray:
        """Per user: distinct days they ordered on."""
        buys = self.is_purchase
        return _distinct_count(self.u[buys], self.day[buys], self.n_users)

    @cached_property
    def user_order_interval(self) -> np.ndarray:
        """Per user: mean days between their order days (NaN: fewer than two)."""
        buys = self.is_purchase
        u_first_day = np.full(self.n_users, np.iinfo(np.int64).max)
        u_last_day = np.full(self.n_users, np.iinfo(np.int64).min)
        np.minimum.at(u_first_day, self.u[buys], self.day[buys])
        np.maximum.at(u_last_day, self.u[buys], self.day[buys])
        return _interval(
            u_first_day.astype(np.float64), u_last_day.astype(np.float64), self.user_order_days
        )

    # ------------------------------------------------------------------ items

    @cached_property
    def item_buyers(self) -> np.ndarray:
        """Per item: distinct users who bought it."""
        buyers_pairs = np.unique(self.key[self.is_purchase])
        return np.bincount(buyers_pairs % self.n_items, minlength=self.n_items).astype(np.float64)

    @cached_property
    def item_price(self) -> np.ndarray:
        """Per item: median unit price of its events before the cutoff, else NaN.

        Only prices seen in the past events count. The catalog's price is deliberately not
        used: the loaders build it from the whole log (test period included), so it would
        leak later prices into the features (an item without a priced event before the
        cutoff gets NaN).
        """
        price = np.full(self.n_items, np.nan)
        if Columns.PRICE in self.events.columns:
            paid = pd.Series(self.events[Columns.PRICE].to_numpy(dtype=np.float64, na_value=np.nan))
            medians = paid.groupby(self.i).median().dropna()
            price[medians.index.to_numpy()] = medians.to_numpy()
        return price


@dataclass(frozen=True)
class PairLookup:
    """The pairs being looked up, for the ``lookup`` groups.

    Attributes
    ----------
    users, items:
        Snapshot indices of each pair's user and item.
    tables:
        The lookup groups' tables (see :attr:`FeatureGroup.tables`).
    user_block, item_block:
        The pairs' user-level and item-level features (read with :meth:`user_feature`,
        :meth:`item_feature`).
    registry:
        The registry the blocks were built with.
    """

    users: np.ndarray
    items: np.ndarray
    tables: Mapping[str, np.ndarray]
    user_block: np.ndarray
    item_block: np.ndarray
    registry: FeatureRegistry

    def user_feature(self, name: str) -> np.ndarray:
        """A user-level feature of each pair's user."""
        return self.user_block[:, self.registry.column("user", name)]

    def item_feature(self, name: str) -> np.ndarray:
        """An item-level feature of each pair's item."""
        return self.item_block[:, self.registry.column("item", name)]
