"""Shopper segments and metrics by segment."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys_core.segments import (
    evaluation_segments,
    metrics_by_segment,
    online_retail_countries,
    shopper_segments,
)

T = pd.Timestamp("2024-06-01")


def _events() -> pd.DataFrame:
    rows = [
        ("old", "purchase", T - pd.Timedelta(days=300)),
        ("old", "purchase", T - pd.Timedelta(days=200)),
        ("old", "purchase", T - pd.Timedelta(days=100)),
        ("fresh", "purchase", T - pd.Timedelta(days=10)),
        ("browser", "view", T - pd.Timedelta(days=400)),
        ("fresh", "purchase", T + pd.Timedelta(days=1)),  # after the cutoff: ignored
        ("late", "purchase", T + pd.Timedelta(days=2)),  # only after the cutoff: no row
    ]
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "item_id": "x",
            "event": [r[1] for r in rows],
            "timestamp": [r[2] for r in rows],
        }
    )


def test_segments_use_only_events_before_the_cutoff() -> None:
    seg = shopper_segments(_events(), T, countries=pd.Series({"old": "France"}))
    assert list(seg.index) == ["browser", "fresh", "old"]
    assert seg.loc["fresh", "tenure"] == "new" and seg.loc["old", "tenure"] == "returning"
    assert seg.loc["fresh", "orders"] == 1 and seg.loc["old", "orders"] == 3
    assert seg.loc["old", "volume"] == "heavy" and seg.loc["fresh", "volume"] == "light"
    assert seg.loc["browser", "volume"] == "no purchases"
    assert seg.loc["old", "country"] == "France" and seg.loc["fresh", "country"] == "unknown"


def test_metrics_by_segment_average_within_each_value() -> None:
    seg = shopper_segments(_events(), T)
    per_user = pd.DataFrame(
        {"ndcg@10": [1.0, 0.0, 0.5]}, index=pd.Index(["old", "fresh", "browser"], name="user_id")
    )
    table = metrics_by_segment(per_user, seg).set_index(["segment", "value"])
    assert table.loc[("tenure", "returning"), "ndcg@10"] == pytest.approx(0.75)
    assert table.loc[("tenure", "returning"), "shoppers"] == 2
    assert table.loc[("tenure", "new"), "ndcg@10"] == 0.0
    records = evaluation_segments({"als": per_user}, _events(), T, "demo", 10)
    assert {r["model"] for r in records} == {"als"}
    assert {r["segment"] for r in records} == {"tenure", "volume"}


def test_online_retail_has_a_country_per_customer() -> None:
    countries = online_retail_countries()
    assert countries.loc["12347"] == "Iceland"
    assert countries.value_counts().index[0] == "United Kingdom"
