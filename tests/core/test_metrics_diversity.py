"""``diversity@k``: both pair-sum methods of :mod:`recsys_core.diversity` against a slow loop."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import recsys_core.diversity as diversity
from recsys_core.metrics import intra_list_diversity, per_user_beyond_accuracy

METHODS = ("auto", "summed", "pairs")


def reference_ild(
    reco: pd.DataFrame, k: int, vectors: np.ndarray, row_of: dict[str, int]
) -> pd.Series:
    """The formula, one user and one pair at a time: mean cosine distance over pairs of
    the user's top-``k`` items with a vector (best rank kept per item; a zero vector has
    cosine 0 with everything); users with fewer than two such items are left out."""
    out = {}
    top = reco[reco["rank"] <= k].sort_values("rank", kind="stable")
    top = top.drop_duplicates(["user_id", "item_id"])
    for user, rows in top.groupby("user_id", sort=False):
        vecs = [vectors[row_of[i]] for i in rows["item_id"] if i in row_of]
        if len(vecs) < 2:
            continue
        distances = []
        for a in range(len(vecs)):
            for b in range(a + 1, len(vecs)):
                na, nb = np.linalg.norm(vecs[a]), np.linalg.norm(vecs[b])
                cos = 0.0 if na == 0 or nb == 0 else float(vecs[a] @ vecs[b]) / (na * nb)
                distances.append(1.0 - cos)
        out[user] = min(max(float(np.mean(distances)), 0.0), 2.0)
    return pd.Series(out, dtype=np.float64)


def random_case(
    seed: int, *, n_items: int = 60, dim: int = 40, density: float = 0.08, n_users: int = 80
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Random lists (1 to 12 items, some repeated within a list, some without a vector) and
    random non-negative sparse-ish vectors with a few all-zero rows."""
    rng = np.random.default_rng(seed)
    vectors = rng.random((n_items, dim)) * (rng.random((n_items, dim)) < density)
    vectors[rng.choice(n_items, size=5, replace=False)] = 0.0
    names = [f"i{j}" for j in range(n_items)]
    pool = np.array([*names, "unknown1", "unknown2"], dtype=object)
    rows = []
    for u in range(n_users):
        items = list(rng.choice(pool, size=int(rng.integers(1, 13))))
        if u % 7 == 0:
            items.append(items[0])  # the same item twice in one list
        rows += [(f"u{u}", item, float(len(items) - r), r + 1) for r, item in enumerate(items)]
    reco = pd.DataFrame(rows, columns=["user_id", "item_id", "score", "rank"])
    return reco, vectors, names


def per_user(reco: pd.DataFrame, k: int, vectors: Any, index: Any, method: str) -> pd.Series:
    from recsys_core.metrics import _top_k

    return diversity.per_user_intra_list_diversity(
        _top_k(reco, k),
        vectors,
        index,
        method=method,  # type: ignore[arg-type]
    )


def assert_matches(got: pd.Series, expected: pd.Series) -> None:
    assert sorted(got.index) == sorted(expected.index)
    np.testing.assert_allclose(got.reindex(expected.index), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["csr", "csc_array", "dense"])
def test_per_user_ild_matches_the_pairwise_loop(method: str, seed: int, kind: str) -> None:
    reco, vectors, names = random_case(seed)
    given = {"csr": sp.csr_matrix, "csc_array": sp.csc_array, "dense": np.asarray}[kind](vectors)
    expected = reference_ild(reco, 10, vectors, {n: j for j, n in enumerate(names)})
    assert len(expected) > 30  # the case has users with pairs (and some without)
    assert_matches(per_user(reco, 10, given, pd.Index(names), method), expected)
    if method == "auto":
        ild = intra_list_diversity(
            reco, 10, item_vectors=given, item_index={n: j for j, n in enumerate(names)}
        )
        assert ild == pytest.approx(expected.mean(), rel=0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_per_user_ild_with_two_ids_on_one_row(method: str) -> None:
    """A dict may map two ids to one vector: they are two items with cosine 1 (0 if zero)."""
    reco, vectors, names = random_case(5)
    row_of = {n: j for j, n in enumerate(names)} | {"unknown1": 3, "unknown2": 4}
    vectors[4] = 0.0
    expected = reference_ild(reco, 10, vectors, row_of)
    assert_matches(per_user(reco, 10, sp.csr_matrix(vectors), row_of, method), expected)


@pytest.mark.parametrize("method", METHODS)
def test_per_user_ild_edge_lists(method: str) -> None:
    vectors = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]))
    index = pd.Index(["a", "b", "c", "zero"])
    lists = {
        "one": ["a"],  # one item: left out
        "one-known": ["a", "nope"],  # one item with a vector: left out
        "zeros": ["zero", "zero2"],
        "same": ["c", "c", "c"],  # duplicates of the best rank only
        "all": ["a", "b", "c", "zero"],
    }
    reco = pd.DataFrame(
        [(u, i, float(r), r + 1) for u, items in lists.items() for r, i in enumerate(items)],
        columns=["user_id", "item_id", "score", "rank"],
    )
    reco.loc[reco["item_id"] == "zero2", "item_id"] = "zero"  # a zero vector twice
    got = per_user(reco, 4, vectors, index, method)
    d_ac = 1 - 1 / math.sqrt(2)
    assert sorted(got.index) == ["all"]
    assert got["all"] == pytest.approx((1 + 1 + d_ac + 1 + d_ac + 1) / 6, abs=1e-12)
    nobody = reco[reco["user_id"].isin(["one", "one-known"])]
    assert per_user(nobody, 4, vectors, index, method).empty
    unknown = reco.assign(item_id="nope")
    assert per_user(unknown, 4, vectors, index, method).empty


