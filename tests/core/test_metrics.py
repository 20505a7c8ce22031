"""Metric definitions checked on hand-worked examples and against independent implementations."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from implicit.evaluation import ranking_metrics_at_k
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss, ndcg_score, roc_auc_score
from sklearn.metrics.pairwise import cosine_distances

from recsys_core.interactions import IdMap
from recsys_core.metrics import (
    average_recommendation_popularity,
    beyond_accuracy_metrics,
    catalog_coverage,
    classifier_metrics,
    expected_calibration_error,
    intra_list_diversity,
    jaccard_overlap,
    novelty,
    per_user_ranking_metrics,
    ranking_metrics,
    reliability_table,
)

NAMES = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")


def make_reco(lists: dict[str, list[str]]) -> pd.DataFrame:
    """A recommendation frame from ``{user: [item at rank 1, item at rank 2, ...]}``."""
    rows = [
        (user, item, float(len(items) - pos), pos + 1)
        for user, items in lists.items()
        for pos, item in enumerate(items)
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "score", "rank"])


def make_relevant(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["user_id", "item_id"])


# --------------------------------------------------------------------------------------
# Accuracy: hand-worked example
# --------------------------------------------------------------------------------------

# k = 3.
#   u1 is shown [a, b, c] and bought {a, c, x} (a twice: counts once) -> hits at ranks 1 and 3
#   u2 is shown [d, e, f] and bought {f}                              -> hit at rank 3
#   u3 is shown [a, b, c] but is no test user                         -> ignored
#   u4 bought {a} and got no recommendations                          -> zeros
HAND_RECO = make_reco({"u1": ["a", "b", "c"], "u2": ["d", "e", "f"], "u3": ["a", "b", "c"]})
HAND_RELEVANT = make_relevant(
    [("u1", "a"), ("u1", "c"), ("u1", "x"), ("u1", "a"), ("u2", "f"), ("u4", "a")]
)
L2_3 = math.log2(3)
# u1: precision 2/3, recall 2/|{a,c,x}| = 2/3,
#     DCG = 1/log2(2) + 1/log2(4) = 1.5, IDCG (min(3, 3) = 3 slots) = 1 + 1/log2(3) + 0.5,
#     AP = (P@1 + P@3) / min(3, 3) = (1 + 2/3) / 3 = 5/9, MRR = 1, hit 1.
# u2: precision 1/3, recall 1/1, DCG = 1/log2(4) = 0.5, IDCG (1 slot) = 1 -> 0.5,
#     AP = P@3 / min(3, 1) = 1/3, MRR = 1/3, hit 1.
# u4: all 0.
U1 = {"precision": 2 / 3, "recall": 2 / 3, "ndcg": 1.5 / (1.5 + 1 / L2_3), "map": 5 / 9}
U1 |= {"mrr": 1.0, "hit_rate": 1.0}
U2 = {"precision": 1 / 3, "recall": 1.0, "ndcg": 0.5, "map": 1 / 3, "mrr": 1 / 3, "hit_rate": 1.0}


def test_per_user_ranking_metrics_hand_worked() -> None:
    per_user = per_user_ranking_metrics(HAND_RECO, HAND_RELEVANT, k=3)

    assert list(per_user.columns) == [f"{name}@3" for name in NAMES]
    assert per_user.index.name == "user_id"
    assert sorted(per_user.index) == ["u1", "u2", "u4"]  # u3 is not a test user
    for name in NAMES:
        assert per_user.loc["u1", f"{name}@3"] == pytest.approx(U1[name])
        assert per_user.loc["u2", f"{name}@3"] == pytest.approx(U2[name])
        assert per_user.loc["u4", f"{name}@3"] == 0.0


def test_ranking_metrics_average_over_all_test_users() -> None:
    result = ranking_metrics(HAND_RECO, HAND_RELEVANT, k=3)

    assert list(result) == [f"{name}@3" for name in NAMES]
    # Means over the 3 test users u1, u2, u4 (u4 contributes zeros).
    assert result["precision@3"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)  # 1/3
    assert result["recall@3"] == pytest.approx((2 / 3 + 1 + 0) / 3)  # 5/9
    assert result["ndcg@3"] == pytest.approx((U1["ndcg"] + 0.5) / 3)
    assert result["map@3"] == pytest.approx((5 / 9 + 1 / 3) / 3)  # 8/27
    assert result["mrr@3"] == pytest.approx((1 + 1 / 3) / 3)  # 4/9
    assert result["hit_rate@3"] == pytest.approx(2 / 3)


def test_recall_divides_by_all_relevant_items() -> None:
    # k = 3, three hits out of 5 relevant: recall 3/5 (not 3/min(3, 5) = 1); AP and NDCG,
    # whose ideal is min(k, |R|) = 3 slots, are perfect.
    reco = make_reco({"u": ["a", "b", "c"]})
    relevant = make_relevant([("u", i) for i in "abcde"])

    result = ranking_metrics(reco, relevant, k=3)

    assert result["recall@3"] == pytest.approx(0.6)
    assert result["precision@3"] == pytest.approx(1.0)
    assert result["map@3"] == pytest.approx(1.0)
    assert result["ndcg@3"] == pytest.approx(1.0)


def test_precision_divides_by_k_even_for_short_lists() -> None:
    # One hit in a list of 2 with k = 5: precision 1/5.
    reco = make_reco({"u": ["a", "b"]})
    result = ranking_metrics(reco, make_relevant([("u", "a")]), k=5)
    assert result["precision@5"] == pytest.approx(0.2)


def test_only_top_k_ranks_are_used() -> None:
    # "c" at rank 3 is relevant but k = 2.
    reco = make_reco({"u": ["a", "b", "c"]})
    result = ranking_metrics(reco, make_relevant([("u", "c")]), k=2)
    assert all(value == 0.0 for value in result.values())
    assert ranking_metrics(reco, make_relevant([("u", "c")]), k=3)["hit_rate@3"] == 1.0


def test_duplicate_relevant_pairs_count_once() -> None:
    deduplicated = HAND_RELEVANT.drop_duplicates()
    assert len(deduplicated) < len(HAND_RELEVANT)
    pd.testing.assert_frame_equal(
        per_user_ranking_metrics(HAND_RECO, HAND_RELEVANT, k=3),
        per_user_ranking_metrics(HAND_RECO, deduplicated, k=3),
    )


def test_users_without_recommendations_count_as_zero() -> None:
    relevant = make_relevant([("u1", "a"), ("cold", "a")])
    reco = make_reco({"u1": ["a"]})

    result = ranking_metrics(reco, relevant, k=1)

    assert result["hit_rate@1"] == pytest.approx(0.5)
    assert result["ndcg@1"] == pytest.approx(0.5)
    # With no recommendations at all every test user scores 0.
    empty = reco.iloc[0:0]
    assert all(v == 0.0 for v in ranking_metrics(empty, relevant, k=1).values())


def test_no_test_users_gives_nan() -> None:
    result = ranking_metrics(HAND_RECO, HAND_RELEVANT.iloc[0:0], k=3)
    assert all(math.isnan(value) for value in result.values())


@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_invalid_k_is_rejected(k: Any) -> None:
    with pytest.raises(ValueError, match="k must be"):
        ranking_metrics(HAND_RECO, HAND_RELEVANT, k=k)


def test_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="rank"):
        ranking_metrics(HAND_RECO.drop(columns="rank"), HAND_RELEVANT, k=3)


# --------------------------------------------------------------------------------------
# Accuracy: random data against independent implementations
# --------------------------------------------------------------------------------------


def random_case(
    seed: int, n_users: int = 60, n_items: int = 40, k: int = 5, full_lists: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, dict[int, list[int]], dict[int, set[int]]]:
    """Random recommendations and test purchases (with repeats), as frames and as Python."""
    rng = np.random.default_rng(seed)
    lists: dict[int, list[int]] = {}
    for user in range(n_users):
        length = k + 2 if full_lists else int(rng.integers(0, k + 3))  # some beyond k
        if length:
            lists[user] = [int(i) for i in rng.choice(n_items, size=length, replace=False)]
    bought: dict[int, set[int]] = {}
    pairs: list[tuple[int, int]] = []
    for user in range(n_users):
        n_bought = int(rng.integers(1 if full_lists else 0, 9))
        for item in rng.choice(n_items // 2, size=n_bought):  # popular half: more hits
            repeats = 2 if rng.random() < 0.2 else 1  # a repurchase now and then
            pairs.extend([(user, int(item))] * repeats)
            bought.setdefault(user, set()).add(int(item))
    reco = pd.DataFrame(
        [(u, i, -r, r + 1) for u, items in lists.items() for r, i in enumerate(items)],
        columns=["user_id", "item_id", "score", "rank"],
    )
    relevant = pd.DataFrame(pairs, columns=["user_id", "item_id"])
    return reco, relevant, lists, bought


def reference_metrics(recommended: list[int], bought: set[int], k: int) -> dict[str, float]:
    """Straightforward per-user loop, written independently of the vectorised code."""
    shown = recommended[:k]
    gains = [1.0 if item in bought else 0.0 for item in shown]
    n_hits = sum(gains)
    ideal = sum(1.0 / math.log2(pos + 2) for pos in range(min(k, len(bought))))
    dcg = sum(g / math.log2(pos + 2) for pos, g in enumerate(gains))
    ap, seen_hits = 0.0, 0
    for pos, gain in enumerate(gains):
        if gain:
            seen_hits += 1
            ap += seen_hits / (pos + 1)
    first = next((pos + 1 for pos, g in enumerate(gains) if g), None)
    return {
        "precision": n_hits / k,
        "recall": n_hits / len(bought),
        "ndcg": dcg / ideal,
        "map": ap / min(k, len(bought)),
        "mrr": 1.0 / first if first else 0.0,
        "hit_rate": float(n_hits > 0),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_loop_reference_on_random_data(seed: int) -> None:
    k = 5
    reco, relevant, lists, bought = random_case(seed, k=k)
    assert any(u not in lists for u in bought)  # the case has test users without lists

    per_user = per_user_ranking_metrics(reco, relevant, k)

    assert sorted(per_user.index) == sorted(bought)
    expected = {u: reference_metrics(lists.get(u, []), items, k) for u, items in bought.items()}
    for name in NAMES:
        got = per_user[f"{name}@{k}"].sort_index().to_numpy()
        want = np.array([expected[u][name] for u in sorted(expected)])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)
    averaged = ranking_metrics(reco, relevant, k)
    for name in NAMES:
        assert averaged[f"{name}@{k}"] == pytest.approx(
            np.mean([e[name] for e in expected.values()])
        )


@pytest.mark.parametrize("seed", [3, 4])
def test_ndcg_matches_sklearn(seed: int) -> None:
    # sklearn's ideal DCG ranks the true relevance over *all* columns, so y_true spans the
    # whole item set (every relevant item, recommended or not) and every user has exactly k
    # recommendations with distinct positive scores; unrecommended items score 0 and
    # only tie beyond position k, where the discount is 0. Then both definitions coincide.
    k, n_items = 5, 40
    reco, relevant, lists, bought = random_case(seed, n_items=n_items, k=k, full_lists=True)
    users = sorted(bought)
    y_true = np.zeros((len(users), n_items))
    y_score = np.zeros((len(users), n_items))
    for row, user in enumerate(users):
        y_true[row, list(bought[user])] = 1.0
        for pos, item in enumerate(lists[user][:k]):
            y_score[row, item] = k - pos

    ours = ranking_metrics(reco, relevant, k)[f"ndcg@{k}"]

    assert ours == pytest.approx(ndcg_score(y_true, y_score, k=k), rel=1e-12)


class FixedListsModel:
    """Stands in for an implicit model: ``recommend`` returns precomputed top-k lists."""

    def __init__(self, lists: np.ndarray) -> None:
        self.lists = lists

    def recommend(self, userid: Any, user_items: Any, N: int = 10, **_: Any) -> Any:  # noqa: N803
        ids = self.lists[np.asarray(userid)][:, :N].astype(np.int32)
        return ids, np.zeros(ids.shape, dtype=np.float32)


@pytest.mark.parametrize("seed", [5, 6])
def test_map_ndcg_precision_match_implicit(seed: int) -> None:
    k, n_users, n_items = 5, 60, 40
    reco, relevant, lists, bought = random_case(seed, n_users, n_items, k, full_lists=True)
    test = sp.csr_matrix(
        (np.ones(len(relevant)), (relevant["user_id"], relevant["item_id"])),
        shape=(n_users, n_items),
    )
    test.sum_duplicates()
    model = FixedListsModel(np.array([lists[u] for u in range(n_users)]))

    theirs = ranking_metrics_at_k(
        model, sp.csr_matrix((n_users, n_items)), test, K=k, show_progress=False
    )
    per_user = per_user_ranking_metrics(reco, relevant, k).sort_index()

    assert per_user[f"map@{k}"].mean() == pytest.approx(theirs["map"], rel=1e-9)
    assert per_user[f"ndcg@{k}"].mean() == pytest.approx(theirs["ndcg"], rel=1e-9)
    # implicit's precision is micro-averaged over min(k, |R_u|): sum of hits / sum of slots.
    n_relevant = np.array([len(bought[u]) for u in per_user.index])
    hits = per_user[f"precision@{k}"].to_numpy() * k
    assert hits.sum() / np.minimum(k, n_relevant).sum() == pytest.approx(theirs["precision"])


# --------------------------------------------------------------------------------------
# Beyond accuracy
# --------------------------------------------------------------------------------------

# k = 2. u1 is shown [a, b], u2 [b, c]; n_users = 8; popularity a = 8, b = 2, c missing.
BA_RECO = make_reco({"u1": ["a", "b", "z"], "u2": ["b", "c"]})  # z is at rank 3 > k
BA_POPULARITY = pd.Series({"a": 8, "b": 2, "z": 1})


def test_catalog_coverage_hand_worked() -> None:
    # Distinct items in the top-2 lists {a, b, c} over a catalog of 10.
    assert catalog_coverage(BA_RECO, 2, catalog_size=10) == pytest.approx(0.3)


def test_novelty_hand_worked() -> None:
    # u1: -log2(8/8) = 0, -log2(2/8) = 2                  -> mean 1
    # u2: -log2(2/8) = 2, c missing counts 1: -log2(1/8) = 3 -> mean 2.5
    # novelty = (1 + 2.5) / 2 = 1.75
    assert novelty(BA_RECO, 2, item_popularity=BA_POPULARITY, n_users=8) == pytest.approx(1.75)


def test_novelty_treats_zero_popularity_as_one_user() -> None:
    missing = novelty(BA_RECO, 2, item_popularity=BA_POPULARITY, n_users=8)
    zero = novelty(
        BA_RECO, 2, item_popularity=BA_POPULARITY.combine_first(pd.Series({"c": 0})), n_users=8
    )
    assert zero == pytest.approx(missing)


def test_arp_hand_worked() -> None:
    # u1: (8 + 2) / 2 = 5; u2: (2 + 0) / 2 = 1 (c missing counts 0); ARP = (5 + 1) / 2 = 3
    arp = average_recommendation_popularity(BA_RECO, 2, item_popularity=BA_POPULARITY)
    assert arp == pytest.approx(3.0)


# Vectors a = (1, 0), b = (0, 1), c = (1, 1):
#   d(a, b) = 1 - 0 = 1, d(a, c) = d(b, c) = 1 - 1/sqrt(2) ~= 0.2929
# u1 [a, b] -> 1; u2 [b, c] -> 0.2929; u3 [a, b, c] -> (1 + 2 * 0.2929) / 3 ~= 0.5286
# u4 [a] has no pair and is left out; diversity = mean of the three.
ILD_RECO = make_reco({"u1": ["a", "b"], "u2": ["b", "c"], "u3": ["a", "b", "c"], "u4": ["a"]})
ILD_VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
D_AC = 1 - 1 / math.sqrt(2)
ILD_EXPECTED = (1 + D_AC + (1 + 2 * D_AC) / 3) / 3


@pytest.mark.parametrize(
    ("vectors", "index"),
    [
        (ILD_VECTORS, pd.Index(["a", "b", "c"])),
        (sp.csr_matrix(ILD_VECTORS), {"a": 0, "b": 1, "c": 2}),
        (sp.csc_array(ILD_VECTORS), IdMap.from_values(["a", "b", "c"])),
        (pd.DataFrame(ILD_VECTORS, index=["a", "b", "c"]), None),
    ],
    ids=["dense+Index", "csr+dict", "csc_array+IdMap", "DataFrame"],
)
def test_intra_list_diversity_hand_worked(vectors: Any, index: Any) -> None:
    ild = intra_list_diversity(ILD_RECO, 3, item_vectors=vectors, item_index=index)
    assert ild == pytest.approx(ILD_EXPECTED)


def test_intra_list_diversity_edge_cases() -> None:
    index = pd.Index(["a", "b", "c", "zero"])
    vectors = np.vstack([ILD_VECTORS, [0.0, 0.0]])
    # A zero vector is at distance 1 from everything; "unknown" has no vector and is dropped.
    reco = make_reco({"u": ["a", "zero", "unknown"]})
    assert intra_list_diversity(reco, 3, item_vectors=vectors, item_index=index) == 1.0
    # Nobody with two items that have vectors -> nan.
    single = make_reco({"u": ["a", "unknown"]})
    assert math.isnan(intra_list_diversity(single, 3, item_vectors=vectors, item_index=index))
    with pytest.raises(ValueError, match="item_index"):
        intra_list_diversity(reco, 3, item_vectors=vectors)


def test_intra_list_diversity_matches_pairwise_loop() -> None:
    rng = np.random.default_rng(7)
    n_items, k = 30, 6
    vectors = sp.random(n_items, 12, density=0.3, format="csr", random_state=8)  # some zero rows
    names = [f"i{j}" for j in range(n_items)]
    lists = {
        f"u{u}": list(rng.choice(names, size=int(rng.integers(1, 9)), replace=False))
        for u in range(50)
    }
    expected = []
    for items in lists.values():
        rows = [names.index(i) for i in items[:k]]
        if len(rows) >= 2:
            dist = cosine_distances(vectors[rows])
            expected.append(dist[np.triu_indices(len(rows), 1)].mean())

    ild = intra_list_diversity(
        make_reco(lists), k, item_vectors=vectors, item_index=pd.Index(names)
    )

    assert ild == pytest.approx(np.mean(expected), rel=1e-9)


def test_beyond_accuracy_metrics_keys_and_values() -> None:
    result = beyond_accuracy_metrics(
        BA_RECO, 2, item_popularity=BA_POPULARITY, n_users=8, catalog_size=10
    )
    assert list(result) == ["coverage@2", "novelty@2", "diversity@2", "arp@2"]
    assert result["coverage@2"] == pytest.approx(0.3)
    assert result["novelty@2"] == pytest.approx(1.75)
    assert math.isnan(result["diversity@2"])  # no vectors given
    assert result["arp@2"] == pytest.approx(3.0)

    with_vectors = beyond_accuracy_metrics(
        ILD_RECO,
        3,
        item_popularity=BA_POPULARITY,
        n_users=8,
        catalog_size=10,
        item_vectors=ILD_VECTORS,
        item_index=pd.Index(["a", "b", "c"]),
    )
    assert with_vectors["diversity@3"] == pytest.approx(ILD_EXPECTED)


def test_jaccard_overlap() -> None:
    a = make_reco({"u1": ["a", "b", "c"], "u2": ["a", "b"], "only_a": ["x"]})
    assert jaccard_overlap(a, a.sample(frac=1, random_state=0), 3) == 1.0
    disjoint = make_reco({"u1": ["x", "y", "z"], "u2": ["x"]})
    assert jaccard_overlap(a, disjoint, 3) == 0.0
    # u1: {a, b, c} vs {b, c, d}: 2 shared / 4 in the union = 0.5
    # u2: {a, b} vs {a}: 1 / 2 = 0.5; "only_a" and "only_b" are in one model only -> ignored.
    partial = make_reco({"u1": ["b", "c", "d"], "u2": ["a"], "only_b": ["a"]})
    assert jaccard_overlap(a, partial, 3) == pytest.approx(0.5)
    # Only the top k count: with k = 1, u1 compares {a} with {b} -> 0, u2 {a} with {a} -> 1.
    assert jaccard_overlap(a, partial, 1) == pytest.approx(0.5)
    assert math.isnan(jaccard_overlap(a, make_reco({"other": ["a"]}), 3))


# --------------------------------------------------------------------------------------
# Classifier metrics
# --------------------------------------------------------------------------------------


def calibrated_sample(n: int = 100_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """y ~ Bernoulli(p): p is perfectly calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    return (rng.random(n) < p).astype(int), p


