"""Prices, expected revenue and business filters over a recommendation list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core.business import (
    BusinessFilters,
    apply_filters,
    currency_symbol,
    expected_revenue,
    format_money,
    with_prices,
)

CATALOG = pd.DataFrame(
    {
        "item_id": ["a", "b", "c", "d"],
        "title": ["Mug", "Lamp", "Cup", "Rug"],
        "category": ["kitchen", "home", "kitchen", "home"],
        "price": [2.5, 40.0, np.nan, 120.0],
    }
)
RECO = pd.DataFrame(
    {"item_id": ["a", "b", "c", "d"], "probability": [0.2, 0.1, 0.5, 0.01], "rank": [1, 2, 3, 4]}
)
HISTORY = pd.DataFrame(
    {
        "item_id": ["a", "b"],
        "event": ["purchase", "purchase"],
        "timestamp": pd.to_datetime(["2024-05-30", "2024-03-01"]),
    }
)


def test_expected_revenue_is_probability_times_price_summed() -> None:
    priced = with_prices(RECO, CATALOG)
    np.testing.assert_allclose(priced["expected_revenue"], [0.5, 4.0, np.nan, 1.2])
    assert expected_revenue(priced) == pytest.approx(0.5 + 4.0 + 1.2)
    assert format_money(5.7, currency_symbol("online-retail")) == "£5.70"
    assert format_money(float("nan"), "£") == "—"
    assert currency_symbol("my-upload") == ""


def test_filters_by_category_price_band_and_recent_purchases() -> None:
    now = pd.Timestamp("2024-06-01")
    kitchen = apply_filters(RECO, CATALOG, HISTORY, BusinessFilters(categories=["kitchen"]))
    assert kitchen["item_id"].tolist() == ["a", "c"] and kitchen["rank"].tolist() == [1, 2]
    band = apply_filters(RECO, CATALOG, HISTORY, BusinessFilters(min_price=2, max_price=50))
    assert band["item_id"].tolist() == ["a", "b"]  # c has no price, d is above the band
    recent = BusinessFilters(exclude_bought_days=7)
    assert apply_filters(RECO, CATALOG, HISTORY, recent, now=now)["item_id"].tolist() == [
        "b",
        "c",
        "d",
    ]
    assert not BusinessFilters().active and recent.active
    assert apply_filters(RECO, CATALOG, HISTORY, BusinessFilters()).equals(RECO)
