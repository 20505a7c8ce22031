"""What the service's answers are made of: one answered question and the LRU cache of them."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from recsys_core.policy import ListPolicy
from recsys_core.serving.hot_path import TopItems

__all__ = ["AnswerCache", "RecommendationAnswer"]

_V = TypeVar("_V")


class AnswerCache(Generic[_V]):
    """A thread-safe LRU cache of answers that says whether each lookup was a hit."""

    def __init__(self, compute: Callable[..., _V], maxsize: int) -> None:
        self._compute = compute
        self._maxsize = maxsize
        self._store: OrderedDict[Hashable, _V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, *key: Hashable) -> tuple[_V, bool]:
        """``(answer, hit)``; computes (outside the lock) and stores on a miss."""
        with self._lock:
            if key in self._store:
                self._store.move_to_end(key)
                self.hits += 1
                return self._store[key], True
        value = self._compute(*key)
        with self._lock:
            self.misses += 1
            self._store[key] = value
            if len(self._store) > self._maxsize:
                self._store.popitem(last=False)
        return value, False

    def __len__(self) -> int:
        return len(self._store)


@dataclass(frozen=True)
class RecommendationAnswer:
    """One answered question (cached as is; shared between callers, never modified)."""

    top: TopItems
    probabilities: np.ndarray
    served_by: str
    reason: str | None
    policy: ListPolicy | None = None
    cached: bool = False
    source: str = "live"
    computed_at: str | None = None

    @property
    def ranks(self) -> np.ndarray:
        """1..n: every list is ranked from its first item."""
        return np.arange(1, len(self.top.item_ids) + 1, dtype=np.int64)
