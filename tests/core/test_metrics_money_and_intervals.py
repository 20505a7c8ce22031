"""revenue@k on a hand-worked example; bootstrap intervals against scipy and paired."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import bootstrap

from recsys_core.metrics import (
    UserBootstrap,
    average_recommendation_popularity,
    novelty,
    per_user_beyond_accuracy,
    per_user_revenue,
    percentile_interval,
    revenue_metrics,
)


def _reco(lists: dict[str, list[str]]) -> pd.DataFrame:
    rows = [
        (user, item, float(10 - pos), pos + 1)
        for user, items in lists.items()
        for pos, item in enumerate(items)
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "score", "rank"])


def test_revenue_hand_worked() -> None:
    # k = 2. Ann's list: mug, lamp, (rug at rank 3, beyond k).
    #   She bought 3 mugs at 2.50 and later 1 more at 2.50 (reorders count) = 10.00, and a
    #   rug for 40.00 (rank 3: not counted). Lamp not bought. -> 10.00
    # Bob's list: lamp, mug. He bought 2 lamps at 12.00 = 24.00 -> 24.00
    # Cat's list: mug. She bought nothing listed -> 0
    # revenue@2 = (10 + 24 + 0) / 3 = 11.333..., total 34.00
    reco = _reco({"ann": ["mug", "lamp", "rug"], "bob": ["lamp", "mug"], "cat": ["mug"]})
    purchases = pd.DataFrame(
        {
            "user_id": ["ann", "ann", "ann", "bob", "cat"],
            "item_id": ["mug", "mug", "rug", "lamp", "plate"],
            "revenue": [3 * 2.50, 1 * 2.50, 40.0, 2 * 12.0, 5.0],
        }
    )
    users = ["ann", "bob", "cat"]
    per_user = per_user_revenue(reco, purchases, 2, users=users)
    assert per_user.to_dict() == {"ann": 10.0, "bob": 24.0, "cat": 0.0}
    metrics = revenue_metrics(reco, purchases, 2, users=users)
    assert metrics["revenue@2"] == pytest.approx(34.0 / 3)
    assert metrics["revenue_total@2"] == pytest.approx(34.0)
    assert revenue_metrics(reco, purchases, 3, users=users)["revenue_total@3"] == 74.0


def test_per_user_beyond_accuracy_averages_to_the_list_metrics() -> None:
    reco = _reco({"a": ["x", "y"], "b": ["y", "z", "w"]})
    popularity = pd.Series({"x": 4, "y": 2, "z": 1})
    frame = per_user_beyond_accuracy(
        reco, 3, users=["a", "b", "c"], item_popularity=popularity, n_users=8
    )
    assert np.isnan(frame.loc["c"]).all()  # no list
    assert frame["novelty@3"].mean() == pytest.approx(
        novelty(reco, 3, item_popularity=popularity, n_users=8)
    )
    assert frame["arp@3"].mean() == pytest.approx(
        average_recommendation_popularity(reco, 3, item_popularity=popularity)
    )


def test_bootstrap_interval_agrees_with_scipy() -> None:
    rng = np.random.default_rng(3)
    values = rng.exponential(size=800)
    ours = percentile_interval(UserBootstrap(800, n_resamples=4000, seed=1).means(values)[:, 0])
    theirs = bootstrap(
        (values,),
        np.mean,
        n_resamples=4000,
        method="percentile",
        rng=np.random.default_rng(2),
    ).confidence_interval
    assert ours[0] == pytest.approx(theirs.low, abs=0.015)
    assert ours[1] == pytest.approx(theirs.high, abs=0.015)
    assert ours[0] < values.mean() < ours[1]


def test_resamples_are_shared_so_differences_are_paired() -> None:
    """Two models whose per-user scores differ by a small constant: the paired interval of
    the difference is tight, far tighter than either model's own interval."""
    rng = np.random.default_rng(0)
    a = rng.uniform(size=500)
    b = a - 0.01
    boot = UserBootstrap(500, n_resamples=500, seed=42)
    samples_a, samples_b = boot.means(a)[:, 0], boot.means(b)[:, 0]
    low, high = percentile_interval(samples_a - samples_b)
    assert low == pytest.approx(0.01) and high == pytest.approx(0.01)
    own = percentile_interval(samples_a)
    assert own[1] - own[0] > 0.03
    # NaN per-user values (e.g. diversity of a one-item list) are left out of the mean
    with_nan = np.where(np.arange(500) % 2 == 0, np.nan, a)
    means = boot.means(with_nan)[:, 0]
    assert np.all(np.isfinite(means))
    assert np.nanmean(with_nan) == pytest.approx(np.median(means), abs=0.02)
