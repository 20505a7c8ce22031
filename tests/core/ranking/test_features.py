"""Behaviour features on a hand-made log: counts, days since, intervals, affinity, no leakage."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.errors import ArtifactError, DataValidationError
from recsys_core.ranking.features import (
    BEHAVIOUR_FEATURES,
    FEATURE_NAMES,
    BehaviourSnapshot,
    describe_feature,
    feature_description,
)

CUTOFF = pd.Timestamp("2024-01-31")


def _log(rows: list[tuple[str, str, str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event", "timestamp", "quantity"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame["event"] = frame["event"].astype(
        pd.CategoricalDtype(["view", "cart", "favorite", "purchase"])
    )
    return frame


@pytest.fixture()
def events() -> pd.DataFrame:
    log = _log(
        [
            ("u1", "i1", "view", "2024-01-29 00:00", 1),  # 2 days before the cutoff
            ("u1", "i1", "view", "2024-01-20 00:00", 1),
            ("u1", "i1", "cart", "2024-01-29 12:00", 1),  # 1.5 days
            ("u1", "i1", "purchase", "2024-01-01 00:00", 2),  # 30 days
            ("u1", "i1", "purchase", "2024-01-11 00:00", 3),  # 20 days
            ("u1", "i1", "purchase", "2024-01-21 00:00", 1),  # 10 days
            ("u1", "i2", "purchase", "2024-01-21 00:00", 5),
            ("u2", "i2", "view", "2024-01-30 00:00", 1),
            ("u2", "i3", "favorite", "2024-01-25 00:00", 1),
            # at and after the cutoff: must be invisible
            ("u2", "i1", "purchase", "2024-01-31 00:00", 9),
            ("u1", "i3", "purchase", "2024-02-05 00:00", 9),
            ("u3", "i1", "purchase", "2024-02-06 00:00", 9),
        ]
    )
    log["price"] = log["item_id"].map({"i1": 2.0, "i2": 4.0, "i3": 10.0})
    log.loc[log["timestamp"] >= CUTOFF, "price"] = 99.0  # later prices: must not count
    return log


@pytest.fixture()
def catalog() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3", "i4"],
            "title": ["Mug", "Plate", "Lamp", "Rug"],
            "category": ["Kitchen", "Kitchen", "Living", "Living"],
            "price": [2.0, 4.0, 10.0, 8.0],
        }
    )


def _features(snapshot: BehaviourSnapshot, user: str, item: str) -> dict[str, float]:
    u = snapshot.users.to_internal([user])
    i = snapshot.items.to_internal([item])
    assert u[0] >= 0 and i[0] >= 0
    return dict(zip(BEHAVIOUR_FEATURES, snapshot.features(u, i)[0].tolist(), strict=True))


def test_user_item_counts_and_days_since(events: pd.DataFrame, catalog: pd.DataFrame) -> None:
    snap = BehaviourSnapshot.from_events(events, CUTOFF, catalog)
    f = _features(snap, "u1", "i1")
    assert (f["ui_views"], f["ui_carts"], f["ui_favorites"], f["ui_purchases"]) == (2, 1, 0, 3)
    assert f["ui_quantity"] == 6
    assert f["ui_orders"] == 3
    assert f["ui_days_since_view"] == pytest.approx(2.0)
    assert f["ui_days_since_cart"] == pytest.approx(1.5)
    assert math.isnan(f["ui_days_since_favorite"])
    assert f["ui_days_since_purchase"] == pytest.approx(10.0)
    assert f["ui_mean_purchase_interval"] == pytest.approx(10.0)
    assert f["ui_purchase_due_ratio"] == pytest.approx(1.0)
    assert f["ui_order_share"] == pytest.approx(1.0)
    assert f["ui_orders_90d"] == 3
    assert f["ui_days_since_first"] == pytest.approx(30.0)


def test_reorder_features_count_the_users_order_days(
    events: pd.DataFrame, catalog: pd.DataFrame
) -> None:
    extra = _log([("u1", "i3", "purchase", "2024-01-11 06:00", 4)])
    snap = BehaviourSnapshot.from_events(pd.concat([events, extra]), CUTOFF, catalog)
    # u1 ordered on 3 days (Jan 1, 11, 21): i1 on all three, i2 on the last, i3 on the 2nd
    f = _features(snap, "u1", "i1")
    assert f["ui_orders_since_purchase"] == 0 and f["ui_in_last_order"] == 1
    assert f["ui_last_order_quantity"] == 1
    assert f["ui_last3_order_share"] == 1 and f["ui_last5_order_share"] == 1
    assert f["ui_order_share_since_first"] == 1
    assert f["ui_due_vs_user_interval"] == pytest.approx(1.0)  # 10 days / every 10 days
    f = _features(snap, "u1", "i2")
    assert f["ui_in_last_order"] == 1 and f["ui_last_order_quantity"] == 5
    assert f["ui_last3_order_share"] == pytest.approx(1 / 3)
    assert f["ui_order_share_since_first"] == 1  # first bought in their last order
    f = _features(snap, "u1", "i3")
    assert f["ui_orders_since_purchase"] == 1 and f["ui_in_last_order"] == 0
    assert f["ui_last_order_quantity"] == 4
    assert f["ui_order_share_since_first"] == pytest.approx(0.5)  # 1 of the 2 order days
    assert f["ui_due_vs_user_interval"] == pytest.approx(1.975)  # 19.75 days / every 10
    f = _features(snap, "u2", "i3")  # favourited, never bought; u2 has never ordered
    assert math.isnan(f["ui_orders_since_purchase"]) and f["ui_in_last_order"] == 0
    assert f["ui_last3_order_share"] == 0 and f["ui_last_order_quantity"] == 0
    assert math.isnan(f["ui_order_share_since_first"])
    assert math.isnan(f["ui_due_vs_user_interval"])


def test_user_features(events: pd.DataFrame, catalog: pd.DataFrame) -> None:
    f = _features(BehaviourSnapshot.from_events(events, CUTOFF, catalog), "u1", "i2")
    assert f["user_events"] == 7
    assert f["user_items"] == 2
    assert f["user_orders"] == 3
    assert f["user_events_30d"] == 6  # the purchase exactly 30 days ago is not "in the last 30"
    assert f["user_days_since_last_event"] == pytest.approx(1.5)
    assert f["user_days_since_last_purchase"] == pytest.approx(10.0)
    assert f["user_tenure_days"] == pytest.approx(30.0)
    assert f["user_mean_order_interval"] == pytest.approx(10.0)
    assert f["user_items_per_order"] == pytest.approx(4 / 3)
    assert f["user_items_bought_30d"] == 2
    assert f["user_repeat_share"] == pytest.approx(0.5)


def test_item_and_affinity_features(events: pd.DataFrame, catalog: pd.DataFrame) -> None:
    snap = BehaviourSnapshot.from_events(events, CUTOFF, catalog)
    f = _features(snap, "u1", "i1")
    assert f["item_buyers"] == 1
    assert f["item_buyers_30d"] == 1
    assert f["item_buyers_7d"] == 0
    assert f["item_events_30d"] == 5
    assert f["item_repurchase_rate"] == 1.0
    assert f["item_price"] == 2.0

    f = _features(snap, "u1", "i2")
    assert f["category_purchase_share"] == 1.0
    assert f["category_event_share"] == 1.0
    assert f["price_ratio"] == pytest.approx(4.0 / 2.0)  # median price of u1's purchases is 2
    assert math.isnan(f["brand_event_share"])  # the catalog has no brands

    f = _features(snap, "u2", "i3")
    assert f["ui_favorites"] == 1
    assert f["ui_days_since_favorite"] == pytest.approx(6.0)
    assert f["category_event_share"] == pytest.approx(0.5)
    assert math.isnan(f["category_purchase_share"])  # u2 has never bought anything


def test_pair_without_history_and_catalog_only_item(
    events: pd.DataFrame, catalog: pd.DataFrame
) -> None:
    f = _features(BehaviourSnapshot.from_events(events, CUTOFF, catalog), "u2", "i4")
    assert f["ui_purchases"] == 0 and f["ui_views"] == 0 and f["ui_order_share"] == 0
    assert math.isnan(f["ui_days_since_view"]) and math.isnan(f["ui_days_since_purchase"])
    assert f["item_buyers"] == 0
    assert math.isnan(f["item_age_days"])
    assert math.isnan(f["item_price"])  # no priced event before the cutoff: catalog unused
    assert f["category_event_share"] == pytest.approx(0.5)


def test_events_at_or_after_the_cutoff_change_nothing(
    events: pd.DataFrame, catalog: pd.DataFrame
) -> None:
    with_future = BehaviourSnapshot.from_events(events, CUTOFF, catalog)
    past_only = BehaviourSnapshot.from_events(events[events["timestamp"] < CUTOFF], CUTOFF, catalog)
    assert "u3" not in with_future.users  # a shopper who only appears later
    assert list(with_future.users.external_ids) == list(past_only.users.external_ids)
    for name in ("pair_keys", "pair_values", "user_values", "item_values"):
        np.testing.assert_array_equal(getattr(with_future, name), getattr(past_only, name))
    assert with_future.tables.keys() == past_only.tables.keys()
    for name, table in with_future.tables.items():  # category, brand and price affinity
        np.testing.assert_array_equal(table, past_only.tables[name])


def test_prices_after_the_cutoff_change_no_feature(
    events: pd.DataFrame, catalog: pd.DataFrame
) -> None:
    """Change every price at or after the cutoff, in the events *and* in the catalog.

    A catalog built from the whole log (median over every event, test period included) moves
    with later prices; the features must not.
    """
    base = BehaviourSnapshot.from_events(events, CUTOFF, catalog)
    repriced = events.copy()
    later = repriced["timestamp"] >= CUTOFF
    repriced.loc[later, "price"] = repriced.loc[later, "price"] * 7.0 + 3.0
    new_catalog = catalog.assign(price=catalog["price"] * 5.0)
    moved = BehaviourSnapshot.from_events(repriced, CUTOFF, new_catalog)
    for name in ("item_values", "pair_values", "user_values"):
        np.testing.assert_array_equal(getattr(moved, name), getattr(base, name))
    for name, table in base.tables.items():  # user_typical_price among them
        np.testing.assert_array_equal(moved.tables[name], table)
    u = base.users.to_internal(["u1", "u1", "u2"])
    i = base.items.to_internal(["i1", "i2", "i3"])
    np.testing.assert_array_equal(moved.features(u, i), base.features(u, i))
    # a price change *before* the cutoff does show (the test can fail)
    earlier = events.assign(price=events["price"] * 2.0)
    assert not np.array_equal(
        BehaviourSnapshot.from_events(earlier, CUTOFF, catalog).item_values, base.item_values
    )


def test_needs_timestamps_and_history(events: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="timestamp"):
        BehaviourSnapshot.from_events(events.drop(columns="timestamp"), CUTOFF)
    with pytest.raises(DataValidationError, match="before"):
        BehaviourSnapshot.from_events(events, pd.Timestamp("2023-01-01"))


def test_save_load_round_trip(events: pd.DataFrame, catalog: pd.DataFrame, tmp_path: Path) -> None:
    snap = BehaviourSnapshot.from_events(events, CUTOFF, catalog)
    snap.save(tmp_path / "snap")
    loaded = BehaviourSnapshot.load(tmp_path / "snap")
    assert loaded.cutoff == snap.cutoff
    u = snap.users.to_internal(["u1", "u2", "u2"])
    i = snap.items.to_internal(["i1", "i3", "i4"])
    np.testing.assert_array_equal(loaded.features(u, i), snap.features(u, i))
    (tmp_path / "snap" / "tables.npz").write_bytes(b"not a numpy archive")
    with pytest.raises(ArtifactError):
        BehaviourSnapshot.load(tmp_path / "snap")


def test_labels_read_in_the_shops_words() -> None:
    assert describe_feature("ui_purchases", {"ui_purchases": 3.0}) == "bought this item 3 times"
    assert describe_feature("ui_purchases", {"ui_purchases": 0.0}) == "never bought this item"
    assert describe_feature("ui_days_since_view", {"ui_days_since_view": 2.4}) == (
        "viewed it 2 days ago"
    )
    assert describe_feature("ui_days_since_view", {"ui_days_since_view": math.nan}) == (
        "never viewed it"
    )
    row = {"als_score": 0.4213, "als_rank": 3.0}
    assert describe_feature("als_score", row) == "ALS score 0.42"
    assert describe_feature("als_rank", row) == "ALS ranks it 3rd"
    assert describe_feature("als_rank", {"als_rank": 12.0}) == "ALS ranks it 12th"
    knn = {"itemknn_score": 47339.07, "itemknn_rank": math.nan}
    assert describe_feature("itemknn_score", knn) == "item-kNN score 47,339"
    assert describe_feature("itemknn_rank", knn) == "not in item-kNN's top list"
    assert describe_feature("itemknn_score", {"itemknn_score": 0.0}) == (
        "item-kNN has no score for it (no similar item in their history)"
    )
    # the score and the rank of one model never read the same (a waterfall shows both)
    for a, b in (("als_score", "als_rank"), ("itemknn_score", "itemknn_rank")):
        for r in (row, knn, {}, {a: 0.0, b: math.nan}):
            assert describe_feature(a, r) != describe_feature(b, r)
    for name in FEATURE_NAMES:  # every feature has a description and a value label
        assert feature_description(name) != name
        assert describe_feature(name, {name: 1.0}) and "nan" not in describe_feature(
            name, dict.fromkeys(FEATURE_NAMES, math.nan)
        )
