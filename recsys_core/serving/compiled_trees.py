"""A LightGBM booster's raw margins computed by a numba-compiled loop, bit for bit.

LightGBM's ``Booster.predict`` costs about a millisecond of fixed overhead per call and walks
one row through every tree before the next; the service asks for tens to hundreds of rows of
one shopper per answer. :class:`CompiledTrees` reads the booster's own text model into flat
arrays once and walks every row through one tree before the next (the tree stays in cache),
eight rows side by side without data-dependent branches (:func:`_walk`).

It reproduces LightGBM's numerical decision exactly (``NumericalDecision`` in LightGBM's
``tree.h``): a NaN goes the default way when the node's missing type is NaN and is read as 0
otherwise; with missing type Zero, a zero (or NaN) goes the default way; otherwise
``value <= threshold`` goes left. Inputs with ``|value| <= 1e-35`` are read as 0, as
LightGBM's dense-row reader does, and tree outputs are summed in tree order in float64, so
the margins equal ``booster.predict(X, raw_score=True)`` exactly (tested). Boosters it cannot
reproduce (categorical splits, linear trees, several classes) are refused with ``None`` and
the caller keeps LightGBM's own predict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

#: LightGBM reads dense values this close to zero as zero (kZeroThreshold).
_ZERO_THRESHOLD = 1e-35
#: Rows walked through every tree together (~50 float64 features: 25 kB, in L1/L2 cache).
_ROW_BLOCK = 64


def _step(
    x: np.ndarray,
    row: int,
    node: int,
    feature: np.ndarray,
    threshold: np.ndarray,
    children: np.ndarray,
    nan_right: np.ndarray,
    zero_default: np.ndarray,
) -> int:
    """One row's next node, without branches; a leaf (``node < 0``) stays where it is.

    LightGBM's decision: a NaN goes the default way (``nan_right``, precomputed for the
    node's missing type), a zero too when the missing type is Zero; otherwise
    ``value > threshold`` goes right. ``children[2 * node + go_right]``.
    """
    at = max(node, 0)
    value = x[row, feature[at]]
    special = (value != value) | ((value == 0.0) & zero_default[at])
    go_right = (special & nan_right[at]) | ((not special) & (value > threshold[at]))
    following = children[2 * at + np.int64(go_right)]
    return following if node >= 0 else node


_step_compiled = numba.njit(cache=True, nogil=True, inline="always")(_step)


def _walk(
    x: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    children: np.ndarray,
    nan_right: np.ndarray,
    zero_default: np.ndarray,
    leaf_value: np.ndarray,
    roots: np.ndarray,
) -> np.ndarray:
    """Sum of every tree's leaf value for each row of ``x`` (tree by tree, all rows).

    Rows go :data:`_ROW_BLOCK` at a time through every tree before the next block (a block's
    rows stay in cache across the trees; the whole matrix of a batch of shoppers does not).
    Eight rows walk a tree side by side, one level per step for all of them (a row at its
    leaf stays there): eight independent chains of loads keep the core busy where one
    row's chain waits on each load, and no branch depends on the data. Per row the leaf
    values are still added in tree order, so the sums are those of a plain walk.
    """
    n = x.shape[0]
    out = np.zeros(n)
    step = _step_compiled
    for first in range(0, n, _ROW_BLOCK):
        last = min(n, first + _ROW_BLOCK)
        for t in range(roots.shape[0]):
            root = roots[t]
            if root < 0:  # a tree that is a single leaf
                for r in range(first, last):
                    out[r] += leaf_value[-root - 1]
                continue
            r = first
            while r + 8 <= last:
                a = b = c = d = e = f = g = h = root
                while (
                    (a >= 0)
                    | (b >= 0)
                    | (c >= 0)
                    | (d >= 0)
                    | (e >= 0)
                    | (f >= 0)
                    | (g >= 0)
                    | (h >= 0)
                ):
                    a = step(x, r, a, feature, threshold, children, nan_right, zero_default)
                    b = step(x, r + 1, b, feature, threshold, children, nan_right, zero_default)
                    c = step(x, r + 2, c, feature, threshold, children, nan_right, zero_default)
                    d = step(x, r + 3, d, feature, threshold, children, nan_right, zero_default)
                    e = step(x, r + 4, e, feature, threshold, children, nan_right, zero_default)
                    f = step(x, r + 5, f, feature, threshold, children, nan_right, zero_default)
                    g = step(x, r + 6, g, feature, threshold, children, nan_right, zero_default)
                    h = step(x, r + 7, h, feature, threshold, children, nan_right, zero_default)
                out[r] += leaf_value[-a - 1]
                out[r + 1] += leaf_value[-b - 1]
                out[r + 2] += leaf_value[-c - 1]
                out[r + 3] += leaf_value[-d - 1]
                out[r + 4] += leaf_value[-e - 1]
                out[r + 5] += leaf_value[-f - 1]
                out[r + 6] += leaf_value[-g - 1]
                out[r + 7] += leaf_value[-h - 1]
                r += 8
            while r < last:  # the last rows one by one
                a = root
                while a >= 0:
                    a = step(x, r, a, feature, threshold, children, nan_right, zero_default)
                out[r] += leaf_value[-a - 1]
                r += 1
    return out


_walk_compiled = numba.njit(cache=True, nogil=True)(_walk)


@dataclass(frozen=True)
class CompiledTrees:
    """Flat arrays of every tree of a booster (children < 0 are ``-(leaf index) - 1``)."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    nan_right: np.ndarray
    zero_default: np.ndarray
    leaf_value: np.ndarray
    roots: np.ndarray
    n_features: int
    children: np.ndarray  # left and right interleaved: children[2 * node + go_right]

    @classmethod
    def from_booster(cls, booster: Any) -> CompiledTrees | None:
        """Compile ``booster`` (a ``lightgbm.Booster``); ``None`` when it cannot be reproduced."""
        text: str = booster.model_to_string()
        head, _, body = text.partition("\nTree=0\n")
        header = dict(line.split("=", 1) for line in head.split("\n") if "=" in line)
        if header.get("num_tree_per_iteration", "1") != "1":
            return None
        body = body.partition("\nend of trees")[0]
        features, thresholds, lefts, rights, decisions, leaves, roots = [], [], [], [], [], [], []
        n_nodes = n_leaves = 0
        for block in ("Tree=0\n" + body).strip("\n").split("\n\n\n"):
            fields = dict(line.split("=", 1) for line in block.strip("\n").split("\n")[1:])
            if fields.get("is_linear", "0") != "0" or int(fields.get("num_cat", "0")) > 0:
                return None
            leaf = np.array(fields["leaf_value"].split(), dtype=np.float64)
            if int(fields["num_leaves"]) == 1:
                roots.append(-n_leaves - 1)
                leaves.append(leaf[:1])
                n_leaves += 1
                continue
            left = np.array(fields["left_child"].split(), dtype=np.int64)
            right = np.array(fields["right_child"].split(), dtype=np.int64)
            features.append(np.array(fields["split_feature"].split(), dtype=np.int64))
            thresholds.append(np.array(fields["threshold"].split(), dtype=np.float64))
            decisions.append(np.array(fields["decision_type"].split(), dtype=np.int64))
            # internal children shift by the nodes before this tree, leaves by the leaves
            lefts.append(np.where(left >= 0, left + n_nodes, -(~left + n_leaves) - 1))
            rights.append(np.where(right >= 0, right + n_nodes, -(~right + n_leaves) - 1))
            leaves.append(leaf)
            roots.append(n_nodes)
            n_nodes += len(left)
            n_leaves += len(leaf)
        if not roots:
            return None
        decision = np.concatenate(decisions) if decisions else np.zeros(0, dtype=np.int64)
        if (decision & 1).any():  # categorical split
            return None
        threshold = np.concatenate(thresholds) if thresholds else np.zeros(0)
        default_left = (decision & 2) != 0
        missing = (decision >> 2) & 3  # 0 None, 1 Zero, 2 NaN
        # where NaN goes: missing None reads it as 0 (compare), Zero and NaN use the default
        nan_right = np.where(missing == 0, threshold < 0.0, ~default_left)

        def ints(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32)

        left, right = ints(lefts), ints(rights)
        children = np.empty(2 * len(left), dtype=np.int32)
        children[0::2], children[1::2] = left, right
        return cls(
            feature=ints(features),
            threshold=threshold,
            left=left,
            right=right,
            nan_right=nan_right.astype(np.bool_),
            zero_default=(missing == 1).astype(np.bool_),
            leaf_value=np.concatenate(leaves),
            roots=np.asarray(roots, dtype=np.int32),
            n_features=int(header.get("max_feature_idx", "-1")) + 1,
            children=children,
        )

    def raw_score(self, x: np.ndarray) -> np.ndarray:
        """The margins ``booster.predict(x, raw_score=True)`` would give (float64)."""
        return self.raw_score_prepared(prepare_rows(x, self.n_features))

    def raw_score_prepared(self, matrix: np.ndarray) -> np.ndarray:
        """:meth:`raw_score` of a matrix :func:`prepare_rows` returned (prepare once, score
        with several boosters)."""
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} feature columns, got {matrix.shape}")
        return np.asarray(
            _walk_compiled(
                matrix,
                self.feature,
                self.threshold,
                self.children,
                self.nan_right,
                self.zero_default,
                self.leaf_value,
                self.roots,
            )
        )


@numba.njit(cache=True, nogil=True)
def _zero_tiny(flat: np.ndarray) -> None:  # pragma: no cover - compiled
    """Set values LightGBM reads as zero to zero, in place (NaN compares False: kept)."""
    for j in range(flat.shape[0]):
        if abs(flat[j]) <= _ZERO_THRESHOLD:
            flat[j] = 0.0


def prepare_rows(x: np.ndarray, n_features: int, *, copy: bool = True) -> np.ndarray:
    """A C-ordered float64 matrix of ``x`` with values LightGBM reads as zero set to zero.

    ``copy=False`` cleans ``x`` itself where it already is a C-ordered float64 matrix (a
    matrix the caller built for the trees: no second copy of a chunk's features).

    Raises
    ------
    ValueError
        ``x`` is not a matrix of ``n_features`` columns.
    """
    if copy:
        matrix = np.array(x, dtype=np.float64, order="C", copy=True)
    else:
        matrix = np.ascontiguousarray(x, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != n_features:
        raise ValueError(f"expected {n_features} feature columns, got {matrix.shape}")
    _zero_tiny(matrix.reshape(-1))
    return matrix
