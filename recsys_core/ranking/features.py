"""Behaviour features of (user, item) pairs, computed only from events before a cutoff.

A :class:`BehaviourSnapshot` aggregates an event log *as it was* at a cutoff: every event at
or after the cutoff is dropped before anything is counted, so features built from it cannot
see the future. It holds small lookup tables (one row per user, per item and per user-item
pair with history) so that the features of any batch of pairs are gathered with array
lookups, without a loop per user.

Features come in named groups. A group is one function that returns its columns by name,
registered in :data:`REGISTRY` together with its :class:`Feature` declarations (name, what
it measures, its value in the shop's words, its value for a pair without history). The
column order (:data:`FEATURE_NAMES`), the snapshot's tables and the labels the explanations
show are all derived from the registry, so adding a feature touches one place: its group.

Levels, in the classifier's column order ("days" are fractional days before the cutoff):

pair
    per user-item pair with history (counts, recency, reorder rhythm); gathered by key, and
    a pair without history gets each feature's ``no_history`` value;
user
    per user (activity, ordering habits);
item
    per item (popularity, reorders, age, price);
lookup
    computed when pairs are looked up, from tables the group builds from the past events
    (category, brand and price affinity of the user for the item);
stage_one
    ALS and item-kNN score and rank, filled by :mod:`recsys_core.ranking.candidates`;
    declared here for their names and labels.

Prices come only from events before the cutoff (:attr:`PastEvents.item_price`): the catalog
price is never used, because catalogs built from a log take the median over the whole log,
future included.

Missing values are NaN (e.g. "days since the last view" of an item never viewed); LightGBM
treats them as missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import numpy as np
import pandas as pd

from recsys_core.columns import EVENT_TYPES, Columns
from recsys_core.errors import ArtifactError, DataValidationError
from recsys_core.interactions import IdMap

__all__ = [
    "AFFINITY_FEATURES",
    "BEHAVIOUR_FEATURES",
    "FEATURE_NAMES",
    "ITEM_FEATURES",
    "LEVELS",
    "PAIR_FEATURES",
    "REGISTRY",
    "SEEN_FEATURES",
    "STAGE_ONE_FEATURES",
    "USER_FEATURES",
    "BehaviourSnapshot",
    "Feature",
    "FeatureGroup",
    "FeatureRegistry",
    "PairLookup",
    "PastEvents",
    "describe_feature",
    "events_before",
    "feature_description",
    "require_timestamps",
]

_DAY_NS: Final = 86_400 * 1_000_000_000
_N_EVENTS: Final = len(EVENT_TYPES)
_VIEW: Final = EVENT_TYPES.index("view")
_CART: Final = EVENT_TYPES.index("cart")
_FAVORITE: Final = EVENT_TYPES.index("favorite")
_PURCHASE: Final = EVENT_TYPES.index("purchase")

#: Where a group's features live, in the classifier's column order.
Level = Literal["pair", "user", "item", "lookup", "stage_one"]
LEVELS: Final[tuple[Level, ...]] = ("pair", "user", "item", "lookup", "stage_one")
#: The levels a :class:`BehaviourSnapshot` computes (stage one comes from the candidates).
_BEHAVIOUR_LEVELS: Final[tuple[Level, ...]] = ("pair", "user", "item", "lookup")
#: Arrays of a saved snapshot that are not a lookup group's tables.
_CORE_ARRAYS: Final = ("pair_keys", "pair_values", "user_values", "item_values")

#: A feature's value in the shop's words: ``(value, the pair's features by name) -> text``.
ValueLabel = Callable[[float, Mapping[str, float]], str]

_Build = TypeVar("_Build", bound=Callable[..., Mapping[str, np.ndarray]])


# --------------------------------------------------------------------------------------
# Declarations: features, groups, the registry
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    """One classifier feature: its column and how the shop reads it.

    Attributes
    ----------
    name:
        Column name (saved with a trained ranker: renaming one means retraining).
    description:
        What it measures, without a value (global importance, SHAP axes), e.g. ``"times
        they bought this item"``.
    label:
        Its value in the shop's words, ``(value, row) -> text`` where ``row`` holds the
        pair's features by name, e.g. ``"bought this item 3 times"``.
    no_history:
        Value of a pair-level feature for a pair without any event before the cutoff
        (0 for counts and shares, NaN for "days since" and rhythms).
    marks_seen:
        A value above 0 means the shopper already interacted with the item (the ranker's
        seen filter sums these: :data:`SEEN_FEATURES`).
    """

    name: str
    description: str
    label: ValueLabel
    no_history: float = 0.0
    marks_seen: bool = False


@dataclass(frozen=True)
class FeatureGroup:
    """Features computed together by one function.

    Attributes
    ----------
    name:
        The group's name (its function's name).
    level:
        One of :data:`LEVELS`: what the returned arrays are indexed by.
    features:
        The columns the group returns, in column order, with their labels.
    build:
        ``(context) -> {feature name: array}``. For ``pair``/``user``/``item`` groups the
        context is a :class:`PastEvents` and each array has one value per pair with history
        (:attr:`PastEvents.n_pairs`), per user or per item; for ``lookup`` groups it is a
        :class:`PairLookup` and each array has one value per looked-up pair. ``None`` for
        the ``stage_one`` group (filled by the candidate generator).
    tables:
        ``lookup`` groups only: ``(PastEvents) -> {table name: array}``, the tables
        ``build`` reads from :attr:`PairLookup.tables` (saved with the snapshot).
    """

    name: str
    level: Level
    features: tuple[Feature, ...]
    build: Callable[[Any], Mapping[str, np.ndarray]] | None = None
    tables: Callable[[PastEvents], Mapping[str, np.ndarray]] | None = None

    @cached_property
    def names(self) -> tuple[str, ...]:
        """The group's feature names, in column order."""
        return tuple(f.name for f in self.features)

    def columns(self, context: Any, n_rows: int) -> list[np.ndarray]:
        """The group's arrays from ``context``, in the declared order.

        Raises
        ------
        ValueError
            The function returned other names than the group declares, or arrays of
            another length than ``n_rows``.
        """
        if self.build is None:
            raise ValueError(f"feature group {self.name!r} is filled by the candidate generator")
        values = self.build(context)
        names = self.names
        if values.keys() != set(names):
            raise ValueError(
                f"feature group {self.name!r} returned {sorted(values)}, "
                f"but declares {sorted(names)}"
            )
        columns = [np.asarray(values[name]) for name in names]
        for name, column in zip(names, columns, strict=True):
            if column.shape != (n_rows,):
                raise ValueError(
                    f"feature {name!r} of group {self.name!r} has shape {column.shape}, "
                    f"expected ({n_rows},)"
                )
        return columns


