"""The per-user intra-list diversity behind ``diversity@k`` (formula in :mod:`recsys_core.metrics`).

:math:`ILD_u = 1 - \\frac{2}{n_u (n_u - 1)} \\sum_{i < j \\in L_u} \\hat v_i \\cdot \\hat v_j`
on L2-normalised item vectors. The pair sum ``S_u`` of every user is computed one of two
ways, whichever a work estimate says is cheaper; both give the same figure up to rounding:

``summed``
    :math:`S_u = (\\lVert \\sum_i \\hat v_i \\rVert^2 - \\sum_i \\lVert \\hat v_i \\rVert^2) / 2`:
    one sparse product ``membership @ unit``. With sparse vectors (the items' columns of the
    training matrix) a summed row holds the union of the buyers of the user's items: about
    ``list length x buyers per item`` non-zeros per user, a lot for popular lists.
``pairs``
    the distinct item pairs ``(a, b)`` that occur in any list are deduplicated across users,
    their dot products read off the Gram matrix ``unit @ unit.T`` of the listed items (built a
    block of rows at a time; its cost is ``sum_k c_k^2`` over the training users ``k``, with
    ``c_k`` the number of listed items user ``k`` touched), then summed per user. Cheap when
    training users touch few items (a 1M-line grocery log, 28k shoppers' top-10 lists, CPU
    seconds under load: best sellers 0.17 where ``summed`` took 14, own staples 0.8 vs 3.4,
    half of each 0.8 vs 12; ``python bench/bench_diversity.py``).

Dense vectors always use ``summed`` (``n_users x dim`` work).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, TypeAlias

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from recsys_core.columns import Columns
from recsys_core.interactions import IdMap

__all__ = ["ItemIndex", "ItemVectors", "PairMethod", "per_user_intra_list_diversity"]

#: Item vectors accepted by :func:`recsys_core.metrics.intra_list_diversity`: one row per item.
ItemVectors: TypeAlias = np.ndarray | sp.spmatrix | sp.sparray | pd.DataFrame
#: Maps an item id to its row in the item vectors.
ItemIndex: TypeAlias = pd.Index | Mapping[object, int] | IdMap

_USER = Columns.USER
_ITEM = Columns.ITEM

#: How :func:`per_user_intra_list_diversity` sums the pairs: ``auto`` picks the cheaper.
PairMethod: TypeAlias = Literal["auto", "summed", "pairs"]

#: Non-zeros of ``membership @ unit`` (or of a Gram block) built at once (~50 MB).
_SUMMED_ENTRIES: Final = 4_000_000
#: Above this many listed pairs (all users together) the ``pairs`` method is not used: its
#: arrays grow with the pairs (~40 bytes each), ``summed`` with the users.
_MAX_PAIRS: Final = 20_000_000
#: Above this many Gram blocks the whole Gram is built (each row block against every
#: listed item) rather than its upper triangle, which transposes the rest once per block.
_TRIANGLE_BLOCKS: Final = 8
#: Cost of one listed pair (enumerate, deduplicate, look up, sum) in units of one
#: multiply-add of a sparse product (a rough figure from ``bench/bench_diversity.py``).
_PAIR_COST: Final = 8.0


def _item_rows(items: pd.Series, item_index: ItemIndex, n_rows: int) -> np.ndarray:
    """Row of each item in the item vectors, or -1 when the item has no vector."""
    if isinstance(item_index, IdMap):
        rows = item_index.to_internal(items)
    elif isinstance(item_index, pd.Index):
        rows = item_index.get_indexer(pd.Index(items))
    else:
        rows = (
            items.map(pd.Series(dict(item_index), dtype=np.float64))
            .fillna(-1)
            .to_numpy(dtype=np.int64)
        )
    rows = np.asarray(rows, dtype=np.int64)
    rows[(rows < 0) | (rows >= n_rows)] = -1
    return rows


def _row_blocks(work: np.ndarray, budget: float) -> list[tuple[int, int]]:
    """Consecutive ``[start, stop)`` row ranges whose summed ``work`` stays near ``budget``
    (at least one row each)."""
    cumulative = np.cumsum(work)
    blocks = []
    start = 0
    while start < len(work):
        limit = (cumulative[start - 1] if start else 0.0) + budget
        stop = max(start + 1, int(np.searchsorted(cumulative, limit, side="right")))
        blocks.append((start, stop))
        start = stop
    return blocks


def _summed_squares(membership: sp.csr_matrix, unit: np.ndarray | sp.csr_matrix) -> np.ndarray:
    """``||membership[u] @ unit||^2`` per row ``u``, a block of rows at a time.

    Every user's popular top-10 on a 30k-shopper log made the whole product 1.8 GB at once
    (5.7 GB peak with its square). Each row is computed exactly as in one product; blocks
    keep about :data:`_SUMMED_ENTRIES` non-zeros.
    """
    if isinstance(unit, np.ndarray):
        summed = membership @ unit
        return np.einsum("ij,ij->i", summed, summed)
    row_nnz = np.diff(unit.indptr).astype(np.float64)
    out = np.empty(membership.shape[0], dtype=np.float64)
    for start, stop in _row_blocks(membership @ row_nnz, _SUMMED_ENTRIES):
        summed = membership[start:stop] @ unit
        out[start:stop] = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
    return out


def _summed_pair_sums(
    user_codes: np.ndarray, column: np.ndarray, n_users: int, unit: np.ndarray | sp.csr_matrix
) -> np.ndarray:
    """``S_u`` by the ``summed`` method (see the module docstring)."""
    membership = sp.csr_matrix(
        (np.ones(len(user_codes)), (user_codes, column)), shape=(n_users, unit.shape[0])
    )
    summed_sq = _summed_squares(membership, unit)
    unit_sq = (
        np.einsum("ij,ij->i", unit, unit)
        if isinstance(unit, np.ndarray)
        else np.asarray(unit.multiply(unit).sum(axis=1)).ravel()
    )
    return (summed_sq - membership @ unit_sq) / 2.0


def _listed_pairs(
    user_codes: np.ndarray, column: np.ndarray, n_columns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair ``i < j`` of positions within one user's list: its user and its key
    ``a * n_columns + b`` with ``a <= b`` the two items' columns."""
    order = np.lexsort((column, user_codes))
    users, columns = user_codes[order], column[order].astype(np.int64)
    longest = int(np.bincount(users).max()) if len(users) else 0
    pair_users, pair_keys = [], []
    for offset in range(1, longest):
        same = users[:-offset] == users[offset:]
        pair_users.append(users[offset:][same])
        pair_keys.append(columns[:-offset][same] * n_columns + columns[offset:][same])
    if not pair_users:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(pair_users), np.concatenate(pair_keys)


