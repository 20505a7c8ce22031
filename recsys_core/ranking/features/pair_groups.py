"""Pair-level groups: what a user did with an item (counts, recency, reorder rhythm, order
sequence). A pair without history gets each feature's ``no_history`` value."""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from recsys_core.ranking.features.labels import (
    _count_label,
    _days,
    _missing,
    _number,
    _percent,
    _since_label,
)
from recsys_core.ranking.features.past import (
    _DAY_NS,
    _PURCHASE,
    PastEvents,
    _interval,
)
from recsys_core.ranking.features.registry import REGISTRY, Feature

# --------------------------------------------------------------------------------------
# The feature groups (column order: pair, user, item, lookup, stage one; within a level,
# the order below). A feature's labels sit next to it; its value comes from its group.
# --------------------------------------------------------------------------------------

_NAN: Final = math.nan


@REGISTRY.group(
    "pair",
    Feature(
        "ui_views",
        "times they viewed this item",
        _count_label("viewed it", "never viewed it"),
        marks_seen=True,
    ),
    Feature(
        "ui_carts",
        "times they put it in the cart",
        _count_label("put it in the cart", "never put it in the cart"),
        marks_seen=True,
    ),
    Feature(
        "ui_favorites",
        "times they saved it as a favourite",
        _count_label("saved it as a favourite", "never saved it as a favourite"),
        marks_seen=True,
    ),
    Feature(
        "ui_purchases",
        "times they bought this item",
        _count_label("bought this item", "never bought this item"),
        marks_seen=True,
    ),
    Feature(
        "ui_quantity",
        "units of it they bought",
        lambda v, r: "bought none of it" if v <= 0 else f"bought {_number(v)} units of it",
    ),
    Feature(
        "ui_orders",
        "days they ordered it on",
        lambda v, r: (
            "never ordered it"
            if v <= 0
            else ("ordered it on 1 day" if v == 1 else f"ordered it on {_number(v)} different days")
        ),
    ),
)
def interactions(past: PastEvents) -> dict[str, np.ndarray]:
    """What the user did with the item: events of each type, units bought (written once in
    Narwhals, :mod:`.frames`), order days (numpy, shared with the rhythm groups)."""
    history = past.pair_history
    return {
        "ui_views": history["ui_views"],
        "ui_carts": history["ui_carts"],
        "ui_favorites": history["ui_favorites"],
        "ui_purchases": history["ui_purchases"],
        "ui_quantity": history["ui_quantity"],
        "ui_orders": past.ui_orders,
    }


@REGISTRY.group(
    "pair",
    Feature(
        "ui_days_since_view",
        "days since they viewed it",
        _since_label("viewed it", "never viewed it"),
        no_history=_NAN,
    ),
    Feature(
        "ui_days_since_cart",
        "days since they put it in the cart",
        _since_label("put it in the cart", "never put it in the cart"),
        no_history=_NAN,
    ),
    Feature(
        "ui_days_since_favorite",
        "days since they saved it as a favourite",
        _since_label("saved it as a favourite", "never saved it as a favourite"),
        no_history=_NAN,
    ),
    Feature(
        "ui_days_since_purchase",
        "days since they last bought it",
        _since_label("last bought it", "never bought it"),
        no_history=_NAN,
    ),
)
def recency(past: PastEvents) -> dict[str, np.ndarray]:
    """Days since the user's newest view, cart, favourite and purchase of the item (written
    once in Narwhals, :mod:`.frames`)."""
    history = past.pair_history
    names = (
        "ui_days_since_view",
        "ui_days_since_cart",
        "ui_days_since_favorite",
        "ui_days_since_purchase",
    )
    return {name: history[name] for name in names}


@REGISTRY.group(
    "pair",
    Feature(
        "ui_mean_purchase_interval",
        "their usual reorder interval for it",
        lambda v, r: "has not reordered it yet" if _missing(v) else f"reorders it every {_days(v)}",
        no_history=_NAN,
    ),
    Feature(
        "ui_purchase_due_ratio",
        "time since their last order of it vs their usual interval",
        lambda v, r: (
            "no reorder rhythm for it yet"
            if _missing(v)
            else f"last order of it was {v:.1f}x their usual reorder interval ago"
        ),
        no_history=_NAN,
    ),
    Feature(
        "ui_order_share",
        "share of their order days that included it",
        lambda v, r: f"it was in {_percent(v)} of their order days",
    ),
    Feature(
        "ui_orders_90d",
        "days they ordered it in the last 90 days",
        lambda v, r: (
            "not ordered in the last 90 days"
            if v <= 0
            else f"ordered it on {_number(v)} day{'s' if v != 1 else ''} in the last 90 days"
        ),
    ),
)
def purchase_rhythm(past: PastEvents) -> dict[str, np.ndarray]:
    """The user's reorder rhythm for the item, in calendar days: the mean interval between
    the days they ordered it, days since the last order of it divided by that interval
    (``> 1``: a reorder is due), the share of their order days that included it, and its
    order days in the last 90 days."""
    n_pairs = past.n_pairs
    interval = _interval(past.first_order_day, past.last_order_day, past.ui_orders)
    due = np.divide(
        past.days_since_event[:, _PURCHASE],
        interval,
        out=np.full(n_pairs, np.nan),
        where=interval > 0,
    )
    share = past.ui_orders / np.maximum(past.user_order_days[past.pair_user], 1.0)
    cutoff_day = past.cutoff.value / _DAY_NS
    recent_orders = past.order_days[cutoff_day - past.order_days[:, 1] <= 90]
    return {
        "ui_mean_purchase_interval": interval,
        "ui_purchase_due_ratio": due,
        "ui_order_share": share,
        "ui_orders_90d": np.bincount(recent_orders[:, 0], minlength=n_pairs).astype(np.float64),
    }


