"""The ranker's window cache: a cached window is exactly a fresh one, other inputs miss,
and an evaluation over folds builds each window once with unchanged figures."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys_core.evaluation import EvaluationConfig, evaluate, runner
from recsys_core.models.registry import purchase_model
from recsys_core.ranking import TwoStageRanker, build_training_frame
from recsys_core.ranking.ranker import RankerConfig
from recsys_core.ranking.window_cache import WindowCache, using_window_cache
from tests.conftest import SMALL_RANKER, SMALL_RANKER_CUTOFF

WINDOWS = {**SMALL_RANKER, "training_windows": 3}
LATER = SMALL_RANKER_CUTOFF  # 2024-06-01
EARLIER = LATER - pd.Timedelta(days=30)  # the horizon: LATER's windows are EARLIER's shifted


@pytest.fixture(scope="module")
def store(small_store) -> tuple[pd.DataFrame, pd.DataFrame]:  # type: ignore[no-untyped-def]
    return small_store.events, small_store.catalog


def test_a_cached_window_is_the_fresh_build(store: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, catalog = store
    config = RankerConfig(**WINDOWS)
    fresh = build_training_frame(events, catalog, LATER, config)
    cache = WindowCache()
    with using_window_cache(cache):
        build_training_frame(events, catalog, EARLIER, config)
        assert (cache.frame_builds, cache.frame_hits) == (3, 0)
        cached = build_training_frame(events, catalog, LATER, config)
    # two of LATER's three windows are EARLIER's: only the newest one is built
    assert (cache.frame_builds, cache.frame_hits) == (4, 2)
    pd.testing.assert_frame_equal(cached, fresh)
    # EARLIER's oldest window is older than any LATER needs: dropped
    assert cache.entries == 3


def test_other_settings_logs_and_cutoffs_miss(store: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, catalog = store
    config = RankerConfig(**WINDOWS)
    cache = WindowCache()
    with using_window_cache(cache):
        build_training_frame(events, catalog, EARLIER, config)
        # another stage-one setting
        other = RankerConfig(**{**WINDOWS, "n_als": 20})
        build_training_frame(events, catalog, LATER, other)
        assert cache.frame_hits == 0
    cache = WindowCache()
    with using_window_cache(cache):
        build_training_frame(events, catalog, EARLIER, config)
        # one event less before the windows: every window's events differ
        first = events["timestamp"].idxmin()
        build_training_frame(events.drop(index=first), catalog, LATER, config)
        assert cache.frame_hits == 0
    cache = WindowCache()
    with using_window_cache(cache):
        build_training_frame(events, catalog, EARLIER, config)
        # cutoffs not on EARLIER's windows
        build_training_frame(events, catalog, LATER - pd.Timedelta(days=10), config)
        assert cache.frame_hits == 0
        # the classifier's settings do not change the rows: they hit
        hit = build_training_frame(
            events, catalog, LATER, RankerConfig(**{**WINDOWS, "classifier": {"n_estimators": 5}})
        )
        assert cache.frame_hits == 2
    pd.testing.assert_frame_equal(hit, build_training_frame(events, catalog, LATER, config))


def test_a_ranker_reuses_the_previous_folds_stage(store: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, catalog = store
    fresh = TwoStageRanker(WINDOWS).fit(events, catalog, cutoff=LATER)
    cache = WindowCache()
    with using_window_cache(cache):
        TwoStageRanker(WINDOWS).fit(events, catalog, cutoff=EARLIER)
        assert cache.stage_fits == 4  # three windows and the scoring stage
        cached = TwoStageRanker(WINDOWS).fit(events, catalog, cutoff=LATER)
    # LATER's newest window is EARLIER's scoring stage; its other windows are cached frames
    assert (cache.stage_fits, cache.stage_hits) == (5, 1)
    users = sorted(set(events["user_id"].astype(str)))[:40]
    pd.testing.assert_frame_equal(
        cached.recommend(users, 10, filter_seen=False),
        fresh.recommend(users, 10, filter_seen=False),
    )
    items = [str(i) for i in events["item_id"].unique()[:5]] * 8
    np.testing.assert_array_equal(cached.score_items(users, items), fresh.score_items(users, items))
    assert cached.training_summary_["rows"] == fresh.training_summary_["rows"]


def test_folds_build_each_window_once_and_give_the_same_figures(
    small_store, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    config = EvaluationConfig(
        models=["popularity", purchase_model()],
        k=5,
        folds=3,
        test_days=30,
        bootstrap_resamples=20,
        model_params={purchase_model(): dict(SMALL_RANKER)},
    )
    caches: list[WindowCache] = []

    def recorded() -> WindowCache:
        caches.append(WindowCache())
        return caches[-1]

    monkeypatch.setattr(runner, "WindowCache", recorded)
    cached = evaluate(small_store, config).to_json()
    monkeypatch.setattr(runner, "WindowCache", lambda: None)  # no cache: every window built
    uncached = evaluate(small_store, config).to_json()
    (cache,) = caches
    assert cache.frame_hits > 0 and cache.stage_hits == 2  # folds 2 and 3 reuse a stage
    assert cache.table_hits > 0  # and the order model its shopper tables
    assert cache.entries == 0  # nothing held after the run
    assert _figures(cached["folds"]) == _figures(uncached["folds"])
    assert _figures(cached["summary"]) == _figures(uncached["summary"])
    for part in (
        "models",
        "comparisons",
        "classifier",
        "order_classifier",
        "overall_probability",
        "segments",
    ):
        assert _figures(cached[part]) == _figures(uncached[part]), part
    assert cached["models"][purchase_model()]["ndcg@5"] > 0


def _figures(value: Any) -> Any:
    """``value`` without the timings and memory (the only things a cache may change)."""
    if isinstance(value, dict):
        return {k: _figures(v) for k, v in value.items() if k not in _MEASURED}
    if isinstance(value, list):
        return [_figures(v) for v in value]
    return value


_MEASURED = {"fit_seconds", "recommend_seconds", "fit_memory_mb", "model_mb"}