def _pair_dots(keys: np.ndarray, unit: sp.csr_matrix) -> np.ndarray:
    """``unit[a] . unit[b]`` for each sorted distinct key ``a * n + b`` with ``a <= b``
    (``n`` rows), read off the upper triangle of the Gram matrix ``unit @ unit.T``, a block
    of rows ``[start, stop)`` at a time (columns ``>= start`` only)."""
    n = unit.shape[0]
    per_user = np.bincount(unit.indices, minlength=unit.shape[1]).astype(np.float64)  # c_k
    # an upper bound of each Gram row's non-zeros: sum of c_k over the row's users k
    gram_nnz = np.add.reduceat(np.append(per_user[unit.indices], 0.0), unit.indptr[:-1])
    gram_nnz[np.diff(unit.indptr) == 0] = 0.0
    dots = np.zeros(len(keys), dtype=np.float64)
    first = keys // n
    blocks = _row_blocks(gram_nnz, _SUMMED_ENTRIES)
    # the triangle transposes unit[start:] per block: with many blocks, transpose once
    whole = unit.T.tocsr() if len(blocks) > _TRIANGLE_BLOCKS else None
    for start, stop in blocks:
        lo, hi = np.searchsorted(first, [start, stop])
        if lo == hi:
            continue
        left = 0 if whole is not None else start  # the first column of this block's Gram
        right = whole if whole is not None else unit[start:].T.tocsr()
        # column-major (CSC: a transpose by counting, so sorted rows without a sort)
        gram = sp.csc_matrix(unit[start:stop] @ right)
        gram.sum_duplicates()  # no-op: one entry per cell, sorted
        cols = np.repeat(np.arange(left, n, dtype=np.int64), np.diff(gram.indptr))
        gram_keys = cols * n + start + gram.indices  # b * n + a, ascending
        wanted = keys[lo:hi] % n * n + first[lo:hi]  # b * n + a
        order = np.argsort(wanted, kind="stable")  # sorted look-ups walk the keys in order
        if len(gram_keys):
            at = np.minimum(np.searchsorted(gram_keys, wanted[order]), len(gram_keys) - 1)
            found = gram_keys[at] == wanted[order]
            dots[lo + order[found]] = gram.data[at[found]]
    return dots


