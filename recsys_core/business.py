"""Money and business rules over recommendation lists: prices, expected revenue, filters.

* :func:`currency_symbol` — the currency a dataset's prices are in (Online Retail: pounds
  sterling; other logs: their own unit, unknown to the lab).
* :func:`with_prices` — each item's catalog price and ``expected_revenue`` = overall
  probability x price (the list's expected revenue is the column's sum).
* :class:`~recsys_core.policy.BusinessFilters` (part of a
  :class:`~recsys_core.policy.ListPolicy`) / :func:`apply_filters` — keep only items of some
  categories, within a price band, and not bought by the shopper in the last N days.
* :func:`top_k_for_shoppers` — every shopper's (or a segment's) top k under a list policy as
  one table (the bulk export).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Final

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import id_values
from recsys_core.policy import (
    BusinessFilters,
    ListContext,
    ListPolicy,
    PolicyChoice,
    catalog_column,
    policy_mask,
)

__all__ = [
    "CURRENCIES",
    "BusinessFilters",
    "apply_filters",
    "catalog_prices",
    "currency_symbol",
    "expected_revenue",
    "format_money",
    "top_k_for_shoppers",
    "with_prices",
]

#: Datasets whose currency is known (UCI Online Retail: a UK retailer, prices in GBP).
CURRENCIES: Final[dict[str, str]] = {"online-retail": "£"}


def currency_symbol(dataset_name: str) -> str:
    """The currency symbol of a dataset's prices ("" when the lab does not know it)."""
    return CURRENCIES.get(dataset_name, "")


def format_money(value: float, symbol: str) -> str:
    """``£1,234.50``; ``1,234.50`` without a known currency; ``—`` when missing."""
    if value is None or not np.isfinite(value):
        return "—"
    return f"{symbol}{value:,.2f}"


def catalog_prices(catalog: pd.DataFrame) -> pd.Series:
    """Price per item id (str), NaN where unknown; empty when the catalog has no prices."""
    if Columns.PRICE not in catalog.columns:
        return pd.Series(dtype=float)
    return catalog_column(catalog, Columns.PRICE).astype(float)


def with_prices(frame: pd.DataFrame, catalog: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (with ``item_id`` and ``probability``) plus ``price`` and
    ``expected_revenue`` = ``probability`` x ``price`` (NaN where either is unknown)."""
    prices = catalog_prices(catalog)
    price = id_values(frame["item_id"], where="the list").map(prices).to_numpy(dtype=float)
    probability = (
        frame["probability"].to_numpy(dtype=float)
        if "probability" in frame.columns
        else np.full(len(frame), np.nan)
    )
    return frame.assign(price=price, expected_revenue=probability * price)


def expected_revenue(frame: pd.DataFrame) -> float:
    """Σ probability x price over a list (NaN when no item has both)."""
    values = frame["expected_revenue"].to_numpy(dtype=float)
    known = np.isfinite(values)
    return float(values[known].sum()) if known.any() else float("nan")


def apply_filters(
    frame: pd.DataFrame,
    catalog: pd.DataFrame,
    history: pd.DataFrame,
    filters: BusinessFilters,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Rows of one shopper's list ``frame`` (``item_id`` column) that pass ``filters``, in
    their order, ranks renumbered: :func:`recsys_core.policy.policy_mask` of a ``keep``
    policy with these filters (lists are filtered there; this helper checks one list).

    ``history`` is the shopper's events (``item_id``, ``event``, ``timestamp``); ``now``
    defaults to one second after its last event.
    """
    if not filters.active:
        return frame.reset_index(drop=True)
    shopper = "shopper"
    purchases = None
    if Columns.TIMESTAMP in history.columns:
        purchases = history.assign(**{Columns.USER: shopper})
        if now is None and len(history):
            now = history[Columns.TIMESTAMP].max() + pd.Timedelta(seconds=1)
    context = ListContext(catalog=catalog, purchases=purchases, now=now)
    policy = ListPolicy("keep", filters)
    if filters.exclude_bought_days > 0 and (purchases is None or not len(history)):
        policy = policy.with_filters(replace(filters, exclude_bought_days=0))
    items = id_values(frame["item_id"], where="the list").to_numpy()
    keep = policy_mask(policy, context, np.full(len(items), shopper, dtype=object), items)
    out = frame[keep].reset_index(drop=True)
    if Columns.RANK in out.columns:
        out[Columns.RANK] = np.arange(1, len(out) + 1)
    return out


def top_k_for_shoppers(
    service: Any,
    user_ids: Sequence[str],
    k: int,
    model: str,
    policy: PolicyChoice,
    *,
    chunk: int = 500,
    progress: Callable[[str, float], None] | None = None,
) -> pd.DataFrame:
    """Every listed shopper's top ``k`` by ``model`` under ``policy`` as one table (the bulk
    export): the lists the service answers one shopper at a time (the fallback chain for a
    shopper ``model`` cannot personalise for included), computed in batch.

    Columns: ``user_id, rank, item_id, title, score, model`` (who served the row) plus
    ``purchase_probability`` (if they order), ``order_probability`` and ``probability``
    (overall) where the purchase model is trained, ``price`` and ``expected_revenue``
    where the catalog has prices, and ``list_policy`` (the policy's name; the whole policy
    is in ``frame.attrs["list_policy"]``).

    Raises
    ------
    ConfigError
        ``model`` is not trained.
    """
    users = [str(u) for u in user_ids]
    resolved: ListPolicy = service.resolve_policy(policy)
    parts = []
    for start in range(0, len(users), max(1, chunk)):
        part = users[start : start + chunk]
        parts.append(service.recommend_many(part, k, model, policy=resolved))
        if progress is not None:
            progress(
                f"{min(start + chunk, len(users)):,} of {len(users):,} shoppers",
                (start + len(part)) / max(len(users), 1),
            )
    columns = ["user_id", "rank", "item_id", "title", "score", "model", "purchase_probability"]
    reco = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    out = reco[[c for c in columns if c in reco.columns]].copy()
    if service.lab.ranker is not None:
        order_model = getattr(service.lab, "order_model", None)
        if order_model is not None:
            order = pd.Series(order_model.order_probability(users), index=users)
            out["order_probability"] = out["user_id"].map(order).to_numpy(dtype=float)
            out["probability"] = out["order_probability"] * out["purchase_probability"]
    else:
        out = out.drop(columns=["purchase_probability"], errors="ignore")
    if "probability" in out.columns:
        out = with_prices(out, service.lab.catalog)
    elif Columns.PRICE in service.lab.catalog.columns:
        out["price"] = out["item_id"].map(catalog_prices(service.lab.catalog)).to_numpy(float)
    out["list_policy"] = resolved.name  # named in the file itself (CSV has no metadata)
    out.attrs["list_policy"] = resolved.to_dict()
    return out