class FeatureRegistry:
    """The ordered feature groups from which the column order and the labels derive.

    Register a group with the :meth:`group` decorator (or :meth:`add`). The module's
    :data:`REGISTRY` is frozen once its groups are declared; :meth:`copy` it to extend it
    (e.g. in a test) and pass the copy to :meth:`BehaviourSnapshot.from_events`.
    """

    def __init__(self, groups: Iterable[FeatureGroup] = ()) -> None:
        self._groups: list[FeatureGroup] = []
        self._frozen = False
        self._cache: dict[Any, Any] = {}
        for group in groups:
            self.add(group)

    # ------------------------------------------------------------------ declaring

    def add(self, group: FeatureGroup) -> FeatureGroup:
        """Register ``group`` after the groups of its level.

        Raises
        ------
        ValueError
            Frozen registry, unknown level, a group without features, a name already
            taken, or a build/tables function where the level has none.
        """
        if self._frozen:
            raise ValueError("this feature registry is frozen: copy() it to add groups")
        if group.level not in LEVELS:
            raise ValueError(f"unknown feature level {group.level!r}; use one of {LEVELS}")
        if not group.features:
            raise ValueError(f"feature group {group.name!r} declares no feature")
        if (group.build is None) != (group.level == "stage_one"):
            raise ValueError(
                f"feature group {group.name!r}: every level but stage_one needs a function"
            )
        if group.tables is not None and group.level != "lookup":
            raise ValueError(f"feature group {group.name!r}: only lookup groups build tables")
        if any(g.name == group.name for g in self._groups):
            raise ValueError(f"feature group {group.name!r} is already registered")
        taken = set(self.names())
        for name in group.names:
            if name in taken:
                raise ValueError(f"feature {name!r} is declared twice")
            taken.add(name)
        self._groups.append(group)
        self._cache.clear()
        return group

    def group(
        self,
        level: Level,
        *features: Feature,
        tables: Callable[[PastEvents], Mapping[str, np.ndarray]] | None = None,
    ) -> Callable[[_Build], _Build]:
        """Decorator registering a function as the group of ``features`` (named after it)."""

        def register(build: _Build) -> _Build:
            self.add(FeatureGroup(build.__name__, level, tuple(features), build, tables))
            return build

        return register

    def freeze(self) -> FeatureRegistry:
        """Refuse further groups (returns ``self``)."""
        self._frozen = True
        return self

    def copy(self) -> FeatureRegistry:
        """An unfrozen registry with the same groups."""
        return FeatureRegistry(self._groups)

    # ------------------------------------------------------------------ reading

    @property
    def groups(self) -> tuple[FeatureGroup, ...]:
        """Every group, in column order."""
        return tuple(g for level in LEVELS for g in self.groups_at(level))

    def groups_at(self, level: Level) -> tuple[FeatureGroup, ...]:
        """The groups of one level, in registration order."""
        key = ("groups", level)
        if key not in self._cache:
            self._cache[key] = tuple(g for g in self._groups if g.level == level)
        groups: tuple[FeatureGroup, ...] = self._cache[key]
        return groups

    def features(self, *levels: Level) -> tuple[Feature, ...]:
        """The features of ``levels`` (default: all), in column order."""
        key = ("features", levels)
        if key not in self._cache:
            chosen = [lv for lv in LEVELS if not levels or lv in levels]
            self._cache[key] = tuple(
                f for lv in chosen for g in self.groups_at(lv) for f in g.features
            )
        result: tuple[Feature, ...] = self._cache[key]
        return result

    def names(self, *levels: Level) -> tuple[str, ...]:
        """The feature names of ``levels`` (default: all), in column order."""
        key = ("names", levels)
        if key not in self._cache:
            self._cache[key] = tuple(f.name for f in self.features(*levels))
        names: tuple[str, ...] = self._cache[key]
        return names

    def feature(self, name: str) -> Feature | None:
        """The declaration of feature ``name`` (None when there is none)."""
        if "by_name" not in self._cache:
            self._cache["by_name"] = {f.name: f for f in self.features()}
        found: Feature | None = self._cache["by_name"].get(name)
        return found

    def column(self, level: Level, name: str) -> int:
        """Position of feature ``name`` among its level's columns."""
        key = ("column", level, name)
        if key not in self._cache:
            self._cache[key] = self.names(level).index(name)
        position: int = self._cache[key]
        return position

    def pair_defaults(self) -> np.ndarray:
        """Pair-level values of a pair without history (read-only), in column order."""
        if "pair_defaults" not in self._cache:
            row = np.array([f.no_history for f in self.features("pair")], dtype=np.float64)
            row.setflags(write=False)
            self._cache["pair_defaults"] = row
        defaults: np.ndarray = self._cache["pair_defaults"]
        return defaults

    def table(self, level: Level, context: Any, n_rows: int) -> np.ndarray:
        """The ``(n_rows, n_features)`` float64 table of a level's groups from ``context``."""
        columns = [c for g in self.groups_at(level) for c in g.columns(context, n_rows)]
        if not columns:
            return np.zeros((n_rows, 0))
        return np.column_stack(columns).astype(np.float64, copy=False)


#: Every feature group of the purchase model (frozen below, once they are declared).
REGISTRY: Final = FeatureRegistry()


# --------------------------------------------------------------------------------------
# Array helpers
# --------------------------------------------------------------------------------------


def require_timestamps(events: pd.DataFrame) -> None:
    """Raise a readable DataValidationError when the log has no ``timestamp`` column."""
    if Columns.TIMESTAMP not in events.columns:
        raise DataValidationError(
            "the purchase model needs a 'timestamp' column to know what happened before a "
            "cutoff; this log has none: load a log with timestamps"
        )


