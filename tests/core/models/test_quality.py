"""On data with taste structure, the personalised models beat the popularity baseline.

Shoppers belong to one of six taste groups; 80% of their purchases come from their group's
items (popular ones more often) and 20% from the whole catalog. Three purchases per shopper
are held out; recall@10 on them is compared.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys_core.columns import Columns
from recsys_core.interactions import InteractionMatrix
from recsys_core.models import create_model

N_USERS, N_ITEMS, N_GROUPS, PER_USER, HELD_OUT = 400, 120, 6, 15, 3


def grouped_purchases(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) purchase logs of shoppers with group tastes."""
    rng = np.random.default_rng(seed)
    items = np.arange(N_ITEMS)
    weight = 1.0 / (1 + items // N_GROUPS)  # Zipf-like popularity inside each group
    rows = []
    for user in range(N_USERS):
        own = items[items % N_GROUPS == user % N_GROUPS]
        chosen = set(
            rng.choice(
                own, size=int(PER_USER * 0.8), replace=False, p=weight[own] / weight[own].sum()
            )
        )
        while len(chosen) < PER_USER:
            chosen.add(int(rng.choice(items, p=weight / weight.sum())))
        rows += [(f"u{user}", f"i{item}", "purchase") for item in sorted(chosen)]
    events = pd.DataFrame(rows, columns=[Columns.USER, Columns.ITEM, Columns.EVENT])
    test = events.groupby(Columns.USER, group_keys=False).sample(n=HELD_OUT, random_state=seed)
    return events.drop(test.index), test


def recall_at_10(name: str, params: dict[str, Any]) -> float:
    train, test = grouped_purchases()
    model = create_model(name, **params).fit(InteractionMatrix.from_events(train))
    truth = test.groupby(Columns.USER)[Columns.ITEM].apply(set)
    reco = model.recommend(truth.index.tolist(), k=10, filter_seen=True)
    hits = reco.groupby(Columns.USER)[Columns.ITEM].apply(set)
    return float(
        np.mean(
            [len(hits.get(user, set()) & truth[user]) / len(truth[user]) for user in truth.index]
        )
    )


@pytest.fixture(scope="module")
def popularity_recall() -> float:
    return recall_at_10("popularity", {})


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("itemknn", {}),
        ("itemknn", {"weighting": "cosine"}),
        ("als", {"factors": 16, "regularization": 0.1}),
        ("bpr", {"factors": 16, "learning_rate": 0.05}),
    ],
)
def test_personalised_model_beats_popularity(
    name: str, params: dict[str, Any], popularity_recall: float
) -> None:
    assert recall_at_10(name, params) > popularity_recall + 0.2
