"""The WordNet thesaurus hybrid search reads unfamiliar query words with."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.search import ProductSearch
from recsys_core.text_embeddings import CatalogTextEmbedding
from recsys_core.text_thesaurus import THESAURUS_FILE, Thesaurus, default_thesaurus

#: cushion <- pillow (hypernym), umbrella = brolly (synonym), timepiece -> clock (hyponym).
SYNSETS = [
    (["cushion"], []),
    (["pillow"], [0]),
    (["umbrella", "brolly"], []),
    (["timepiece", "timekeeper"], []),
    (["clock"], [3]),
    (["watch", "ticker"], [3]),
    (["mug"], []),
    (["style", "way"], []),
    (["drape"], [7]),  # the "manner" sense: leads to a catalog word, but only as a hypernym
    (["curtain", "drape"], []),
]
TITLES = [
    "Red Cushion Cover",
    "Floral Cushion",
    "Spotty Umbrella",
    "Folding Umbrella",
    "Wall Clock",
    "Alarm Clock",
    "Tea Mug",
    "Coffee Mug",
    "Lace Curtain",
    "Voile Curtain",
    "Style Ribbon",
    "Vintage Style Ribbon",
]
CATALOG = pd.DataFrame({"item_id": [f"i{n}" for n in range(len(TITLES))], "title": TITLES})


def test_related_words_come_in_two_tiers() -> None:
    words = Thesaurus(SYNSETS)
    assert words.related_tiers("pillow") == (["cushion"], [])
    assert words.related_tiers("brolly") == (["umbrella"], [])
    assert words.related_tiers("timepiece") == (["timekeeper"], ["clock", "watch", "ticker"])
    assert words.related_tiers("drape")[0] == ["curtain", "style", "way"]  # synonyms first
    assert words.related_tiers("xyzzy") == ([], [])
    assert "pillow" in words and "xyzzy" not in words


def test_queries_are_read_through_the_thesaurus_only_where_the_catalog_is_silent() -> None:
    calls = []

    def load() -> Thesaurus:
        calls.append(1)
        return Thesaurus(SYNSETS)

    emb = CatalogTextEmbedding(thesaurus=load).fit(TITLES)
    assert emb.query_words("mug") == ["mug"]
    assert calls == []  # a catalog word needs no thesaurus: not even loaded
    assert emb.query_words("pillow") == ["cushion"]
    assert emb.query_words("brolly") == ["umbrella"]
    assert emb.query_words("timepiece") == ["clock"]  # no catalog word in the first tier
    assert emb.query_words("drapes") == ["curtain", "style"]  # every sense, catalog words only
    assert calls == [1]  # loaded once, on first need
    assert CatalogTextEmbedding().fit(TITLES).query_words("brolly") == []


#: (lemmas, hypernyms, lexicographer file, sense numbers): 6 = noun.artifact, 7 = another topic.
KIN_SYNSETS = [
    (["container"], [], 6, [1]),  # 0
    (["drinking vessel"], [0], 6, [1]),  # 1
    (["mug"], [1], 6, [1]),  # 2: mug, a drinking vessel
    (["loving cup"], [1], 6, [1]),  # 3: its sister, a kind of cup by its head word
    (["cup"], [0], 6, [1]),  # 4: cup, right under container
    (["mug", "face"], [], 7, [2, 1]),  # 5: another topic: no kin through it
    (["face"], [], 6, [2]),  # 6
    (["box"], [0], 6, [1]),  # 7: a container: sister of cup and drinking vessel
    (["country house"], [], 6, [1]),  # 8
    (["shooting box", "lodge"], [8], 6, [1, 1]),  # 9: "box" but far from box's sense
    (["chateau"], [8], 6, [1]),  # 10
    (["tv", "box"], [], 6, [1, 2]),  # 11: box's second sense: not used
    (["radio"], [], 6, [1]),  # 12
]


def test_kin_are_synonyms_and_sisters_of_the_usual_sense_a_compound_naming_its_head() -> None:
    words = Thesaurus(KIN_SYNSETS)
    kin = words.kin({"mug", "cup", "box", "face", "chateau", "tv", "radio", "lodge"})
    assert kin["mug"] == ["cup"]  # via its sister "loving cup"
    assert kin["cup"] == ["mug", "box"]  # both ways; the smaller family (1/2) before 1/3
    assert "face" not in kin  # mug's face sense is in another topic
    assert kin["chateau"] == ["lodge"]  # "shooting box" does not name a box: far above it
    assert "tv" not in kin and kin["box"] == ["cup"]  # box's second sense (tv) is not used
    assert words.kin({"cup"}) == {} and words.kin(set()) == {}
    assert words.kin({"mug", "cup"}, max_sisters=1) == {}  # drinking vessel has 2 hyponyms


def test_hybrid_search_finds_synonyms_and_can_do_without_the_thesaurus() -> None:
    search = ProductSearch(CATALOG, thesaurus=Thesaurus(SYNSETS))
    assert set(search.search("brolly", 2)["item_id"]) == {"i2", "i3"}
    assert set(search.search("pillows", 2)["item_id"]) == {"i0", "i1"}
    assert ProductSearch(CATALOG, method="tfidf").search("brolly").empty
    assert ProductSearch(CATALOG, thesaurus=False).search("brolly").empty


def test_a_thesaurus_file_is_read_with_its_licence_header(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write("# licence line\n0001\tcushion\t\n0002\tpillow\t0001 0999\n")
    words = Thesaurus.load(path)
    assert words.related_tiers("pillow") == (["cushion"], [])  # an unknown offset is dropped
    with gzip.open(path, "wt", encoding="utf-8") as out:  # with topics and sense numbers
        out.write("0000\tcontainer\t\t6\t1\n0001\tdrinking vessel\t0000\t6\t1\n")
        out.write("0002\tmug\t0001\t6\t4\n0003\tloving cup\t0001\t6\t1\n")
        out.write("0004\tcup|cupful\t0000\t6\t1|2\n")
    assert Thesaurus.load(path).kin({"mug", "cup"}) == {"cup": ["mug"], "mug": ["cup"]}
    with pytest.raises(FileNotFoundError, match="bench_search_thesaurus.py"):
        Thesaurus.load(tmp_path / "missing.tsv.gz")


def test_the_shipped_thesaurus_carries_wordnets_licence_and_knows_shop_words() -> None:
    with gzip.open(THESAURUS_FILE, "rt", encoding="utf-8") as handle:
        head = "".join(next(handle) for _ in range(40))
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in head
    assert "Permission to use, copy, modify and distribute" in head
    words = default_thesaurus()
    assert "umbrella" in words.related_tiers("brolly")[0]
    assert "cushion" in words.related_tiers("pillow")[0]


@pytest.mark.parametrize(
    ("query", "word"),
    [("pillow", "cushion"), ("brolly", "umbrella"), ("skillet", "frying pan"), ("pail", "bucket")],
)
def test_default_search_finds_synonyms_on_online_retail(query: str, word: str) -> None:
    """The default search finds items by a word no title uses; TF-IDF finds none of them."""
    from recsys_core.data.builtin import load_dataset

    catalog = load_dataset("online-retail").catalog
    found = ProductSearch(catalog).search(query, 5)
    assert len(found) == 5
    assert found["title"].str.lower().str.contains(word).all(), found["title"].tolist()
    assert not found["title"].str.lower().str.contains(query).any()
    plain = ProductSearch(catalog, method="tfidf").search(query, 5)
    assert not plain["title"].str.lower().str.contains(word).any()


def test_mug_finds_cups_and_cup_finds_mugs_on_online_retail() -> None:
    """Issue 22: kin product types reach the top 20, below the exact matches (failed before:
    both are catalog words, never rewritten, so "mug" gave 20 mugs and "cup" 20 cups)."""
    from recsys_core.data.builtin import load_dataset

    catalog = load_dataset("online-retail").catalog
    search = ProductSearch(catalog)
    for query, own, kin in (("mug", "MUG", "CUP"), ("cup", "CUP", "MUG")):
        titles = search.search(query, 20)["title"].str.upper()
        assert titles.str.contains(rf"\b{kin}S?\b").any(), (query, titles.tolist())
        assert titles.head(5).str.contains(rf"\b{own}S?\b").all()  # exact matches first
        assert not titles.head(5).str.contains(rf"\b{kin}S?\b").any()
    off = ProductSearch(catalog, kin_weight=0).search("mug", 20)["title"].str.upper()
    assert not off.str.contains(r"\bCUPS?\b").any()  # kin_weight=0: the old reading


def test_personalised_search_reranks_synonym_matches() -> None:
    """A synonym query is re-ranked for a shopper like any other: only its relevant matches."""
    search = ProductSearch(CATALOG, thesaurus=Thesaurus(SYNSETS))

    def prob(user: str, items: list[str]) -> np.ndarray:
        return np.array([0.9 if i == "i3" else 0.1 for i in items])

    plain = search.search("brolly")
    mine = search.personalised("brolly", "u1", prob)
    assert set(mine["item_id"]) == set(plain["item_id"]) == {"i2", "i3"}
    assert mine["item_id"].tolist()[0] == "i3"
    assert mine["reranked"].all()
