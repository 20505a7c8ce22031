"""Train/test splits of an event log.

* :func:`temporal_split` — everything before a cutoff trains, the test period follows (by
  default the last 30 days). Test users must have events before the cutoff; test events of
  users without any history are kept aside as ``cold_test`` (so nothing is lost).
* :func:`random_split` — for logs without timestamps: a seeded per-user random hold-out.
* :func:`rolling_origin_splits` — ``n`` folds: consecutive test windows of ``test_days``
  each, the last ending at the log's end, each trained on everything before it (RecTools'
  ``TimeRangeSplitter``); without timestamps, ``n`` seeded random hold-outs.

Each returns :class:`Split` objects whose ``train``, ``test`` and ``cold_test`` together hold
each input row exactly once, except a temporal fold with a ``test_end``: its events from
``test_end`` on are in no part (they are later folds' data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_event_frame
from recsys_core.errors import DataValidationError

SplitMethod = Literal["temporal", "random"]


@dataclass(frozen=True)
class Split:
    """A train/test split with its provenance.

    Attributes
    ----------
    train, test:
        Event logs (canonical columns). Every user in ``test`` has events in ``train``.
    cold_test:
        Test-period events of users with no training history (not scored; kept so that
        ``len(train) + len(test) + len(cold_test)`` equals the input).
    method:
        ``temporal`` or ``random``.
    cutoff:
        First instant of the test period (temporal only).
    """

    train: pd.DataFrame
    test: pd.DataFrame
    method: SplitMethod
    cutoff: pd.Timestamp | None = None
    cold_test: pd.DataFrame = field(default_factory=pd.DataFrame)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def test_users(self) -> np.ndarray:
        """Distinct users with test events (all have training history)."""
        return np.asarray(pd.unique(self.test[Columns.USER]), dtype=object)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (the ``split`` block of the evaluate JSON)."""
        out: dict[str, Any] = {
            "method": self.method,
            "cutoff": None if self.cutoff is None else str(self.cutoff),
            "test_users": int(len(self.test_users)),
            "train_events": int(len(self.train)),
            "test_events": int(len(self.test)),
            "cold_test_events": int(len(self.cold_test)),
        }
        out.update(self.params)
        if self.method == "random":
            out["note"] = "no timestamps: seeded per-user random split, not a time-based one"
        return out


def temporal_split(
    events: pd.DataFrame,
    *,
    test_days: float = 30,
    cutoff: str | pd.Timestamp | None = None,
    test_events: tuple[str, ...] | None = None,
    test_end: str | pd.Timestamp | None = None,
) -> Split:
    """Split at a cutoff: events before it train, events from it on (until ``test_end``) test.

    Parameters
    ----------
    events:
        Canonical log with a ``timestamp`` column.
    test_days:
        Length of the test period, counted back from the last event, when ``cutoff`` is not
        given. The cutoff is the midnight on or before ``last_event - test_days``.
    cutoff:
        Explicit first instant of the test period.
    test_events:
        Event types that count as test interactions (e.g. ``("purchase",)``). Other test-period
        events stay in ``test`` too but the evaluator decides what is relevant; this only
        decides which users count as test users (those with at least one such event).
    test_end:
        End of the test window (exclusive); events from it on are left out of every part.
        ``None``: the test period runs to the end of the log.

    Raises
    ------
    DataValidationError
        Without timestamps, or when the cutoff leaves no training or no test events.
    """
    if Columns.TIMESTAMP not in events.columns:
        raise DataValidationError(
            "a temporal split needs a 'timestamp' column; this log has none, use the random split"
        )
    events = canonical_event_frame(events)
    ts = events[Columns.TIMESTAMP]
    if cutoff is None:
        cut = (ts.max() - pd.Timedelta(days=test_days)).normalize()
    else:
        cut = pd.Timestamp(cutoff)
    before = (ts < cut).to_numpy()
    train = events[before]
    after = events[~before]
    params: dict[str, Any] = {"test_days": test_days}
    if test_end is not None:
        end = pd.Timestamp(test_end)
        after = after[(after[Columns.TIMESTAMP] < end).to_numpy()]
        params["test_end"] = str(end)
    if train.empty or after.empty:
        raise DataValidationError(
            f"the cutoff {cut} leaves {len(train)} training and {len(after)} test events; the "
            f"log runs from {ts.min()} to {ts.max()}. Choose a cutoff inside that period."
        )
    known = set(pd.unique(train[Columns.USER]))
    after_users = after[Columns.USER]
    has_history = after_users.isin(known).to_numpy()
    if test_events is not None:
        qualifying = set(
            after_users[(after[Columns.EVENT].isin(test_events)).to_numpy() & has_history]
        )
        has_history = has_history & after_users.isin(qualifying).to_numpy()
    test = after[has_history]
    cold = after[~has_history]
    return Split(
        train=train,
        test=test,
        cold_test=cold,
        method="temporal",
        cutoff=cut,
        params=params,
    )


