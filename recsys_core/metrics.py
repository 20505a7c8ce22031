"""Ranking, beyond-accuracy and classifier metrics, each defined once with its formula.

Conventions shared by every recommendation metric
-------------------------------------------------
``reco``
    A recommendation frame with columns ``user_id, item_id, score, rank`` in external ids;
    ``rank`` starts at 1. Only rows with ``rank <= k`` are used. If a user's list holds the
    same item twice, the best-ranked row is kept.
``relevant``
    The test interactions, columns ``user_id, item_id``. Duplicate pairs (a repurchase of
    the same item) count once: the relevant set of user ``u`` is
    ``R_u = {items u interacted with in the test period}``.
Rank positions
    The position of a recommended item is its ``rank`` value, so the discount and the
    "precision at position i" below use the rank as given.

Accuracy metrics are averaged over **all users in** ``relevant`` (the test users): a test
user without recommendations scores 0 on every metric, and recommended users that are not
test users are ignored. With no test users at all the averages are ``nan``.

Beyond-accuracy metrics describe the lists themselves and do not need ``relevant``.
Classifier metrics score the purchase-probability model on ``(y_true, y_prob)``; they live in
:mod:`recsys_core.calibration` and the bootstrap in :mod:`recsys_core.bootstrap`, both
re-exported here (import them from ``recsys_core.metrics``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsys_core.bootstrap import UserBootstrap, percentile_interval
from recsys_core.calibration import (
    BinningStrategy,
    classifier_metrics,
    expected_calibration_error,
    reliability_table,
)
from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_ids
from recsys_core.diversity import ItemIndex, ItemVectors, per_user_intra_list_diversity

__all__ = [
    "RANKING_METRIC_NAMES",
    "BinningStrategy",
    "average_recommendation_popularity",
    "UserBootstrap",
    "beyond_accuracy_metrics",
    "catalog_coverage",
    "classifier_metrics",
    "expected_calibration_error",
    "intra_list_diversity",
    "jaccard_overlap",
    "novelty",
    "per_user_beyond_accuracy",
    "per_user_ranking_metrics",
    "per_user_revenue",
    "percentile_interval",
    "ranking_metrics",
    "reliability_table",
    "revenue_metrics",
]

#: Base names of the accuracy metrics, in output order; keys are ``f"{name}@{k}"``.
RANKING_METRIC_NAMES: tuple[str, ...] = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")

_USER = Columns.USER
_ITEM = Columns.ITEM
_RANK = Columns.RANK


# --------------------------------------------------------------------------------------
# Input preparation
# --------------------------------------------------------------------------------------


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} is missing column(s) {missing}; it needs {list(columns)} "
            f"(it has {list(frame.columns)})"
        )


def _top_k(reco: pd.DataFrame, k: int) -> pd.DataFrame:
    """Rows of ``reco`` with ``rank <= k``: columns user, item, rank; one row per pair."""
    _require_columns(reco, (_USER, _ITEM, _RANK), "reco")
    ranks = pd.to_numeric(reco[_RANK])
    if len(ranks) and ranks.min() < 1:
        raise ValueError(f"reco ranks must start at 1, found rank {ranks.min()}")
    top = reco.loc[ranks <= k, [_USER, _ITEM, _RANK]]
    if top.duplicated([_USER, _ITEM]).any():
        top = top.sort_values(_RANK, kind="stable").drop_duplicates([_USER, _ITEM])
    return top


def _relevant_pairs(relevant: pd.DataFrame) -> pd.DataFrame:
    """Distinct ``(user_id, item_id)`` pairs of the test interactions."""
    _require_columns(relevant, (_USER, _ITEM), "relevant")
    return relevant[[_USER, _ITEM]].drop_duplicates()


def _metric_names(k: int) -> list[str]:
    return [f"{name}@{k}" for name in RANKING_METRIC_NAMES]


# --------------------------------------------------------------------------------------
# Accuracy metrics
# --------------------------------------------------------------------------------------


def per_user_ranking_metrics(reco: pd.DataFrame, relevant: pd.DataFrame, k: int) -> pd.DataFrame:
    r"""Accuracy metrics of each test user's top-``k`` list.

    For user ``u`` let ``L_u`` be the top-``k`` recommended items, ``R_u`` the distinct
    relevant items, ``rel(i) = 1`` if the item at rank ``i`` is in ``R_u`` (else 0) and
    ``hits_u = |L_u ∩ R_u|``. Then

    - ``precision@k = hits_u / k`` (always ``k``, even if fewer than ``k`` items were
      recommended);
    - ``recall@k = hits_u / |R_u|`` (the full ``|R_u|``, *not* ``min(k, |R_u|)``, so a user
      with more than ``k`` relevant items cannot reach 1);
    - ``ndcg@k = DCG / IDCG`` with binary gains and a log2 discount,
      :math:`DCG = \sum_{i \le k} rel(i) / \log_2(i + 1)` and
      :math:`IDCG = \sum_{i=1}^{\min(k, |R_u|)} 1 / \log_2(i + 1)`;
    - ``map@k`` is the average precision
      :math:`AP@k = \frac{1}{\min(k, |R_u|)} \sum_{i \le k} rel(i) \cdot P@i`, where
      ``P@i`` is the number of hits at ranks ``<= i`` divided by ``i``;
    - ``mrr@k = 1 / (rank of the first hit)``, 0 without a hit;
    - ``hit_rate@k = 1`` if ``hits_u > 0`` else 0.

    Parameters
    ----------
    reco
        Recommendations, columns ``user_id, item_id, rank`` (``score`` is not used).
    relevant
        Test interactions, columns ``user_id, item_id``; duplicates count once.
    k
        List length; only rows with ``rank <= k`` are used.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``user_id`` — every user of ``relevant`` and no other — with the columns
        ``precision@k, recall@k, ndcg@k, map@k, mrr@k, hit_rate@k``. Test users without
        recommendations get 0 everywhere.
    """
    _check_k(k)
    top = _top_k(reco, k)
    rel = _relevant_pairs(relevant)
    n_relevant = rel.groupby(_USER, sort=True).size()
    names = _metric_names(k)

    hits = top.merge(rel, on=[_USER, _ITEM], how="inner")
    hits = hits.sort_values([_USER, _RANK], kind="stable")
    rank = hits[_RANK].to_numpy(dtype=np.float64)
    hit_number = hits.groupby(_USER, sort=False).cumcount().to_numpy(dtype=np.float64) + 1.0
    per_hit = pd.DataFrame(
        {
            _USER: hits[_USER].to_numpy(),
            "hits": 1.0,
            "dcg": 1.0 / np.log2(rank + 1.0),
            "precision_at_hit": hit_number / rank,
            "reciprocal_rank": 1.0 / rank,
        }
    )
    sums = per_hit.groupby(_USER, sort=False).agg(
        hits=("hits", "sum"),
        dcg=("dcg", "sum"),
        precision_sum=("precision_at_hit", "sum"),
        reciprocal_rank=("reciprocal_rank", "max"),
    )
    sums = sums.reindex(n_relevant.index, fill_value=0.0)

    n_rel = n_relevant.to_numpy(dtype=np.float64)
    n_ideal = np.minimum(n_relevant.to_numpy(), k)
    ideal_dcg = np.cumsum(1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64)))[n_ideal - 1]
    n_hits = sums["hits"].to_numpy(dtype=np.float64)

    values = np.column_stack(
        [
            n_hits / k,
            n_hits / n_rel,
            sums["dcg"].to_numpy(dtype=np.float64) / ideal_dcg,
            sums["precision_sum"].to_numpy(dtype=np.float64) / n_ideal,
            sums["reciprocal_rank"].to_numpy(dtype=np.float64),
            (n_hits > 0).astype(np.float64),
        ]
    ).reshape(len(n_relevant), len(names))
    return pd.DataFrame(values, index=n_relevant.index.rename(_USER), columns=names)


def ranking_metrics(reco: pd.DataFrame, relevant: pd.DataFrame, k: int) -> dict[str, float]:
    """Mean of :func:`per_user_ranking_metrics` over all test users.

    Every user in ``relevant`` counts, with zeros when it has no recommendations; users only
    in ``reco`` are ignored. See :func:`per_user_ranking_metrics` for the formulas.

    Returns
    -------
    dict[str, float]
        Keys ``precision@k, recall@k, ndcg@k, map@k, mrr@k, hit_rate@k``; every value is
        ``nan`` when ``relevant`` is empty.
    """
    per_user = per_user_ranking_metrics(reco, relevant, k)
    if per_user.empty:
        return dict.fromkeys(per_user.columns, float("nan"))
    means = per_user.mean(axis=0)
    return {name: float(means[name]) for name in per_user.columns}


# --------------------------------------------------------------------------------------
# Beyond-accuracy metrics
# --------------------------------------------------------------------------------------


def catalog_coverage(reco: pd.DataFrame, k: int, catalog_size: int) -> float:
    """Share of the catalog that appears in at least one top-``k`` list.

    ``coverage@k = |⋃_u L_u| / catalog_size``.
    """
    _check_k(k)
    if catalog_size <= 0:
        raise ValueError(f"catalog_size must be positive, got {catalog_size}")
    top = _top_k(reco, k)
    return float(top[_ITEM].nunique() / catalog_size)


def _popularity_of(items: pd.Series, item_popularity: pd.Series) -> np.ndarray:
    """Training popularity of ``items``; items missing from ``item_popularity`` get 0."""
    counts = item_popularity.reindex(pd.Index(items.unique()))
    lookup = pd.Series(
        np.nan_to_num(counts.to_numpy(dtype=np.float64), nan=0.0), index=counts.index
    )
    return items.map(lookup).to_numpy(dtype=np.float64)


def _mean_per_user(top: pd.DataFrame, values: np.ndarray) -> float:
    """Mean over users of the per-user mean of ``values`` (one value per row of ``top``)."""
    if top.empty:
        return float("nan")
    per_user = pd.Series(values, index=top[_USER].to_numpy()).groupby(level=0).mean()
    return float(per_user.mean())


def novelty(reco: pd.DataFrame, k: int, *, item_popularity: pd.Series, n_users: int) -> float:
    r"""Mean self-information of the recommended items.

    :math:`novelty@k = \frac{1}{|U|} \sum_u \frac{1}{|L_u|} \sum_{i \in L_u}
    -\log_2 \frac{pop(i)}{n\_users}`, over the users ``U`` that have recommendations.

    ``pop(i)`` is the number of training users of item ``i``. It is clipped to
    ``[1, n_users]``: an item with zero popularity, or missing from ``item_popularity``,
    counts as seen by one user (the most novel value, ``log2(n_users)``), and counts above
    ``n_users`` (e.g. interaction counts) give 0 rather than a negative novelty.

    Returns ``nan`` when ``reco`` has no rows within the top ``k``.
    """
    _check_k(k)
    if n_users <= 0:
        raise ValueError(f"n_users must be positive, got {n_users}")
    top = _top_k(reco, k)
    counts = np.clip(_popularity_of(top[_ITEM], item_popularity), 1.0, float(n_users))
    return _mean_per_user(top, -np.log2(counts / n_users))


def average_recommendation_popularity(
    reco: pd.DataFrame, k: int, *, item_popularity: pd.Series
) -> float:
    r"""ARP: mean training popularity of the recommended items.

    :math:`ARP@k = \frac{1}{|U|} \sum_u \frac{1}{|L_u|} \sum_{i \in L_u} pop(i)`, over the
    users with recommendations; items missing from ``item_popularity`` count 0. Returns
    ``nan`` when there are no recommendations.
    """
    _check_k(k)
    top = _top_k(reco, k)
    return _mean_per_user(top, _popularity_of(top[_ITEM], item_popularity))


def intra_list_diversity(
    reco: pd.DataFrame,
    k: int,
    *,
    item_vectors: ItemVectors,
    item_index: ItemIndex | None = None,
) -> float:
    r"""Mean pairwise cosine distance within each top-``k`` list, averaged over users.

    :math:`ILD_u = \frac{2}{n_u (n_u - 1)} \sum_{i < j \in L_u} (1 - \cos(v_i, v_j))` and
    ``diversity@k`` is the mean of ``ILD_u`` over users with at least two items that have a
    vector (others are left out). Items without a vector are dropped from the list. An
    all-zero vector (e.g. an item with no training interactions) has cosine similarity 0,
    i.e. distance 1, with every item, as in :func:`sklearn.metrics.pairwise.cosine_similarity`.

    Computed without a loop per user on L2-normalised vectors, in
    :mod:`recsys_core.diversity`: via :math:`\sum_{i<j} \hat v_i \cdot \hat v_j =
    (\lVert \sum_i \hat v_i \rVert^2 - \sum_i \lVert \hat v_i \rVert^2) / 2`, or, when
    cheaper for sparse vectors, from the dot products of the distinct listed item pairs.

    Parameters
    ----------
    reco
        Recommendations, columns ``user_id, item_id, rank``.
    k
        List length; only rows with ``rank <= k`` are used.
    item_vectors
        One row per item: a dense array (e.g. ALS item factors), a SciPy sparse matrix (e.g.
        ``interactions.T.tocsr()``, the items' columns of the training matrix) or a
        DataFrame indexed by ``item_id``.
    item_index
        ``item_id -> row`` of ``item_vectors``: a pandas Index (position = row), a dict or an
        :class:`~recsys_core.interactions.IdMap`. Optional for a DataFrame (its index is
        used), required otherwise.

    Returns
    -------
    float
        In ``[0, 2]`` (``[0, 1]`` for non-negative vectors); ``nan`` if no user has two items
        with vectors.
    """
    _check_k(k)
    per_user = per_user_intra_list_diversity(_top_k(reco, k), item_vectors, item_index)
    return float(per_user.mean()) if len(per_user) else float("nan")


def beyond_accuracy_metrics(
    reco: pd.DataFrame,
    k: int,
    *,
    item_popularity: pd.Series,
    n_users: int,
    catalog_size: int,
    item_vectors: ItemVectors | None = None,
    item_index: ItemIndex | None = None,
) -> dict[str, float]:
    """Coverage, novelty, diversity and ARP of the top-``k`` lists in one call.

    Parameters
    ----------
    reco
        Recommendations, columns ``user_id, item_id, rank``.
    k
        List length; only rows with ``rank <= k`` are used.
    item_popularity
        Number of training users per item, indexed by ``item_id``.
    n_users
        Number of training users.
    catalog_size
        Number of items that could be recommended.
    item_vectors, item_index
        See :func:`intra_list_diversity`; without vectors ``diversity@k`` is ``nan``.

    Returns
    -------
    dict[str, float]
        ``coverage@k`` (:func:`catalog_coverage`), ``novelty@k`` (:func:`novelty`),
        ``diversity@k`` (:func:`intra_list_diversity`) and ``arp@k``
        (:func:`average_recommendation_popularity`).
    """
    _check_k(k)
    top = _top_k(reco, k)
    diversity = float("nan")
    if item_vectors is not None:
        diversity = intra_list_diversity(top, k, item_vectors=item_vectors, item_index=item_index)
    return {
        f"coverage@{k}": catalog_coverage(top, k, catalog_size),
        f"novelty@{k}": novelty(top, k, item_popularity=item_popularity, n_users=n_users),
        f"diversity@{k}": diversity,
        f"arp@{k}": average_recommendation_popularity(top, k, item_popularity=item_popularity),
    }


def per_user_beyond_accuracy(
    reco: pd.DataFrame,
    k: int,
    *,
    users: Sequence[object] | pd.Index,
    item_popularity: pd.Series,
    n_users: int,
    item_vectors: ItemVectors | None = None,
    item_index: ItemIndex | None = None,
) -> pd.DataFrame:
    """Per-user ``novelty@k``, ``diversity@k`` and ``arp@k`` of ``users``' lists.

    The per-user terms of :func:`novelty`, :func:`intra_list_diversity` and
    :func:`average_recommendation_popularity`: the mean of a column over the users where it
    is not NaN equals that function's value over the same lists. NaN for a user without a
    list (and, for diversity, without two items with vectors). Used to bootstrap intervals.
    """
    _check_k(k)
    if n_users <= 0:
        raise ValueError(f"n_users must be positive, got {n_users}")
    index = pd.Index([str(u) for u in users], name=_USER)
    top = _top_k(reco, k)
    top = top.assign(**{_USER: canonical_ids(top[_USER])})
    top = top[top[_USER].isin(index)]
    pop = _popularity_of(top[_ITEM], item_popularity)
    info = -np.log2(np.clip(pop, 1.0, float(n_users)) / n_users)
    by_user = pd.DataFrame({"novelty": info, "arp": pop}, index=top[_USER].to_numpy())
    means = by_user.groupby(level=0).mean().reindex(index)
    out = pd.DataFrame(
        {
            f"novelty@{k}": means["novelty"].to_numpy(dtype=np.float64),
            f"diversity@{k}": np.nan,
            f"arp@{k}": means["arp"].to_numpy(dtype=np.float64),
        },
        index=index,
    )
    if item_vectors is not None and len(top):
        ild = per_user_intra_list_diversity(top, item_vectors, item_index)
        out[f"diversity@{k}"] = ild.reindex(index).to_numpy(dtype=np.float64)
    return out


def per_user_revenue(
    reco: pd.DataFrame, purchases: pd.DataFrame, k: int, *, users: Sequence[object] | pd.Index
) -> pd.Series:
    r"""Revenue of each user's top-``k`` items that they bought in the test period.

    :math:`revenue_u = \sum_{i \in L_u} \sum_{e \in E_{u,i}} quantity_e \cdot price_e`, with
    ``E_{u,i}`` the test-period purchases of item ``i`` by user ``u``: what the shopper
    actually paid for the recommended items (every purchase of a recommended item counts,
    so a reorder of 3 units at 2.50 adds 7.50). 0 for a user without such purchases.

    Parameters
    ----------
    reco
        Recommendations, columns ``user_id, item_id, rank``.
    purchases
        Test-period purchases, columns ``user_id, item_id, revenue`` (quantity x price of
        each purchase event, or already summed per pair).
    k
        List length; only rows with ``rank <= k`` count.
    users
        The users to report (the test users), in order.
    """
    _check_k(k)
    _require_columns(purchases, (_USER, _ITEM, "revenue"), "purchases")
    index = pd.Index([str(u) for u in users], name=_USER)
    top = _top_k(reco, k)
    paid = (
        purchases.assign(
            **{_USER: canonical_ids(purchases[_USER]), _ITEM: canonical_ids(purchases[_ITEM])}
        )
        .groupby([_USER, _ITEM], sort=False, observed=True)["revenue"]
        .sum()
        .reset_index()
    )
    listed = top.assign(**{_USER: canonical_ids(top[_USER]), _ITEM: canonical_ids(top[_ITEM])})
    hits = listed[[_USER, _ITEM]].merge(paid, on=[_USER, _ITEM], how="inner")
    per_user = hits.groupby(_USER, sort=False)["revenue"].sum()
    return per_user.reindex(index, fill_value=0.0).astype(np.float64).rename(f"revenue@{k}")


def revenue_metrics(
    reco: pd.DataFrame, purchases: pd.DataFrame, k: int, *, users: Sequence[object] | pd.Index
) -> dict[str, float]:
    """``revenue@k`` (mean of :func:`per_user_revenue` over ``users``) and
    ``revenue_total@k`` (its sum): money the shoppers went on to spend on listed items."""
    per_user = per_user_revenue(reco, purchases, k, users=users)
    if per_user.empty:
        return {f"revenue@{k}": float("nan"), f"revenue_total@{k}": float("nan")}
    return {f"revenue@{k}": float(per_user.mean()), f"revenue_total@{k}": float(per_user.sum())}


def jaccard_overlap(reco_a: pd.DataFrame, reco_b: pd.DataFrame, k: int) -> float:
    r"""How much two models agree: mean per-user Jaccard index of their top-``k`` sets.

    :math:`overlap@k = \frac{1}{|U_a \cap U_b|} \sum_{u \in U_a \cap U_b}
    \frac{|A_u \cap B_u|}{|A_u \cup B_u|}`, over the users recommended by both models.
    1 for identical lists, 0 for disjoint ones, ``nan`` when no user is in both.
    """
    _check_k(k)
    top_a = _top_k(reco_a, k)
    top_b = _top_k(reco_b, k)
    size_a = top_a.groupby(_USER, sort=False).size()
    size_b = top_b.groupby(_USER, sort=False).size()
    common = size_a.index.intersection(size_b.index)
    if len(common) == 0:
        return float("nan")
    shared = top_a[[_USER, _ITEM]].merge(top_b[[_USER, _ITEM]], on=[_USER, _ITEM], how="inner")
    n_shared = shared.groupby(_USER, sort=False).size().reindex(common, fill_value=0)
    a = size_a.reindex(common).to_numpy(dtype=np.float64)
    b = size_b.reindex(common).to_numpy(dtype=np.float64)
    inter = n_shared.to_numpy(dtype=np.float64)
    return float(np.mean(inter / (a + b - inter)))
