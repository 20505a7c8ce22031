"""Behaviour features of (user, item) pairs, computed only from events before a cutoff.

A :class:`BehaviourSnapshot` aggregates an event log *as it was* at a cutoff: every event at
or after the cutoff is dropped before anything is counted, so features built from it cannot
see the future. It holds small lookup tables (one row per user, per item and per user-item
pair with history) so that the features of any batch of pairs are gathered with array
lookups, without a loop per user.

Features (see :data:`FEATURE_NAMES`; "days" are fractional days before the cutoff):

user-item
    counts of views, carts, favourites and purchases of the item by the user; quantity
    bought; distinct days the user ordered it (ever and in the last 90 days); days since the
    last view / cart / favourite / purchase of it and since the first event on it; the mean
    interval between the days the user ordered it, days since the last order of it divided
    by that interval (``> 1``: a reorder is due) and the share of the user's order days that
    included it; counted in the user's order days rather than calendar days: orders since
    the last one with the item, whether it was in their last order, units of it in its last
    order, share of their last 3 / last 5 orders that had it, share of their orders since
    they first bought it that had it; days since its last order divided by the user's usual
    time between orders.
user
    events, distinct items, order days, events in the last 30 days, days since the last
    event and the last purchase, tenure (days since the first event), mean interval between
    order days, distinct items per order day, distinct items bought in the last 30 days,
    share of the items they bought that they bought on two or more days.
item
    distinct buyers overall and in the last 30 / 7 days, share of the last 30 days' buyers
    who bought it, events in the last 30 days, trend (buyers in the last 30 days vs the 60
    days before, smoothed), share of buyers who ordered it on two or more days, age (days
    since its first event), price (median unit price of its events before the cutoff: the
    catalog price is never used, because catalogs built from a log take the median over the
    whole log, future included).
affinity
    share of the user's purchases and of all their events in the item's category, share of
    their events with the item's brand, item price relative to the median price the user
    pays.
stage one
    ALS and item-kNN score and rank (added by :mod:`recsys_core.ranking.candidates`).

Missing values are NaN (e.g. "days since the last view" of an item never viewed); LightGBM
treats them as missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from recsys_core.columns import EVENT_TYPES, Columns
from recsys_core.errors import ArtifactError, DataValidationError
from recsys_core.interactions import IdMap

__all__ = [
    "BEHAVIOUR_FEATURES",
    "FEATURE_NAMES",
    "ITEM_FEATURES",
    "PAIR_FEATURES",
    "STAGE_ONE_FEATURES",
    "USER_FEATURES",
    "AFFINITY_FEATURES",
    "BehaviourSnapshot",
    "describe_feature",
    "feature_description",
    "events_before",
    "require_timestamps",
]

_DAY_NS: Final = 86_400 * 1_000_000_000
_N_EVENTS: Final = len(EVENT_TYPES)
_PURCHASE: Final = EVENT_TYPES.index("purchase")

#: User-item features, in the column order of :attr:`BehaviourSnapshot.pair_values`.
PAIR_FEATURES: Final[tuple[str, ...]] = (
    "ui_views",
    "ui_carts",
    "ui_favorites",
    "ui_purchases",
    "ui_quantity",
    "ui_orders",
    "ui_days_since_view",
    "ui_days_since_cart",
    "ui_days_since_favorite",
    "ui_days_since_purchase",
    "ui_mean_purchase_interval",
    "ui_purchase_due_ratio",
    "ui_order_share",
    "ui_orders_90d",
    "ui_days_since_first",
    "ui_orders_since_purchase",
    "ui_in_last_order",
    "ui_last_order_quantity",
    "ui_last3_order_share",
    "ui_last5_order_share",
    "ui_order_share_since_first",
    "ui_due_vs_user_interval",
)
#: User features, in the column order of :attr:`BehaviourSnapshot.user_values`.
USER_FEATURES: Final[tuple[str, ...]] = (
    "user_events",
    "user_items",
    "user_orders",
    "user_events_30d",
    "user_days_since_last_event",
    "user_days_since_last_purchase",
    "user_tenure_days",
    "user_mean_order_interval",
    "user_items_per_order",
    "user_items_bought_30d",
    "user_repeat_share",
)
#: Item features, in the column order of :attr:`BehaviourSnapshot.item_values`.
ITEM_FEATURES: Final[tuple[str, ...]] = (
    "item_buyers",
    "item_buyers_30d",
    "item_buyers_7d",
    "item_buyer_share_30d",
    "item_events_30d",
    "item_trend",
    "item_repurchase_rate",
    "item_age_days",
    "item_price",
)
#: Category, brand and price affinity of the user for the item.
AFFINITY_FEATURES: Final[tuple[str, ...]] = (
    "category_purchase_share",
    "category_event_share",
    "brand_event_share",
    "price_ratio",
)
#: Everything a :class:`BehaviourSnapshot` computes.
BEHAVIOUR_FEATURES: Final[tuple[str, ...]] = (
    *PAIR_FEATURES,
    *USER_FEATURES,
    *ITEM_FEATURES,
    *AFFINITY_FEATURES,
)
#: Scores of the candidate generators (see :mod:`recsys_core.ranking.candidates`).
STAGE_ONE_FEATURES: Final[tuple[str, ...]] = (
    "als_score",
    "als_rank",
    "itemknn_score",
    "itemknn_rank",
)
#: All classifier features, in the classifier's column order.
FEATURE_NAMES: Final[tuple[str, ...]] = (*BEHAVIOUR_FEATURES, *STAGE_ONE_FEATURES)

#: Pair features that are NaN (not 0) for a pair without history.
_PAIR_MISSING: Final = [
    PAIR_FEATURES.index(name)
    for name in PAIR_FEATURES
    if "days_since" in name
    or name
    in (
        "ui_mean_purchase_interval",
        "ui_purchase_due_ratio",
        "ui_orders_since_purchase",
        "ui_order_share_since_first",
        "ui_due_vs_user_interval",
    )
]


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
    return np.asarray(
        pd.Categorical(ev.astype(str), categories=list(EVENT_TYPES)).codes, dtype=np.int64
    )


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
    values[Columns.ITEM] = values[Columns.ITEM].astype(str)
    values = values.drop_duplicates(Columns.ITEM).set_index(Columns.ITEM)[column]
    return values.reindex(pd.Index(items.external_ids, dtype=object))


def _codes(values: pd.Series | None, n: int) -> np.ndarray:
    """Integer codes of a catalog attribute (-1 where missing)."""
    if values is None:
        return np.full(n, -1, dtype=np.int64)
    codes, _ = pd.factorize(values.astype("object").where(values.notna(), None), sort=True)
    return np.asarray(codes, dtype=np.int64)


@dataclass(frozen=True)
class BehaviourSnapshot:
    """Behaviour tables of an event log as it was at ``cutoff``.

    Build one with :meth:`from_events`; gather the features of pairs with :meth:`features`.

    Attributes
    ----------
    cutoff:
        Only events strictly before this instant were used.
    users, items:
        Users with at least one event before the cutoff; items with an event before the
        cutoff or in the catalog.
    pair_keys, pair_values:
        Sorted keys ``user * n_items + item`` of pairs with history and their
        :data:`PAIR_FEATURES` (float64).
    user_values, item_values:
        :data:`USER_FEATURES` per user and :data:`ITEM_FEATURES` per item.
    item_category, item_brand:
        Integer codes of each item's category and brand (-1: unknown).
    category_keys, category_values:
        Sorted keys ``user * n_categories + category`` and the user's purchase share and
        event share in that category.
    brand_keys, brand_values:
        Sorted keys ``user * n_brands + brand`` and the user's event share with the brand.
    user_typical_price:
        Median price of the items the user bought (of all their items if they bought none).
    """

    cutoff: pd.Timestamp
    users: IdMap
    items: IdMap
    pair_keys: np.ndarray
    pair_values: np.ndarray
    user_values: np.ndarray
    item_values: np.ndarray
    item_category: np.ndarray
    item_brand: np.ndarray
    category_keys: np.ndarray
    category_values: np.ndarray
    brand_keys: np.ndarray
    brand_values: np.ndarray
    user_typical_price: np.ndarray

    # ------------------------------------------------------------------ building

    @classmethod
    def from_events(
        cls,
        events: pd.DataFrame,
        cutoff: pd.Timestamp,
        catalog: pd.DataFrame | None = None,
    ) -> BehaviourSnapshot:
        """Aggregate the events strictly before ``cutoff``.

        Parameters
        ----------
        events:
            Canonical event log with ``timestamp`` (``quantity`` and ``price`` optional).
            Events at or after ``cutoff`` are ignored.
        cutoff:
            The instant the features describe.
        catalog:
            Optional catalog (``item_id`` and where known ``category``, ``brand``);
            catalog items without events get item features too. Its ``price`` is ignored:
            prices come from the events before the cutoff only.

        Raises
        ------
        DataValidationError
            No timestamps, or no event before the cutoff.
        """
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
        item_values_seen = pd.Series(past[Columns.ITEM].astype(str).unique())
        if catalog is not None and Columns.ITEM in catalog.columns:
            item_values_seen = pd.concat([item_values_seen, catalog[Columns.ITEM].astype(str)])
        items = IdMap.from_values(item_values_seen)
        n_users, n_items = len(users), len(items)

        u = users.to_internal(past[Columns.USER])
        i = items.to_internal(past[Columns.ITEM])
        ts = past[Columns.TIMESTAMP].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        age = (cutoff.value - ts) / _DAY_NS  # days before the cutoff, > 0
        day = np.floor(ts / _DAY_NS).astype(np.int64)  # calendar day (order occasion)
        qty = (
            past[Columns.QUANTITY].to_numpy(dtype=np.float64, na_value=1.0)
            if Columns.QUANTITY in past.columns
            else np.ones(len(past))
        )
        is_purchase = codes == _PURCHASE

        # ---- user-item pairs
        key = u * np.int64(n_items) + i
        pair_keys, pair_of = np.unique(key, return_inverse=True)
        n_pairs = len(pair_keys)
        pair_user = pair_keys // n_items
        counts = np.bincount(pair_of * _N_EVENTS + codes, minlength=n_pairs * _N_EVENTS).reshape(
            n_pairs, _N_EVENTS
        )
        newest_flat = np.full(n_pairs * _N_EVENTS, np.inf)
        np.minimum.at(newest_flat, pair_of * _N_EVENTS + codes, age)
        newest = newest_flat.reshape(n_pairs, _N_EVENTS)
        newest[np.isinf(newest)] = np.nan
        quantity = np.bincount(pair_of[is_purchase], weights=qty[is_purchase], minlength=n_pairs)

        p_pair, p_day = pair_of[is_purchase], day[is_purchase]
        order_days = np.unique(np.column_stack([p_pair, p_day]), axis=0)
        ui_orders = np.bincount(order_days[:, 0], minlength=n_pairs).astype(np.float64)
        first_day = np.full(n_pairs, np.nan)
        last_day = np.full(n_pairs, np.nan)
        if len(order_days):
            # order_days is sorted by (pair, day): first/last rows of each pair
            starts = np.r_[0, np.flatnonzero(np.diff(order_days[:, 0])) + 1]
            ends = np.r_[starts[1:], len(order_days)] - 1
            first_day[order_days[starts, 0]] = order_days[starts, 1]
            last_day[order_days[ends, 0]] = order_days[ends, 1]
        ui_interval = _interval(first_day, last_day, ui_orders)
        cutoff_day = cutoff.value / _DAY_NS
        recent_orders = order_days[cutoff_day - order_days[:, 1] <= 90]
        ui_orders_90d = np.bincount(recent_orders[:, 0], minlength=n_pairs).astype(np.float64)
        oldest = np.zeros(n_pairs)
        np.maximum.at(oldest, pair_of, age)

        # ---- users
        user_events = np.bincount(u, minlength=n_users).astype(np.float64)
        user_items = np.bincount(pair_user, minlength=n_users).astype(np.float64)
        user_order_days = _distinct_count(u[is_purchase], day[is_purchase], n_users)
        recent = age < 30
        user_events_30d = np.bincount(u[recent], minlength=n_users).astype(np.float64)
        last_event = np.full(n_users, np.inf)
        np.minimum.at(last_event, u, age)
        first_event = np.zeros(n_users)
        np.maximum.at(first_event, u, age)
        last_purchase = np.full(n_users, np.inf)
        np.minimum.at(last_purchase, u[is_purchase], age[is_purchase])
        last_purchase[np.isinf(last_purchase)] = np.nan
        u_first_day = np.full(n_users, np.iinfo(np.int64).max)
        u_last_day = np.full(n_users, np.iinfo(np.int64).min)
        np.minimum.at(u_first_day, u[is_purchase], day[is_purchase])
        np.maximum.at(u_last_day, u[is_purchase], day[is_purchase])
        user_interval = _interval(
            u_first_day.astype(np.float64), u_last_day.astype(np.float64), user_order_days
        )
        bought_pairs = ui_orders > 0
        user_bought_items = np.bincount(pair_user[bought_pairs], minlength=n_users)
        user_repeats = np.bincount(pair_user[ui_orders >= 2], minlength=n_users)
        repeat_share = np.divide(
            user_repeats,
            user_bought_items,
            out=np.full(n_users, np.nan),
            where=user_bought_items > 0,
        )
        items_per_order = np.divide(
            np.bincount(pair_user, weights=ui_orders, minlength=n_users),
            user_order_days,
            out=np.full(n_users, np.nan),
            where=user_order_days > 0,
        )
        recent_buys = np.unique(key[is_purchase & recent])
        items_bought_30d = np.bincount(recent_buys // n_items, minlength=n_users).astype(np.float64)
        user_values = np.column_stack(
            [
                user_events,
                user_items,
                user_order_days,
                user_events_30d,
                last_event,
                last_purchase,
                first_event,
                user_interval,
                items_per_order,
                items_bought_30d,
                repeat_share,
            ]
        )

        ui_days = newest[:, _PURCHASE]
        ui_due = np.divide(
            ui_days, ui_interval, out=np.full(n_pairs, np.nan), where=ui_interval > 0
        )
        ui_share = ui_orders / np.maximum(user_order_days[pair_user], 1.0)
        reorder = _reorder_features(
            u[is_purchase],
            day[is_purchase],
            pair_of[is_purchase],
            qty[is_purchase],
            order_days,
            pair_user,
            last_day,
        )
        ui_due_user = np.divide(
            ui_days,
            user_interval[pair_user],
            out=np.full(n_pairs, np.nan),
            where=user_interval[pair_user] > 0,
        )
        pair_values = np.column_stack(
            [
                counts.astype(np.float64),
                quantity,
                ui_orders,
                newest,
                ui_interval,
                ui_due,
                ui_share,
                ui_orders_90d,
                oldest,
                reorder,
                ui_due_user,
            ]
        )

        # ---- items
        buyers_pairs = np.unique(key[is_purchase])
        buyer_items = buyers_pairs % n_items
        item_buyers = np.bincount(buyer_items, minlength=n_items).astype(np.float64)

        def buyers_within(lo: float, hi: float) -> np.ndarray:
            window = is_purchase & (age >= lo) & (age < hi)
            return np.bincount(np.unique(key[window]) % n_items, minlength=n_items).astype(
                np.float64
            )

        buyers_30d = buyers_within(0.0, 30.0)
        buyers_7d = buyers_within(0.0, 7.0)
        buyers_before = buyers_within(30.0, 90.0)
        active_buyers = len(np.unique(u[is_purchase & recent]))
        buyer_share_30d = buyers_30d / max(active_buyers, 1)
        item_events_30d = np.bincount(i[recent], minlength=n_items).astype(np.float64)
        trend = (buyers_30d + 1.0) / (buyers_before / 2.0 + 1.0)
        repeat_pairs = pair_keys[ui_orders >= 2] % n_items
        repeaters = np.bincount(repeat_pairs, minlength=n_items).astype(np.float64)
        repurchase_rate = np.divide(
            repeaters, item_buyers, out=np.full(n_items, np.nan), where=item_buyers > 0
        )
        item_first = np.full(n_items, np.nan)
        seen_age = np.zeros(n_items)
        np.maximum.at(seen_age, i, age)
        seen = np.bincount(i, minlength=n_items) > 0
        item_first[seen] = seen_age[seen]
        item_price = cls._item_prices(past, i, n_items)
        item_values = np.column_stack(
            [
                item_buyers,
                buyers_30d,
                buyers_7d,
                buyer_share_30d,
                item_events_30d,
                trend,
                repurchase_rate,
                item_first,
                item_price,
            ]
        )

        # ---- affinity
        item_category = _codes(_catalog_column(catalog, items, Columns.CATEGORY), n_items)
        item_brand = _codes(_catalog_column(catalog, items, Columns.BRAND), n_items)
        category_keys, category_values = _share_table(
            u, item_category[i], is_purchase, n_users, with_purchases=True
        )
        brand_keys, brand_values = _share_table(
            u, item_brand[i], is_purchase, n_users, with_purchases=False
        )
        bought_price = item_price[i]
        price_rows = pd.DataFrame({"u": u, "price": bought_price, "bought": is_purchase})
        price_rows = price_rows[np.isfinite(bought_price) & (bought_price > 0)]
        median_bought = price_rows[price_rows["bought"]].groupby("u")["price"].median()
        median_any = price_rows.groupby("u")["price"].median()
        typical = np.full(n_users, np.nan)
        typical[median_any.index.to_numpy()] = median_any.to_numpy()
        typical[median_bought.index.to_numpy()] = median_bought.to_numpy()

        return cls(
            cutoff=cutoff,
            users=users,
            items=items,
            pair_keys=pair_keys.astype(np.int64),
            pair_values=pair_values.astype(np.float64),
            user_values=user_values.astype(np.float64),
            item_values=item_values.astype(np.float64),
            item_category=item_category,
            item_brand=item_brand,
            category_keys=category_keys,
            category_values=category_values,
            brand_keys=brand_keys,
            brand_values=brand_values,
            user_typical_price=typical,
        )

    @staticmethod
    def _item_prices(past: pd.DataFrame, item_rows: np.ndarray, n_items: int) -> np.ndarray:
        """Median unit price of each item's events before the cutoff, else NaN.

        Only prices seen in ``past`` count. The catalog's price is deliberately not used: the
        loaders build it from the whole log (test period included), so it would leak later
        prices into the features (an item without a priced event before the cutoff gets NaN).
        """
        price = np.full(n_items, np.nan)
        if Columns.PRICE in past.columns:
            paid = pd.Series(past[Columns.PRICE].to_numpy(dtype=np.float64, na_value=np.nan))
            medians = paid.groupby(item_rows).median().dropna()
            price[medians.index.to_numpy()] = medians.to_numpy()
        return price

    # ------------------------------------------------------------------ lookups

    @property
    def n_categories(self) -> int:
        """Number of distinct catalog categories (0 without a category column)."""
        return int(self.item_category.max(initial=-1)) + 1

    @property
    def n_brands(self) -> int:
        """Number of distinct catalog brands (0 without a brand column)."""
        return int(self.item_brand.max(initial=-1)) + 1

    def features(self, user_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        """:data:`BEHAVIOUR_FEATURES` of pairs given by snapshot indices.

        Parameters
        ----------
        user_rows, item_rows:
            Same-length arrays of indices into :attr:`users` and :attr:`items` (all
            ``>= 0``: map external ids with :meth:`IdMap.to_internal` and check first).

        Returns
        -------
        numpy.ndarray
            ``(n_pairs, len(BEHAVIOUR_FEATURES))`` float64.
        """
        u = np.asarray(user_rows, dtype=np.int64)
        i = np.asarray(item_rows, dtype=np.int64)
        n = len(u)
        found, pos = _lookup(self.pair_keys, u * np.int64(len(self.items)) + i)
        pair = np.zeros((n, len(PAIR_FEATURES)))
        pair[:, _PAIR_MISSING] = np.nan  # days since / intervals of pairs without history
        pair[found] = self.pair_values[pos[found]]

        category = self.item_category[i]
        cat_values = np.full((n, 2), np.nan)
        if self.n_categories:
            cat_values[category >= 0] = 0.0
            hit, cpos = _lookup(self.category_keys, u * self.n_categories + category)
            hit &= category >= 0
            cat_values[hit] = self.category_values[cpos[hit]]
        brand = self.item_brand[i]
        brand_values = np.full(n, np.nan)
        if self.n_brands:
            brand_values[brand >= 0] = 0.0
            hit, bpos = _lookup(self.brand_keys, u * self.n_brands + brand)
            hit &= brand >= 0
            brand_values[hit] = self.brand_values[bpos[hit], 0]
        item = self.item_values[i]
        price_ratio = item[:, ITEM_FEATURES.index("item_price")] / self.user_typical_price[u]
        affinity = np.column_stack([cat_values, brand_values, price_ratio])
        return np.hstack([pair, self.user_values[u], item, affinity])

    # ------------------------------------------------------------------ persistence

    def save(self, folder: Path) -> None:
        """Write the tables to ``folder`` (``users.npy``, ``items.npy``, ``tables.npz``)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.users.save(folder / "users.npy")
        self.items.save(folder / "items.npy")
        np.savez(
            folder / "tables.npz",
            cutoff_ns=np.asarray([self.cutoff.value], dtype=np.int64),
            **{name: getattr(self, name) for name in _ARRAY_FIELDS},
        )

    @classmethod
    def load(cls, folder: Path) -> BehaviourSnapshot:
        """Read tables written by :meth:`save`.

        Raises
        ------
        ArtifactError
            Missing or corrupted files, or tables of inconsistent shapes.
        """
        users = IdMap.load(folder / "users.npy")
        items = IdMap.load(folder / "items.npy")
        try:
            with np.load(folder / "tables.npz", allow_pickle=False) as data:
                arrays = {name: data[name] for name in (*_ARRAY_FIELDS, "cutoff_ns")}
        except Exception as exc:  # zip, OS, key and value errors all mean a bad file
            raise ArtifactError(f"cannot read behaviour tables in {folder}: {exc}") from exc
        snapshot = cls(
            cutoff=pd.Timestamp(int(arrays.pop("cutoff_ns")[0])),
            users=users,
            items=items,
            **arrays,
        )
        expected = {
            "pair_values": len(PAIR_FEATURES),
            "user_values": len(USER_FEATURES),
            "item_values": len(ITEM_FEATURES),
        }
        rows = {"user_values": len(users), "item_values": len(items)}
        for name, width in expected.items():
            arr = getattr(snapshot, name)
            if (
                arr.ndim != 2
                or arr.shape[1] != width
                or arr.shape[0] != rows.get(name, arr.shape[0])
            ):
                raise ArtifactError(f"behaviour table {name} in {folder} has shape {arr.shape}")
        return snapshot


