"""Split invariants: nothing lost or duplicated, no leakage across the cutoff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core.data.loaders import online_retail_from_frame
from recsys_core.data.schema import validate_events
from recsys_core.errors import DataValidationError
from recsys_core.split import random_split, rolling_origin_splits, split_events, temporal_split


@pytest.fixture(scope="module")
def retail_events(online_retail_slice: pd.DataFrame) -> pd.DataFrame:
    return online_retail_from_frame(online_retail_slice).events


def _row_keys(df: pd.DataFrame) -> pd.Index:
    return pd.Index(df.index)


def test_temporal_split_invariants(retail_events: pd.DataFrame) -> None:
    split = temporal_split(retail_events, test_days=30)
    assert split.cutoff == (retail_events.timestamp.max() - pd.Timedelta(days=30)).normalize()
    assert (split.train.timestamp < split.cutoff).all()
    assert (split.test.timestamp >= split.cutoff).all()
    assert (split.cold_test.timestamp >= split.cutoff).all()
    # every test user has training history; cold users have none
    train_users = set(split.train.user_id.astype(str))
    assert set(split.test.user_id.astype(str)) <= train_users
    assert not set(split.cold_test.user_id.astype(str)) & train_users
    # nothing lost, nothing duplicated
    parts = [split.train, split.test, split.cold_test]
    assert sum(map(len, parts)) == len(retail_events)
    joined = pd.concat([_row_keys(p).to_series() for p in parts])
    assert joined.is_unique
    assert split.describe()["test_users"] == len(split.test_users) > 0


def test_online_retail_protocol_cutoff(online_retail_raw: pd.DataFrame) -> None:
    events = online_retail_from_frame(online_retail_raw).events
    split = temporal_split(events, test_days=30, test_events=("purchase",))
    assert split.cutoff == pd.Timestamp("2011-11-09")


def test_explicit_cutoff_outside_the_log_is_a_clear_error(retail_events: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="Choose a cutoff inside"):
        temporal_split(retail_events, cutoff="2030-01-01")


def test_random_split_is_seeded_and_complete() -> None:
    rng = np.random.default_rng(0)
    df = validate_events(
        pd.DataFrame(
            {
                "user_id": rng.integers(0, 50, 2000).astype(str),
                "item_id": rng.integers(0, 80, 2000).astype(str),
                "event": "purchase",
            }
        )
    )
    a = random_split(df, test_fraction=0.2, seed=1)
    b = random_split(df, test_fraction=0.2, seed=1)
    c = random_split(df, test_fraction=0.2, seed=2)
    assert a.train.index.equals(b.train.index)
    assert not a.train.index.equals(c.train.index)
    assert len(a.train) + len(a.test) == len(df)
    assert a.train.index.intersection(a.test.index).empty
    assert set(a.test.user_id.astype(str)) <= set(a.train.user_id.astype(str))
    share = len(a.test) / len(df)
    assert 0.15 < share < 0.25
    assert a.describe()["method"] == "random" and "no timestamps" in a.describe()["note"]


def test_split_events_falls_back_to_random_without_timestamps() -> None:
    df = validate_events(
        pd.DataFrame(
            {"user_id": ["a"] * 5 + ["b"] * 5, "item_id": list("abcdeabcde"), "event": "view"}
        )
    )
    assert split_events(df).method == "random"


# ---------------------------------------------------------------- rolling-origin folds


def test_rolling_origin_folds_are_consecutive_windows_ending_at_the_log_end(
    retail_events: pd.DataFrame,
) -> None:
    folds = rolling_origin_splits(retail_events, 3, test_days=10)

    last = split_events(retail_events, test_days=10)
    assert folds[-1].cutoff == last.cutoff and len(folds[-1].test) == len(last.test)
    assert "test_end" not in folds[-1].params  # the last window runs to the log's end
    window = pd.Timedelta(days=10)
    for earlier, later in zip(folds, folds[1:], strict=False):
        assert later.cutoff - earlier.cutoff == window
        assert earlier.params["test_end"] == str(later.cutoff)
        # the earlier fold's test window is exactly what the later fold adds to training
        assert (earlier.test.timestamp < later.cutoff).all()
        assert (earlier.cold_test.timestamp < later.cutoff).all()
        added = later.train[later.train.timestamp >= earlier.cutoff]
        assert len(added) == len(earlier.test) + len(earlier.cold_test)
    for fold in folds:
        assert (fold.train.timestamp < fold.cutoff).all()
        assert (fold.test.timestamp >= fold.cutoff).all()


def test_one_fold_is_the_plain_split(retail_events: pd.DataFrame) -> None:
    (only,) = rolling_origin_splits(retail_events, 1, test_days=30, test_events=("purchase",))
    plain = split_events(retail_events, test_days=30, test_events=("purchase",))

    assert only.describe() == plain.describe()
    pd.testing.assert_frame_equal(only.test, plain.test)


def test_folds_without_timestamps_are_seeded_random_hold_outs(
    retail_events: pd.DataFrame,
) -> None:
    untimed = retail_events.drop(columns="timestamp")
    folds = rolling_origin_splits(untimed, 3, seed=5)
    again = rolling_origin_splits(untimed, 3, seed=5)

    assert [f.method for f in folds] == ["random"] * 3
    assert [f.params["seed"] for f in folds] == [7, 6, 5]  # the last is the one-split seed
    for a, b in zip(folds, again, strict=True):
        pd.testing.assert_index_equal(a.test.index, b.test.index)
    assert not folds[0].test.index.equals(folds[1].test.index)


def test_too_many_folds_name_the_fold_and_the_fix(retail_events: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match=r"fold 1 of 40 .*--folds"):
        rolling_origin_splits(retail_events, 40, test_days=30)
    with pytest.raises(DataValidationError, match="at least 1"):
        rolling_origin_splits(retail_events, 0)
