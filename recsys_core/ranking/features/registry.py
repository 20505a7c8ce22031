"""Feature declarations and the registry the column order and labels derive from.

A :class:`FeatureGroup` is one function returning its columns by name, registered in
:data:`REGISTRY` with its :class:`Feature` declarations. The group modules of this package
register into :data:`REGISTRY` when :mod:`recsys_core.ranking.features.names` imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final, Literal, TypeVar

import numpy as np

__all__ = [
    "LEVELS",
    "REGISTRY",
    "Feature",
    "FeatureGroup",
    "FeatureRegistry",
    "Level",
    "ValueLabel",
]

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
    tables: Callable[[Any], Mapping[str, np.ndarray]] | None = None

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
        tables: Callable[[Any], Mapping[str, np.ndarray]] | None = None,
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
