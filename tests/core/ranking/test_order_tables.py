"""The order model's shopper tables: each cutoff's table is built once per fit (and once per
evaluation run across folds), and the model is exactly the one fresh builds give."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from recsys_core.ranking import order_features
from recsys_core.ranking.order_features import ShopperFeatureTables, shopper_features
from recsys_core.ranking.order_model import OrderModel, build_order_training_frame
from recsys_core.ranking.window_cache import WindowCache, using_window_cache

LATER = pd.Timestamp("2024-06-01")
EARLIER = LATER - pd.Timedelta(days=30)  # one horizon: LATER's windows are EARLIER's shifted
SMALL = {"n_estimators": 40, "min_child_samples": 10, "training_windows": 4}


@pytest.fixture(scope="module")
def events(small_store) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return small_store.events


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[pd.Timestamp]]:
    """The cutoffs :func:`shopper_features` is built at (every build, in order)."""
    calls: list[pd.Timestamp] = []

    def counted(frame: pd.DataFrame, cutoff: pd.Timestamp | str) -> pd.DataFrame:
        calls.append(pd.Timestamp(cutoff))
        return shopper_features(frame, cutoff)

    monkeypatch.setattr(order_features, "shopper_features", counted)
    yield calls


def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every table built afresh (the code before the tables were shared)."""
    monkeypatch.setattr(
        ShopperFeatureTables, "__call__", lambda self, cutoff: shopper_features(self.events, cutoff)
    )


def _same_model(a: OrderModel, b: OrderModel) -> None:
    pd.testing.assert_frame_equal(a.features_, b.features_)
    assert [x.model_to_string() for x in a.classifier_.boosters_] == [
        x.model_to_string() for x in b.classifier_.boosters_
    ]
    np.testing.assert_array_equal(a.predict_frame(a.features_), b.predict_frame(b.features_))
    summary = {k: v for k, v in a.training_summary_.items() if k != "fit_seconds"}
    assert summary == {k: v for k, v in b.training_summary_.items() if k != "fit_seconds"}


def test_a_fit_builds_each_cutoffs_table_once(
    events: pd.DataFrame, builds: list[pd.Timestamp]
) -> None:
    model = OrderModel(SMALL).fit(events, cutoff=LATER)
    assert model.recalibration_ is not None
    # 4 windows and the cutoff; the validation model's windows are the same shifted by one
    # horizon: only its oldest is new
    assert len(builds) == len(set(builds)) == 6
    assert min(builds) == LATER - pd.Timedelta(days=30 * 5)


def test_shared_tables_give_the_model_fresh_tables_give(
    events: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = OrderModel(SMALL).fit(events, cutoff=LATER)
    frame = build_order_training_frame(events, LATER, shared.config)
    _fresh(monkeypatch)
    fresh = OrderModel(SMALL).fit(events, cutoff=LATER)
    _same_model(shared, fresh)
    assert shared.training_summary_["recalibration"] == fresh.training_summary_["recalibration"]
    pd.testing.assert_frame_equal(frame, build_order_training_frame(events, LATER, fresh.config))


def test_folds_share_tables_only_for_the_same_events(
    events: pd.DataFrame, builds: list[pd.Timestamp], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = WindowCache()
    with using_window_cache(cache):
        OrderModel(SMALL).fit(events, cutoff=EARLIER)
        # 4 windows, the cutoff and one more window of the validation model (the log starts
        # on 2024-01-01: that model has 3 windows, all of them this fit's)
        assert cache.table_builds == 5
        builds.clear()
        cached = OrderModel(SMALL).fit(events, cutoff=LATER)
        # every window of LATER (and of its validation model) is one of EARLIER's
        assert builds == [LATER]
        # tables older than LATER's oldest window are dropped
        assert cache.entries == 6
        builds.clear()
        # one event less before the windows: every table's events differ
        first = events["timestamp"].idxmin()
        OrderModel(SMALL).fit(events.drop(index=first), cutoff=LATER)
        assert len(builds) == 6
    builds.clear()
    _fresh(monkeypatch)
    _same_model(cached, OrderModel(SMALL).fit(events, cutoff=LATER))


def test_the_last_fold_keeps_nothing(events: pd.DataFrame) -> None:
    cache = WindowCache(store=False)
    with using_window_cache(cache):
        OrderModel(SMALL).fit(events, cutoff=LATER)
    assert cache.table_builds == 6 and cache.entries == 0


def test_fold_models_on_two_threads_are_the_sequential_ones(events: pd.DataFrame) -> None:
    assert OrderModel().config.fold_workers == 2
    _same_model(
        OrderModel(SMALL, fold_workers=1).fit(events, cutoff=LATER),
        OrderModel(SMALL).fit(events, cutoff=LATER),
    )


def test_changing_a_handed_out_table_leaves_the_kept_one(events: pd.DataFrame) -> None:
    tables = ShopperFeatureTables(events)
    first = tables(LATER)
    first["orders"] = -1.0
    again = tables(LATER)
    assert (tables.builds, tables.hits) == (1, 1)
    pd.testing.assert_frame_equal(again, shopper_features(events, LATER))
