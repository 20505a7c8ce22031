"""What a log looks like, in the numbers the scaled defaults are computed from.

:func:`profile_log` counts shoppers, items, interactions and user-item cells, the funnel's
conversion rates (of the user-item pairs with a view, a cart or a favourite, the share that
were bought) and how often shoppers buy the same item again
(:func:`recsys_core.repeats.repeat_profile`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recsys_core.columns import EVENT_TYPES, Columns
from recsys_core.repeats import repeat_profile


class LogProfile(BaseModel):
    """Counts and rates of one event log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    users: int = Field(description="Distinct shoppers.")
    items: int = Field(description="Distinct items.")
    events: int = Field(description="Rows of the log.")
    cells: int = Field(description="Distinct (shopper, item) pairs with any event.")
    events_by_type: dict[str, int] = Field(description="Rows per event type.")
    conversion: dict[str, float] = Field(
        description="Per event type: share of the (shopper, item) pairs with that event that "
        "were also bought (purchase: 1)."
    )
    repeat_rate: float = Field(
        description="Share of bought (shopper, item) pairs bought on two or more days "
        "(recsys_core.repeats.repeat_profile)."
    )
    events_per_cell: float = Field(description="Mean number of events per (shopper, item) pair.")
    has_timestamps: bool = Field(description="Whether the log has timestamps.")

    @property
    def cells_per_user(self) -> float:
        """Mean number of distinct items per shopper."""
        return self.cells / max(self.users, 1)


def pair_codes(events: pd.DataFrame) -> np.ndarray:
    """One integer per (user, item) pair of ``events`` (equal pairs get equal codes)."""
    users = pd.factorize(events[Columns.USER])[0].astype(np.int64)
    items = pd.factorize(events[Columns.ITEM])[0].astype(np.int64)
    return users * (int(items.max()) + 1 if len(items) else 1) + items


def profile_log(events: pd.DataFrame) -> LogProfile:
    """Count what the scaled defaults need (one pass over the log's ids)."""
    codes = pair_codes(events)
    event_names = events[Columns.EVENT].to_numpy(dtype=object)
    counts = pd.Series(event_names).value_counts()
    bought_pairs = np.unique(codes[event_names == "purchase"])
    conversion: dict[str, float] = {}
    for name in EVENT_TYPES:
        if counts.get(name, 0) == 0:
            continue
        if name == "purchase":
            conversion[name] = 1.0
            continue
        pairs = np.unique(codes[event_names == name])
        conversion[name] = float(np.isin(pairs, bought_pairs, assume_unique=True).mean())
    cells = int(len(np.unique(codes)))
    return LogProfile(
        users=int(events[Columns.USER].nunique()),
        items=int(events[Columns.ITEM].nunique()),
        events=int(len(events)),
        cells=cells,
        events_by_type={e: int(counts.get(e, 0)) for e in EVENT_TYPES},
        conversion=conversion,
        repeat_rate=repeat_profile(events).repeat_rate,
        events_per_cell=float(len(events) / max(cells, 1)),
        has_timestamps=Columns.TIMESTAMP in events.columns,
    )