def test_classifier_metrics_match_sklearn() -> None:
    y, p = calibrated_sample(5_000, seed=1)
    result = classifier_metrics(y, p)
    assert list(result) == ["auc", "logloss", "brier", "ece", "ece_quantile"]
    assert result["auc"] == pytest.approx(roc_auc_score(y, p))
    assert result["logloss"] == pytest.approx(log_loss(y, p))
    assert result["brier"] == pytest.approx(brier_score_loss(y, p))
    assert result["ece"] == pytest.approx(expected_calibration_error(y, p))
    assert result["ece_quantile"] == pytest.approx(
        expected_calibration_error(y, p, strategy="quantile")
    )


def test_ece_equal_width_and_equal_mass_hand_worked() -> None:
    # p = 0.1, 0.2, 0.3, 0.9 and y = 0, 0, 1, 1 in two bins.
    # Equal width, [0, 0.5] and (0.5, 1]: low p mean 0.2, y mean 1/3 (3 rows); high 0.9 vs 1
    #   ECE = 3/4 * |1/3 - 0.2| + 1/4 * |1 - 0.9| = 0.1 + 0.025 = 0.125
    # Equal mass, edges at the 0/50/100th percentiles 0.1, 0.25, 0.9: low 0.1, 0.2 (mean 0.15,
    #   y 0), high 0.3, 0.9 (mean 0.6, y 1): ECE = 1/2 * 0.15 + 1/2 * 0.4 = 0.275
    y, p = [0, 0, 1, 1], [0.1, 0.2, 0.3, 0.9]
    result = classifier_metrics(y, p, n_bins=2)
    assert result["ece"] == pytest.approx(0.125)
    assert result["ece_quantile"] == pytest.approx(0.275)
    assert reliability_table(y, p, n_bins=2, strategy="quantile")["count"].tolist() == [2, 2]


