"""Reuse of the ranker's per-window work within one evaluation run.

With rolling-origin folds of ``test_days == horizon_days`` (the default 30 days), fold
``k + 1``'s training windows have the cutoffs of fold ``k``'s windows shifted by one, and its
newest window's cutoff is fold ``k``'s cutoff, where fold ``k`` fitted stage one and the
behaviour features for scoring. Refitting them is the same computation on the same events,
so :func:`recsys_core.evaluation.evaluate` runs its folds inside :func:`using_window_cache`
and the ranker reuses:

* **window frames** — the labelled candidate rows of one training window
  (:func:`~recsys_core.ranking.training_frame.build_training_frame`), and
* **stages** — a fitted :class:`~recsys_core.ranking.candidates.CandidateGenerator` and
  :class:`~recsys_core.ranking.features.BehaviourSnapshot` at one cutoff (the ranker's
  scoring stage of one fold is the next fold's newest training window's stage).

Every entry is keyed by everything that determines it: the cutoff, a digest of the events
it may read (every column of every row before the end of its label window, in log order),
a digest of the catalog, the stage-one and feature settings (the classifier's settings and
the number of windows do not change a window's rows), the feature names and the training
sample. A different log, setting, cutoff or sample misses and is built afresh, so the
rows are exactly those a fresh build gives (``tests/core/ranking/test_window_cache.py``).

The order model (:mod:`recsys_core.ranking.order_model`) keeps its **shopper tables** here
too: :func:`~recsys_core.ranking.order_features.shopper_features` at one cutoff, keyed by the
cutoff and the digest of the events before it (the table reads nothing else). Fold ``k + 1``'s
order-model windows are fold ``k``'s shifted by one, so each fold builds one new table
instead of a dozen (:class:`~recsys_core.ranking.order_features.ShopperFeatureTables`).

Memory is bounded by dropping what no later fold can use: a build drops frames older
than its own oldest window (folds move forward in time), a stage is handed out once, and
with ``store=False`` (the last fold) nothing new is kept and the used frames are dropped.
The order model drops its tables older than its own oldest window the same way
(:meth:`WindowCache.drop_shopper_tables_before`). Outside :func:`using_window_cache`
nothing is cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recsys_core.columns import Columns

if TYPE_CHECKING:
    from recsys_core.ranking.candidates import CandidateGenerator
    from recsys_core.ranking.config import RankerConfig
    from recsys_core.ranking.features import BehaviourSnapshot

__all__ = [
    "EventDigests",
    "WindowCache",
    "active_window_cache",
    "stage_settings",
    "using_window_cache",
    "window_digests",
]

#: Settings of :class:`~recsys_core.ranking.config.RankerConfig` that cannot change one
#: window's rows or stage (everything else is part of the keys).
_NOT_IN_KEY = frozenset({"classifier", "training_windows", "window_step_days"})


def stage_settings(config: RankerConfig) -> str:
    """The settings that decide a window's stage and rows, as canonical JSON (with the
    feature names, so another feature set never shares an entry)."""
    from recsys_core.ranking.features import FEATURE_NAMES

    settings = config.model_dump(mode="json", exclude=set(_NOT_IN_KEY))
    return json.dumps({"settings": settings, "features": list(FEATURE_NAMES)}, sort_keys=True)


class EventDigests:
    """Digests of the events before any instant, from one pass over the log.

    Each row is hashed once (every column, :func:`pandas.util.hash_pandas_object`); the
    digest of the events before ``end`` hashes those rows' hashes in log order with the
    column names and types, so two logs share a digest only with the same rows in the
    same order.
    """

    def __init__(self, events: pd.DataFrame, catalog: pd.DataFrame | None) -> None:
        self._rows = pd.util.hash_pandas_object(events, index=False).to_numpy(dtype=np.uint64)
        self._ts = events[Columns.TIMESTAMP].to_numpy(dtype="datetime64[ns]")
        self._schema = repr([(str(c), str(t)) for c, t in events.dtypes.items()]).encode()
        self.catalog = _frame_digest(catalog)

    def before(self, end: pd.Timestamp) -> str:
        """Digest of the events strictly before ``end`` (with the catalog's digest)."""
        chosen = self._rows[self._ts < np.datetime64(pd.Timestamp(end).asm8, "ns")]
        digest = hashlib.blake2b(self._schema, digest_size=20)
        digest.update(np.ascontiguousarray(chosen).tobytes())
        digest.update(self.catalog.encode())
        return digest.hexdigest()


def window_digests(events: pd.DataFrame, catalog: pd.DataFrame | None) -> EventDigests | None:
    """:class:`EventDigests` of ``events`` inside :func:`using_window_cache`, else ``None``
    (nothing is hashed when nothing is cached)."""
    return EventDigests(events, catalog) if active_window_cache() is not None else None


def _frame_digest(frame: pd.DataFrame | None) -> str:
    if frame is None:
        return "none"
    digest = hashlib.blake2b(repr(list(frame.columns)).encode(), digest_size=20)
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def sample_digest(sample: pd.Index | None) -> str:
    """Digest of a training sample of shoppers (``"all"`` without a sample)."""
    if sample is None:
        return "all"
    values = pd.util.hash_pandas_object(pd.Series(sample.to_numpy(dtype=object)), index=False)
    return hashlib.blake2b(values.to_numpy().tobytes(), digest_size=20).hexdigest()


@dataclass
class WindowCache:
    """Window frames and stages of one evaluation run (see the module docstring).

    Attributes
    ----------
    store:
        Keep what is built for later folds (``False`` on the last fold).
    frame_builds, frame_hits, stage_fits, stage_hits:
        How many window frames were built / reused and stages fitted / reused.
    table_builds, table_hits:
        How many of the order model's shopper tables were built / reused.
    """

    store: bool = True
    frame_builds: int = 0
    frame_hits: int = 0
    stage_fits: int = 0
    stage_hits: int = 0
    table_builds: int = 0
    table_hits: int = 0
    _frames: dict[tuple[Any, ...], tuple[pd.Timestamp, pd.DataFrame]] = field(
        default_factory=dict, repr=False
    )
    _stages: dict[tuple[Any, ...], tuple[pd.Timestamp, CandidateGenerator, BehaviourSnapshot]] = (
        field(default_factory=dict, repr=False)
    )
    _tables: dict[tuple[Any, ...], tuple[pd.Timestamp, pd.DataFrame]] = field(
        default_factory=dict, repr=False
    )

    def frame(self, key: tuple[Any, ...]) -> pd.DataFrame | None:
        """The cached rows of a window (``None`` when not cached)."""
        entry = self._frames.get(key)
        if entry is None:
            return None
        self.frame_hits += 1
        return entry[1]

    def keep_frame(self, key: tuple[Any, ...], cutoff: pd.Timestamp, frame: pd.DataFrame) -> None:
        """Count a built window and keep it when :attr:`store`."""
        self.frame_builds += 1
        if self.store:
            self._frames[key] = (pd.Timestamp(cutoff), frame)

    def take_stage(
        self, key: tuple[Any, ...]
    ) -> tuple[CandidateGenerator, BehaviourSnapshot] | None:
        """A cached stage, removed from the cache (a stage is used once: the frame built
        from it is what later folds reuse)."""
        entry = self._stages.pop(key, None)
        if entry is None:
            return None
        self.stage_hits += 1
        return entry[1], entry[2]

    def keep_stage(
        self,
        key: tuple[Any, ...],
        cutoff: pd.Timestamp,
        generator: CandidateGenerator,
        snapshot: BehaviourSnapshot,
        *,
        keep: bool = True,
    ) -> None:
        """Count a fitted stage and keep it when ``keep`` and :attr:`store`."""
        self.stage_fits += 1
        if keep and self.store:
            self._stages[key] = (pd.Timestamp(cutoff), generator, snapshot)

    def drop_before(self, cutoff: pd.Timestamp) -> None:
        """Forget every entry older than ``cutoff`` (no later fold reads them); with
        :attr:`store` off, forget every frame."""
        cutoff = pd.Timestamp(cutoff)
        self._frames = {k: v for k, v in self._frames.items() if self.store and v[0] >= cutoff}
        self._stages = {k: v for k, v in self._stages.items() if v[0] >= cutoff}

    def shopper_table(self, key: tuple[Any, ...]) -> pd.DataFrame | None:
        """A cached shopper table of the order model (``None`` when not cached)."""
        entry = self._tables.get(key)
        if entry is None:
            return None
        self.table_hits += 1
        return entry[1]

    def keep_shopper_table(
        self, key: tuple[Any, ...], cutoff: pd.Timestamp, table: pd.DataFrame
    ) -> None:
        """Count a built shopper table and keep it when :attr:`store`."""
        self.table_builds += 1
        if self.store:
            self._tables[key] = (pd.Timestamp(cutoff), table)

    def drop_shopper_tables_before(self, cutoff: pd.Timestamp) -> None:
        """Forget the shopper tables older than ``cutoff`` (every one with :attr:`store`
        off: no later fold reads them)."""
        cutoff = pd.Timestamp(cutoff)
        self._tables = {k: v for k, v in self._tables.items() if self.store and v[0] >= cutoff}

    @property
    def entries(self) -> int:
        """Frames, stages and shopper tables held now."""
        return len(self._frames) + len(self._stages) + len(self._tables)

    def clear(self) -> None:
        """Forget everything (the counts stay)."""
        self._frames.clear()
        self._stages.clear()
        self._tables.clear()


_ACTIVE: ContextVar[WindowCache | None] = ContextVar("ranker_window_cache", default=None)


def active_window_cache() -> WindowCache | None:
    """The cache of the enclosing :func:`using_window_cache` (``None`` outside one)."""
    return _ACTIVE.get()


@contextmanager
def using_window_cache(cache: WindowCache | None) -> Iterator[WindowCache | None]:
    """Let every ranker fitted inside the block reuse ``cache`` (``None``: no caching)."""
    token = _ACTIVE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE.reset(token)
