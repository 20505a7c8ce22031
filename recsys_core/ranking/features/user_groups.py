"""User-level groups: how active the user is and how they order."""

from __future__ import annotations

import numpy as np

from recsys_core.ranking.features.frames import gather, user_activity_table
from recsys_core.ranking.features.labels import (
    _days,
    _days_ago,
    _missing,
    _number,
    _percent,
    _simple,
    _since_label,
)
from recsys_core.ranking.features.past import (
    PastEvents,
)
from recsys_core.ranking.features.registry import REGISTRY, Feature

#: The user_activity group's columns, in declared order.
USER_ACTIVITY = (
    "user_events",
    "user_items",
    "user_orders",
    "user_events_30d",
    "user_days_since_last_event",
    "user_days_since_last_purchase",
    "user_tenure_days",
)


@REGISTRY.group(
    "user",
    Feature("user_events", "their number of events", _simple("{v} events in their history")),
    Feature(
        "user_items", "number of different items they used", _simple("interacted with {v} items")
    ),
    Feature(
        "user_orders",
        "number of days they ordered on",
        lambda v, r: "has never ordered" if v <= 0 else f"ordered on {_number(v)} days",
    ),
    Feature(
        "user_events_30d",
        "their events in the last 30 days",
        _simple("{v} events in the last 30 days"),
    ),
    Feature(
        "user_days_since_last_event",
        "days since their last visit",
        lambda v, r: f"last active {_days_ago(v)}",
    ),
    Feature(
        "user_days_since_last_purchase",
        "days since their last order",
        _since_label("last ordered anything", "has never ordered"),
    ),
    Feature(
        "user_tenure_days",
        "how long they have been a customer",
        lambda v, r: f"customer for {_days(v)}",
    ),
)
def user_activity(past: PastEvents) -> dict[str, np.ndarray]:
    """How active the user is: events, distinct items, order days, events in the last 30
    days, days since their last event and last purchase, tenure (days since their first
    event). Written once in Narwhals (:mod:`.frames`): runs on pandas or on Spark."""
    table = user_activity_table(past.table)
    counts = [n for n in USER_ACTIVITY if n != "user_days_since_last_purchase"]
    out = gather(table, "u", past.n_users, counts)
    out.update(gather(table, "u", past.n_users, ["user_days_since_last_purchase"], np.nan))
    return {name: out[name] for name in USER_ACTIVITY}


@REGISTRY.group(
    "user",
    Feature(
        "user_mean_order_interval",
        "their usual time between orders",
        lambda v, r: "only one order day so far" if _missing(v) else f"orders every {_days(v)}",
    ),
    Feature(
        "user_items_per_order",
        "different items per order",
        lambda v, r: (
            "has never ordered" if _missing(v) else f"buys {v:.1f} different items per order day"
        ),
    ),
    Feature(
        "user_items_bought_30d",
        "different items they bought in the last 30 days",
        _simple("bought {v} different items in the last 30 days"),
    ),
    Feature(
        "user_repeat_share",
        "share of their items they reorder",
        lambda v, r: (
            "has never ordered" if _missing(v) else f"reorders {_percent(v)} of the items they buy"
        ),
    ),
)
def user_ordering(past: PastEvents) -> dict[str, np.ndarray]:
    """How the user orders: mean interval between order days, distinct items per order
    day, distinct items bought in the last 30 days, share of the items they bought that
    they bought on two or more days."""
    n_users, pair_user, ui_orders = past.n_users, past.pair_user, past.ui_orders
    user_bought_items = np.bincount(pair_user[ui_orders > 0], minlength=n_users)
    user_repeats = np.bincount(pair_user[ui_orders >= 2], minlength=n_users)
    recent_buys = np.unique(past.key[past.is_purchase & past.recent])
    return {
        "user_mean_order_interval": past.user_order_interval,
        "user_items_per_order": np.divide(
            np.bincount(pair_user, weights=ui_orders, minlength=n_users),
            past.user_order_days,
            out=np.full(n_users, np.nan),
            where=past.user_order_days > 0,
        ),
        "user_items_bought_30d": np.bincount(recent_buys // past.n_items, minlength=n_users).astype(
            np.float64
        ),
        "user_repeat_share": np.divide(
            user_repeats,
            user_bought_items,
            out=np.full(n_users, np.nan),
            where=user_bought_items > 0,
        ),
    }