@REGISTRY.group(
    "pair",
    Feature(
        "ui_days_since_first",
        "how long ago they first came across it",
        _since_label("first viewed or bought it", "never viewed or bought it"),
        no_history=_NAN,
    ),
)
def first_contact(past: PastEvents) -> dict[str, np.ndarray]:
    """Days since the user's first event on the item (written once in Narwhals)."""
    return {"ui_days_since_first": past.pair_history["ui_days_since_first"]}


@REGISTRY.group(
    "pair",
    Feature(
        "ui_orders_since_purchase",
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
        no_history=_NAN,
    ),
    Feature(
        "ui_in_last_order",
        "whether it was in their last order",
        lambda v, r: "it was in their last order" if v > 0 else "not in their last order",
    ),
    Feature(
        "ui_last_order_quantity",
        "units of it in the last order that had it",
        lambda v, r: "never bought it" if v <= 0 else f"last order of it had {_number(v)} units",
    ),
    Feature(
        "ui_last3_order_share",
        "share of their last 3 orders that had it",
        lambda v, r: f"in {_percent(v)} of their last 3 orders",
    ),
    Feature(
        "ui_last5_order_share",
        "share of their last 5 orders that had it",
        lambda v, r: f"in {_percent(v)} of their last 5 orders",
    ),
    Feature(
        "ui_order_share_since_first",
        "share of their orders since they first bought it that had it",
        lambda v, r: (
            "never bought it"
            if _missing(v)
            else f"in {_percent(v)} of their orders since they first bought it"
        ),
        no_history=_NAN,
    ),
    Feature(
        "ui_due_vs_user_interval",
        "time since they last bought it vs their usual time between orders",
        lambda v, r: (
            "no order rhythm to compare with"
            if _missing(v)
            else f"last bought it {v:.1f}x their usual time between orders ago"
        ),
        no_history=_NAN,
    ),
)
def order_sequence(past: PastEvents) -> dict[str, np.ndarray]:
    """Reorders counted in the user's own order days rather than calendar days.

    Order days of the user since the last one with the item (0: it was in their last order;
    NaN: never bought), whether it was in their last order, units of it in its last order,
    share of their last 3 and last 5 order days that included it, share of their order days
    since they first bought it that included it (NaN: never bought); and days since their
    last order of it divided by their usual time between orders.
    """
    n_pairs = past.n_pairs
    out = {
        "ui_orders_since_purchase": np.full(n_pairs, np.nan),
        "ui_in_last_order": np.zeros(n_pairs),
        "ui_last_order_quantity": np.zeros(n_pairs),
        "ui_last3_order_share": np.zeros(n_pairs),
        "ui_last5_order_share": np.zeros(n_pairs),
        "ui_order_share_since_first": np.full(n_pairs, np.nan),
    }
    user_interval = past.user_order_interval[past.pair_user]
    out["ui_due_vs_user_interval"] = np.divide(
        past.days_since_event[:, _PURCHASE],
        user_interval,
        out=np.full(n_pairs, np.nan),
        where=user_interval > 0,
    )
    order_days, pair_user = past.order_days, past.pair_user
    if len(order_days) == 0:
        return out
    buys = past.is_purchase
    user, day, pair, qty = past.u[buys], past.day[buys], past.pair_of[buys], past.qty[buys]
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
    out["ui_orders_since_purchase"][bought] = since
    out["ui_in_last_order"][bought] = (since == 0).astype(np.float64)
    in_last = day == past.last_order_day[pair]
    out["ui_last_order_quantity"] = np.bincount(
        pair[in_last], weights=qty[in_last], minlength=n_pairs
    )
    n_user_days = per_user[pair_user].astype(np.float64)
    for name, window in (("ui_last3_order_share", 3), ("ui_last5_order_share", 5)):
        hits = np.bincount(order_days[back < window, 0], minlength=n_pairs)
        out[name] = np.divide(
            hits, np.minimum(n_user_days, window), out=np.zeros(n_pairs), where=n_user_days > 0
        )
    days_of_pair = np.bincount(order_days[:, 0], minlength=n_pairs)[bought]
    out["ui_order_share_since_first"][bought] = days_of_pair / (back[starts] + 1.0)
    return out
