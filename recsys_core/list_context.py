"""What applying a :class:`~recsys_core.policy.ListPolicy` needs to know about shoppers and
items: the :class:`ListContext` (bought pairs, catalog, purchase times, segments, the date
merchandising rules are checked on, seen items). Re-exported by :mod:`recsys_core.policy`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import ID_COLUMNS, id_values
from recsys_core.errors import ConfigError

__all__ = ["ListContext", "catalog_column"]


def catalog_column(catalog: pd.DataFrame | None, column: str) -> pd.Series:
    """One catalog column by item id (str; first row of each item); empty when absent."""
    if catalog is None or column not in catalog.columns:
        return pd.Series(dtype=object)
    ids = id_values(catalog[Columns.ITEM], where="the list context's catalog")
    return pd.Series(catalog[column].to_numpy(), index=ids)[~ids.duplicated().to_numpy()]


@dataclass
class ListContext:
    """What applying a policy needs to know about the shoppers and the items.

    Attributes
    ----------
    bought:
        Distinct ``(user_id, item_id)`` purchase pairs before training ended, or ``None``
        when they are every pair the models have seen (a purchase-only log): then
        ``leave-out-bought`` is the models' own seen filter.
    catalog:
        Categories and prices of the items (business filters).
    purchases:
        Purchase events with ``timestamp`` (``exclude_bought_days``).
    now:
        The instant "the last N days" end at (default: one second after the last purchase).
    segments:
        Shopper segments (indexed by ``user_id``; :mod:`recsys_core.segments` columns), or a
        function computing them on first use, for rules limited to a segment; a shopper not
        in them is in no segment.
    today:
        The date merchandising rule windows are checked on (default: today, UTC).
    seen:
        Items a shopper interacted with (the models' training view), so that a pinned item
        the model did not rank is not pinned for a shopper who saw it under
        ``leave-out-seen``; ``None``: such a pin is not placed (nothing left out is shown).
    """

    bought: pd.DataFrame | None = None
    catalog: pd.DataFrame | None = None
    purchases: pd.DataFrame | None = None
    now: pd.Timestamp | None = None
    segments: pd.DataFrame | Callable[[], pd.DataFrame | None] | None = None
    today: date | None = None
    seen: Callable[[str], Iterable[str]] | None = None
    _by_user: dict[str, np.ndarray] | None = field(default=None, repr=False)
    _lookups: dict[str, pd.Series] = field(default_factory=dict, repr=False)
    _maps: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    def bought_items(self, user_id: str) -> np.ndarray | None:
        """Items the shopper bought (``None``: bought equals seen, see :attr:`bought`)."""
        if self.bought is None:
            return None
        if self._by_user is None:
            users = id_values(self.bought[Columns.USER], where="the bought pairs").to_numpy()
            items = id_values(self.bought[Columns.ITEM], where="the bought pairs").to_numpy(
                dtype=object
            )
            order = np.argsort(users, kind="stable")
            users, items = users[order], items[order]
            if len(users):
                starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
                ends = np.r_[starts[1:], len(users)]
                self._by_user = {
                    str(users[a]): items[a:b] for a, b in zip(starts, ends, strict=True)
                }
            else:
                self._by_user = {}
        return self._by_user.get(str(user_id), np.zeros(0, dtype=object))

    def segment_table(self) -> pd.DataFrame | None:
        """:attr:`segments`, computed once when given as a function."""
        if callable(self.segments):
            self.segments = self.segments()
        return self.segments

    def mapping(self, column: str) -> dict[str, str]:
        """:meth:`lookup` as a dict of strings (fast for a few items at a time), made once."""
        key = f"__map_{column}"
        if key not in self._maps:
            values = self.lookup(column)
            # catalog values (category names, titles) as text: not ids
            self._maps[key] = dict(zip(values.index, values.astype(str), strict=True))
        return self._maps[key]

    def lookup(self, column: str) -> pd.Series:
        """:func:`catalog_column` of :attr:`catalog`, computed once."""
        if column not in self._lookups:
            self._lookups[column] = catalog_column(self.catalog, column)
        return self._lookups[column]

    def recent_purchases(self, days: int) -> pd.MultiIndex:
        """(user, item) pairs bought in the last ``days`` days before :attr:`now`.

        Raises
        ------
        ConfigError
            No purchase events with timestamps were given.
        """
        key = f"__recent_{days}"
        if key not in self._lookups:
            purchases = self.purchases
            if purchases is None or Columns.TIMESTAMP not in purchases.columns:
                raise ConfigError(
                    "'hide items bought in the last N days' needs purchase times, and none "
                    "are at hand: the log has no timestamps, or this version was saved before "
                    "versions kept them (retrain it); in code, build the ListContext with "
                    "purchases=<events with timestamps>"
                )
            if Columns.EVENT in purchases.columns:
                purchases = purchases[(purchases[Columns.EVENT] == "purchase").to_numpy()]
            end = self.now
            if end is None:
                end = purchases[Columns.TIMESTAMP].max() + pd.Timedelta(seconds=1)
            recent = purchases[purchases[Columns.TIMESTAMP] >= end - pd.Timedelta(days=days)]
            pairs = pd.MultiIndex.from_arrays(
                [id_values(recent[c], where="the purchase times") for c in ID_COLUMNS]
            )
            self._lookups[key] = pd.Series(0, index=pairs.unique())
        return self._lookups[key].index  # type: ignore[return-value]
