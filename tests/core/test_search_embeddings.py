"""Hybrid search: catalog-learnt text embeddings, query reading, labelled queries, cold items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_core.errors import ConfigError
from recsys_core.search import ProductSearch
from recsys_core.search_quality import load_labelled_queries, search_quality
from recsys_core.text_embeddings import CatalogTextEmbedding, item_shoppers

QUERIES = Path(__file__).resolve().parents[1] / "data" / "search_queries.csv"

#: Mugs and cups share no word but are bought by the same shoppers; chairs by others.
TITLES = [
    "Red Spotty Mug",
    "Blue Striped Mug",
    "Green Mug Large",
    "Tea Cup And Saucer",
    "Paper Cup Set",
    "Garden Chair Wood",
    "Folding Garden Chair",
    "Chair Cushion Pad",
    "Hanging Doormat Hearts",
    "Silver Photo Frame",
    "Wooden Picture Frame",
    "Diamante Necklace",
    "Crystal Necklace",
]
CATALOG = pd.DataFrame({"item_id": [f"i{n}" for n in range(len(TITLES))], "title": TITLES})


def _bought() -> sp.csr_matrix:
    """items x shoppers: shoppers 0-9 buy mugs and cups, 10-19 chairs, 20-29 the rest."""
    rows, cols = [], []
    for shopper in range(30):
        group = range(0, 5) if shopper < 10 else range(5, 8) if shopper < 20 else range(8, 13)
        for item in group:
            if (item + shopper) % 3:  # not everyone buys everything
                rows.append(item)
                cols.append(shopper)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(TITLES), 30))


def test_co_purchases_put_cups_near_mugs_without_a_shared_word() -> None:
    emb = CatalogTextEmbedding(cooccurrence_dim=4, purchase_dim=4).fit(TITLES, _bought())
    scores = emb.scores("mug")
    cups, chairs = scores[[3, 4]], scores[[5, 6]]
    assert cups.min() > chairs.max()
    # without purchases the words only know their titles: no such pull
    plain = CatalogTextEmbedding(cooccurrence_dim=4).fit(TITLES).scores("mug")
    assert plain[[3, 4]].max() < cups.min()


def test_the_same_seed_gives_the_same_vectors() -> None:
    a = CatalogTextEmbedding(seed=3).fit(TITLES, _bought()).item_vectors_
    b = CatalogTextEmbedding(seed=3).fit(TITLES, _bought()).item_vectors_
    np.testing.assert_array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_queries_are_read_in_the_catalogs_words() -> None:
    emb = CatalogTextEmbedding().fit(TITLES)
    assert emb.query_words("neckless") == ["necklace"]  # misspelling
    assert "doormat" in emb.query_words("door mat")  # two words joined
    assert emb.query_words("photoframe") == ["photo", "frame"]  # one word split
    assert emb.query_words("frame for the photo") == ["frame", "photo"]  # stop words dropped
    assert emb.query_words("xyzzy") == []
    assert not emb.encode_query("xyzzy").any()


def test_hybrid_finds_synonyms_tfidf_cannot_and_keeps_exact_matches_first() -> None:
    hybrid = ProductSearch(CATALOG, method="hybrid", item_shoppers=_bought())
    tfidf = ProductSearch(CATALOG, method="tfidf")
    plain = tfidf.search("mug")
    assert set(plain["item_id"]) == {"i0", "i1", "i2"}
    found = hybrid.search("mug", k=5)
    assert set(found["item_id"][:3]) == {"i0", "i1", "i2"}  # the mugs themselves first
    assert {"i3", "i4"} & set(found["item_id"])  # and cups, which share no word
    assert not {"i5", "i6"} & set(found["item_id"])  # not chairs
    assert set(hybrid.search("neckless", 2)["item_id"]) == {"i11", "i12"}
    assert hybrid.search("xyzzy").empty
    assert hybrid.search("door mat", 1)["item_id"].tolist() == ["i8"]


def test_unknown_method_and_damaged_catalog() -> None:
    with pytest.raises(ConfigError, match="unknown search method"):
        ProductSearch(CATALOG, method="bm25")  # type: ignore[arg-type]
    broken = pd.DataFrame({"item_id": ["a", "b"], "title": ["", " "]})
    search = ProductSearch(broken, method="hybrid")
    assert search.problem is not None and "no searchable titles" in search.problem
    assert search.search("mug").empty
    assert search.similar_by_text("a").empty


def test_similar_by_text_for_an_item_without_purchases() -> None:
    catalog = pd.concat(
        [CATALOG, pd.DataFrame({"item_id": ["new"], "title": ["Pink Spotty Mug"]})],
        ignore_index=True,
    )
    bought = sp.vstack([_bought(), sp.csr_matrix((1, 30))]).tocsr()  # "new": no purchases
    search = ProductSearch(catalog, method="hybrid", item_shoppers=bought)
    found = search.similar_by_text("new", k=4)
    assert "new" not in set(found["item_id"])
    assert found["item_id"].iloc[0] == "i0"  # "Red Spotty Mug"
    assert set(found["item_id"][:3]) <= {"i0", "i1", "i2", "i3", "i4"}
    assert search.similar_by_text("nope").empty
    # an item whose title was lost (partly damaged catalog) finds nothing, and does not fail
    damaged = catalog.assign(title=catalog["title"].where(catalog["item_id"] != "new", ""))
    assert ProductSearch(damaged, method="hybrid").similar_by_text("new").empty


def test_item_shoppers_aligns_a_models_matrix_with_the_catalog() -> None:
    user_items = sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 0]], dtype=np.float32))
    out = item_shoppers(["z", "b", "new", "a"], ["a", "b", "z"], user_items)
    assert out.shape == (4, 2)
    np.testing.assert_array_equal(out.toarray(), [[2, 0], [0, 3], [0, 0], [1, 0]])


def test_labelled_queries_are_derived_by_rule_and_scored(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text("query,kind,relevant\nmug,synonym,\\b(MUG|CUP)\\b\nchair,exact,CHAIR\n")
    queries = load_labelled_queries(path, CATALOG)
    assert queries[0].relevant == {"i0", "i1", "i2", "i3", "i4"}

    def search(query: str, k: int) -> pd.DataFrame:  # a chair first, then two mugs
        return pd.DataFrame({"item_id": ["i5", "i0", "i1"]})

    quality = search_quality(search, queries, k=10).set_index("query")
    assert quality.loc["mug", "reciprocal_rank"] == 0.5
    assert quality.loc["mug", "recall"] == pytest.approx(2 / 5)
    assert quality.loc["chair", "reciprocal_rank"] == 1.0
    assert quality.loc["chair", "recall_capped"] == pytest.approx(1 / 3)
    path.write_text("query,kind,relevant\nlamp,synonym,LAMPSHADE\n")
    with pytest.raises(ConfigError, match="matches no title"):
        load_labelled_queries(path, CATALOG)


@pytest.fixture(scope="module")
def online_retail_catalog() -> pd.DataFrame:
    from recsys_core.data.builtin import load_dataset

    return load_dataset("online-retail").catalog


def test_the_labelled_set_answers_on_online_retail_and_hybrid_beats_tfidf(
    online_retail_catalog: pd.DataFrame,
) -> None:
    queries = load_labelled_queries(QUERIES, online_retail_catalog)
    assert len(queries) >= 60
    assert {"synonym", "misspelling", "paraphrase", "compound", "plural"} <= {
        q.kind for q in queries
    }
    assert len({q.query for q in queries}) == len(queries)
    mrr = {
        method: search_quality(
            ProductSearch(online_retail_catalog, method=method).search, queries, 10
        )["reciprocal_rank"].mean()
        for method in ("tfidf", "hybrid")
    }
    assert mrr["hybrid"] > mrr["tfidf"]


def test_the_fast_query_cosine_equals_scikit_learns() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from recsys_core.text_embeddings import QueryCosine

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    matrix = vec.fit_transform(TITLES).tocsr()
    fast = QueryCosine(vec, matrix)
    for query in ("mug mug cup", "neckless", "Garden chair", "zzz"):
        expected = np.asarray((matrix @ vec.transform([query]).T).toarray()).ravel()
        np.testing.assert_allclose(fast(query), expected, atol=1e-12)
    with pytest.raises(ValueError, match="sublinear_tf"):
        QueryCosine(TfidfVectorizer().fit(TITLES), matrix)
