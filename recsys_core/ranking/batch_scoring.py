"""Every shopper's top-k purchase probabilities, in chunks of shoppers on worker processes.

:func:`score_all_shoppers` answers what ``ranker.recommend(shoppers, k)`` answers, for any
number of shoppers, with memory bounded by the chunk: each chunk's candidates and features
(a few hundred rows of ~50 float64 columns per shopper) are built, scored and cut to the
top ``k`` before the next chunk starts on that worker
(:class:`~recsys_core.ranking.candidate_scoring.ChunkScorer`), so the peak grows with
``chunk_size * workers``, never with the number of shoppers. Only the top-``k`` rows of
every chunk are kept.

With more than one worker the chunks are scored in forked worker processes
(:func:`map_chunks`): they share the fitted ranker's arrays with the parent (copy on write,
nothing is copied or pickled but the chunk's ids and its top-``k`` rows), and each has a
core and an interpreter lock of its own (threads overlapped only the parts that release
the lock). The number of workers defaults to the ``RECSYS_SCORING_WORKERS`` setting, else
the number of cores. Where ``fork`` is not available the chunks run on threads.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.errors import ConfigError
from recsys_core.models.interface import check_k
from recsys_core.ranking.candidate_scoring import (
    DEFAULT_SCORING_CHUNK,
    ChunkScorer,
    MarginFunction,
)
from recsys_core.ranking.scoring import probability_frame
from recsys_core.settings import lab_settings

if TYPE_CHECKING:
    from recsys_core.ranking.ranker import TwoStageRanker

__all__ = ["DEFAULT_SCORING_CHUNK", "map_chunks", "scoring_workers", "score_all_shoppers"]

_Chunk = TypeVar("_Chunk")
_Result = TypeVar("_Result")

#: The function the forked workers apply (set in the parent just before they fork).
_FORKED: list[Callable[[object], object]] = []


def scoring_workers(workers: int | None = None) -> int:
    """``workers``, else the ``RECSYS_SCORING_WORKERS`` setting, else the number of cores.

    Raises
    ------
    ConfigError
        A number below 1.
    """
    chosen = workers if workers is not None else lab_settings().scoring_workers
    if chosen is None:
        return os.cpu_count() or 1
    if chosen < 1:
        raise ConfigError(
            f"workers must be at least 1, got {chosen} (argument or RECSYS_SCORING_WORKERS)"
        )
    return int(chosen)


def _run_forked(chunk: object) -> object:
    return _FORKED[-1](chunk)


def map_chunks(
    score: Callable[[_Chunk], _Result],
    chunks: Sequence[_Chunk],
    workers: int,
    *,
    processes: bool = True,
) -> Iterator[_Result]:
    """``score`` of each chunk, in order: in this process for one worker (or one chunk),
    else in ``workers`` forked processes (threads where ``fork`` is not available or
    ``processes`` is false: ``score`` calls something that does not survive a fork, such as
    LightGBM's OpenMP predict).

    ``score`` is not pickled: the workers are forked after it is set, so it may close over
    a fitted model. Each result is pickled back to this process (keep them small: the
    top-``k`` rows, not the features). The workers end when the iterator is exhausted.
    """
    workers = min(workers, len(chunks))
    if workers <= 1:
        yield from map(score, chunks)
        return
    if not processes or "fork" not in multiprocessing.get_all_start_methods():
        with ThreadPoolExecutor(max_workers=workers) as threads:
            yield from threads.map(score, chunks)
        return
    _FORKED.append(score)  # type: ignore[arg-type]
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            yield from pool.map(_run_forked, chunks)  # type: ignore[misc]
    finally:
        _FORKED.pop()


def score_all_shoppers(
    ranker: TwoStageRanker,
    user_ids: Sequence[str] | None = None,
    k: int = 10,
    *,
    filter_seen: bool = False,
    chunk_size: int = DEFAULT_SCORING_CHUNK,
    workers: int | None = None,
    margins: MarginFunction | None = None,
    scorer: ChunkScorer | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> pd.DataFrame:
    """Top-``k`` of ``ranker`` for every shopper (or ``user_ids``), chunk by chunk.

    Parameters
    ----------
    ranker:
        A fitted :class:`~recsys_core.ranking.ranker.TwoStageRanker`.
    user_ids:
        Shoppers to score (duplicates answered once; shoppers without history get the
        cold-start list). Default: every shopper the ranker knows
        (:meth:`~recsys_core.ranking.ranker.TwoStageRanker.known_users`).
    k:
        Items per shopper.
    filter_seen:
        As :meth:`~recsys_core.ranking.ranker.TwoStageRanker.recommend`.
    chunk_size:
        Shoppers whose candidates are built and scored together (memory grows with it).
    workers:
        Processes scoring chunks at once (:func:`scoring_workers`: default the
        ``RECSYS_SCORING_WORKERS`` setting, else the number of cores).
    margins:
        Computes the classifier's margins of a feature matrix (default: the ranker's fold
        models with their trees compiled, the same margins as LightGBM's predict); the
        serving layer passes its own compiled trees.
    scorer:
        A :class:`~recsys_core.ranking.candidate_scoring.ChunkScorer` of ``ranker`` built
        once for many calls (``margins`` is then ignored).
    progress:
        Called with a message and the fraction of shoppers done.

    Returns
    -------
    pandas.DataFrame
        What :meth:`~recsys_core.ranking.ranker.TwoStageRanker.recommend` returns for the
        same shoppers: ``user_id``, ``item_id``, ``score``, ``rank``,
        ``purchase_probability``, ``cold_start``, sorted by shopper and rank.

    Raises
    ------
    ConfigError
        ``chunk_size`` or ``workers`` below 1, or a bad ``k``.
    """
    k = int(check_k(k))
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be at least 1, got {chunk_size}")
    n_workers = scoring_workers(workers)
    ranker._check_fitted()
    users, warm = ranker._warm_users(ranker.known_users() if user_ids is None else user_ids)
    warm_users = users[warm]
    chunks = [warm_users[i : i + chunk_size] for i in range(0, len(warm_users), chunk_size)]
    if scorer is None:
        try:
            scorer = ChunkScorer(ranker, margins)
        except ValueError:  # the optional sequence group: the ranker's own path, on threads
            scorer = None
    forks = scorer is not None and scorer.fork_safe and n_workers > 1 and len(chunks) > 1
    if forks and scorer is not None:  # compiled (numba) here, before the workers fork
        scorer.top_k(chunks[0][:1], k, filter_seen=filter_seen)

    def score(chunk: np.ndarray) -> pd.DataFrame:
        if scorer is None:
            return ranker.recommend(list(chunk), k, filter_seen=filter_seen)
        return scorer.top_k(chunk, k, filter_seen=filter_seen)

    parts: list[pd.DataFrame] = []
    done = 0
    for part, chunk in zip(
        map_chunks(score, chunks, n_workers, processes=forks), chunks, strict=True
    ):
        parts.append(part)
        done += len(chunk)
        if progress is not None:
            progress(f"scored {done:,} of {len(users):,} shoppers", done / max(len(users), 1))
    if (~warm).any():
        # the cold-start list
        parts.append(ranker.recommend(list(users[~warm]), k, filter_seen=filter_seen))
    if not parts:
        return probability_frame([], [], [], [], cold_start=False)
    reco = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if progress is not None:
        progress(f"scored {len(users):,} of {len(users):,} shoppers", 1.0)
    return reco.sort_values([Columns.USER, Columns.RANK], kind="stable", ignore_index=True)
