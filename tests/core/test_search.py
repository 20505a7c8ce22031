"""Product search: lexical retrieval and per-shopper re-ranking."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_core.search import ProductSearch

CATALOG = pd.DataFrame(
    {
        "item_id": ["a", "b", "c", "d"],
        "title": ["Red Coffee Mug", "Blue Tea Mugs", "Garden Chair", "Candle Holder"],
        "category": ["Kitchen", "Kitchen", "Garden", "Home"],
    }
)


def test_words_and_plurals_match() -> None:
    found = ProductSearch(CATALOG).search("mug")
    assert set(found["item_id"]) == {"a", "b"}
    assert found["rank"].tolist() == [1, 2]
    assert ProductSearch(CATALOG).search("garden")["item_id"].tolist() == ["c"]


def test_typos_fall_back_to_character_ngrams_and_junk_finds_nothing() -> None:
    search = ProductSearch(CATALOG)
    assert search.search("candel holdr")["item_id"].tolist()[0] == "d"
    assert search.search("xyzzy").empty
    assert search.search("   ").empty


def test_personalised_reranks_by_probability() -> None:
    search = ProductSearch(CATALOG)

    def prob(user: str, items: list[str]) -> np.ndarray:
        return np.array([0.9 if i == "b" else 0.1 for i in items])

    plain = search.search("mug")
    mine = search.personalised("mug", "u1", prob)
    assert plain["item_id"].tolist()[0] == "a"
    assert mine["item_id"].tolist() == ["b", "a"]
    assert mine["lexical_rank"].tolist() == [2, 1]


def test_search_on_demo_store_titles(small_store) -> None:
    search = ProductSearch(small_store.catalog)
    word = small_store.catalog["title"].iloc[0].split()[-1]
    found = search.search(word, k=5)
    assert len(found) > 0
    assert found["title"].str.contains(word, case=False).iloc[0]
