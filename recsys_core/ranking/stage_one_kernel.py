"""Stage one's candidate cells of a block of shoppers without sorting every item's score.

:meth:`~recsys_core.ranking.candidates.CandidateGenerator.candidates` needs, per shopper,
the top ``n_als`` items of ALS, the top ``n_itemknn`` positive items of item-kNN, the
shopper's history items, and for each of these candidates its exact 1-based rank among
*all* items in both models (ties by item index: a stable sort's rank). Sorting both dense
rows of every shopper (``np.sort`` of 2 x 40,000 floats at 10M demo-store events) was the
larger part of stage one. :func:`candidate_cells` gives the same cells and numbers with
work linear in the items:

* **ALS** (dense row): one pass finds the row's range, one counts each value's bucket
  (``B`` equal-width buckets, about four values each), one places the values bucket by
  bucket in item order. Bucketing is monotone (``v < w`` never puts ``w`` in a lower
  bucket), so a value's rank is ``1 +`` the values of the higher buckets ``+`` those of its
  own bucket that are greater or equal at a lower index; the ``n``-th largest value is
  found in one bucket.
* **item-kNN** (the sparse product row, never densified): only positive scores have a
  rank, and every value above a positive one is a stored entry, so the positive entries
  sorted by (score descending, item) give the rank as the position.

Every number equals the sorting code's (:func:`~recsys_core.ranking.candidates._ranks`;
tested on rows with ties, zeros and constant rows). Non-finite scores are refused
(``None``) and the caller keeps the sorting code.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["candidate_cells"]

#: Values per bucket of the ALS row on average.
_PER_BUCKET = 4


@numba.njit(cache=True, nogil=True)
def _bucket_rows(x: np.ndarray, bucket: np.ndarray, counts: np.ndarray, placed: np.ndarray) -> None:
    """Bucket the values of ``x`` into the scratch arrays (reused from row to row: a fresh
    array per row cost more than the passes): ``bucket`` of each value, ``counts`` the start
    of each bucket in the placed order (and a last entry), ``placed`` the item of each
    placed value."""
    m = x.shape[0]
    lo = x[0]
    hi = x[0]
    for j in range(m):
        v = x[j]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    n_buckets = m // _PER_BUCKET + 1
    scale = 0.0
    if hi > lo and np.isfinite(hi - lo):
        scale = n_buckets / (hi - lo)
        if not np.isfinite(scale):
            scale = 0.0
    counts[:] = 0
    for j in range(m):
        b = 0  # one bucket (a constant row, or a range too wide for a float): still exact
        if scale > 0.0:
            b = min(int((x[j] - lo) * scale), n_buckets - 1)
        bucket[j] = b
        counts[b + 1] += 1
    for b in range(n_buckets):
        counts[b + 1] += counts[b]
    for j in range(m):  # items in index order within each bucket (counts[b] moves up)
        b = bucket[j]
        placed[counts[b]] = j
        counts[b] += 1
    for b in range(n_buckets, 0, -1):  # back to the starts
        counts[b] = counts[b - 1]
    counts[0] = 0


@numba.njit(cache=True, nogil=True)
def _dense_rank(
    x: np.ndarray, j: int, bucket: np.ndarray, starts: np.ndarray, placed: np.ndarray
) -> float:
    """1-based rank of item ``j`` in row ``x``: higher values, then equal ones before it."""
    b = bucket[j]
    v = x[j]
    rank = 1 + (starts[-1] - starts[b + 1])
    for p in range(starts[b], starts[b + 1]):
        w = x[placed[p]]
        if w > v or (w == v and placed[p] < j):
            rank += 1
    return float(rank)


@numba.njit(cache=True, nogil=True)
def _dense_top(
    x: np.ndarray, n: int, starts: np.ndarray, placed: np.ndarray, out: np.ndarray
) -> int:
    """Items of rank ``<= n`` of row ``x`` written to ``out``; returns how many."""
    m = x.shape[0]
    if n >= m:
        for j in range(m):
            out[j] = j
        return m
    n_buckets = starts.shape[0] - 1
    # the bucket holding the n-th largest value
    top = n_buckets - 1
    while starts[-1] - starts[top] < n:
        top -= 1
    above_top = starts[-1] - starts[top + 1]
    inside = np.empty(starts[top + 1] - starts[top])
    for p in range(starts[top], starts[top + 1]):
        inside[p - starts[top]] = x[placed[p]]
    inside.sort()
    threshold = inside[inside.shape[0] - (n - above_top)]
    count = 0
    for p in range(starts[top + 1], starts[-1]):  # the higher buckets: all above
        out[count] = placed[p]
        count += 1
    room = n - count
    for p in range(starts[top], starts[top + 1]):
        if x[placed[p]] > threshold:
            room -= 1
    for p in range(starts[top], starts[top + 1]):  # in item order: ties by item
        w = x[placed[p]]
        if w > threshold:
            out[count] = placed[p]
            count += 1
        elif w == threshold and room > 0:
            out[count] = placed[p]
            count += 1
            room -= 1
    return count


@numba.njit(cache=True, nogil=True)
def _cells(
    als: np.ndarray,
    knn_indptr: np.ndarray,
    knn_indices: np.ndarray,
    knn_data: np.ndarray,
    history_indptr: np.ndarray,
    history_items: np.ndarray,
    n_als: int,
    n_itemknn: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_rows, m = als.shape
    capacity = 0
    for r in range(n_rows):
        bound = history_indptr[r + 1] - history_indptr[r]
        bound += min(n_als, m) + min(n_itemknn, knn_indptr[r + 1] - knn_indptr[r])
        capacity += min(bound, m)
    widest = 0
    for r in range(n_rows):
        bound = history_indptr[r + 1] - history_indptr[r]
        bound += min(n_als, m) + min(n_itemknn, knn_indptr[r + 1] - knn_indptr[r])
        widest = max(widest, bound)
    rows = np.empty(capacity, dtype=np.int64)
    items = np.empty(capacity, dtype=np.int64)
    values = np.empty((capacity, 4))
    knn_dense = np.zeros(m)  # the item-kNN row, reset after each shopper
    knn_rank = np.full(m, np.nan)
    chosen = np.empty(widest, dtype=np.int64)
    written = 0
    bucket = np.empty(m, dtype=np.int64)
    starts = np.empty(m // _PER_BUCKET + 2, dtype=np.int64)
    placed = np.empty(m, dtype=np.int64)
    for r in range(n_rows):
        x = als[r]
        _bucket_rows(x, bucket, starts, placed)
        count = _dense_top(x, n_als, starts, placed, chosen) if n_als > 0 else 0
        # item-kNN: positive entries by (score descending, item), rank = position
        a, z = knn_indptr[r], knn_indptr[r + 1]
        cols = knn_indices[a:z]
        vals = knn_data[a:z]
        for p in range(z - a):
            knn_dense[cols[p]] = vals[p]
        positive = np.flatnonzero(vals > 0)
        by_item = positive[np.argsort(cols[positive])]
        order = by_item[np.argsort(-vals[by_item], kind="mergesort")]
        for q in range(order.shape[0]):
            knn_rank[cols[order[q]]] = q + 1.0
            if q < n_itemknn:
                chosen[count] = cols[order[q]]
                count += 1
        for p in range(history_indptr[r], history_indptr[r + 1]):
            chosen[count] = history_items[p]
            count += 1
        picked = np.unique(chosen[:count])
        for p in range(picked.shape[0]):
            j = picked[p]
            rows[written] = r
            items[written] = j
            values[written, 0] = x[j]
            values[written, 1] = _dense_rank(x, j, bucket, starts, placed)
            values[written, 2] = knn_dense[j]
            values[written, 3] = knn_rank[j]
            written += 1
        for p in range(z - a):
            knn_dense[cols[p]] = 0.0
            knn_rank[cols[p]] = np.nan
    return rows[:written], items[:written], values[:written]


def candidate_cells(
    als: np.ndarray,
    knn: object,
    history_indptr: np.ndarray,
    history_items: np.ndarray,
    n_als: int,
    n_itemknn: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Candidate cells of a block of shoppers and their stage-one features.

    Parameters
    ----------
    als:
        ``(n_rows, n_items)`` float64 ALS scores of every item.
    knn:
        ``(n_rows, n_items)`` scipy CSR item-kNN scores (the sparse product, not densified).
    history_indptr, history_items:
        CSR-style history candidates of the rows (item indices).
    n_als, n_itemknn:
        Candidates taken from each model's top (0 disables one).

    Returns
    -------
    tuple or None
        ``(rows, items, values)``: block row and item index of every candidate in row-major
        order (each row's items ascending, as ``np.nonzero`` of a mask gives them) and
        ``(n, 4)`` float64 ``als_score, als_rank, itemknn_score, itemknn_rank``; ``None``
        when a score is not finite (the sorting code handles those).
    """
    data = np.asarray(knn.data, dtype=np.float64)  # type: ignore[attr-defined]
    if not (np.isfinite(als).all() and np.isfinite(data).all()):
        return None
    return _cells(  # type: ignore[no-any-return]
        np.ascontiguousarray(als, dtype=np.float64),
        np.asarray(knn.indptr, dtype=np.int64),  # type: ignore[attr-defined]
        np.asarray(knn.indices, dtype=np.int64),  # type: ignore[attr-defined]
        data,
        np.asarray(history_indptr, dtype=np.int64),
        np.asarray(history_items, dtype=np.int64),
        int(n_als),
        int(n_itemknn),
    )