def test_ece_hand_worked() -> None:
    # Two equal-width bins [0, 0.5] and (0.5, 1]:
    #   low:  p = 0.1, 0.2 -> mean 0.15, y = 0, 1 -> 0.5, gap 0.35
    #   high: p = 0.8, 0.9 -> mean 0.85, y = 1, 1 -> 1.0, gap 0.15
    # ECE = 2/4 * 0.35 + 2/4 * 0.15 = 0.25
    y, p = [0, 1, 1, 1], [0.1, 0.2, 0.8, 0.9]
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.25)
    table = reliability_table(y, p, n_bins=2)
    assert table["count"].tolist() == [2, 2]
    assert table["bin_upper"].tolist() == [0.5, 1.0]


def test_ece_near_zero_when_calibrated_and_positive_when_shifted() -> None:
    y, p = calibrated_sample()
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, p, strategy="quantile") < 0.01
    shifted = np.clip(p + 0.2, 0.0, 1.0)  # over-confident purchase probabilities
    assert expected_calibration_error(y, shifted) > 0.1


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_table_matches_calibration_curve(strategy: Any) -> None:
    y, p = calibrated_sample(2_000, seed=2)
    p = p**2  # skewed, so uniform bins differ in size
    table = reliability_table(y, p, n_bins=10, strategy=strategy)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy=strategy)

    assert list(table.columns) == [
        "bin_lower",
        "bin_upper",
        "count",
        "mean_predicted",
        "fraction_positive",
    ]
    np.testing.assert_allclose(table["fraction_positive"], prob_true)
    np.testing.assert_allclose(table["mean_predicted"], prob_pred)
    assert table["count"].sum() == len(y)


def test_classifier_metrics_edge_cases() -> None:
    assert math.isnan(classifier_metrics([1, 1, 1], [0.2, 0.5, 0.9])["auc"])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        classifier_metrics([0, 1], [0.5, 1.5])
    with pytest.raises(ValueError, match="0/1"):
        classifier_metrics([0, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match="length"):
        classifier_metrics([0, 1, 1], [0.5, 0.5])
    with pytest.raises(ValueError, match="strategy"):
        reliability_table([0, 1], [0.5, 0.5], strategy="bogus")  # type: ignore[arg-type]