def _reorder_features(
    user: np.ndarray,
    day: np.ndarray,
    pair: np.ndarray,
    qty: np.ndarray,
    order_days: np.ndarray,
    pair_user: np.ndarray,
    last_day: np.ndarray,
) -> np.ndarray:
    """Reorder features counted in the user's order days (not calendar days).

    ``user``, ``day``, ``pair``, ``qty`` describe the purchase events; ``order_days`` the
    sorted distinct (pair, day) rows of those purchases; ``pair_user`` and ``last_day`` each
    pair's user and last order day. Returns ``(n_pairs, 6)``: order days of the user since
    the last one with the item (0: it was in their last order; NaN: never bought), whether
    it was in their last order, units of it in its last order, share of the user's last 3
    and last 5 order days that included it, share of the user's order days since they first
    bought it that included it (NaN: never bought).
    """
    n_pairs = len(pair_user)
    out = np.zeros((n_pairs, 6))
    out[:, [0, 5]] = np.nan
    if len(order_days) == 0:
        return out
    # the user's order days, sorted by (user, day), and each one's position from the end
    user_days = np.unique(np.column_stack([user, day]), axis=0)
    day0 = int(user_days[:, 1].min())
    span = np.int64(int(user_days[:, 1].max()) - day0 + 1)
    user_key = user_days[:, 0] * span + (user_days[:, 1] - day0)
    n_users = max(int(user_days[:, 0].max()), int(pair_user.max(initial=0))) + 1
    per_user = np.bincount(user_days[:, 0], minlength=n_users)
    first = np.r_[0, np.cumsum(per_user)[:-1]]
    back_of_user_day = (
        per_user[user_days[:, 0]] - 1 - (np.arange(len(user_days)) - first[user_days[:, 0]])
    )
    # position from the end of each (pair, day) in its user's order days
    od_user = pair_user[order_days[:, 0]]
    back = back_of_user_day[np.searchsorted(user_key, od_user * span + (order_days[:, 1] - day0))]
    starts = np.r_[0, np.flatnonzero(np.diff(order_days[:, 0])) + 1]
    ends = np.r_[starts[1:], len(order_days)] - 1
    bought = order_days[starts, 0]
    since = back[ends]
    out[bought, 0] = since
    out[bought, 1] = (since == 0).astype(np.float64)
    in_last = day == last_day[pair]
    out[:, 2] = np.bincount(pair[in_last], weights=qty[in_last], minlength=n_pairs)
    n_user_days = per_user[pair_user].astype(np.float64)
    for column, window in ((3, 3), (4, 5)):
        hits = np.bincount(order_days[back < window, 0], minlength=n_pairs)
        out[:, column] = np.divide(
            hits, np.minimum(n_user_days, window), out=np.zeros(n_pairs), where=n_user_days > 0
        )
    days_of_pair = np.bincount(order_days[:, 0], minlength=n_pairs)[bought]
    out[bought, 5] = days_of_pair / (back[starts] + 1.0)
    return out


