"""Money and business rules over recommendation lists: prices, expected revenue, filters.

* :func:`currency_symbol` — the currency a dataset's prices are in (Online Retail: pounds
  sterling; other logs: their own unit, unknown to the lab).
* :func:`with_prices` — each item's catalog price and ``expected_revenue`` = overall
  probability x price (the list's expected revenue is the column's sum).
* :class:`BusinessFilters` / :func:`apply_filters` — keep only items of some categories,
  within a price band, and not bought by the shopper in the last N days.
* :func:`top_k_for_shoppers` — every shopper's (or a segment's) top k as one table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from recsys_core.columns import Columns

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
    prices = catalog.assign(**{Columns.ITEM: catalog[Columns.ITEM].astype(str)})
    return prices.drop_duplicates(Columns.ITEM).set_index(Columns.ITEM)[Columns.PRICE].astype(float)


def with_prices(frame: pd.DataFrame, catalog: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (with ``item_id`` and ``probability``) plus ``price`` and
    ``expected_revenue`` = ``probability`` x ``price`` (NaN where either is unknown)."""
    prices = catalog_prices(catalog)
    price = frame["item_id"].astype(str).map(prices).to_numpy(dtype=float)
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


@dataclass(frozen=True)
class BusinessFilters:
    """Which recommended items a shop wants to show.

    Attributes
    ----------
    categories:
        Keep only items of these catalog categories (empty: all).
    min_price, max_price:
        Keep only items priced within ``[min_price, max_price]`` (``None``: no bound; items
        without a price are dropped when a bound is set).
    exclude_bought_days:
        Leave out items the shopper bought in the last N days before ``now`` (0: keep).
    """

    categories: Sequence[str] = field(default_factory=tuple)
    min_price: float | None = None
    max_price: float | None = None
    exclude_bought_days: int = 0

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return bool(
            self.categories
            or self.min_price is not None
            or self.max_price is not None
            or self.exclude_bought_days > 0
        )


def apply_filters(
    frame: pd.DataFrame,
    catalog: pd.DataFrame,
    history: pd.DataFrame,
    filters: BusinessFilters,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Rows of ``frame`` (``item_id`` column) that pass ``filters``, in their order.

    ``history`` is the shopper's events (``item_id``, ``event``, ``timestamp``); ``now``
    defaults to one second after its last event.
    """
    keep = np.ones(len(frame), dtype=bool)
    items = frame["item_id"].astype(str)
    if filters.categories and Columns.CATEGORY in catalog.columns:
        cats = catalog.assign(**{Columns.ITEM: catalog[Columns.ITEM].astype(str)})
        category = items.map(
            cats.drop_duplicates(Columns.ITEM).set_index(Columns.ITEM)[Columns.CATEGORY].astype(str)
        )
        keep &= category.isin([str(c) for c in filters.categories]).to_numpy()
    if filters.min_price is not None or filters.max_price is not None:
        price = items.map(catalog_prices(catalog)).to_numpy(dtype=float)
        ok = np.isfinite(price)
        if filters.min_price is not None:
            ok &= price >= filters.min_price
        if filters.max_price is not None:
            ok &= price <= filters.max_price
        keep &= ok
    if filters.exclude_bought_days > 0 and len(history) and Columns.TIMESTAMP in history.columns:
        bought = history[history[Columns.EVENT].astype(str) == "purchase"]
        end = now if now is not None else history[Columns.TIMESTAMP].max() + pd.Timedelta(seconds=1)
        recent = bought[
            bought[Columns.TIMESTAMP] >= end - pd.Timedelta(days=filters.exclude_bought_days)
        ]
        keep &= ~items.isin(set(recent[Columns.ITEM].astype(str))).to_numpy()
    out = frame[keep].reset_index(drop=True)
    if Columns.RANK in out.columns:
        out[Columns.RANK] = np.arange(1, len(out) + 1)
    return out


def top_k_for_shoppers(
    service: Any,
    user_ids: Sequence[str],
    k: int,
    model: str,
    *,
    chunk: int = 500,
    progress: Callable[[str, float], None] | None = None,
) -> pd.DataFrame:
    """Every listed shopper's top ``k`` by ``model`` as one table (the bulk export).

    Shoppers are scored in chunks through the model's own batch ``recommend``. Columns:
    ``user_id, rank, item_id, title, score`` plus, with the purchase model,
    ``purchase_probability`` (if they order), ``order_probability`` and ``probability``
    (overall), and ``price`` and ``expected_revenue`` where the catalog has prices.

    Raises
    ------
    ConfigError
        ``model`` is not trained.
    """
    engine = service.lab.model(model)
    users = [str(u) for u in user_ids]
    parts = []
    for start in range(0, len(users), max(1, chunk)):
        part = users[start : start + chunk]
        parts.append(engine.recommend(part, k))
        if progress is not None:
            progress(
                f"{min(start + chunk, len(users)):,} of {len(users):,} shoppers",
                (start + len(part)) / max(len(users), 1),
            )
    columns = [Columns.USER, Columns.ITEM, Columns.SCORE, Columns.RANK]
    reco = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    out = pd.DataFrame(
        {
            "user_id": reco[Columns.USER].astype(str).to_numpy(),
            "rank": reco[Columns.RANK].to_numpy(dtype=np.int64),
            "item_id": reco[Columns.ITEM].astype(str).to_numpy(),
            "title": service.titles(reco[Columns.ITEM].astype(str).tolist()),
            "score": reco[Columns.SCORE].to_numpy(dtype=float),
        }
    )
    if "purchase_probability" in reco.columns:
        out["purchase_probability"] = reco["purchase_probability"].to_numpy(dtype=float)
        order_model = getattr(service.lab, "order_model", None)
        if order_model is not None:
            order = pd.Series(order_model.order_probability(users), index=users)
            out["order_probability"] = out["user_id"].map(order).to_numpy(dtype=float)
            out["probability"] = out["order_probability"] * out["purchase_probability"]
    if "probability" in out.columns:
        out = with_prices(out, service.lab.catalog)
    elif Columns.PRICE in service.lab.catalog.columns:
        out["price"] = out["item_id"].map(catalog_prices(service.lab.catalog)).to_numpy(float)
    return out