def events_before(events: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The events strictly before ``cutoff`` (the only ones any feature may use).

    Raises
    ------
    DataValidationError
        The log has no ``timestamp`` column.
    """
    require_timestamps(events)
    return events[(events[Columns.TIMESTAMP] < cutoff).to_numpy()]


def _event_codes(events: pd.DataFrame) -> np.ndarray:
    """Index of each row's event in :data:`EVENT_TYPES` (-1 for anything else)."""
    ev = events[Columns.EVENT]
    if isinstance(ev.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in ev.cat.categories]
        lookup = np.array([EVENT_TYPES.index(c) if c in EVENT_TYPES else -1 for c in cats])
        codes = ev.cat.codes.to_numpy()
        return np.where(codes >= 0, lookup[np.maximum(codes, 0)], -1).astype(np.int64)
    return np.asarray(
        pd.Categorical(ev.astype(str), categories=list(EVENT_TYPES)).codes, dtype=np.int64
    )


def _lookup(keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of sorted ``keys`` matching ``query``: (found mask, row positions clipped)."""
    if len(keys) == 0:
        return np.zeros(len(query), dtype=bool), np.zeros(len(query), dtype=np.int64)
    pos = np.searchsorted(keys, query)
    pos = np.minimum(pos, len(keys) - 1)
    return keys[pos] == query, pos


def _interval(first: np.ndarray, last: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Mean gap between ``n`` dated occasions spanning ``first..last``; NaN when n < 2."""
    out = np.full(len(n), np.nan)
    many = n >= 2
    out[many] = (last[many] - first[many]) / (n[many] - 1)
    return out


def _distinct_count(groups: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Number of distinct ``values`` per group (``groups`` in ``0..n_groups-1``)."""
    if len(groups) == 0:
        return np.zeros(n_groups)
    pairs = np.unique(np.column_stack([groups, values]), axis=0)
    return np.bincount(pairs[:, 0], minlength=n_groups).astype(np.float64)


def _catalog_column(catalog: pd.DataFrame | None, items: IdMap, column: str) -> pd.Series | None:
    """``catalog[column]`` aligned to ``items`` (None when the catalog lacks it)."""
    if catalog is None or column not in catalog.columns or Columns.ITEM not in catalog.columns:
        return None
    values = catalog[[Columns.ITEM, column]].copy()
    values[Columns.ITEM] = values[Columns.ITEM].astype(str)
    values = values.drop_duplicates(Columns.ITEM).set_index(Columns.ITEM)[column]
    return values.reindex(pd.Index(items.external_ids, dtype=object))


def _codes(values: pd.Series | None, n: int) -> np.ndarray:
    """Integer codes of a catalog attribute (-1 where missing)."""
    if values is None:
        return np.full(n, -1, dtype=np.int64)
    codes, _ = pd.factorize(values.astype("object").where(values.notna(), None), sort=True)
    return np.asarray(codes, dtype=np.int64)


def _share_table(
    users: np.ndarray,
    groups: np.ndarray,
    is_purchase: np.ndarray,
    n_users: int,
    *,
    with_purchases: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Per (user, group) share of the user's purchases and of their events.

    Returns sorted keys ``user * n_groups + group`` and a ``(n, 2)`` array (purchase share,
    event share) when ``with_purchases``, else ``(n, 1)`` (event share).
    """
    n_groups = int(groups.max(initial=-1)) + 1
    width = 2 if with_purchases else 1
    if n_groups == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, width))
    known = groups >= 0
    key = users[known] * np.int64(n_groups) + groups[known]
    keys, inverse = np.unique(key, return_inverse=True)
    key_user = keys // n_groups
    events = np.bincount(inverse, minlength=len(keys)).astype(np.float64)
    user_events = np.bincount(users[known], minlength=n_users).astype(np.float64)
    event_share = events / user_events[key_user]
    if not with_purchases:
        return keys.astype(np.int64), event_share[:, None]
    bought = is_purchase[known]
    purchases = np.bincount(inverse[bought], minlength=len(keys)).astype(np.float64)
    user_purchases = np.bincount(users[known][bought], minlength=n_users).astype(np.float64)
    purchase_share = np.divide(
        purchases,
        user_purchases[key_user],
        out=np.full(len(keys), np.nan),
        where=user_purchases[key_user] > 0,
    )
    return keys.astype(np.int64), np.column_stack([purchase_share, event_share])


# --------------------------------------------------------------------------------------
# Building blocks of the value labels
# --------------------------------------------------------------------------------------


def _number(value: float) -> str:
    """A count or amount without needless decimals (``3``, ``2.5``, ``0.42``)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 10:
        return f"{value:,.0f}"
    return f"{value:.2g}" if abs(value) < 0.1 else f"{value:.2f}".rstrip("0").rstrip(".")


def _times(value: float) -> str:
    n = int(round(value))
    return "once" if n == 1 else f"{n:,} times"


def _days_ago(value: float) -> str:
    if value < 1:
        return "today"
    days = int(math.floor(value))
    return "1 day ago" if days == 1 else f"{days:,} days ago"


def _days(value: float) -> str:
    days = round(value)
    return "1 day" if days == 1 else f"{days:,} days"


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def _missing(value: float) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _count_label(did: str, never: str) -> ValueLabel:
    def label(value: float, row: Mapping[str, float]) -> str:
        return never if value <= 0 else f"{did} {_times(value)}"

    return label


def _since_label(did: str, never: str) -> ValueLabel:
    def label(value: float, row: Mapping[str, float]) -> str:
        return never if _missing(value) else f"{did} {_days_ago(value)}"

    return label


def _score(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def _stage_one_label(model: str, score: str, rank: str, *, rank_first: bool) -> ValueLabel:
    """``"ALS score 0.42"`` for the score feature, ``"ALS ranks it 3rd"`` for the rank one.

    The two labels never read the same, so a waterfall can show both side by side.
    """

    def label(value: float, row: Mapping[str, float]) -> str:
        s, r = row.get(score, math.nan), row.get(rank, math.nan)
        if rank_first:
            if _missing(r):
                return f"not in {model}'s top list"
            return f"{model} ranks it {_ordinal(int(r))}"
        if _missing(s) or (model == "item-kNN" and s <= 0):
            return f"{model} has no score for it" + (
                " (no similar item in their history)" if model == "item-kNN" else ""
            )
        return f"{model} score {_score(s)}"

    return label


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def _simple(template: str, missing: str | None = None) -> ValueLabel:
    def label(value: float, row: Mapping[str, float]) -> str:
        if _missing(value):
            return missing or template.format(v="unknown")
        return template.format(v=_number(value))

    return label


# --------------------------------------------------------------------------------------
# What the groups read: the past events, and the pairs being looked up
# --------------------------------------------------------------------------------------


class PastEvents:
    """The events strictly before a cutoff, as arrays, for the pair, user and item groups.

    Holds one entry per event (``u``, ``i``, ``codes``, ``age``, ``day``, ``qty``,
    ``is_purchase``, ``key``) and, computed once on first use, the intermediate counts that
    more than one group reads (pairs, order days, each user's order rhythm, item buyers,
    past-only prices). A value only one group needs is computed in that group.

    Parameters
    ----------
    events:
        Canonical event log with ``timestamp`` (``quantity`` and ``price`` optional).
        Events at or after ``cutoff`` are ignored.
    cutoff:
        The instant the features describe.
    catalog:
        Optional catalog (``item_id`` and where known ``category``, ``brand``); catalog
        items without events are items too. Its ``price`` is never read.

    Raises
    ------
    DataValidationError
        No timestamps, or no event before the cutoff.
    """

    def __init__(
        self, events: pd.DataFrame, cutoff: pd.Timestamp, catalog: pd.DataFrame | None = None
    ) -> None:
        cutoff = pd.Timestamp(cutoff)
        past = events_before(events, cutoff)
        if past.empty:
            raise DataValidationError(
                f"no event happened before {cutoff}: the purchase model needs history before "
                "its cutoff; choose a later cutoff or a longer log"
            )
        codes = _event_codes(past)
        past = past[codes >= 0]
        codes = codes[codes >= 0]
        users = IdMap.from_values(past[Columns.USER])
        item_values_seen = pd.Series(past[Columns.ITEM].astype(str).unique())
        if catalog is not None and Columns.ITEM in catalog.columns:
            item_values_seen = pd.concat([item_values_seen, catalog[Columns.ITEM].astype(str)])
        items = IdMap.from_values(item_values_seen)

        self.cutoff = cutoff
        self.events = past
        self.catalog = catalog
        self.users, self.items = users, items
        self.n_users, self.n_items = len(users), len(items)
        #: Per event: user and item index, event code, days before the cutoff (> 0),
        #: calendar day (order occasion), quantity, purchase or not, pair key.
        self.codes = codes
        self.u = users.to_internal(past[Columns.USER])
        self.i = items.to_internal(past[Columns.ITEM])
        ts = past[Columns.TIMESTAMP].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        self.age = (cutoff.value - ts) / _DAY_NS
        self.day = np.floor(ts / _DAY_NS).astype(np.int64)
        self.qty = (
            past[Columns.QUANTITY].to_numpy(dtype=np.float64, na_value=1.0)
            if Columns.QUANTITY in past.columns
            else np.ones(len(past))
        )
        self.is_purchase = codes == _PURCHASE
        self.key = self.u * np.int64(self.n_items) + self.i

    # ------------------------------------------------------------------ events

    @cached_property
    def recent(self) -> np.ndarray:
        """Events of the last 30 days."""
        return self.age < 30

    # ------------------------------------------------------------------ pairs

    @cached_property
    def _pairs(self) -> tuple[np.ndarray, np.ndarray]:
        return np.unique(self.key, return_inverse=True)

    @property
    def pair_keys(self) -> np.ndarray:
        """Sorted keys ``user * n_items + item`` of the pairs with history."""
        return self._pairs[0]

    @property
    def pair_of(self) -> np.ndarray:
        """Per event: its row among :attr:`pair_keys`."""
        return self._pairs[1]

    @property
    def n_pairs(self) -> int:
        """Number of pairs with history."""
        return len(self.pair_keys)

    @cached_property
    def pair_user(self) -> np.ndarray:
        """Per pair: its user."""
        return self.pair_keys // self.n_items

    @cached_property
    def days_since_event(self) -> np.ndarray:
        """``(n_pairs, len(EVENT_TYPES))``: days since the pair's newest event of each type
        (NaN: none)."""
        newest_flat = np.full(self.n_pairs * _N_EVENTS, np.inf)
        np.minimum.at(newest_flat, self.pair_of * _N_EVENTS + self.codes, self.age)
        newest = newest_flat.reshape(self.n_pairs, _N_EVENTS)
        newest[np.isinf(newest)] = np.nan
        return newest

    @cached_property
    def order_days(self) -> np.ndarray:
        """Sorted distinct ``(pair, calendar day)`` rows of the purchases."""
        return np.unique(
            np.column_stack([self.pair_of[self.is_purchase], self.day[self.is_purchase]]), axis=0
        )

    @cached_property
    def ui_orders(self) -> np.ndarray:
        """Per pair: distinct days the user ordered the item."""
        return np.bincount(self.order_days[:, 0], minlength=self.n_pairs).astype(np.float64)

    @cached_property
    def _pair_order_span(self) -> tuple[np.ndarray, np.ndarray]:
        first_day = np.full(self.n_pairs, np.nan)
        last_day = np.full(self.n_pairs, np.nan)
        order_days = self.order_days
        if len(order_days):
            # order_days is sorted by (pair, day): first/last rows of each pair
            starts = np.r_[0, np.flatnonzero(np.diff(order_days[:, 0])) + 1]
            ends = np.r_[starts[1:], len(order_days)] - 1
            first_day[order_days[starts, 0]] = order_days[starts, 1]
            last_day[order_days[ends, 0]] = order_days[ends, 1]
        return first_day, last_day

    @property
    def first_order_day(self) -> np.ndarray:
        """Per pair: calendar day of its first order (NaN: never bought)."""
        return self._pair_order_span[0]

    @property
    def last_order_day(self) -> np.ndarray:
        """Per pair: calendar day of its last order (NaN: never bought)."""
        return self._pair_order_span[1]

    # ------------------------------------------------------------------ users

    @cached_property
    def user_order_days(self) -> np.ndarray:
        """Per user: distinct days they ordered on."""
        buys = self.is_purchase
        return _distinct_count(self.u[buys], self.day[buys], self.n_users)

    @cached_property
    def user_order_interval(self) -> np.ndarray:
        """Per user: mean days between their order days (NaN: fewer than two)."""
        buys = self.is_purchase
        u_first_day = np.full(self.n_users, np.iinfo(np.int64).max)
        u_last_day = np.full(self.n_users, np.iinfo(np.int64).min)
        np.minimum.at(u_first_day, self.u[buys], self.day[buys])
        np.maximum.at(u_last_day, self.u[buys], self.day[buys])
        return _interval(
            u_first_day.astype(np.float64), u_last_day.astype(np.float64), self.user_order_days
        )

    # ------------------------------------------------------------------ items

    @cached_property
    def item_buyers(self) -> np.ndarray:
        """Per item: distinct users who bought it."""
        buyers_pairs = np.unique(self.key[self.is_purchase])
        return np.bincount(buyers_pairs % self.n_items, minlength=self.n_items).astype(np.float64)

    @cached_property
    def item_price(self) -> np.ndarray:
        """Per item: median unit price of its events before the cutoff, else NaN.

        Only prices seen in the past events count. The catalog's price is deliberately not
        used: the loaders build it from the whole log (test period included), so it would
        leak later prices into the features (an item without a priced event before the
        cutoff gets NaN).
        """
        price = np.full(self.n_items, np.nan)
        if Columns.PRICE in self.events.columns:
            paid = pd.Series(self.events[Columns.PRICE].to_numpy(dtype=np.float64, na_value=np.nan))
            medians = paid.groupby(self.i).median().dropna()
            price[medians.index.to_numpy()] = medians.to_numpy()
        return price


@dataclass(frozen=True)
class PairLookup:
    """The pairs being looked up, for the ``lookup`` groups.

    Attributes
    ----------
    users, items:
        Snapshot indices of each pair's user and item.
    tables:
        The lookup groups' tables (see :attr:`FeatureGroup.tables`).
    user_block, item_block:
        The pairs' user-level and item-level features (read with :meth:`user_feature`,
        :meth:`item_feature`).
    registry:
        The registry the blocks were built with.
    """

    users: np.ndarray
    items: np.ndarray
    tables: Mapping[str, np.ndarray]
    user_block: np.ndarray
    item_block: np.ndarray
    registry: FeatureRegistry

    def user_feature(self, name: str) -> np.ndarray:
        """A user-level feature of each pair's user."""
        return self.user_block[:, self.registry.column("user", name)]

    def item_feature(self, name: str) -> np.ndarray:
        """An item-level feature of each pair's item."""
        return self.item_block[:, self.registry.column("item", name)]


