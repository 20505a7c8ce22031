"""Stage one's linear-time candidate cells equal the sorting code's, ties and zeros included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_core.ranking.candidates import _ranks
from recsys_core.ranking.stage_one_kernel import candidate_cells


def _reference(
    als: np.ndarray,
    knn: np.ndarray,
    history: list[list[int]],
    n_als: int,
    n_itemknn: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The definition: full stable ranks of both rows, top-n masks, the history cells."""
    als_rank, knn_rank = _ranks(als), _ranks(knn)
    chosen = np.zeros(als.shape, dtype=bool)
    if n_als:
        chosen |= als_rank <= n_als
    if n_itemknn:
        chosen |= (knn_rank <= n_itemknn) & (knn > 0)
    for row, items in enumerate(history):
        chosen[row, items] = True
    r, i = np.nonzero(chosen)
    values = np.column_stack(
        [als[r, i], als_rank[r, i], knn[r, i], np.where(knn[r, i] > 0, knn_rank[r, i], np.nan)]
    )
    return r, i, values


def _block(seed: int, n_rows: int, n_items: int) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    rng = np.random.default_rng(seed)
    als = rng.normal(size=(n_rows, n_items))
    als[0] = 0.25  # a constant row: every item tied
    als[1, ::3] = als[1, 5]  # many ties with one value
    als[2] = np.round(als[2], 1)  # a few distinct values, each many times
    als[3, :10] = als[3].max()  # ties at the top
    als[4] = rng.exponential(size=n_items) ** 4  # a long tail: crowded low buckets
    als[4, 7] = 1e300  # one huge value
    als[5, :3] = [-1.7e308, 1.7e308, 0.0]  # a range wider than a float: one bucket
    knn = np.where(rng.random((n_rows, n_items)) < 0.3, rng.random((n_rows, n_items)), 0.0)
    knn[1] = 0.0  # no similar item at all
    knn[2, :40] = 0.5  # positive ties
    knn[3] = np.round(knn[3], 1)
    knn[5, 3] = -0.2  # a stored negative score: never a candidate, rank NaN
    history = [sorted(rng.choice(n_items, rng.integers(0, 30), replace=False).tolist())]
    history += [rng.choice(n_items, rng.integers(0, 30), replace=False).tolist()]
    history += [[] for _ in range(n_rows - 2)]
    return als, knn, history


@pytest.mark.parametrize(("n_als", "n_itemknn"), [(20, 30), (0, 25), (17, 0), (500, 500), (1, 1)])
def test_cells_equal_the_sorting_definition(n_als: int, n_itemknn: int) -> None:
    als, knn, history = _block(0, 8, 300)
    sparse = sp.csr_matrix(knn)
    order = np.random.default_rng(1).permutation(len(sparse.indices))
    for row in range(sparse.shape[0]):  # shuffle each row's entries: products do not sort
        a, z = sparse.indptr[row], sparse.indptr[row + 1]
        perm = a + np.argsort(order[a:z])
        sparse.indices[a:z], sparse.data[a:z] = sparse.indices[perm], sparse.data[perm]
    sparse.has_sorted_indices = False
    indptr = np.r_[0, np.cumsum([len(h) for h in history])]
    items = np.asarray([i for h in history for i in h], dtype=np.int64)
    got = candidate_cells(als, sparse, indptr, items, n_als, n_itemknn)
    assert got is not None
    expected = _reference(als, knn, history, n_als, n_itemknn)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)


def test_non_finite_scores_are_left_to_the_sorting_code() -> None:
    als, knn, _ = _block(2, 8, 50)
    als[1, 4] = np.nan
    empty = np.zeros(9, dtype=np.int64)
    assert candidate_cells(als, sp.csr_matrix(knn), empty, empty[:0], 5, 5) is None


def test_generator_candidates_equal_the_sorting_path(
    small_ranker: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fitted stage one gives the same candidate frame through the kernel and through the
    sorting code it replaced (kept for non-finite scores)."""
    import recsys_core.ranking.candidates as candidates

    generator = small_ranker.generator_  # type: ignore[attr-defined]
    users = list(generator.users_.external_ids[:150])
    fast = generator.candidates(users)
    monkeypatch.setattr(candidates, "candidate_cells", lambda *args: None)
    slow = generator.candidates(users)
    assert len(fast) > 1000
    pd.testing.assert_frame_equal(fast, slow)
