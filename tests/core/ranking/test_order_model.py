"""The shopper-level order model: leakage, calibration, explanation, saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.errors import ArtifactError, UnknownUserError
from recsys_core.metrics import classifier_metrics
from recsys_core.ranking.order_model import (
    ORDER_FEATURES,
    OrderModel,
    build_order_training_frame,
    order_labels,
    shopper_features,
)

CUTOFF = pd.Timestamp("2024-06-01")
SMALL = {"n_estimators": 40, "min_child_samples": 10, "training_windows": 4}


@pytest.fixture(scope="module")
def events(small_store) -> pd.DataFrame:
    return small_store.events


@pytest.fixture(scope="module")
def model(events: pd.DataFrame) -> OrderModel:
    return OrderModel(SMALL).fit(events, cutoff=CUTOFF)


def _with_future(events: pd.DataFrame, user: str) -> pd.DataFrame:
    """The log plus orders and views at and after the cutoff (one by a brand-new shopper)."""
    rows = [
        (user, "purchase", CUTOFF),
        (user, "purchase", CUTOFF + pd.Timedelta(days=3)),
        (user, "view", CUTOFF + pd.Timedelta(days=4)),
        ("brand-new", "purchase", CUTOFF + pd.Timedelta(days=1)),
    ]
    item = str(events["item_id"].iloc[0])
    extra = pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "item_id": item,
            "event": [r[1] for r in rows],
            "timestamp": [r[2] for r in rows],
            "quantity": 100.0,
            "price": 50.0,
        }
    )
    out = pd.concat(
        [events.astype({"user_id": str, "item_id": str, "event": str}), extra], ignore_index=True
    )
    return out.sort_values("timestamp", kind="stable", ignore_index=True)


def test_events_after_the_cutoff_change_no_feature_or_probability(
    events: pd.DataFrame, model: OrderModel
) -> None:
    before = shopper_features(events, CUTOFF)
    user = str(before.index[0])
    changed = _with_future(events, user)
    after = shopper_features(changed, CUTOFF)
    pd.testing.assert_frame_equal(after, before)
    assert "brand-new" not in after.index
    # the future events do change the features of a later cutoff (the test could fail)
    later = shopper_features(changed, CUTOFF + pd.Timedelta(days=10))
    assert later.loc[user, "orders_30d"] > before.loc[user, "orders_30d"]
    refit = OrderModel(SMALL).fit(changed, cutoff=CUTOFF)
    np.testing.assert_array_equal(refit.order_probability([user]), model.order_probability([user]))


def test_training_windows_never_see_their_own_label_period(events: pd.DataFrame) -> None:
    frame = build_order_training_frame(events, CUTOFF, OrderModel(SMALL).config)
    assert frame["window_cutoff"].nunique() == 4
    for window, rows in frame.groupby("window_cutoff"):
        expected = shopper_features(events, window)
        got = rows.set_index("user_id")[list(ORDER_FEATURES)]
        pd.testing.assert_frame_equal(got, expected.loc[got.index], check_names=False)
        buyers = order_labels(events, window, window + pd.Timedelta(days=30))
        np.testing.assert_array_equal(rows["label"].to_numpy(), rows["user_id"].isin(buyers))


def test_features_count_orders_and_recency_by_hand() -> None:
    t = pd.Timestamp("2024-03-01")
    events = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", "b"],
            "item_id": ["x", "y", "x", "x", "x"],
            "event": ["purchase", "purchase", "purchase", "view", "view"],
            "timestamp": [
                t - pd.Timedelta(days=40),
                t - pd.Timedelta(days=40),  # same day: one order
                t - pd.Timedelta(days=10),
                t - pd.Timedelta(days=2),
                t - pd.Timedelta(days=5),
            ],
            "quantity": [2.0, 1.0, 3.0, 1.0, 1.0],
            "price": [5.0, 10.0, 5.0, 5.0, 5.0],
        }
    )
    f = shopper_features(events, t)
    a, b = f.loc["a"], f.loc["b"]
    assert a["orders"] == 2 and a["orders_30d"] == 1 and a["orders_90d"] == 2
    assert a["days_since_last_order"] == pytest.approx(10)
    assert a["mean_days_between_orders"] == pytest.approx(30)
    assert a["spend"] == pytest.approx(2 * 5 + 10 + 3 * 5)
    assert a["units_bought"] == 6 and a["distinct_items_bought"] == 2
    assert a["browse_events_30d"] == 1 and a["events_30d"] == 2
    assert b["orders"] == 0 and np.isnan(b["days_since_last_order"])
    assert f["shop_order_rate_30d"].eq(0.5).all()


def test_probabilities_are_calibrated_on_a_later_period(events: pd.DataFrame) -> None:
    """Fitted before 2024-05-01, checked on who ordered in May: mean and ECE close."""
    cut = pd.Timestamp("2024-05-01")
    fitted = OrderModel(SMALL).fit(events, cutoff=cut)
    features = shopper_features(events, cut)
    y = features.index.isin(order_labels(events, cut, cut + pd.Timedelta(days=30)))
    prob = fitted.predict_frame(features)
    metrics = classifier_metrics(y.astype(int), prob)
    assert abs(prob.mean() - y.mean()) < 0.08
    assert metrics["ece"] < 0.12
    assert metrics["auc"] > 0.6


def test_unknown_shoppers_get_nan_and_explanations_add_up(model: OrderModel) -> None:
    user = str(model.features_.index[3])
    prob = model.order_probability([user, "nobody"])
    assert 0 < prob[0] < 1 and np.isnan(prob[1])
    explanation = model.explain(user)
    total = explanation["base_value"] + sum(c["contribution"] for c in explanation["contributions"])
    assert total == pytest.approx(explanation["raw_score"], abs=1e-6)
    assert explanation["order_probability"] == pytest.approx(prob[0])
    assert {c["name"] for c in explanation["contributions"]} == set(ORDER_FEATURES)
    with pytest.raises(UnknownUserError):
        model.explain("nobody")


def test_save_load_round_trip(model: OrderModel, tmp_path: Path) -> None:
    model.save(tmp_path / "order")
    loaded = OrderModel.load(tmp_path / "order")
    users = list(model.features_.index[:20])
    np.testing.assert_array_equal(loaded.order_probability(users), model.order_probability(users))
    (tmp_path / "order" / "config.json").write_text("{not json")
    with pytest.raises(ArtifactError):
        OrderModel.load(tmp_path / "order")


def test_early_stopping_is_on_by_default_and_can_be_turned_off(events: pd.DataFrame) -> None:
    capped = {**SMALL, "n_estimators": 300, "learning_rate": 0.3}
    stopped = OrderModel(capped).fit(events, cutoff=CUTOFF)
    trees = stopped.classifier_.best_iterations_
    assert len(trees) == 4 and all(1 <= t < 300 for t in trees)  # cut at each fold's best
    assert OrderModel(capped).fit(events, cutoff=CUTOFF).classifier_.best_iterations_ == trees
    fixed = OrderModel({**SMALL, "early_stopping_rounds": 0}).fit(events, cutoff=CUTOFF)
    assert fixed.classifier_.best_iterations_ == [40] * 4


def _rising_log(seed: int = 3) -> tuple[pd.DataFrame, pd.Timestamp]:
    """1,000 shoppers whose chance of ordering in each 30-day window rises from 10 % to 65 %
    over 12 windows: a model pooled over its windows under-predicts the next one."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-01")
    rows = []
    for w in range(13):
        rate = 0.10 + 0.05 * w
        buyers = np.flatnonzero(rng.random(1000) < rate)
        days = rng.integers(0, 30, size=len(buyers))
        for u, d in zip(buyers, days, strict=True):
            rows.append((f"u{u}", f"i{u % 20}", start + pd.Timedelta(days=30 * w + int(d))))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    events["event"] = "purchase"
    events["quantity"] = 1.0
    events["price"] = 10.0
    return events.sort_values("timestamp", ignore_index=True), start + pd.Timedelta(days=360)


