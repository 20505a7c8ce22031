"""The repurchase-cycle group: how recently a shopper reordered an item against the shop's
usual reorder interval for it.

The purchase-rhythm group measures a shopper's own interval, which needs two order days of
the item; a shopper who bought it once has none. This group adds the *item's* cycle, the
median over every shopper who reordered it of their mean interval, and how far the shopper's
last order of it is into that cycle, plus the order days of the last 30 days (the rhythm
group counts 90). Only events before the cutoff are read.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import pandas as pd

from recsys_core.ranking.features.labels import _days, _missing, _number
from recsys_core.ranking.features.past import _DAY_NS, _PURCHASE, PastEvents, _interval
from recsys_core.ranking.features.registry import REGISTRY, Feature

_NAN: Final = math.nan


@REGISTRY.group(
    "pair",
    Feature(
        "ui_orders_30d",
        "days they ordered it in the last 30 days",
        lambda v, r: (
            "not ordered in the last 30 days"
            if v <= 0
            else f"ordered it on {_number(v)} day{'s' if v != 1 else ''} in the last 30 days"
        ),
    ),
    Feature(
        "ui_item_cycle_days",
        "the shop's usual reorder interval for this item",
        lambda v, r: (
            "nobody has reordered it yet"
            if _missing(v)
            else f"shoppers reorder it every {_days(v)}"
        ),
        no_history=_NAN,
    ),
    Feature(
        "ui_due_vs_item_cycle",
        "time since their last order of it vs the shop's usual reorder interval for it",
        lambda v, r: (
            "no shop-wide reorder cycle to compare with"
            if _missing(v)
            else f"last order of it was {v:.1f}x the shop's usual reorder interval ago"
        ),
        no_history=_NAN,
    ),
)
def repurchase_cycle(past: PastEvents) -> dict[str, np.ndarray]:
    """Order days of the item in the last 30 days, the item's median reorder interval over
    the shoppers who reordered it (calendar days), and days since the shopper's last order
    of it divided by that interval (NaN: never bought it, or nobody reordered it)."""
    n_pairs = past.n_pairs
    cutoff_day = past.cutoff.value / _DAY_NS
    recent = past.order_days[cutoff_day - past.order_days[:, 1] <= 30]
    orders_30d = np.bincount(recent[:, 0], minlength=n_pairs).astype(np.float64)
    interval = _interval(past.first_order_day, past.last_order_day, past.ui_orders)
    item = past.pair_keys % past.n_items
    reordered = np.isfinite(interval)
    item_cycle = np.full(past.n_items, np.nan)
    if reordered.any():
        median = pd.Series(interval[reordered]).groupby(item[reordered]).median()
        item_cycle[median.index.to_numpy(dtype=np.int64)] = median.to_numpy(dtype=np.float64)
    cycle = item_cycle[item]
    due = np.divide(
        past.days_since_event[:, _PURCHASE],
        cycle,
        out=np.full(n_pairs, np.nan),
        where=cycle > 0,
    )
    return {"ui_orders_30d": orders_30d, "ui_item_cycle_days": cycle, "ui_due_vs_item_cycle": due}
