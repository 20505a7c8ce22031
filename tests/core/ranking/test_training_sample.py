"""Training on a seeded sample of shoppers, with candidates built in chunks of shoppers."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys_core.ranking import build_training_frame, training_frame
from recsys_core.ranking.ranker import RankerConfig
from tests.conftest import SMALL_RANKER, SMALL_RANKER_CUTOFF

CUTOFF = SMALL_RANKER_CUTOFF
FEW_WINDOWS = {**SMALL_RANKER, "training_windows": 2}


@pytest.fixture(scope="module")
def store(small_store) -> tuple[pd.DataFrame, pd.DataFrame]:  # type: ignore[no-untyped-def]
    return small_store.events, small_store.catalog


def test_chunked_candidates_give_the_same_training_rows(
    store: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    events, catalog = store
    config = RankerConfig(**FEW_WINDOWS)
    whole = build_training_frame(events, catalog, CUTOFF, config)
    monkeypatch.setattr(training_frame, "TRAINING_CHUNK", 17)
    chunked = build_training_frame(events, catalog, CUTOFF, config)
    pd.testing.assert_frame_equal(chunked, whole)


def test_training_on_a_seeded_sample_of_shoppers(store: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, catalog = store
    config = RankerConfig(**FEW_WINDOWS, training_shoppers=60)
    frame = build_training_frame(events, catalog, CUTOFF, config)
    sample = training_frame.training_sample(events[events["timestamp"] < CUTOFF], 60, 42)
    assert sample is not None and len(sample) == 60
    shoppers = set(frame["user_id"])
    assert shoppers <= set(sample) and 0 < len(shoppers) <= 60
    # the same seed gives the same rows; another seed another sample
    again = build_training_frame(events, catalog, CUTOFF, config)
    pd.testing.assert_frame_equal(again, frame)
    other = build_training_frame(
        events, catalog, CUTOFF, RankerConfig(**FEW_WINDOWS, training_shoppers=60, seed=7)
    )
    assert set(other["user_id"]) != shoppers
    # the full log's rows of the sampled shoppers are exactly the sample's rows
    whole = build_training_frame(events, catalog, CUTOFF, RankerConfig(**FEW_WINDOWS))
    mine = whole[whole["user_id"].isin(shoppers)].reset_index(drop=True)
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), mine)


def test_a_sample_as_large_as_the_log_is_every_shopper(
    store: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    events, _ = store
    assert training_frame.training_sample(events, 10**6, 42) is None
    assert training_frame.training_sample(events, None, 42) is None


def test_the_default_sample_bounds_big_logs_and_keeps_small_ones_whole(
    store: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """By default the ranker trains on at most 10,000 shoppers (the training rows of a
    30k-shopper grocery log held 8.5 GB in the fit); a smaller log trains on every shopper."""
    default = RankerConfig().training_shoppers
    assert default == 10_000
    events, _ = store
    assert training_frame.training_sample(events, default, 0) is None  # the small store: all
    big = pd.DataFrame({"user_id": [f"s{i}" for i in range(12_000)]})
    sample = training_frame.training_sample(big, default, 0)
    assert sample is not None and len(sample) == default and sample.is_unique