def test_recalibration_on_the_window_before_the_cutoff_follows_a_rising_order_rate() -> None:
    events, cutoff = _rising_log()
    settings = {**SMALL, "training_windows": 11}
    fixed = OrderModel(settings).fit(events, cutoff=cutoff)
    plain = OrderModel({**settings, "recalibrate_on_validation_window": False}).fit(
        events, cutoff=cutoff
    )
    summary = fixed.training_summary_["recalibration"]
    assert summary["applied"] and summary["method"] == "sigmoid"
    assert summary["window"] == [str(cutoff - pd.Timedelta(days=30)), str(cutoff)]
    assert plain.recalibration_ is None
    assert plain.training_summary_["recalibration"]["why"] == "turned off"
    actual = fixed.features_.index.isin(
        order_labels(events, cutoff, cutoff + pd.Timedelta(days=30))
    ).mean()
    before = plain.predict_frame(plain.features_).mean()
    after = fixed.predict_frame(fixed.features_).mean()
    assert before < actual - 0.05  # the pooled model lags the rising rate (the test can fail)
    assert abs(after - actual) < abs(before - actual) / 2


def test_recalibration_reads_nothing_at_or_after_the_cutoff_and_is_saved(
    events: pd.DataFrame, model: OrderModel, tmp_path: Path
) -> None:
    assert model.recalibration_ is not None  # the small store has a window before the cutoff
    user = str(model.features_.index[0])
    refit = OrderModel(SMALL).fit(_with_future(events, user), cutoff=CUTOFF)
    assert refit.recalibration_ is not None
    assert refit.recalibration_.to_dict() == model.recalibration_.to_dict()
    model.save(tmp_path / "order")
    loaded = OrderModel.load(tmp_path / "order")
    assert loaded.recalibration_ is not None
    assert loaded.recalibration_.to_dict() == model.recalibration_.to_dict()
    # one number everywhere: batch probability, frame probability and the explanation's
    prob = model.order_probability([user])[0]
    assert model.predict_frame(model.features_.loc[[user]])[0] == pytest.approx(prob)
    assert model.explain(user)["order_probability"] == pytest.approx(prob)


def test_a_log_without_a_validation_window_trains_without_recalibration(
    events: pd.DataFrame,
) -> None:
    first = events["timestamp"].min()
    short = events[events["timestamp"] < first + pd.Timedelta(days=50)]
    fitted = OrderModel(SMALL).fit(short, cutoff=first + pd.Timedelta(days=45))
    assert fitted.recalibration_ is None
    assert "no validation window" in fitted.training_summary_["recalibration"]["why"]
