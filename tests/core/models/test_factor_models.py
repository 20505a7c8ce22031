"""ALS and BPR specifics: exposed factors, explanations, reproducibility across threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.columns import Columns
from recsys_core.errors import UnknownItemError, UnknownUserError
from recsys_core.interactions import InteractionMatrix
from recsys_core.models import ALSRecommender, BPRRecommender, load_model


@pytest.fixture(scope="module")
def matrix() -> InteractionMatrix:
    """40 users in two taste groups over 20 items, with a few views mixed in."""
    rng = np.random.default_rng(3)
    rows = []
    for u in range(40):
        group = u % 2
        items = rng.choice(np.arange(group, 20, 2), size=6, replace=False)
        rows += [(f"u{u}", f"i{i}", "purchase") for i in items]
        rows.append((f"u{u}", f"i{rng.integers(20)}", "view"))
    events = pd.DataFrame(rows, columns=[Columns.USER, Columns.ITEM, Columns.EVENT])
    return InteractionMatrix.from_events(events)


@pytest.fixture(scope="module")
def als(matrix: InteractionMatrix) -> ALSRecommender:
    return ALSRecommender(factors=8, iterations=10, regularization=0.1, seed=1).fit(matrix)


def test_als_exposes_factor_arrays(als: ALSRecommender, matrix: InteractionMatrix) -> None:
    assert isinstance(als.user_factors_, np.ndarray)
    assert als.user_factors_.shape == (matrix.shape[0], 8)
    assert als.item_factors_.shape == (matrix.shape[1], 8)
    user, item = matrix.users.to_internal(["u7"])[0], matrix.items.to_internal(["i3"])[0]
    expected = float(als.user_factors_[user] @ als.item_factors_[item])
    assert als.score_items(["u7"], ["i3"])[0] == pytest.approx(expected, rel=1e-5)


def test_bpr_item_factors_carry_a_bias_column(matrix: InteractionMatrix) -> None:
    bpr = BPRRecommender(factors=4, iterations=5, seed=1).fit(matrix)

    assert bpr.item_factors_.shape == (matrix.shape[1], 5)
    np.testing.assert_array_equal(bpr.user_factors_[:, -1], 1.0)


def test_explain_names_the_users_own_past_items(
    als: ALSRecommender, matrix: InteractionMatrix
) -> None:
    top = als.recommend(["u0"], k=1, filter_seen=True)[Columns.ITEM].iloc[0]
    reasons = als.explain("u0", top, k=3)

    history = set(als.seen_items("u0"))
    assert 1 <= len(reasons) <= 3
    assert all(isinstance(item, str) and item in history for item, _ in reasons)
    contributions = [c for _, c in reasons]
    assert contributions == sorted(contributions, reverse=True)
    assert len(als.explain("u0", top, k=100)) == len(history)


def test_explain_unknown_ids_raise_typed_errors(als: ALSRecommender) -> None:
    with pytest.raises(UnknownUserError, match="nobody"):
        als.explain("nobody", "i0")
    with pytest.raises(UnknownItemError, match="nope"):
        als.explain("u0", "nope")


def test_explain_works_after_loading(als: ALSRecommender, tmp_path: Path) -> None:
    als.save(tmp_path)
    loaded = load_model(tmp_path)

    assert isinstance(loaded, ALSRecommender)
    assert loaded.explain("u1", "i2") == als.explain("u1", "i2")


def test_als_is_identical_for_any_thread_count(matrix: InteractionMatrix) -> None:
    # each user's / item's least-squares solve is independent, so threads do not race
    one = ALSRecommender(factors=8, iterations=5, seed=5, num_threads=1).fit(matrix)
    two = ALSRecommender(factors=8, iterations=5, seed=5, num_threads=2).fit(matrix)

    np.testing.assert_array_equal(one.user_factors_, two.user_factors_)
    np.testing.assert_array_equal(one.item_factors_, two.item_factors_)


def test_a_different_seed_gives_a_different_model(matrix: InteractionMatrix) -> None:
    first = ALSRecommender(factors=8, iterations=5, seed=5).fit(matrix)
    second = ALSRecommender(factors=8, iterations=5, seed=6).fit(matrix)

    assert not np.array_equal(first.item_factors_, second.item_factors_)
