"""The strong simple baselines: buy-again (own items by count then recency) and EASE."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core.columns import Columns
from recsys_core.errors import ConfigError, DataValidationError
from recsys_core.interactions import InteractionMatrix
from recsys_core.models import create_model
from recsys_core.models.ease import CatalogTooLargeError


def _events(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[Columns.USER, Columns.ITEM, Columns.EVENT, "ts"])
    frame[Columns.TIMESTAMP] = pd.to_datetime(frame.pop("ts"))
    return frame


@pytest.fixture
def shop() -> pd.DataFrame:
    # a: bought x twice, y twice (y later), z once; b and c make p the most popular item
    return _events(
        [
            ("a", "x", "purchase", "2024-01-01"),
            ("a", "x", "purchase", "2024-01-02"),
            ("a", "y", "purchase", "2024-01-03"),
            ("a", "y", "purchase", "2024-01-09"),
            ("a", "z", "purchase", "2024-01-10"),
            ("b", "p", "purchase", "2024-01-04"),
            ("b", "q", "purchase", "2024-01-04"),
            ("c", "p", "purchase", "2024-01-05"),
            ("c", "x", "purchase", "2024-01-05"),
        ]
    )


def test_buy_again_ranks_own_items_by_count_then_recency_then_popularity(
    shop: pd.DataFrame,
) -> None:
    model = create_model("buy-again").fit_log(shop)

    reco = model.recommend(["a"], k=5, filter_seen=False)

    # y and x both twice: y was bought last; then z once; then the most popular unowned items
    assert reco[Columns.ITEM].tolist() == ["y", "x", "z", "p", "q"]
    assert (reco[Columns.SCORE].iloc[:3] > 1).all() and (reco[Columns.SCORE].iloc[3:] < 1).all()


def test_buy_again_with_seen_filter_is_popularity_without_own_items(shop: pd.DataFrame) -> None:
    model = create_model("buy-again").fit_log(shop)
    popularity = create_model("popularity").fit_log(shop)

    mine = model.recommend(["a", "b"], k=3, filter_seen=True)
    theirs = popularity.recommend(["a", "b"], k=3, filter_seen=True)

    pd.testing.assert_series_equal(mine[Columns.ITEM], theirs[Columns.ITEM])


def test_buy_again_time_decay_prefers_recent_purchases(shop: pd.DataFrame) -> None:
    # x bought on days 1 and 2, z once on day 10: with a 1-day half-life z outweighs x
    decayed = create_model("buy-again", half_life_days=1.0).fit_log(shop, cutoff="2024-01-11")
    plain = create_model("buy-again").fit_log(shop, cutoff="2024-01-11")

    assert decayed.recommend(["a"], k=3, filter_seen=False)[Columns.ITEM].tolist() == [
        "z",
        "y",
        "x",
    ]
    assert plain.recommend(["a"], k=3, filter_seen=False)[Columns.ITEM].tolist()[2] == "z"


def test_buy_again_without_timestamps_uses_the_matrix_counts(shop: pd.DataFrame) -> None:
    model = create_model("buy-again").fit(InteractionMatrix.from_events(shop))

    items = model.recommend(["a"], k=3, filter_seen=False)[Columns.ITEM].tolist()

    assert set(items[:2]) == {"x", "y"} and items[2] == "z"


def _ease_by_hand(x: np.ndarray, l2: float) -> np.ndarray:
    """Steck (2019), eq. 8, written out: B = I - P diagMat(1 / diag(P))."""
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    return np.eye(x.shape[1]) - p / np.diag(p)


def test_ease_matches_the_closed_form_on_a_tiny_matrix(shop: pd.DataFrame) -> None:
    matrix = InteractionMatrix.from_events(shop)
    x = (matrix.matrix.toarray() > 0).astype(np.float64)
    model = create_model("ease", l2=0.5).fit(matrix)

    expected = _ease_by_hand(x, 0.5)

    np.testing.assert_allclose(np.diag(expected), 0.0, atol=1e-12)
    np.testing.assert_allclose(model.weights_, expected, rtol=1e-5, atol=1e-6)
    users = np.repeat(matrix.users.external_ids, len(matrix.items))
    items = np.tile(matrix.items.external_ids, len(matrix.users))
    np.testing.assert_allclose(
        model.score_items(users, items), (x @ expected).ravel(), rtol=1e-5, atol=1e-6
    )
    # a hand-checkable case: two items always bought together, lambda 1:
    # G = [[2, 2], [2, 2]] + I, P = G^-1, B_01 = -P_01 / P_11 = 2 / 3
    pair = create_model("ease", l2=1.0).fit_log(
        _events([(u, i, "purchase", "2024-01-01") for u in ("u1", "u2") for i in ("i1", "i2")])
    )
    np.testing.assert_allclose(pair.weights_, [[0.0, 2 / 3], [2 / 3, 0.0]], rtol=1e-6)


def test_ease_refuses_a_catalog_above_max_items(shop: pd.DataFrame) -> None:
    model = create_model("ease", max_items=3)

    with pytest.raises(ConfigError, match=r"max_items") as err:
        model.fit_log(shop)

    assert isinstance(err.value, CatalogTooLargeError)
    assert isinstance(err.value, DataValidationError)  # evaluate skips it, keeps the others
    assert "5 x 5" in str(err.value)