# --------------------------------------------------------------------------------------
# The feature groups (column order: pair, user, item, lookup, stage one; within a level,
# the order below). A feature's labels sit next to it; its value comes from its group.
# --------------------------------------------------------------------------------------

_NAN: Final = math.nan


@REGISTRY.group(
    "pair",
    Feature(
        "ui_views",
        "times they viewed this item",
        _count_label("viewed it", "never viewed it"),
        marks_seen=True,
    ),
    Feature(
        "ui_carts",
        "times they put it in the cart",
        _count_label("put it in the cart", "never put it in the cart"),
        marks_seen=True,
    ),
    Feature(
        "ui_favorites",
        "times they saved it as a favourite",
        _count_label("saved it as a favourite", "never saved it as a favourite"),
        marks_seen=True,
    ),
    Feature(
        "ui_purchases",
        "times they bought this item",
        _count_label("bought this item", "never bought this item"),
        marks_seen=True,
    ),
    Feature(
        "ui_quantity",
        "units of it they bought",
        lambda v, r: "bought none of it" if v <= 0 else f"bought {_number(v)} units of it",
    ),
    Feature(
        "ui_orders",
        "days they ordered it on",
        lambda v, r: (
            "never ordered it"
            if v <= 0
            else ("ordered it on 1 day" if v == 1 else f"ordered it on {_number(v)} different days")
        ),
    ),
)
def interactions(past: PastEvents) -> dict[str, np.ndarray]:
    """What the user did with the item: events of each type, units bought, order days."""
    n_pairs = past.n_pairs
    counts = np.bincount(
        past.pair_of * _N_EVENTS + past.codes, minlength=n_pairs * _N_EVENTS
    ).reshape(n_pairs, _N_EVENTS)
    buys = past.is_purchase
    return {
        "ui_views": counts[:, _VIEW],
        "ui_carts": counts[:, _CART],
        "ui_favorites": counts[:, _FAVORITE],
        "ui_purchases": counts[:, _PURCHASE],
        "ui_quantity": np.bincount(past.pair_of[buys], weights=past.qty[buys], minlength=n_pairs),
        "ui_orders": past.ui_orders,
    }


@REGISTRY.group(
    "pair",
    Feature(
        "ui_days_since_view",
        "days since they viewed it",
        _since_label("viewed it", "never viewed it"),
        no_history=_NAN,
    ),
    Feature(
        "ui_days_since_cart",
        "days since they put it in the cart",
        _since_label("put it in the cart", "never put it in the cart"),
        no_history=_NAN,
    ),
    Feature(
        "ui_days_since_favorite",
        "days since they saved it as a favourite",
        _since_label("saved it as a favourite", "never saved it as a favourite"),
        no_history=_NAN,
    ),
    Feature(
        "ui_days_since_purchase",
        "days since they last bought it",
        _since_label("last bought it", "never bought it"),
        no_history=_NAN,
    ),
)
def recency(past: PastEvents) -> dict[str, np.ndarray]:
    """Days since the user's newest view, cart, favourite and purchase of the item."""
    newest = past.days_since_event
    return {
        "ui_days_since_view": newest[:, _VIEW],
        "ui_days_since_cart": newest[:, _CART],
        "ui_days_since_favorite": newest[:, _FAVORITE],
        "ui_days_since_purchase": newest[:, _PURCHASE],
    }


