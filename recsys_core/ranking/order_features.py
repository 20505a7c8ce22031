"""The order model's shopper features and labels: recency, frequency, monetary and activity
figures of each shopper from events strictly before a cutoff, and who ordered in a window.

Used by :mod:`recsys_core.ranking.order_model` (split from it to keep modules small).

The order model reads :func:`shopper_features` at many cutoffs of one log: each training
window's, the cutoff's own, and its validation model's (the same cutoffs shifted by one
horizon); an evaluation's next fold shifts them once more. :class:`ShopperFeatureTables`
builds each table once (see its docstring for the keys).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import id_values
from recsys_core.ranking.features import events_before, require_timestamps
from recsys_core.ranking.window_cache import EventDigests, active_window_cache

__all__ = [
    "ORDER_FEATURES",
    "ORDER_FEATURE_LABELS",
    "ShopperFeatureTables",
    "order_labels",
    "shopper_features",
]

_DAY: Final = pd.Timedelta(days=1)

#: Feature name -> what it means, in the shop's words (units included).
ORDER_FEATURE_LABELS: Final[dict[str, str]] = {
    "days_since_last_order": "days since the last order",
    "days_since_last_event": "days since the last activity of any kind",
    "days_since_first_event": "days since the first activity (tenure)",
    "orders": "orders (days with a purchase), all time",
    "orders_30d": "orders in the last 30 days",
    "orders_90d": "orders in the last 90 days",
    "orders_365d": "orders in the last 365 days",
    "units_bought": "units bought, all time",
    "distinct_items_bought": "different products bought",
    "spend": "money spent, all time",
    "spend_90d": "money spent in the last 90 days",
    "mean_order_value": "mean spend per order",
    "mean_days_between_orders": "mean days between orders",
    "overdue_ratio": "days since the last order / usual days between orders",
    "events_30d": "events of any kind in the last 30 days",
    "browse_events_30d": "views, carts and favourites in the last 30 days",
    "active_days_30d": "active days in the last 30 days",
    "recent_order_share": "share of all orders placed in the last 90 days",
    "shop_order_rate_30d": "share of all shoppers who ordered in the last 30 days (season)",
}
ORDER_FEATURES: Final[tuple[str, ...]] = tuple(ORDER_FEATURE_LABELS)


def _order_days(purchases: pd.DataFrame) -> pd.DataFrame:
    """One row per (shopper, day with a purchase), with that day's spend."""
    day = purchases[Columns.TIMESTAMP].dt.floor("D")
    spend = _spend(purchases)
    frame = pd.DataFrame(
        {Columns.USER: id_values(purchases[Columns.USER]).to_numpy(), "day": day, "spend": spend}
    )
    return (
        frame.groupby([Columns.USER, "day"], sort=False, observed=True)["spend"].sum().reset_index()
    )


def _spend(purchases: pd.DataFrame) -> np.ndarray:
    """Quantity x price of each purchase row (NaN when the log has no prices)."""
    if Columns.PRICE not in purchases.columns:
        return np.full(len(purchases), np.nan)
    quantity = (
        purchases[Columns.QUANTITY].to_numpy(dtype=np.float64)
        if Columns.QUANTITY in purchases.columns
        else np.ones(len(purchases))
    )
    return quantity * purchases[Columns.PRICE].to_numpy(dtype=np.float64)