_ARRAY_FIELDS: Final = (
    "pair_keys",
    "pair_values",
    "user_values",
    "item_values",
    "item_category",
    "item_brand",
    "category_keys",
    "category_values",
    "brand_keys",
    "brand_values",
    "user_typical_price",
)


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
# Feature names in the shop's words
# --------------------------------------------------------------------------------------


def _number(value: float) -> str:
    """A count or amount without needless decimals (``3``, ``2.5``, ``0.42``)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 10:
        return f"{value:,.0f}"
    return f"{value:.2g}" if abs(value) < 0.1 else f"{value:.2f}".rstrip("0").rstrip(".")


def _times(value: float) -> str:
    n = int(round(value))
    return "once" if n == 1 else f"{n:,} times"


def _days_ago(value: float) -> str:
    if value < 1:
        return "today"
    days = int(math.floor(value))
    return "1 day ago" if days == 1 else f"{days:,} days ago"


def _days(value: float) -> str:
    days = round(value)
    return "1 day" if days == 1 else f"{days:,} days"


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def _missing(value: float) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


_Formatter = Callable[[float, Mapping[str, float]], str]


def _count_label(did: str, never: str) -> _Formatter:
    def label(value: float, row: Mapping[str, float]) -> str:
        return never if value <= 0 else f"{did} {_times(value)}"

    return label


def _since_label(did: str, never: str) -> _Formatter:
    def label(value: float, row: Mapping[str, float]) -> str:
        return never if _missing(value) else f"{did} {_days_ago(value)}"

    return label


def _score(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def _stage_one_label(model: str, score: str, rank: str, *, rank_first: bool) -> _Formatter:
    """``"ALS score 0.42"`` for the score feature, ``"ALS ranks it 3rd"`` for the rank one.

    The two labels never read the same, so a waterfall can show both side by side.
    """

    def label(value: float, row: Mapping[str, float]) -> str:
        s, r = row.get(score, math.nan), row.get(rank, math.nan)
        if rank_first:
            if _missing(r):
                return f"not in {model}'s top list"
            return f"{model} ranks it {_ordinal(int(r))}"
        if _missing(s) or (model == "item-kNN" and s <= 0):
            return f"{model} has no score for it" + (
                " (no similar item in their history)" if model == "item-kNN" else ""
            )
        return f"{model} score {_score(s)}"

    return label


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def _simple(template: str, missing: str | None = None) -> _Formatter:
    def label(value: float, row: Mapping[str, float]) -> str:
        if _missing(value):
            return missing or template.format(v="unknown")
        return template.format(v=_number(value))

    return label


_LABELS: Final[dict[str, tuple[str, _Formatter]]] = {
    "ui_views": ("times they viewed this item", _count_label("viewed it", "never viewed it")),
    "ui_carts": (
        "times they put it in the cart",
        _count_label("put it in the cart", "never put it in the cart"),
    ),
    "ui_favorites": (
        "times they saved it as a favourite",
        _count_label("saved it as a favourite", "never saved it as a favourite"),
    ),
    "ui_purchases": (
        "times they bought this item",
        _count_label("bought this item", "never bought this item"),
    ),
    "ui_quantity": (
        "units of it they bought",
        lambda v, r: "bought none of it" if v <= 0 else f"bought {_number(v)} units of it",
    ),
    "ui_orders": (
        "days they ordered it on",
        lambda v, r: (
            "never ordered it"
            if v <= 0
            else ("ordered it on 1 day" if v == 1 else f"ordered it on {_number(v)} different days")
        ),
    ),
    "ui_days_since_view": (
        "days since they viewed it",
        _since_label("viewed it", "never viewed it"),
    ),
    "ui_days_since_cart": (
        "days since they put it in the cart",
        _since_label("put it in the cart", "never put it in the cart"),
    ),
    "ui_days_since_favorite": (
        "days since they saved it as a favourite",
        _since_label("saved it as a favourite", "never saved it as a favourite"),
    ),
    "ui_days_since_purchase": (
        "days since they last bought it",
        _since_label("last bought it", "never bought it"),
    ),
    "ui_mean_purchase_interval": (
        "their usual reorder interval for it",
        lambda v, r: "has not reordered it yet" if _missing(v) else f"reorders it every {_days(v)}",
    ),
    "ui_purchase_due_ratio": (
        "time since their last order of it vs their usual interval",
        lambda v, r: (
            "no reorder rhythm for it yet"
            if _missing(v)
            else f"last order of it was {v:.1f}x their usual reorder interval ago"
        ),
    ),
    "ui_order_share": (
        "share of their order days that included it",
        lambda v, r: f"it was in {_percent(v)} of their order days",
    ),
    "ui_orders_90d": (
        "days they ordered it in the last 90 days",
        lambda v, r: (
            "not ordered in the last 90 days"
            if v <= 0
            else f"ordered it on {_number(v)} day{'s' if v != 1 else ''} in the last 90 days"
        ),
    ),
    "ui_days_since_first": (
        "how long ago they first came across it",
        _since_label("first viewed or bought it", "never viewed or bought it"),
    ),
    "ui_orders_since_purchase": (
        "their orders since they last bought it",
        lambda v, r: (
            "never bought it"
            if _missing(v)
            else (
                "it was in their last order"
                if v <= 0
                else f"last bought it {_number(v)} order{'s' if v != 1 else ''} ago"
            )
        ),
    ),
    "ui_in_last_order": (
        "whether it was in their last order",
        lambda v, r: "it was in their last order" if v > 0 else "not in their last order",
    ),
    "ui_last_order_quantity": (
        "units of it in the last order that had it",
        lambda v, r: "never bought it" if v <= 0 else f"last order of it had {_number(v)} units",
    ),
    "ui_last3_order_share": (
        "share of their last 3 orders that had it",
        lambda v, r: f"in {_percent(v)} of their last 3 orders",
    ),
    "ui_last5_order_share": (
        "share of their last 5 orders that had it",
        lambda v, r: f"in {_percent(v)} of their last 5 orders",
    ),
    "ui_order_share_since_first": (
        "share of their orders since they first bought it that had it",
        lambda v, r: (
            "never bought it"
            if _missing(v)
            else f"in {_percent(v)} of their orders since they first bought it"
        ),
    ),
    "ui_due_vs_user_interval": (
        "time since they last bought it vs their usual time between orders",
        lambda v, r: (
            "no order rhythm to compare with"
            if _missing(v)
            else f"last bought it {v:.1f}x their usual time between orders ago"
        ),
    ),
    "user_events": ("their number of events", _simple("{v} events in their history")),
    "user_items": ("number of different items they used", _simple("interacted with {v} items")),
    "user_orders": (
        "number of days they ordered on",
        lambda v, r: "has never ordered" if v <= 0 else f"ordered on {_number(v)} days",
    ),
    "user_events_30d": (
        "their events in the last 30 days",
        _simple("{v} events in the last 30 days"),
    ),
    "user_days_since_last_event": (
        "days since their last visit",
        lambda v, r: f"last active {_days_ago(v)}",
    ),
    "user_days_since_last_purchase": (
        "days since their last order",
        _since_label("last ordered anything", "has never ordered"),
    ),
    "user_tenure_days": (
        "how long they have been a customer",
        lambda v, r: f"customer for {_days(v)}",
    ),
    "user_mean_order_interval": (
        "their usual time between orders",
        lambda v, r: "only one order day so far" if _missing(v) else f"orders every {_days(v)}",
    ),
    "user_items_per_order": (
        "different items per order",
        lambda v, r: (
            "has never ordered" if _missing(v) else f"buys {v:.1f} different items per order day"
        ),
    ),
    "user_items_bought_30d": (
        "different items they bought in the last 30 days",
        _simple("bought {v} different items in the last 30 days"),
    ),
    "user_repeat_share": (
        "share of their items they reorder",
        lambda v, r: (
            "has never ordered" if _missing(v) else f"reorders {_percent(v)} of the items they buy"
        ),
    ),
    "item_buyers": ("number of customers who bought the item", _simple("{v} customers bought it")),
    "item_buyers_30d": (
        "customers who bought it in the last 30 days",
        _simple("{v} customers bought it in the last 30 days"),
    ),
    "item_buyers_7d": (
        "customers who bought it in the last 7 days",
        _simple("{v} customers bought it in the last 7 days"),
    ),
    "item_buyer_share_30d": (
        "share of the last 30 days' buyers who bought it",
        lambda v, r: f"{_percent(v)} of the last 30 days' buyers bought it",
    ),
    "item_events_30d": (
        "interest in the item in the last 30 days",
        _simple("{v} events on it in the last 30 days"),
    ),
    "item_trend": (
        "sales trend of the item",
        lambda v, r: f"sales trend x{v:.1f} (last 30 days vs the 60 before)",
    ),
    "item_repurchase_rate": (
        "share of its buyers who reorder it",
        lambda v, r: (
            "nobody bought it yet" if _missing(v) else f"{_percent(v)} of its buyers reorder it"
        ),
    ),
    "item_age_days": (
        "how long the item has been around",
        lambda v, r: "new item, no history" if _missing(v) else f"item first seen {_days_ago(v)}",
    ),
    "item_price": ("price of the item", _simple("costs {v}", "price unknown")),
    "category_purchase_share": (
        "share of their purchases in the item's category",
        lambda v, r: (
            "category unknown"
            if _missing(v)
            else f"{_percent(v)} of their purchases are in this category"
        ),
    ),
    "category_event_share": (
        "share of their activity in the item's category",
        lambda v, r: (
            "category unknown"
            if _missing(v)
            else f"{_percent(v)} of their activity is in this category"
        ),
    ),
    "brand_event_share": (
        "share of their activity with the item's brand",
        lambda v, r: (
            "brand unknown"
            if _missing(v)
            else f"{_percent(v)} of their activity is with this brand"
        ),
    ),
    "price_ratio": (
        "price compared with what they usually pay",
        lambda v, r: "price unknown" if _missing(v) else f"priced {v:.1f}x what they usually pay",
    ),
    "als_score": (
        "ALS score",
        _stage_one_label("ALS", "als_score", "als_rank", rank_first=False),
    ),
    "als_rank": (
        "rank in ALS",
        _stage_one_label("ALS", "als_score", "als_rank", rank_first=True),
    ),
    "itemknn_score": (
        "item-kNN score",
        _stage_one_label("item-kNN", "itemknn_score", "itemknn_rank", rank_first=False),
    ),
    "itemknn_rank": (
        "rank in item-kNN",
        _stage_one_label("item-kNN", "itemknn_score", "itemknn_rank", rank_first=True),
    ),
}


def feature_description(name: str) -> str:
    """What a feature measures, in the shop's words, without a value (for global views)."""
    entry = _LABELS.get(name)
    return entry[0] if entry else name


def describe_feature(name: str, row: Mapping[str, float]) -> str:
    """A feature and its value in the shop's words, e.g. ``"bought this item 3 times"``.

    Parameters
    ----------
    name:
        A feature of :data:`FEATURE_NAMES`.
    row:
        The pair's feature values by name (stage-one labels read score and rank together).
    """
    entry = _LABELS.get(name)
    value = float(row.get(name, math.nan))
    if entry is None:
        return f"{name} = {value:g}"
    description, formatter = entry
    try:
        label = formatter(value, row)
    except (ValueError, OverflowError):
        label = "nan"
    if _missing(value) and "nan" in label:
        return f"{description}: unknown"
    return label
