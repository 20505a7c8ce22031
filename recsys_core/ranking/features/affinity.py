"""The lookup group: category, brand and price affinity of the user for the item, computed
when pairs are looked up from tables built from the past events."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.ranking.features.labels import _missing, _percent
from recsys_core.ranking.features.past import (
    PairLookup,
    PastEvents,
    _catalog_column,
    _codes,
    _lookup,
    _share_table,
)
from recsys_core.ranking.features.registry import REGISTRY, Feature


def _affinity_tables(past: PastEvents) -> dict[str, np.ndarray]:
    """The tables :func:`affinity` reads.

    ``item_category``, ``item_brand``: integer codes of each item's category and brand (-1:
    unknown); ``category_keys``, ``category_values``: sorted keys ``user * n_categories +
    category`` and the user's purchase share and event share in that category;
    ``brand_keys``, ``brand_values``: the same for brands (event share only);
    ``user_typical_price``: median price of the items the user bought (of all their items
    if they bought none).
    """
    n_items, n_users, u, i = past.n_items, past.n_users, past.u, past.i
    item_category = _codes(_catalog_column(past.catalog, past.items, Columns.CATEGORY), n_items)
    item_brand = _codes(_catalog_column(past.catalog, past.items, Columns.BRAND), n_items)
    category_keys, category_values = _share_table(
        u, item_category[i], past.is_purchase, n_users, with_purchases=True
    )
    brand_keys, brand_values = _share_table(
        u, item_brand[i], past.is_purchase, n_users, with_purchases=False
    )
    bought_price = past.item_price[i]
    price_rows = pd.DataFrame({"u": u, "price": bought_price, "bought": past.is_purchase})
    price_rows = price_rows[np.isfinite(bought_price) & (bought_price > 0)]
    median_bought = price_rows[price_rows["bought"]].groupby("u")["price"].median()
    median_any = price_rows.groupby("u")["price"].median()
    typical = np.full(n_users, np.nan)
    typical[median_any.index.to_numpy()] = median_any.to_numpy()
    typical[median_bought.index.to_numpy()] = median_bought.to_numpy()
    return {
        "item_category": item_category,
        "item_brand": item_brand,
        "category_keys": category_keys,
        "category_values": category_values,
        "brand_keys": brand_keys,
        "brand_values": brand_values,
        "user_typical_price": typical,
    }


@REGISTRY.group(
    "lookup",
    Feature(
        "category_purchase_share",
        "share of their purchases in the item's category",
        lambda v, r: (
            "category unknown"
            if _missing(v)
            else f"{_percent(v)} of their purchases are in this category"
        ),
    ),
    Feature(
        "category_event_share",
        "share of their activity in the item's category",
        lambda v, r: (
            "category unknown"
            if _missing(v)
            else f"{_percent(v)} of their activity is in this category"
        ),
    ),
    Feature(
        "brand_event_share",
        "share of their activity with the item's brand",
        lambda v, r: (
            "brand unknown"
            if _missing(v)
            else f"{_percent(v)} of their activity is with this brand"
        ),
    ),
    Feature(
        "price_ratio",
        "price compared with what they usually pay",
        lambda v, r: "price unknown" if _missing(v) else f"priced {v:.1f}x what they usually pay",
    ),
    tables=_affinity_tables,
)
def affinity(pairs: PairLookup) -> dict[str, np.ndarray]:
    """Share of the user's purchases and of all their events in the item's category (NaN:
    category unknown), share of their events with the item's brand, the item's price
    relative to the median price the user pays."""
    u, i, tables = pairs.users, pairs.items, pairs.tables
    n = len(u)
    item_category, item_brand = tables["item_category"], tables["item_brand"]
    n_categories = int(item_category.max(initial=-1)) + 1
    n_brands = int(item_brand.max(initial=-1)) + 1
    category = item_category[i]
    cat_values = np.full((n, 2), np.nan)
    if n_categories:
        cat_values[category >= 0] = 0.0
        hit, cpos = _lookup(tables["category_keys"], u * n_categories + category)
        hit &= category >= 0
        cat_values[hit] = tables["category_values"][cpos[hit]]
    brand = item_brand[i]
    brand_values = np.full(n, np.nan)
    if n_brands:
        brand_values[brand >= 0] = 0.0
        hit, bpos = _lookup(tables["brand_keys"], u * n_brands + brand)
        hit &= brand >= 0
        brand_values[hit] = tables["brand_values"][bpos[hit], 0]
    return {
        "category_purchase_share": cat_values[:, 0],
        "category_event_share": cat_values[:, 1],
        "brand_event_share": brand_values,
        "price_ratio": pairs.item_feature("item_price") / tables["user_typical_price"][u],
    }