def shopper_features(events: pd.DataFrame, cutoff: pd.Timestamp | str) -> pd.DataFrame:
    """Recency, frequency, monetary and activity features of every shopper at ``cutoff``.

    Only events strictly before ``cutoff`` are read. Shoppers without such an event have no
    row. Missing values (e.g. days since the last order of someone who never ordered) are
    NaN, which LightGBM handles.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``user_id`` (str), columns :data:`ORDER_FEATURES`.
    """
    cutoff = pd.Timestamp(cutoff)
    past = events_before(events, cutoff)
    users = id_values(past[Columns.USER])  # the features are indexed by the text ids
    ts = past[Columns.TIMESTAMP]
    age_days = ((cutoff - ts) / _DAY).to_numpy(dtype=np.float64)
    by_user = pd.DataFrame({Columns.USER: users.to_numpy(), "age": age_days})
    grouped = by_user.groupby(Columns.USER, sort=True)["age"]
    out = pd.DataFrame(index=pd.Index(grouped.min().index, name=Columns.USER))
    out["days_since_last_event"] = grouped.min()
    out["days_since_first_event"] = grouped.max()

    is_purchase = (past[Columns.EVENT] == "purchase").to_numpy()
    purchases = past[is_purchase]
    orders = _order_days(purchases)
    orders["age"] = ((cutoff - orders["day"]) / _DAY).to_numpy(dtype=np.float64)
    og = orders.groupby(Columns.USER, sort=True)
    n_orders = og.size()
    out["days_since_last_order"] = og["age"].min()
    out["orders"] = n_orders
    for days in (30, 90, 365):
        recent = orders[orders["age"] <= days]
        out[f"orders_{days}d"] = recent.groupby(Columns.USER).size()
    qty = (
        purchases[Columns.QUANTITY].to_numpy(dtype=np.float64)
        if Columns.QUANTITY in purchases.columns
        else np.ones(len(purchases))
    )
    bought = pd.DataFrame(
        {
            Columns.USER: users.to_numpy()[is_purchase],
            Columns.ITEM: id_values(purchases[Columns.ITEM]).to_numpy(),
            "qty": qty,
        }
    ).groupby(Columns.USER, sort=True)
    out["units_bought"] = bought["qty"].sum()
    out["distinct_items_bought"] = bought[Columns.ITEM].nunique()
    has_price = Columns.PRICE in purchases.columns
    out["spend"] = og["spend"].sum() if has_price else np.nan
    out["spend_90d"] = (
        orders[orders["age"] <= 90].groupby(Columns.USER)["spend"].sum() if has_price else np.nan
    )
    span = og["age"].max() - og["age"].min()
    out["mean_order_value"] = out["spend"] / out["orders"]
    out["mean_days_between_orders"] = (span / (n_orders - 1)).where(n_orders > 1)
    out["overdue_ratio"] = out["days_since_last_order"] / out["mean_days_between_orders"]

    recent_events = by_user[by_user["age"] <= 30]
    out["events_30d"] = recent_events.groupby(Columns.USER).size()
    browse = by_user[(by_user["age"] <= 30).to_numpy() & ~is_purchase]
    out["browse_events_30d"] = browse.groupby(Columns.USER).size()
    active = pd.DataFrame({Columns.USER: users.to_numpy(), "day": ts.dt.floor("D").to_numpy()})[
        age_days <= 30
    ]
    out["active_days_30d"] = active.drop_duplicates().groupby(Columns.USER).size()
    out["recent_order_share"] = out["orders_90d"] / out["orders"]
    # one number for the whole shop: how busy the last 30 days were (season, trend)
    out["shop_order_rate_30d"] = (
        float((out["orders_30d"].fillna(0) > 0).mean()) if len(out) else 0.0
    )

    counts = [
        "orders",
        "orders_30d",
        "orders_90d",
        "orders_365d",
        "units_bought",
        "distinct_items_bought",
        "events_30d",
        "browse_events_30d",
        "active_days_30d",
    ]
    out[counts] = out[counts].fillna(0.0)
    if has_price:
        out[["spend", "spend_90d"]] = out[["spend", "spend_90d"]].fillna(0.0)
    out["recent_order_share"] = out["recent_order_share"].where(out["orders"] > 0)
    out["overdue_ratio"] = out["overdue_ratio"].replace([np.inf, -np.inf], np.nan)
    return out[list(ORDER_FEATURES)].astype(np.float64)


def order_labels(
    events: pd.DataFrame, start: pd.Timestamp | str, end: pd.Timestamp | str
) -> pd.Index:
    """Shoppers (str ids) who bought anything in ``[start, end)``."""
    require_timestamps(events)
    ts = events[Columns.TIMESTAMP]
    mask = (
        (ts >= pd.Timestamp(start))
        & (ts < pd.Timestamp(end))
        & (events[Columns.EVENT] == "purchase")
    )
    return pd.Index(id_values(events.loc[mask.to_numpy(), Columns.USER]).unique())


class ShopperFeatureTables:
    """:func:`shopper_features` of one event log at any cutoff, each table built once.

    A table reads only the events strictly before its cutoff, so within one log it is keyed
    by the cutoff alone, and it also serves any prefix of the log that holds every event
    before that cutoff (the order model's validation copy, fitted on the events before an
    earlier cutoff, shares the tables of the fit that made it). Inside
    :func:`~recsys_core.ranking.window_cache.using_window_cache` (an evaluation over folds)
    the tables are also shared across logs through the run's
    :class:`~recsys_core.ranking.window_cache.WindowCache`, keyed by the cutoff and the digest
    of every column of every event before it (in log order): another log's fold reuses a
    table only when those events are the same.

    Each call hands out a shallow copy (copy-on-write): changing it leaves the kept table as
    it is.

    Attributes
    ----------
    builds, hits:
        Tables built by :func:`shopper_features` / served again (by this object).
    """

    def __init__(self, events: pd.DataFrame) -> None:
        self.events = events
        self.builds = 0
        self.hits = 0
        self._tables: dict[pd.Timestamp, pd.DataFrame] = {}
        self._digests: EventDigests | None = None  # hashed only when a run cache is active

    def __call__(self, cutoff: pd.Timestamp | str) -> pd.DataFrame:
        """``shopper_features(events, cutoff)`` (the same table)."""
        cutoff = pd.Timestamp(cutoff)
        table = self._tables.get(cutoff)
        if table is not None:
            self.hits += 1
            return table.copy(deep=False)
        cache = active_window_cache()
        key: tuple[object, ...] = ()
        if cache is not None:
            if self._digests is None:
                self._digests = EventDigests(self.events, None)
            key = ("shoppers", cutoff, self._digests.before(cutoff))
            table = cache.shopper_table(key)
        if table is None:
            table = shopper_features(self.events, cutoff)
            self.builds += 1
            if cache is not None:
                cache.keep_shopper_table(key, cutoff, table)
        else:
            self.hits += 1
        self._tables[cutoff] = table
        return table.copy(deep=False)

    @property
    def cutoffs(self) -> list[pd.Timestamp]:
        """The cutoffs served so far, oldest first."""
        return sorted(self._tables)

    def drop_shared_before(self, cutoff: pd.Timestamp) -> None:
        """Let the run's cache forget tables older than ``cutoff`` (no later fold reads
        them: folds move forward in time); nothing outside an evaluation."""
        cache = active_window_cache()
        if cache is not None:
            cache.drop_shopper_tables_before(cutoff)