@REGISTRY.group(
    "pair",
    Feature(
        "ui_mean_purchase_interval",
        "their usual reorder interval for it",
        lambda v, r: "has not reordered it yet" if _missing(v) else f"reorders it every {_days(v)}",
        no_history=_NAN,
    ),
    Feature(
        "ui_purchase_due_ratio",
        "time since their last order of it vs their usual interval",
        lambda v, r: (
            "no reorder rhythm for it yet"
            if _missing(v)
            else f"last order of it was {v:.1f}x their usual reorder interval ago"
        ),
        no_history=_NAN,
    ),
    Feature(
        "ui_order_share",
        "share of their order days that included it",
        lambda v, r: f"it was in {_percent(v)} of their order days",
    ),
    Feature(
        "ui_orders_90d",
        "days they ordered it in the last 90 days",
        lambda v, r: (
            "not ordered in the last 90 days"
            if v <= 0
            else f"ordered it on {_number(v)} day{'s' if v != 1 else ''} in the last 90 days"
        ),
    ),
)
def purchase_rhythm(past: PastEvents) -> dict[str, np.ndarray]:
    """The user's reorder rhythm for the item, in calendar days: the mean interval between
    the days they ordered it, days since the last order of it divided by that interval
    (``> 1``: a reorder is due), the share of their order days that included it, and its
    order days in the last 90 days."""
    n_pairs = past.n_pairs
    interval = _interval(past.first_order_day, past.last_order_day, past.ui_orders)
    due = np.divide(
        past.days_since_event[:, _PURCHASE],
        interval,
        out=np.full(n_pairs, np.nan),
        where=interval > 0,
    )
    share = past.ui_orders / np.maximum(past.user_order_days[past.pair_user], 1.0)
    cutoff_day = past.cutoff.value / _DAY_NS
    recent_orders = past.order_days[cutoff_day - past.order_days[:, 1] <= 90]
    return {
        "ui_mean_purchase_interval": interval,
        "ui_purchase_due_ratio": due,
        "ui_order_share": share,
        "ui_orders_90d": np.bincount(recent_orders[:, 0], minlength=n_pairs).astype(np.float64),
    }


@REGISTRY.group(
    "pair",
    Feature(
        "ui_days_since_first",
        "how long ago they first came across it",
        _since_label("first viewed or bought it", "never viewed or bought it"),
        no_history=_NAN,
    ),
)
def first_contact(past: PastEvents) -> dict[str, np.ndarray]:
    """Days since the user's first event on the item."""
    oldest = np.zeros(past.n_pairs)
    np.maximum.at(oldest, past.pair_of, past.age)
    return {"ui_days_since_first": oldest}


@REGISTRY.group(
    "pair",
    Feature(
        "ui_orders_since_purchase",
        "their orders since they last bought it",
        lambda v, r: (
            "never bought it"
            if _missing(v)
            else (
                "it was in their last order"
                if v <= 0
                else f"last bought it {_number(v)} order{'s' if v != 1 else ''} ago"
            )
        ),
        no_history=_NAN,
    ),
    Feature(
        "ui_in_last_order",
        "whether it was in their last order",
        lambda v, r: "it was in their last order" if v > 0 else "not in their last order",
    ),
    Feature(
        "ui_last_order_quantity",
        "units of it in the last order that had it",
        lambda v, r: "never bought it" if v <= 0 else f"last order of it had {_number(v)} units",
    ),
    Feature(
        "ui_last3_order_share",
        "share of their last 3 orders that had it",
        lambda v, r: f"in {_percent(v)} of their last 3 orders",
    ),
    Feature(
        "ui_last5_order_share",
        "share of their last 5 orders that had it",
        lambda v, r: f"in {_percent(v)} of their last 5 orders",
    ),
    Feature(
        "ui_order_share_since_first",
        "share of their orders since they first bought it that had it",
        lambda v, r: (
            "never bought it"
            if _missing(v)
            else f"in {_percent(v)} of their orders since they first bought it"
        ),
        no_history=_NAN,
    ),
    Feature(
        "ui_due_vs_user_interval",
        "time since they last bought it vs their usual time between orders",
        lambda v, r: (
            "no order rhythm to compare with"
            if _missing(v)
            else f"last bought it {v:.1f}x their usual time between orders ago"
        ),
        no_history=_NAN,
    ),
)
def order_sequence(past: PastEvents) -> dict[str, np.ndarray]:
    """Reorders counted in the user's own order days rather than calendar days.

    Order days of the user since the last one with the item (0: it was in their last order;
    NaN: never bought), whether it was in their last order, units of it in its last order,
    share of their last 3 and last 5 order days that included it, share of their order days
    since they first bought it that included it (NaN: never bought); and days since their
    last order of it divided by their usual time between orders.
    """
    n_pairs = past.n_pairs
    out = {
        "ui_orders_since_purchase": np.full(n_pairs, np.nan),
        "ui_in_last_order": np.zeros(n_pairs),
        "ui_last_order_quantity": np.zeros(n_pairs),
        "ui_last3_order_share": np.zeros(n_pairs),
        "ui_last5_order_share": np.zeros(n_pairs),
        "ui_order_share_since_first": np.full(n_pairs, np.nan),
    }
    user_interval = past.user_order_interval[past.pair_user]
    out["ui_due_vs_user_interval"] = np.divide(
        past.days_since_event[:, _PURCHASE],
        user_interval,
        out=np.full(n_pairs, np.nan),
        where=user_interval > 0,
    )
    order_days, pair_user = past.order_days, past.pair_user
    if len(order_days) == 0:
        return out
    buys = past.is_purchase
    user, day, pair, qty = past.u[buys], past.day[buys], past.pair_of[buys], past.qty[buys]
    # the user's order days, sorted by (user, day), and each one's position from the end
    user_days = np.unique(np.column_stack([user, day]), axis=0)
    day0 = int(user_days[:, 1].min())
    span = np.int64(int(user_days[:, 1].max()) - day0 + 1)
    user_key = user_days[:, 0] * span + (user_days[:, 1] - day0)
    n_users = max(int(user_days[:, 0].max()), int(pair_user.max(initial=0))) + 1
    per_user = np.bincount(user_days[:, 0], minlength=n_users)
    first = np.r_[0, np.cumsum(per_user)[:-1]]
    back_of_user_day = (
        per_user[user_days[:, 0]] - 1 - (np.arange(len(user_days)) - first[user_days[:, 0]])
    )
    # position from the end of each (pair, day) in its user's order days
    od_user = pair_user[order_days[:, 0]]
    back = back_of_user_day[np.searchsorted(user_key, od_user * span + (order_days[:, 1] - day0))]
    starts = np.r_[0, np.flatnonzero(np.diff(order_days[:, 0])) + 1]
    ends = np.r_[starts[1:], len(order_days)] - 1
    bought = order_days[starts, 0]
    since = back[ends]
    out["ui_orders_since_purchase"][bought] = since
    out["ui_in_last_order"][bought] = (since == 0).astype(np.float64)
    in_last = day == past.last_order_day[pair]
    out["ui_last_order_quantity"] = np.bincount(
        pair[in_last], weights=qty[in_last], minlength=n_pairs
    )
    n_user_days = per_user[pair_user].astype(np.float64)
    for name, window in (("ui_last3_order_share", 3), ("ui_last5_order_share", 5)):
        hits = np.bincount(order_days[back < window, 0], minlength=n_pairs)
        out[name] = np.divide(
            hits, np.minimum(n_user_days, window), out=np.zeros(n_pairs), where=n_user_days > 0
        )
    days_of_pair = np.bincount(order_days[:, 0], minlength=n_pairs)[bought]
    out["ui_order_share_since_first"][bought] = days_of_pair / (back[starts] + 1.0)
    return out