def random_split(
    events: pd.DataFrame, *, test_fraction: float = 0.2, seed: int = 42, min_events: int = 2
) -> Split:
    """Hold out a random ``test_fraction`` of each user's events (seeded).

    Users with fewer than ``min_events`` events stay wholly in training. Every user with a
    test event keeps at least one training event.
    """
    if not 0 < test_fraction < 1:
        raise DataValidationError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    events = canonical_event_frame(events)
    users = events[Columns.USER].to_numpy(dtype=object)
    n = len(events)
    order = rng.permutation(n)
    # position of each row within its user's shuffled events
    shuffled_users = users[order]
    sort = np.argsort(shuffled_users, kind="stable")
    grouped = shuffled_users[sort]
    starts = np.r_[0, np.flatnonzero(grouped[1:] != grouped[:-1]) + 1]
    sizes = np.diff(np.r_[starts, n])
    pos_in_group = np.arange(n) - np.repeat(starts, sizes)
    n_test = np.floor(sizes * test_fraction).astype(np.int64)
    n_test = np.where(sizes >= min_events, np.maximum(n_test, 1), 0)
    n_test = np.minimum(n_test, sizes - 1)
    is_test_sorted = pos_in_group < np.repeat(n_test, sizes)
    is_test = np.zeros(n, dtype=bool)
    is_test[order[sort]] = is_test_sorted
    return Split(
        train=events[~is_test],
        test=events[is_test],
        cold_test=events.iloc[0:0],
        method="random",
        cutoff=None,
        params={"test_fraction": test_fraction, "seed": seed},
    )


def split_events(events: pd.DataFrame, **kwargs: Any) -> Split:
    """Temporal split when the log has timestamps, else the seeded random split."""
    if Columns.TIMESTAMP in events.columns:
        names = ("test_days", "cutoff", "test_events")
        return temporal_split(events, **{k: v for k, v in kwargs.items() if k in names})
    names = ("test_fraction", "seed", "min_events")
    return random_split(events, **{k: v for k, v in kwargs.items() if k in names})


def rolling_origin_splits(
    events: pd.DataFrame,
    n_folds: int,
    *,
    test_days: float = 30,
    cutoff: str | pd.Timestamp | None = None,
    test_events: tuple[str, ...] | None = None,
    test_fraction: float = 0.2,
    seed: int = 42,
) -> list[Split]:
    """``n_folds`` splits, oldest first; the last is :func:`split_events`' own split.

    With timestamps the last fold's cutoff is ``cutoff`` (default: the midnight on or before
    ``last_event - test_days``) and its test period runs to the log's end; fold ``i`` of
    ``n`` starts ``(n - 1 - i) * test_days`` earlier and its test window is ``test_days``
    long, ending where the next one starts. Every fold trains on everything before its
    cutoff. Without timestamps fold ``i`` is the seeded random hold-out with seed
    ``seed + i`` (the last fold, like one split, uses ``seed``).

    Raises
    ------
    DataValidationError
        ``n_folds`` < 1, or a fold whose cutoff leaves no training or no test events (the
        message names the fold; use fewer folds or shorter windows).
    """
    if n_folds < 1:
        raise DataValidationError(f"the number of folds must be at least 1, got {n_folds}")
    if Columns.TIMESTAMP not in events.columns:
        return [
            random_split(events, test_fraction=test_fraction, seed=seed + (n_folds - 1 - i))
            for i in range(n_folds)
        ]
    ts = events[Columns.TIMESTAMP]
    last = (
        pd.Timestamp(cutoff)
        if cutoff is not None
        else (ts.max() - pd.Timedelta(days=test_days)).normalize()
    )
    window = pd.Timedelta(days=test_days)
    splits = []
    for i in range(n_folds):
        back = n_folds - 1 - i
        start = last - back * window
        try:
            splits.append(
                temporal_split(
                    events,
                    test_days=test_days,
                    cutoff=start,
                    test_events=test_events,
                    test_end=start + window if back else None,
                )
            )
        except DataValidationError as exc:
            raise DataValidationError(
                f"fold {i + 1} of {n_folds} (test window from {start}) cannot be cut: {exc} "
                "Use fewer folds (--folds) or a shorter --test-days."
            ) from None
    return splits