def _pairs_cost(unit: sp.csr_matrix, n_pairs: int) -> float:
    """Work of the ``pairs`` method: Gram multiply-adds plus the per-pair bookkeeping."""
    per_user = np.bincount(unit.indices, minlength=unit.shape[1]).astype(np.float64)
    return float(per_user @ per_user) + _PAIR_COST * n_pairs


def _choose(method: PairMethod, column: np.ndarray, n_pairs: float, unit: sp.csr_matrix) -> str:
    """``summed`` or ``pairs``: ``method`` unless ``auto``, then the cheaper by work."""
    if method != "auto":
        return method
    if n_pairs > _MAX_PAIRS:
        return "summed"
    summed_cost = float(np.diff(unit.indptr)[column].sum())  # non-zeros of membership @ unit
    return "pairs" if _pairs_cost(unit, int(n_pairs)) < summed_cost else "summed"


def _pair_sums(
    user_codes: np.ndarray,
    column: np.ndarray,
    n_users: int,
    unit: np.ndarray | sp.csr_matrix,
    method: PairMethod,
) -> np.ndarray:
    """``S_u`` of every user by ``method`` (see the module docstring)."""
    if isinstance(unit, np.ndarray):
        return _summed_pair_sums(user_codes, column, n_users, unit)
    n_items = np.bincount(user_codes, minlength=n_users).astype(np.float64)
    n_pairs = float(n_items @ (n_items - 1.0)) / 2.0
    if _choose(method, column, n_pairs, unit) == "summed":
        return _summed_pair_sums(user_codes, column, n_users, unit)
    pair_users, pair_keys = _listed_pairs(user_codes, column, unit.shape[0])
    keys, which = np.unique(pair_keys, return_inverse=True)
    dots = _pair_dots(keys, unit)
    return np.bincount(pair_users, weights=dots[which.ravel()], minlength=n_users)


def per_user_intra_list_diversity(
    top: pd.DataFrame,
    item_vectors: ItemVectors,
    item_index: ItemIndex | None,
    *,
    method: PairMethod = "auto",
) -> pd.Series:
    """ILD of each user of ``top`` (``user_id, item_id`` rows, one per pair) with at least
    two vectorised items, indexed by ``user_id`` (see
    :func:`recsys_core.metrics.intra_list_diversity`).

    ``method``: how sparse vectors' pair sums are computed (module docstring); ``auto``
    picks the cheaper, the others exist to compare them. Dense vectors always use ``summed``.
    """
    if method not in ("auto", "summed", "pairs"):
        raise ValueError(f"method must be 'auto', 'summed' or 'pairs', got {method!r}")
    if isinstance(item_vectors, pd.DataFrame):
        vectors: np.ndarray | sp.csr_matrix = item_vectors.to_numpy(dtype=np.float64)
        index: ItemIndex = item_vectors.index if item_index is None else item_index
    elif item_index is None:
        raise ValueError(
            "item_index is required with array item vectors: pass a pandas Index, a dict "
            "item_id -> row or an IdMap giving each item's row"
        )
    else:
        vectors = (
            sp.csr_matrix(item_vectors, dtype=np.float64)
            if sp.issparse(item_vectors)
            else np.asarray(item_vectors, dtype=np.float64)
        )
        index = item_index
    if vectors.ndim != 2:
        raise ValueError(f"item vectors must be 2-D (one row per item), got {vectors.ndim}-D")

    rows = _item_rows(top[_ITEM], index, vectors.shape[0])
    keep = rows >= 0
    users = top[_USER].to_numpy()[keep]
    if not keep.any():
        return pd.Series(dtype=np.float64)
    unique_rows, column = np.unique(rows[keep], return_inverse=True)
    column = column.ravel()
    unit = normalize(vectors[unique_rows], norm="l2")  # zero vectors stay zero
    if sp.issparse(unit):
        unit = sp.csr_matrix(unit)
        unit.sum_duplicates()
    user_codes, user_ids = pd.factorize(users)
    pair_sums = _pair_sums(user_codes, column, len(user_ids), unit, method)
    n_items = np.bincount(user_codes, minlength=len(user_ids)).astype(np.float64)
    n_pairs = n_items * (n_items - 1.0) / 2.0
    enough = n_pairs > 0
    ild = np.clip(1.0 - pair_sums[enough] / n_pairs[enough], 0.0, 2.0)
    return pd.Series(ild, index=pd.Index(np.asarray(user_ids)[enough], name=_USER))
