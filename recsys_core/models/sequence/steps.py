"""Event log -> each shopper's sequence of steps, horizon targets and repeat signals (numpy).

A **step** is what the transformer sees at one position: the distinct items of one basket
(Online Retail's invoice lines share a timestamp) or of a burst of events less than
``step_minutes`` apart, each with its event type, plus the time since the shopper's previous
step. Collapsing a basket into one step keeps "the next line of the same invoice" from being
the thing the model learns to predict.

The **target** of step ``j`` is the set of distinct items the shopper bought (the target
events) in the ``horizon_days`` after step ``j`` — the quantity the lab's evaluation scores
(the items bought in the next window), not the next line.

The **repeat signal** of step ``j`` lists the shopper's history items up to and including
step ``j`` (at most ``max_history`` of them, most-bought first, then most recent), each with a
bucketed count of the steps that held it and a bucketed number of days since it was last
seen. The network turns them into additive logits, so buy-again behaviour is learnt, not lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

#: Buckets of counts (``floor(log2(count))``, capped) and of day gaps
#: (``floor(log2(1 + days))``, capped); the last gap bucket marks a shopper's first step.
N_COUNT_BUCKETS: Final = 8
N_RECENCY_BUCKETS: Final = 12
N_GAP_BUCKETS: Final = 13
FIRST_STEP_GAP: Final = N_GAP_BUCKETS - 1


def count_bucket(counts: np.ndarray) -> np.ndarray:
    """Bucket of a count >= 1: 1 -> 0, 2-3 -> 1, 4-7 -> 2, ... capped."""
    c = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    return np.minimum(np.floor(np.log2(c)), N_COUNT_BUCKETS - 1).astype(np.int64)


def day_bucket(days: np.ndarray, n_buckets: int = N_RECENCY_BUCKETS) -> np.ndarray:
    """Bucket of a gap in days: 0 -> 0, 1-2 -> 1, 3-6 -> 2, ... capped at ``n_buckets - 1``."""
    d = np.maximum(np.asarray(days, dtype=np.float64), 0.0)
    return np.minimum(np.floor(np.log2(1.0 + d)), n_buckets - 1).astype(np.int64)


@dataclass(frozen=True)
class StepLog:
    """Every shopper's steps, flattened; shopper ``u`` owns steps ``user_offsets[u:u+2]``.

    Attributes
    ----------
    user_offsets:
        ``(n_users + 1,)`` int64 offsets into the steps.
    step_time:
        ``(n_steps,)`` float64 time of each step in days (since the epoch).
    step_gap:
        ``(n_steps,)`` int64 gap bucket (:data:`FIRST_STEP_GAP` for a shopper's first step).
    step_items, step_events:
        ``(n_steps, max_basket)`` int64: item index + 1 and event code + 1 of the step's
        first ``max_basket`` distinct items (0 pads); the network's input.
    entry_offsets, entry_items, entry_is_target:
        Every distinct (step, item) of the log (not truncated): offsets per step, item
        index, and whether the item was bought (a target event) in that step.
    """

    user_offsets: np.ndarray
    step_time: np.ndarray
    step_gap: np.ndarray
    step_items: np.ndarray
    step_events: np.ndarray
    entry_offsets: np.ndarray
    entry_items: np.ndarray
    entry_is_target: np.ndarray

    @property
    def n_users(self) -> int:
        """Number of shoppers (rows of the id map, with or without steps)."""
        return len(self.user_offsets) - 1

    @property
    def n_steps(self) -> int:
        """Number of steps of all shoppers."""
        return len(self.step_time)

    def steps_of(self, user: int) -> tuple[int, int]:
        """``[start, end)`` of shopper ``user``'s steps."""
        return int(self.user_offsets[user]), int(self.user_offsets[user + 1])


def build_steps(
    users: np.ndarray,
    items: np.ndarray,
    events: np.ndarray,
    days: np.ndarray,
    is_target: np.ndarray,
    *,
    n_users: int,
    max_basket: int,
    step_minutes: float,
) -> StepLog:
    """Group events into steps.

    Parameters
    ----------
    users, items, events:
        Per event: shopper index, item index and event code (all >= 0).
    days:
        Per event: time in days (float).
    is_target:
        Per event: whether it is a target event (a purchase).
    n_users:
        Number of shoppers in the id map (shoppers without events get no steps).
    max_basket:
        Items of a step the network sees (targets first, then by item index).
    step_minutes:
        Events of a shopper less than this many minutes after the previous one share a step.
    """
    order = np.lexsort((items, days, users))
    u, it, ev, t, tg = users[order], items[order], events[order], days[order], is_target[order]
    new_step = np.ones(len(u), dtype=bool)
    if len(u) > 1:
        new_step[1:] = (u[1:] != u[:-1]) | (np.diff(t) > step_minutes / 1440.0)
    step_of = np.cumsum(new_step) - 1
    first = np.flatnonzero(new_step)
    n_steps = len(first)
    step_user = u[first]
    # a step's time is its first event's time
    step_time = t[first].astype(np.float64)

    # distinct (step, item): the highest event code wins, bought if any event was a purchase
    key = step_of.astype(np.int64) * (int(it.max(initial=0)) + 1) + it
    uniq, inverse = np.unique(key, return_inverse=True)
    entry_event = np.zeros(len(uniq), dtype=np.int64)
    np.maximum.at(entry_event, inverse, ev)
    entry_target = np.zeros(len(uniq), dtype=bool)
    np.logical_or.at(entry_target, inverse, tg)
    first_of_entry = np.zeros(len(uniq), dtype=np.int64)
    first_of_entry[inverse[::-1]] = np.arange(len(inverse))[::-1]
    entry_step = step_of[first_of_entry]
    entry_item = it[first_of_entry]
    entry_offsets = np.searchsorted(entry_step, np.arange(n_steps + 1)).astype(np.int64)

    # network input: targets first, then item index, first max_basket per step
    rank_order = np.lexsort((entry_item, ~entry_target, entry_step))
    pos = np.arange(len(uniq)) - entry_offsets[entry_step[rank_order]]
    keep = pos < max_basket
    step_items = np.zeros((n_steps, max_basket), dtype=np.int64)
    step_events = np.zeros((n_steps, max_basket), dtype=np.int64)
    rows, cols = entry_step[rank_order][keep], pos[keep]
    step_items[rows, cols] = entry_item[rank_order][keep] + 1
    step_events[rows, cols] = entry_event[rank_order][keep] + 1

    user_offsets = np.searchsorted(step_user, np.arange(n_users + 1)).astype(np.int64)
    gap = np.full(n_steps, FIRST_STEP_GAP, dtype=np.int64)
    if n_steps > 1:
        same_user = step_user[1:] == step_user[:-1]
        gap[1:][same_user] = day_bucket(np.diff(step_time)[same_user], FIRST_STEP_GAP)
    return StepLog(
        user_offsets=user_offsets,
        step_time=step_time,
        step_gap=gap,
        step_items=step_items,
        step_events=step_events,
        entry_offsets=entry_offsets,
        entry_items=entry_item.astype(np.int64),
        entry_is_target=entry_target,
    )


@dataclass(frozen=True)
class Ragged:
    """Variable-length rows: row ``r`` is ``values[offsets[r]:offsets[r+1]]`` (and extras)."""

    offsets: np.ndarray
    values: np.ndarray
    extra: tuple[np.ndarray, ...] = ()

    def row(self, r: int) -> np.ndarray:
        """The values of row ``r``."""
        return self.values[self.offsets[r] : self.offsets[r + 1]]


def horizon_targets(log: StepLog, horizon_days: float) -> Ragged:
    """Per step: distinct items bought in the ``horizon_days`` after it (row per step)."""
    sizes = np.zeros(log.n_steps, dtype=np.int64)
    parts: list[np.ndarray] = []
    for user in range(log.n_users):
        start, end = log.steps_of(user)
        if end - start < 2:
            continue
        times = log.step_time[start:end]
        stop = np.searchsorted(times, times + horizon_days, side="right") + start
        for j in range(start, end - 1):
            lo, hi = log.entry_offsets[j + 1], log.entry_offsets[stop[j - start]]
            if hi <= lo:
                continue
            bought = log.entry_items[lo:hi][log.entry_is_target[lo:hi]]
            if len(bought):
                found = np.unique(bought)
                sizes[j] = len(found)
                parts.append(found)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    values = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return Ragged(offsets, values.astype(np.int64))


def repeat_signals(log: StepLog, steps: np.ndarray, max_history: int) -> Ragged:
    """Repeat signal of each step in ``steps`` (global step indices, sorted by shopper).

    Returns a :class:`Ragged` with one row per requested step: history item indices, and
    as extras their count bucket and recency bucket (days from the last step that held
    the item to the requested step).
    """
    steps = np.asarray(steps, dtype=np.int64)
    n_req = len(steps)
    sizes = np.zeros(n_req, dtype=np.int64)
    out_items: list[np.ndarray] = []
    out_count: list[np.ndarray] = []
    out_recency: list[np.ndarray] = []
    owner = np.searchsorted(log.user_offsets, steps, side="right") - 1
    bounds = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1], True]) if n_req else np.zeros(0)
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        user = int(owner[a])
        start, _ = log.steps_of(user)
        last_needed = int(steps[b - 1])
        lo, hi = log.entry_offsets[start], log.entry_offsets[last_needed + 1]
        entry_items = log.entry_items[lo:hi]
        entry_step = np.repeat(
            np.arange(last_needed + 1 - start), np.diff(log.entry_offsets[start : last_needed + 2])
        )
        distinct, column = np.unique(entry_items, return_inverse=True)
        n_rows = last_needed + 1 - start
        present = np.zeros((n_rows, len(distinct)), dtype=np.float32)
        present[entry_step, column] = 1.0
        counts = np.cumsum(present, axis=0)
        times = log.step_time[start : last_needed + 1]
        seen_at = np.where(present > 0, times[:, None], -np.inf)
        last_seen = np.maximum.accumulate(seen_at, axis=0)
        for r in range(a, b):
            local = int(steps[r]) - start
            row_counts = counts[local]
            held = np.flatnonzero(row_counts > 0)
            if len(held) > max_history:
                order = np.lexsort((-last_seen[local, held], -row_counts[held]))
                held = held[order[:max_history]]
            held = np.sort(held)
            sizes[r] = len(held)
            out_items.append(distinct[held])
            out_count.append(count_bucket(row_counts[held]))
            out_recency.append(day_bucket(times[local] - last_seen[local, held]))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def flat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    return Ragged(offsets, flat(out_items), (flat(out_count), flat(out_recency)))


def training_windows(log: StepLog, length: int, has_target: np.ndarray) -> np.ndarray:
    """``(n, 2)`` global ``[start, end)`` step windows of at most ``length`` steps.

    Each shopper's steps are cut from the end into consecutive windows; windows without a
    step that has a target are dropped.
    """
    windows: list[tuple[int, int]] = []
    for user in range(log.n_users):
        start, end = log.steps_of(user)
        stop = end
        while stop > start:
            first = max(start, stop - length)
            if has_target[first:stop].any():
                windows.append((first, stop))
            stop = first
    return np.asarray(windows, dtype=np.int64).reshape(-1, 2)


def last_windows(log: StepLog, users: np.ndarray, length: int) -> np.ndarray:
    """``(len(users), 2)`` window of each shopper's last ``length`` steps (empty: start=end)."""
    ends = log.user_offsets[np.asarray(users, dtype=np.int64) + 1]
    starts = np.maximum(log.user_offsets[np.asarray(users, dtype=np.int64)], ends - length)
    return np.stack([starts, ends], axis=1).astype(np.int64)
