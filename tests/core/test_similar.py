"""Similar items: k answers (filled from the next model), labelled scores, support."""

from __future__ import annotations

import numpy as np
import pandas as pd
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


@pytest.fixture(scope="module")
def service_with_a_new_item(small_store) -> tuple[RecommendationService, str, str]:
    """A service whose catalog holds an item no shopper has bought yet (a copy's title)."""
    from recsys_core.data.schema import Dataset

    catalog = small_store.catalog
    twin = catalog.iloc[0]
    new = catalog.iloc[[0]].assign(item_id="NEW-1")
    data = Dataset(
        "demo-small-new", small_store.events, pd.concat([catalog, new], ignore_index=True)
    )
    config = TrainConfig(
        models=["popularity", "als"],
        model_params={"als": {"factors": 8, "iterations": 3, "num_threads": 1}},
    )
    return RecommendationService(train_lab(data, config)), "NEW-1", str(twin["item_id"])


def test_an_item_without_purchases_gets_similar_items_by_title(service_with_a_new_item) -> None:
    from recsys_core.errors import UnknownItemError
    from recsys_core.similar import TEXT_NOTE, TEXT_SOURCE

    service, new, twin = service_with_a_new_item
    answer = service.similar(new, 5, "als")
    items = answer["items"]
    assert len(items) == 5 and [i["rank"] for i in items] == [1, 2, 3, 4, 5]
    assert items[0]["item_id"] == twin  # the same title ranks first
    assert {i["source"] for i in items} == {TEXT_SOURCE}
    assert all(i["score_label"] == SCORE_LABELS[TEXT_SOURCE] for i in items)
    assert all(i["support"] == 0 for i in items)
    assert answer["note"] == TEXT_NOTE and new not in {i["item_id"] for i in items}
    frame = service.similar_frame(new, 5, "als")
    assert frame["item_id"].tolist() == [i["item_id"] for i in items]
    assert frame.attrs["note"] == TEXT_NOTE
    # an item with purchases still gets the model's answer; one not in the catalog, an error
    assert service.similar(twin, 5, "als")["items"][0]["source"] == "als"
    with pytest.raises(UnknownItemError):
        service.similar("not-in-the-catalog", 5, "als")


def test_search_answer_names_its_method(service_with_a_new_item) -> None:
    service, _, twin = service_with_a_new_item
    word = service.title(twin).split()[-1]
    hybrid = service.search_answer(word, None, 5)
    tfidf = service.search_answer(word, None, 5, method="tfidf")
    assert hybrid["method"] == "hybrid" and tfidf["method"] == "tfidf"
    assert hybrid["items"] and tfidf["items"] and not hybrid["degraded"]