@pytest.mark.parametrize("method", ["summed", "pairs"])
def test_blocks_give_the_same_bits(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both methods build their sparse products a block of rows at a time (the whole
    product of a popular top-10 on a 30k-shopper log took 5.7 GB); blocks of one row give
    the same bits as one block."""
    reco, vectors, names = random_case(3, n_items=40, dim=300, density=0.2, n_users=60)
    given, index = sp.csr_matrix(vectors), pd.Index(names)
    whole = per_user(reco, 8, given, index, method)
    monkeypatch.setattr(diversity, "_SUMMED_ENTRIES", 1)
    pd.testing.assert_series_equal(per_user(reco, 8, given, index, method), whole)
    monkeypatch.setattr(diversity, "_TRIANGLE_BLOCKS", 10**9)  # triangles, however many
    pd.testing.assert_series_equal(per_user(reco, 8, given, index, method), whole)


def popular_case() -> tuple[sp.csr_matrix, pd.DataFrame]:
    """Everyone's list is the same 10 best sellers, each bought by most of 2,000 shoppers."""
    rng = np.random.default_rng(0)
    buyers = sp.csr_matrix(rng.random((10, 2_000)) < 0.75, dtype=np.float64)
    users = np.repeat([f"u{u}" for u in range(500)], 10)
    return buyers, pd.DataFrame({"user_id": users, "item_id": np.tile(range(10), 500)})


def test_auto_picks_pairs_for_shared_popular_lists() -> None:
    """``summed`` would build 10 x 1,500 non-zeros per user, ``pairs`` 45 dot products."""
    buyers, top = popular_case()
    column = np.tile(np.arange(10), 500)
    assert diversity._choose("auto", column, 500 * 45, diversity.normalize(buyers)) == "pairs"
    got = diversity.per_user_intra_list_diversity(top, buyers, pd.Index(range(10)))
    expected = diversity.per_user_intra_list_diversity(
        top, buyers, pd.Index(range(10)), method="summed"
    )
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_auto_picks_summed_when_pairs_are_too_many(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pair arrays grow with the pairs: above :data:`_MAX_PAIRS` ``summed`` is used."""
    buyers, _ = popular_case()
    unit = diversity.normalize(buyers)
    column = np.tile(np.arange(10), 500)
    monkeypatch.setattr(diversity, "_MAX_PAIRS", 500 * 45 - 1)
    assert diversity._choose("auto", column, 500 * 45, unit) == "summed"
    assert diversity._choose("pairs", column, 500 * 45, unit) == "pairs"


def test_unknown_method_is_refused() -> None:
    reco, vectors, names = random_case(0)
    with pytest.raises(ValueError, match="method must be"):
        per_user(reco, 10, vectors, pd.Index(names), "fast")


def test_per_user_beyond_accuracy_diversity_matches_the_loop() -> None:
    reco, vectors, names = random_case(4)
    expected = reference_ild(reco, 10, vectors, {n: j for j, n in enumerate(names)})
    users = [f"u{u}" for u in range(85)]  # five users without a list: NaN
    out = per_user_beyond_accuracy(
        reco,
        10,
        users=users,
        item_popularity=pd.Series(1.0, index=names),
        n_users=100,
        item_vectors=sp.csr_matrix(vectors),
        item_index=pd.Index(names),
    )["diversity@10"]
    np.testing.assert_allclose(out.reindex(expected.index), expected, rtol=0, atol=1e-12)
    assert out.drop(expected.index).isna().all()
