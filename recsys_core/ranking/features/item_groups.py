"""Item-level groups: popularity, reorders, age and past-only price."""

from __future__ import annotations

import numpy as np

from recsys_core.ranking.features.frames import gather, item_popularity_table
from recsys_core.ranking.features.labels import (
    _days_ago,
    _missing,
    _percent,
    _simple,
)
from recsys_core.ranking.features.past import (
    PastEvents,
)
from recsys_core.ranking.features.registry import REGISTRY, Feature


@REGISTRY.group(
    "item",
    Feature(
        "item_buyers", "number of customers who bought the item", _simple("{v} customers bought it")
    ),
    Feature(
        "item_buyers_30d",
        "customers who bought it in the last 30 days",
        _simple("{v} customers bought it in the last 30 days"),
    ),
    Feature(
        "item_buyers_7d",
        "customers who bought it in the last 7 days",
        _simple("{v} customers bought it in the last 7 days"),
    ),
    Feature(
        "item_buyer_share_30d",
        "share of the last 30 days' buyers who bought it",
        lambda v, r: f"{_percent(v)} of the last 30 days' buyers bought it",
    ),
    Feature(
        "item_events_30d",
        "interest in the item in the last 30 days",
        _simple("{v} events on it in the last 30 days"),
    ),
    Feature(
        "item_trend",
        "sales trend of the item",
        lambda v, r: f"sales trend x{v:.1f} (last 30 days vs the 60 before)",
    ),
)
def item_popularity(past: PastEvents) -> dict[str, np.ndarray]:
    """Distinct buyers overall and in the last 30 / 7 days, share of the last 30 days'
    buyers who bought it, events in the last 30 days, trend (buyers in the last 30 days vs
    the 60 days before, smoothed). Written once in Narwhals (:mod:`.frames`): runs on pandas
    or on Spark."""
    table, active_buyers = item_popularity_table(past.table)
    names = ("item_buyers", "item_buyers_30d", "item_buyers_7d", "buyers_before", "item_events_30d")
    counts = gather(table, "i", past.n_items, names)
    buyers_30d = counts["item_buyers_30d"]
    return {
        "item_buyers": counts["item_buyers"],
        "item_buyers_30d": buyers_30d,
        "item_buyers_7d": counts["item_buyers_7d"],
        "item_buyer_share_30d": buyers_30d / max(active_buyers, 1),
        "item_events_30d": counts["item_events_30d"],
        "item_trend": (buyers_30d + 1.0) / (counts["buyers_before"] / 2.0 + 1.0),
    }


@REGISTRY.group(
    "item",
    Feature(
        "item_repurchase_rate",
        "share of its buyers who reorder it",
        lambda v, r: (
            "nobody bought it yet" if _missing(v) else f"{_percent(v)} of its buyers reorder it"
        ),
    ),
    Feature(
        "item_age_days",
        "how long the item has been around",
        lambda v, r: "new item, no history" if _missing(v) else f"item first seen {_days_ago(v)}",
    ),
)
def item_history(past: PastEvents) -> dict[str, np.ndarray]:
    """Share of the item's buyers who ordered it on two or more days; its age (days since
    its first event, NaN for a catalog item without events)."""
    n_items = past.n_items
    repeat_pairs = past.pair_keys[past.ui_orders >= 2] % n_items
    repeaters = np.bincount(repeat_pairs, minlength=n_items).astype(np.float64)
    item_first = np.full(n_items, np.nan)
    seen_age = np.zeros(n_items)
    np.maximum.at(seen_age, past.i, past.age)
    seen = np.bincount(past.i, minlength=n_items) > 0
    item_first[seen] = seen_age[seen]
    return {
        "item_repurchase_rate": np.divide(
            repeaters, past.item_buyers, out=np.full(n_items, np.nan), where=past.item_buyers > 0
        ),
        "item_age_days": item_first,
    }


@REGISTRY.group(
    "item",
    Feature("item_price", "price of the item", _simple("costs {v}", "price unknown")),
)
def item_pricing(past: PastEvents) -> dict[str, np.ndarray]:
    """Median unit price of the item's events before the cutoff (never the catalog's)."""
    return {"item_price": past.item_price}