@REGISTRY.group(
    "user",
    Feature("user_events", "their number of events", _simple("{v} events in their history")),
    Feature(
        "user_items", "number of different items they used", _simple("interacted with {v} items")
    ),
    Feature(
        "user_orders",
        "number of days they ordered on",
        lambda v, r: "has never ordered" if v <= 0 else f"ordered on {_number(v)} days",
    ),
    Feature(
        "user_events_30d",
        "their events in the last 30 days",
        _simple("{v} events in the last 30 days"),
    ),
    Feature(
        "user_days_since_last_event",
        "days since their last visit",
        lambda v, r: f"last active {_days_ago(v)}",
    ),
    Feature(
        "user_days_since_last_purchase",
        "days since their last order",
        _since_label("last ordered anything", "has never ordered"),
    ),
    Feature(
        "user_tenure_days",
        "how long they have been a customer",
        lambda v, r: f"customer for {_days(v)}",
    ),
)
def user_activity(past: PastEvents) -> dict[str, np.ndarray]:
    """How active the user is: events, distinct items, order days, events in the last 30
    days, days since their last event and last purchase, tenure (days since their first
    event)."""
    n_users, u, age = past.n_users, past.u, past.age
    last_event = np.full(n_users, np.inf)
    np.minimum.at(last_event, u, age)
    first_event = np.zeros(n_users)
    np.maximum.at(first_event, u, age)
    last_purchase = np.full(n_users, np.inf)
    np.minimum.at(last_purchase, u[past.is_purchase], age[past.is_purchase])
    last_purchase[np.isinf(last_purchase)] = np.nan
    return {
        "user_events": np.bincount(u, minlength=n_users).astype(np.float64),
        "user_items": np.bincount(past.pair_user, minlength=n_users).astype(np.float64),
        "user_orders": past.user_order_days,
        "user_events_30d": np.bincount(u[past.recent], minlength=n_users).astype(np.float64),
        "user_days_since_last_event": last_event,
        "user_days_since_last_purchase": last_purchase,
        "user_tenure_days": first_event,
    }


@REGISTRY.group(
    "user",
    Feature(
        "user_mean_order_interval",
        "their usual time between orders",
        lambda v, r: "only one order day so far" if _missing(v) else f"orders every {_days(v)}",
    ),
    Feature(
        "user_items_per_order",
        "different items per order",
        lambda v, r: (
            "has never ordered" if _missing(v) else f"buys {v:.1f} different items per order day"
        ),
    ),
    Feature(
        "user_items_bought_30d",
        "different items they bought in the last 30 days",
        _simple("bought {v} different items in the last 30 days"),
    ),
    Feature(
        "user_repeat_share",
        "share of their items they reorder",
        lambda v, r: (
            "has never ordered" if _missing(v) else f"reorders {_percent(v)} of the items they buy"
        ),
    ),
)
def user_ordering(past: PastEvents) -> dict[str, np.ndarray]:
    """How the user orders: mean interval between order days, distinct items per order
    day, distinct items bought in the last 30 days, share of the items they bought that
    they bought on two or more days."""
    n_users, pair_user, ui_orders = past.n_users, past.pair_user, past.ui_orders
    user_bought_items = np.bincount(pair_user[ui_orders > 0], minlength=n_users)
    user_repeats = np.bincount(pair_user[ui_orders >= 2], minlength=n_users)
    recent_buys = np.unique(past.key[past.is_purchase & past.recent])
    return {
        "user_mean_order_interval": past.user_order_interval,
        "user_items_per_order": np.divide(
            np.bincount(pair_user, weights=ui_orders, minlength=n_users),
            past.user_order_days,
            out=np.full(n_users, np.nan),
            where=past.user_order_days > 0,
        ),
        "user_items_bought_30d": np.bincount(recent_buys // past.n_items, minlength=n_users).astype(
            np.float64
        ),
        "user_repeat_share": np.divide(
            user_repeats,
            user_bought_items,
            out=np.full(n_users, np.nan),
            where=user_bought_items > 0,
        ),
    }


@REGISTRY.group(
    "item",
    Feature(
        "item_buyers", "number of customers who bought the item", _simple("{v} customers bought it")
    ),
    Feature(
        "item_buyers_30d",
        "customers who bought it in the last 30 days",
        _simple("{v} customers bought it in the last 30 days"),
    ),
    Feature(
        "item_buyers_7d",
        "customers who bought it in the last 7 days",
        _simple("{v} customers bought it in the last 7 days"),
    ),
    Feature(
        "item_buyer_share_30d",
        "share of the last 30 days' buyers who bought it",
        lambda v, r: f"{_percent(v)} of the last 30 days' buyers bought it",
    ),
    Feature(
        "item_events_30d",
        "interest in the item in the last 30 days",
        _simple("{v} events on it in the last 30 days"),
    ),
    Feature(
        "item_trend",
        "sales trend of the item",
        lambda v, r: f"sales trend x{v:.1f} (last 30 days vs the 60 before)",
    ),
)
def item_popularity(past: PastEvents) -> dict[str, np.ndarray]:
    """Distinct buyers overall and in the last 30 / 7 days, share of the last 30 days'
    buyers who bought it, events in the last 30 days, trend (buyers in the last 30 days vs
    the 60 days before, smoothed)."""
    n_items = past.n_items

    def buyers_within(lo: float, hi: float) -> np.ndarray:
        window = past.is_purchase & (past.age >= lo) & (past.age < hi)
        return np.bincount(np.unique(past.key[window]) % n_items, minlength=n_items).astype(
            np.float64
        )

    buyers_30d = buyers_within(0.0, 30.0)
    buyers_before = buyers_within(30.0, 90.0)
    active_buyers = len(np.unique(past.u[past.is_purchase & past.recent]))
    return {
        "item_buyers": past.item_buyers,
        "item_buyers_30d": buyers_30d,
        "item_buyers_7d": buyers_within(0.0, 7.0),
        "item_buyer_share_30d": buyers_30d / max(active_buyers, 1),
        "item_events_30d": np.bincount(past.i[past.recent], minlength=n_items).astype(np.float64),
        "item_trend": (buyers_30d + 1.0) / (buyers_before / 2.0 + 1.0),
    }


@REGISTRY.group(
    "item",
    Feature(
        "item_repurchase_rate",
        "share of its buyers who reorder it",
        lambda v, r: (
            "nobody bought it yet" if _missing(v) else f"{_percent(v)} of its buyers reorder it"
        ),
    ),
    Feature(
        "item_age_days",
        "how long the item has been around",
        lambda v, r: "new item, no history" if _missing(v) else f"item first seen {_days_ago(v)}",
    ),
)
def item_history(past: PastEvents) -> dict[str, np.ndarray]:
    """Share of the item's buyers who ordered it on two or more days; its age (days since
    its first event, NaN for a catalog item without events)."""
    n_items = past.n_items
    repeat_pairs = past.pair_keys[past.ui_orders >= 2] % n_items
    repeaters = np.bincount(repeat_pairs, minlength=n_items).astype(np.float64)
    item_first = np.full(n_items, np.nan)
    seen_age = np.zeros(n_items)
    np.maximum.at(seen_age, past.i, past.age)
    seen = np.bincount(past.i, minlength=n_items) > 0
    item_first[seen] = seen_age[seen]
    return {
        "item_repurchase_rate": np.divide(
            repeaters, past.item_buyers, out=np.full(n_items, np.nan), where=past.item_buyers > 0
        ),
        "item_age_days": item_first,
    }


