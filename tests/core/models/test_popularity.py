"""Popularity specifics: the vectorised unseen-top-k matches a plain per-user loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core.columns import Columns
from recsys_core.interactions import InteractionMatrix
from recsys_core.models import PopularityRecommender


@pytest.fixture(scope="module")
def matrix() -> InteractionMatrix:
    """Random purchases with skewed popularity, heavy and light users, many ties."""
    rng = np.random.default_rng(11)
    n_events = 3000
    events = pd.DataFrame(
        {
            Columns.USER: [f"u{u}" for u in rng.zipf(1.3, n_events) % 200],
            Columns.ITEM: [f"i{i}" for i in rng.zipf(1.5, n_events) % 60],
            Columns.EVENT: "purchase",
        }
    )
    return InteractionMatrix.from_events(events)


def loop_top_k(matrix: InteractionMatrix, user: str, k: int) -> list[str]:
    """Reference: walk the popularity ranking, skipping the user's items."""
    counts = np.bincount(matrix.matrix.indices, minlength=matrix.shape[1])
    ranking = sorted(range(matrix.shape[1]), key=lambda i: (-counts[i], i))
    seen = set(matrix.user_items(int(matrix.users.to_internal([user])[0])))
    unseen = [i for i in ranking if i not in seen and counts[i] > 0]
    return [str(x) for x in matrix.items.to_external(unseen[:k])]


@pytest.mark.parametrize("k", [1, 10, 59, 100])
def test_unseen_top_k_matches_a_per_user_loop(matrix: InteractionMatrix, k: int) -> None:
    model = PopularityRecommender().fit(matrix)
    users = list(matrix.users.external_ids)

    reco = model.recommend(users, k=k, filter_seen=True)

    got = reco.groupby(Columns.USER)[Columns.ITEM].apply(list).to_dict()
    for user in users:
        assert got.get(user, []) == loop_top_k(matrix, user, k), user


def test_scores_are_distinct_user_counts(matrix: InteractionMatrix) -> None:
    model = PopularityRecommender().fit(matrix)
    reco = model.recommend(["nobody"], k=3, filter_seen=True)

    counts = np.bincount(matrix.matrix.indices, minlength=matrix.shape[1])
    expected = np.sort(counts)[::-1][:3].astype(float)
    np.testing.assert_array_equal(reco[Columns.SCORE].to_numpy(), expected)
