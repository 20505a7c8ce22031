"""Seeded bootstrap resamples of test shoppers and percentile intervals.

One :class:`UserBootstrap` serves every model and metric of an evaluation, so intervals of
differences and ratios between models are paired. Re-exported by :mod:`recsys_core.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp

# --------------------------------------------------------------------------------------
# Bootstrap intervals over test users
# --------------------------------------------------------------------------------------


class UserBootstrap:
    """Seeded bootstrap resamples of ``n_users`` test users, the same for every call.

    Each resample draws ``n_users`` users with replacement. Because the draws depend only
    on ``(n_users, n_resamples, seed)``, every metric and every model evaluated on the same
    (identically ordered) test users sees the *same* resamples: intervals of one model are
    consistent with each other, and differences or ratios between models computed from the
    resampled statistics form a **paired** bootstrap.

    Parameters
    ----------
    n_users:
        Number of test users (rows of the per-user values).
    n_resamples:
        Bootstrap resamples.
    seed:
        Seed of the draws.
    """

    def __init__(self, n_users: int, n_resamples: int = 1000, seed: int = 42) -> None:
        if n_users < 1:
            raise ValueError(f"the bootstrap needs at least one user, got {n_users}")
        if n_resamples < 1:
            raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
        self.n_users = int(n_users)
        self.n_resamples = int(n_resamples)
        self.seed = int(seed)

    def _weights(self) -> Iterator[sp.csr_matrix]:
        """Resample-by-user count matrices, in chunks that keep memory bounded."""
        rng = np.random.default_rng(self.seed)
        chunk = max(1, min(self.n_resamples, 2_000_000 // self.n_users))
        done = 0
        while done < self.n_resamples:
            size = min(chunk, self.n_resamples - done)
            draws = rng.integers(0, self.n_users, size=(size, self.n_users))
            rows = np.repeat(np.arange(size), self.n_users)
            yield sp.csr_matrix(
                (np.ones(draws.size), (rows, draws.ravel())), shape=(size, self.n_users)
            )
            done += size

    def means(self, values: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Resampled means of each column, ``(n_resamples, n_columns)``; NaN values are
        left out of their column's mean (as in ``nanmean``)."""
        matrix = np.asarray(values, dtype=np.float64)
        if matrix.ndim == 1:
            matrix = matrix[:, None]
        if matrix.shape[0] != self.n_users:
            raise ValueError(f"expected {self.n_users} rows, got {matrix.shape[0]}")
        present = ~np.isnan(matrix)
        filled = np.where(present, matrix, 0.0)
        parts = []
        for weights in self._weights():
            totals = np.asarray(weights @ filled)
            counts = np.asarray(weights @ present.astype(np.float64))
            with np.errstate(invalid="ignore", divide="ignore"):
                parts.append(totals / counts)
        return np.vstack(parts)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> list[float]:
    """``[low, high]``: the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of
    bootstrap statistics (the percentile interval); NaN statistics are left out."""
    values = np.asarray(samples, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [float("nan"), float("nan")]
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return [float(low), float(high)]