@REGISTRY.group(
    "item",
    Feature("item_price", "price of the item", _simple("costs {v}", "price unknown")),
)
def item_pricing(past: PastEvents) -> dict[str, np.ndarray]:
    """Median unit price of the item's events before the cutoff (never the catalog's)."""
    return {"item_price": past.item_price}


def _affinity_tables(past: PastEvents) -> dict[str, np.ndarray]:
    """The tables :func:`affinity` reads.

    ``item_category``, ``item_brand``: integer codes of each item's category and brand (-1:
    unknown); ``category_keys``, ``category_values``: sorted keys ``user * n_categories +
    category`` and the user's purchase share and event share in that category;
    ``brand_keys``, ``brand_values``: the same for brands (event share only);
    ``user_typical_price``: median price of the items the user bought (of all their items
    if they bought none).
    """
    n_items, n_users, u, i = past.n_items, past.n_users, past.u, past.i
    item_category = _codes(_catalog_column(past.catalog, past.items, Columns.CATEGORY), n_items)
    item_brand = _codes(_catalog_column(past.catalog, past.items, Columns.BRAND), n_items)
    category_keys, category_values = _share_table(
        u, item_category[i], past.is_purchase, n_users, with_purchases=True
    )
    brand_keys, brand_values = _share_table(
        u, item_brand[i], past.is_purchase, n_users, with_purchases=False
    )
    bought_price = past.item_price[i]
    price_rows = pd.DataFrame({"u": u, "price": bought_price, "bought": past.is_purchase})
    price_rows = price_rows[np.isfinite(bought_price) & (bought_price > 0)]
    median_bought = price_rows[price_rows["bought"]].groupby("u")["price"].median()
    median_any = price_rows.groupby("u")["price"].median()
    typical = np.full(n_users, np.nan)
    typical[median_any.index.to_numpy()] = median_any.to_numpy()
    typical[median_bought.index.to_numpy()] = median_bought.to_numpy()
    return {
        "item_category": item_category,
        "item_brand": item_brand,
        "category_keys": category_keys,
        "category_values": category_values,
        "brand_keys": brand_keys,
        "brand_values": brand_values,
        "user_typical_price": typical,
    }


@REGISTRY.group(
    "lookup",
    Feature(
        "category_purchase_share",
        "share of their purchases in the item's category",
        lambda v, r: (
            "category unknown"
            if _missing(v)
            else f"{_percent(v)} of their purchases are in this category"
        ),
    ),
    Feature(
        "category_event_share",
        "share of their activity in the item's category",
        lambda v, r: (
            "category unknown"
            if _missing(v)
            else f"{_percent(v)} of their activity is in this category"
        ),
    ),
    Feature(
        "brand_event_share",
        "share of their activity with the item's brand",
        lambda v, r: (
            "brand unknown"
            if _missing(v)
            else f"{_percent(v)} of their activity is with this brand"
        ),
    ),
    Feature(
        "price_ratio",
        "price compared with what they usually pay",
        lambda v, r: "price unknown" if _missing(v) else f"priced {v:.1f}x what they usually pay",
    ),
    tables=_affinity_tables,
)
def affinity(pairs: PairLookup) -> dict[str, np.ndarray]:
    """Share of the user's purchases and of all their events in the item's category (NaN:
    category unknown), share of their events with the item's brand, the item's price
    relative to the median price the user pays."""
    u, i, tables = pairs.users, pairs.items, pairs.tables
    n = len(u)
    item_category, item_brand = tables["item_category"], tables["item_brand"]
    n_categories = int(item_category.max(initial=-1)) + 1
    n_brands = int(item_brand.max(initial=-1)) + 1
    category = item_category[i]
    cat_values = np.full((n, 2), np.nan)
    if n_categories:
        cat_values[category >= 0] = 0.0
        hit, cpos = _lookup(tables["category_keys"], u * n_categories + category)
        hit &= category >= 0
        cat_values[hit] = tables["category_values"][cpos[hit]]
    brand = item_brand[i]
    brand_values = np.full(n, np.nan)
    if n_brands:
        brand_values[brand >= 0] = 0.0
        hit, bpos = _lookup(tables["brand_keys"], u * n_brands + brand)
        hit &= brand >= 0
        brand_values[hit] = tables["brand_values"][bpos[hit], 0]
    return {
        "category_purchase_share": cat_values[:, 0],
        "category_event_share": cat_values[:, 1],
        "brand_event_share": brand_values,
        "price_ratio": pairs.item_feature("item_price") / tables["user_typical_price"][u],
    }


#: Scores of the candidate generators: computed by
#: :class:`~recsys_core.ranking.candidates.CandidateGenerator`, declared here for the labels.
REGISTRY.add(
    FeatureGroup(
        "stage_one",
        "stage_one",
        (
            Feature(
                "als_score",
                "ALS score",
                _stage_one_label("ALS", "als_score", "als_rank", rank_first=False),
            ),
            Feature(
                "als_rank",
                "rank in ALS",
                _stage_one_label("ALS", "als_score", "als_rank", rank_first=True),
            ),
            Feature(
                "itemknn_score",
                "item-kNN score",
                _stage_one_label("item-kNN", "itemknn_score", "itemknn_rank", rank_first=False),
            ),
            Feature(
                "itemknn_rank",
                "rank in item-kNN",
                _stage_one_label("item-kNN", "itemknn_score", "itemknn_rank", rank_first=True),
            ),
        ),
    )
)
REGISTRY.freeze()

#: User-item features, in the column order of :attr:`BehaviourSnapshot.pair_values`.
PAIR_FEATURES: Final[tuple[str, ...]] = REGISTRY.names("pair")
#: User features, in the column order of :attr:`BehaviourSnapshot.user_values`.
USER_FEATURES: Final[tuple[str, ...]] = REGISTRY.names("user")
#: Item features, in the column order of :attr:`BehaviourSnapshot.item_values`.
ITEM_FEATURES: Final[tuple[str, ...]] = REGISTRY.names("item")
#: Category, brand and price affinity of the user for the item (computed at lookup).
AFFINITY_FEATURES: Final[tuple[str, ...]] = REGISTRY.names("lookup")
#: Everything a :class:`BehaviourSnapshot` computes, in the order of its features.
BEHAVIOUR_FEATURES: Final[tuple[str, ...]] = REGISTRY.names(*_BEHAVIOUR_LEVELS)
#: Scores of the candidate generators (see :mod:`recsys_core.ranking.candidates`).
STAGE_ONE_FEATURES: Final[tuple[str, ...]] = REGISTRY.names("stage_one")
#: All classifier features, in the classifier's column order.
FEATURE_NAMES: Final[tuple[str, ...]] = REGISTRY.names()
#: Features whose sum above 0 says the shopper already interacted with the item.
SEEN_FEATURES: Final[tuple[str, ...]] = tuple(f.name for f in REGISTRY.features() if f.marks_seen)


