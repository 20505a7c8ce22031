"""Similar items: k answers (filled from the next model), labelled scores, support."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_core.serving import RecommendationService
from recsys_core.similar import SCORE_LABELS
from recsys_core.training import TrainConfig, train_lab


@pytest.fixture(scope="module")
def service(small_store) -> RecommendationService:
    config = TrainConfig(
        models=["popularity", "itemknn", "als"],
        model_params={
            "itemknn": {"neighbours": 3, "num_threads": 1},
            "als": {"factors": 8, "iterations": 3, "num_threads": 1},
        },
    )
    return RecommendationService(train_lab(small_store, config))


def test_item_knn_short_list_is_filled_to_k_and_says_so(service, small_store) -> None:
    item = str(small_store.events["item_id"].value_counts().index[0])
    answer = service.similar(item, 10, "itemknn")
    items = answer["items"]
    assert len(items) == 10
    assert [i["rank"] for i in items] == list(range(1, 11))
    sources = [i["source"] for i in items]
    n_own = sources.count("itemknn")
    assert 0 < n_own <= 3 and sources[:n_own] == ["itemknn"] * n_own
    assert set(sources[n_own:]) == {"als"}
    assert "filled with" in answer["note"] and "from als" in answer["note"]
    assert len({i["item_id"] for i in items} | {item}) == 11  # no repeats, not the item itself
    for i in items:
        assert i["score_label"] == SCORE_LABELS[i["source"]]


def test_als_gives_k_itself_and_no_note(service, small_store) -> None:
    item = str(small_store.events["item_id"].value_counts().index[0])
    answer = service.similar(item, 10, "als")
    assert len(answer["items"]) == 10 and answer["note"] is None
    assert {i["score_label"] for i in answer["items"]} == {"ALS cosine"}


def test_support_counts_shoppers_with_both_items(service, small_store) -> None:
    events = small_store.events.astype({"user_id": str, "item_id": str})
    item = str(events["item_id"].value_counts().index[0])
    frame = service.similar_frame(item, 8, "itemknn")
    with_item = set(events.loc[events["item_id"] == item, "user_id"])
    expected = [
        len(with_item & set(events.loc[events["item_id"] == other, "user_id"]))
        for other in frame["item_id"]
    ]
    np.testing.assert_array_equal(frame["support"].to_numpy(), expected)
    assert frame["support"].gt(0).any()
