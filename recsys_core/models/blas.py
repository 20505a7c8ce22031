"""BLAS thread limits around calls into implicit (shared by the models, their persistence and
the serving hot path)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import threadpoolctl

__all__ = ["blas_controller", "single_threaded_blas"]


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS (OpenBLAS/MKL) to one thread for the duration of the block.

    implicit runs its own OpenMP thread pool; letting BLAS start another one on top of it
    oversubscribes the cores (implicit warns about this) and can make training ~10x slower.
    """
    with blas_controller().limit(limits=1, user_api="blas"):
        yield


@lru_cache(maxsize=1)
def blas_controller() -> threadpoolctl.ThreadpoolController:
    """The process's BLAS libraries, found once: ``threadpool_limits`` rescans every loaded
    library on each call (~10 ms, more than an ALS answer takes)."""
    return threadpoolctl.ThreadpoolController()