# --------------------------------------------------------------------------------------
# The snapshot: the groups' tables at a cutoff, and the features of any pairs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BehaviourSnapshot:
    """Behaviour tables of an event log as it was at ``cutoff``.

    Build one with :meth:`from_events`; gather the features of pairs with :meth:`features`.

    Attributes
    ----------
    cutoff:
        Only events strictly before this instant were used.
    users, items:
        Users with at least one event before the cutoff; items with an event before the
        cutoff or in the catalog.
    pair_keys, pair_values:
        Sorted keys ``user * n_items + item`` of pairs with history and their pair-level
        features (:data:`PAIR_FEATURES`, float64).
    user_values, item_values:
        User-level features per user and item-level features per item.
    tables:
        The ``lookup`` groups' tables (e.g. the affinity group's ``item_category``,
        ``category_keys``, ``user_typical_price``).
    registry:
        The feature groups the tables were built with (not saved).
    """

    cutoff: pd.Timestamp
    users: IdMap
    items: IdMap
    pair_keys: np.ndarray
    pair_values: np.ndarray
    user_values: np.ndarray
    item_values: np.ndarray
    tables: Mapping[str, np.ndarray]
    registry: FeatureRegistry = field(default=REGISTRY, repr=False, compare=False)

    # ------------------------------------------------------------------ building

    @classmethod
    def from_events(
        cls,
        events: pd.DataFrame,
        cutoff: pd.Timestamp,
        catalog: pd.DataFrame | None = None,
        registry: FeatureRegistry = REGISTRY,
    ) -> BehaviourSnapshot:
        """Aggregate the events strictly before ``cutoff`` into every group's table.

        Parameters
        ----------
        events:
            Canonical event log with ``timestamp`` (``quantity`` and ``price`` optional).
            Events at or after ``cutoff`` are ignored.
        cutoff:
            The instant the features describe.
        catalog:
            Optional catalog (``item_id`` and where known ``category``, ``brand``);
            catalog items without events get item features too. Its ``price`` is ignored:
            prices come from the events before the cutoff only.
        registry:
            The feature groups (default :data:`REGISTRY`).

        Raises
        ------
        DataValidationError
            No timestamps, or no event before the cutoff.
        """
        past = PastEvents(events, cutoff, catalog)
        tables: dict[str, np.ndarray] = {}
        for group in registry.groups_at("lookup"):
            if group.tables is not None:
                made = group.tables(past)
                clash = set(made) & (set(tables) | set(_CORE_ARRAYS) | {"cutoff_ns"})
                if clash:
                    raise ValueError(f"feature group {group.name!r} reuses tables {sorted(clash)}")
                tables.update(made)
        return cls(
            cutoff=past.cutoff,
            users=past.users,
            items=past.items,
            pair_keys=past.pair_keys.astype(np.int64),
            pair_values=registry.table("pair", past, past.n_pairs),
            user_values=registry.table("user", past, past.n_users),
            item_values=registry.table("item", past, past.n_items),
            tables=tables,
            registry=registry,
        )

    # ------------------------------------------------------------------ lookups

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The columns of :meth:`features` (:data:`BEHAVIOUR_FEATURES` by default)."""
        return self.registry.names(*_BEHAVIOUR_LEVELS)

    def features(self, user_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        """:attr:`feature_names` of pairs given by snapshot indices.

        Parameters
        ----------
        user_rows, item_rows:
            Same-length arrays of indices into :attr:`users` and :attr:`items` (all
            ``>= 0``: map external ids with :meth:`IdMap.to_internal` and check first).

        Returns
        -------
        numpy.ndarray
            ``(n_pairs, len(feature_names))`` float64.
        """
        u = np.asarray(user_rows, dtype=np.int64)
        i = np.asarray(item_rows, dtype=np.int64)
        n = len(u)
        found, pos = _lookup(self.pair_keys, u * np.int64(len(self.items)) + i)
        pair = np.empty((n, self.pair_values.shape[1]))
        pair[:] = self.registry.pair_defaults()  # e.g. NaN days since, for pairs without history
        pair[found] = self.pair_values[pos[found]]
        user = self.user_values[u]
        item = self.item_values[i]
        looked_up = self.registry.table(
            "lookup", PairLookup(u, i, self.tables, user, item, self.registry), n
        )
        return np.hstack([pair, user, item, looked_up])

    # ------------------------------------------------------------------ persistence

    def save(self, folder: Path) -> None:
        """Write the tables to ``folder`` (``users.npy``, ``items.npy``, ``tables.npz``)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.users.save(folder / "users.npy")
        self.items.save(folder / "items.npy")
        arrays: dict[str, np.ndarray] = {
            "cutoff_ns": np.asarray([self.cutoff.value], dtype=np.int64),
            **{name: getattr(self, name) for name in _CORE_ARRAYS},
            **self.tables,
        }
        np.savez(folder / "tables.npz", **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, folder: Path, registry: FeatureRegistry = REGISTRY) -> BehaviourSnapshot:
        """Read tables written by :meth:`save` (with the same feature groups).

        Raises
        ------
        ArtifactError
            Missing or corrupted files, or tables of inconsistent shapes.
        """
        users = IdMap.load(folder / "users.npy")
        items = IdMap.load(folder / "items.npy")
        try:
            with np.load(folder / "tables.npz", allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            core = {name: arrays.pop(name) for name in (*_CORE_ARRAYS, "cutoff_ns")}
        except Exception as exc:  # zip, OS, key and value errors all mean a bad file
            raise ArtifactError(f"cannot read behaviour tables in {folder}: {exc}") from exc
        snapshot = cls(
            cutoff=pd.Timestamp(int(core.pop("cutoff_ns")[0])),
            users=users,
            items=items,
            tables=arrays,
            registry=registry,
            **core,
        )
        expected = {
            "pair_values": len(registry.names("pair")),
            "user_values": len(registry.names("user")),
            "item_values": len(registry.names("item")),
        }
        rows = {"user_values": len(users), "item_values": len(items)}
        for name, width in expected.items():
            arr = getattr(snapshot, name)
            if (
                arr.ndim != 2
                or arr.shape[1] != width
                or arr.shape[0] != rows.get(name, arr.shape[0])
            ):
                raise ArtifactError(f"behaviour table {name} in {folder} has shape {arr.shape}")
        try:  # every lookup group finds its tables
            empty = np.zeros(0, dtype=np.int64)
            snapshot.features(empty, empty)
        except (KeyError, IndexError, ValueError) as exc:
            raise ArtifactError(
                f"the behaviour tables in {folder} do not fit this version's features ({exc}): "
                "retrain the ranker"
            ) from exc
        return snapshot


# --------------------------------------------------------------------------------------
# Feature names in the shop's words (declared with each feature above)
# --------------------------------------------------------------------------------------


def feature_description(name: str) -> str:
    """What a feature measures, in the shop's words, without a value (for global views)."""
    feature = REGISTRY.feature(name)
    return feature.description if feature else name


def describe_feature(name: str, row: Mapping[str, float]) -> str:
    """A feature and its value in the shop's words, e.g. ``"bought this item 3 times"``.

    Parameters
    ----------
    name:
        A feature of :data:`FEATURE_NAMES`.
    row:
        The pair's feature values by name (stage-one labels read score and rank together).
    """
    feature = REGISTRY.feature(name)
    value = float(row.get(name, math.nan))
    if feature is None:
        return f"{name} = {value:g}"
    try:
        label = feature.label(value, row)
    except (ValueError, OverflowError):
        label = "nan"
    if _missing(value) and "nan" in label:
        return f"{feature.description}: unknown"
    return label
