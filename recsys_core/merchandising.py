"""Merchandising rules: pin, boost or block items or categories, per segment and dates.

A :class:`MerchandisingRule` is part of a :class:`~recsys_core.policy.ListPolicy`; the policy
path (:func:`recsys_core.policy.policy_mask`, :func:`~recsys_core.policy.top_with_policy`,
:func:`~recsys_core.policy.recommend_with_policy`) applies every rule through the functions of
this module, so the service, the REST API, ``recommend``, ``batch``, the bulk export and
evaluation give one shopper the same merchandised list.

What each action does to one shopper's list (after the repeat rule and the business filters):

* ``block`` — the targeted items are never shown.
* ``boost`` — the targeted items' *rank-normalised* score is multiplied by ``1 + weight``
  before the top-``k`` cut. The rank-normalised score of the item at position ``r`` of the
  model's (policy-filtered) list is ``1 / r``, so a boost means the same for every model
  whatever its score scale or sign (ALS dot products can be negative, item-kNN scores run into
  thousands, probabilities lie in 0-1): a boost of weight ``w`` moves an item from position
  ``r`` to about ``r / (1 + w)`` (weight 1: from 10th to 5th). Ties keep the model's order;
  several boosts on one item multiply; a weight between -1 and 0 demotes. The answer's
  ``score`` stays the model's own.
* ``pin`` — the targeted item is put at ``position`` (1-based) *if the rest of the policy
  allows it*: a pinned item the shopper already bought (``leave-out-bought``) or interacted
  with (``leave-out-seen``), that a block rule or a business filter removes, is **not
  pinned**. A pinned item the model did not rank is added (its score is empty). A category pin
  puts the shopper's best-ranked item of that category at the position. When two pins want one
  position, the first rule of the set gets it and the next goes to the next free position; a
  position beyond ``k`` does nothing; on a list shorter than the position the item goes last.

Each rule may be limited to one shopper segment (``segment="volume=heavy"``, the columns of
:mod:`recsys_core.segments`: ``tenure``, ``volume``, ``country``) and to a date window
(``start``/``end``, both inclusive): outside its window, or for a shopper outside its
segment (or whose segment is unknown), a rule does nothing. The date is the policy context's
``today`` (tests pass one; the lab uses the UTC date).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Final, Literal, TypeAlias, get_args

import numpy as np
import pandas as pd

from recsys_core.errors import ConfigError
from recsys_core.segments import SEGMENT_COLUMNS

__all__ = [
    "ACTIONS",
    "member",
    "Action",
    "MerchandisingRule",
    "CATEGORY_PIN_WINDOW",
    "arrange",
    "arrange_frame",
    "blocked_rows",
    "boost_depth",
    "rule_window",
    "rules_frame",
    "segment_choices",
    "rules_for_shopper",
    "today_utc",
]

#: What a rule does.
Action = Literal["pin", "boost", "block"]
#: The values of :data:`Action`.
ACTIONS: Final[tuple[str, ...]] = get_args(Action)


def today_utc() -> date:
    """Today's date in UTC (the default ``today`` of rule windows)."""
    return datetime.now(timezone.utc).date()


def _as_date(value: date | str | None, what: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(
            f"the rule's {what} date {value!r} is not a date: use YYYY-MM-DD"
        ) from None


@dataclass(frozen=True)
class MerchandisingRule:
    """One merchandiser's rule (see the module docstring for what each action does).

    Attributes
    ----------
    action:
        ``"pin"``, ``"boost"`` or ``"block"``.
    item_ids:
        Items the rule is about.
    categories:
        Catalog categories the rule is about (every item of them).
    position:
        1-based position of a pinned item (pin only).
    weight:
        Relative boost: the rank-normalised score is multiplied by ``1 + weight`` (boost only;
        greater than -1).
    segment:
        ``"column=value"`` (e.g. ``"volume=heavy"``, ``"tenure=new"``, ``"country=France"``):
        only shoppers of this segment; ``None``: every shopper.
    start, end:
        First and last day the rule applies (inclusive; ``None``: open).
    note:
        Why the rule exists (shown in the rules table).
    """

    action: Action
    item_ids: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    position: int | None = None
    weight: float = 0.0
    segment: str | None = None
    start: date | None = None
    end: date | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(
                f"unknown merchandising action {self.action!r}: choose pin, boost or block"
            )
        set_ = object.__setattr__
        set_(self, "item_ids", tuple(str(i) for i in self.item_ids))
        set_(self, "categories", tuple(str(c) for c in self.categories))
        set_(self, "start", _as_date(self.start, "start"))
        set_(self, "end", _as_date(self.end, "end"))
        set_(self, "segment", self.segment or None)
        if not self.item_ids and not self.categories:
            raise ConfigError(f"a {self.action} rule needs at least one item id or category")
        if self.action == "pin":
            if self.position is None or int(self.position) < 1:
                raise ConfigError("a pin rule needs a position of 1 or more (1 = first)")
            set_(self, "position", int(self.position))
        if self.action == "boost":
            set_(self, "weight", float(self.weight))
            if not np.isfinite(self.weight) or self.weight <= -1 or self.weight == 0:
                raise ConfigError(
                    f"a boost weight must be above -1 and not 0 (0.5 = half again as "
                    f"strong, -0.5 = half as strong), got {self.weight!r}"
                )
        if self.start and self.end and self.start > self.end:
            raise ConfigError(f"the rule ends ({self.end}) before it starts ({self.start})")
        if self.segment is not None:
            column, _, value = self.segment.partition("=")
            if column not in SEGMENT_COLUMNS or not value:
                raise ConfigError(
                    f"segment {self.segment!r} is not 'column=value' with a column of "
                    f"{', '.join(SEGMENT_COLUMNS)} (e.g. 'volume=heavy')"
                )

    def active_on(self, today: date) -> bool:
        """Whether ``today`` lies in the rule's date window."""
        return (self.start is None or self.start <= today) and (
            self.end is None or today <= self.end
        )

    def covers(self, segments: Mapping[str, str] | None) -> bool:
        """Whether the rule applies to a shopper with these segment values."""
        if self.segment is None:
            return True
        if segments is None:
            return False
        column, _, value = self.segment.partition("=")
        return str(segments.get(column, "")) == value

    def targets(self, items: np.ndarray, categories: np.ndarray | None) -> np.ndarray:
        """Which of ``items`` (with their ``categories``, aligned) the rule is about."""
        hit = member(items, self.item_ids) if self.item_ids else np.zeros(len(items), bool)
        if self.categories and categories is not None:
            hit |= member(categories, self.categories)
        return hit

    def describe(self) -> str:
        """The rule in a few words, e.g. ``pin 85123A at 1 for volume=heavy until 2026-12-24``."""
        what = ", ".join([*self.item_ids, *(f"category {c}" for c in self.categories)])
        text = f"{self.action} {what}"
        if self.action == "pin":
            text += f" at {self.position}"
        elif self.action == "boost":
            text += f" x{1 + self.weight:g}"
        if self.segment:
            text += f" for {self.segment}"
        if self.start:
            text += f" from {self.start.isoformat()}"
        if self.end:
            text += f" until {self.end.isoformat()}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (:meth:`from_dict` reads them back)."""
        return {
            "action": self.action,
            "item_ids": list(self.item_ids),
            "categories": list(self.categories),
            "position": self.position,
            "weight": self.weight,
            "segment": self.segment,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MerchandisingRule:
        """The rule :meth:`to_dict` described (older files lack the newer keys)."""
        return cls(
            action=data["action"],
            item_ids=tuple(data.get("item_ids") or ()),
            categories=tuple(data.get("categories") or ()),
            position=data.get("position"),
            weight=float(data.get("weight") or 0.0),
            segment=data.get("segment"),
            start=data.get("start"),
            end=data.get("end"),
            note=str(data.get("note") or ""),
        )


#: Shopper segments (indexed by ``user_id``), a function computing them, or none.
Segments: TypeAlias = pd.DataFrame | Callable[[], pd.DataFrame | None] | None


def _table(segments: Segments) -> pd.DataFrame | None:
    return segments() if callable(segments) else segments


def rules_frame(rules: Sequence[MerchandisingRule]) -> pd.DataFrame:
    """Rules as a table (one row each, in order): what the rules editor and reports show."""
    rows = [
        {
            "rule": n,
            "action": r.action,
            "items": ", ".join(r.item_ids),
            "categories": ", ".join(r.categories),
            "position": r.position,
            "weight": r.weight if r.action == "boost" else None,
            "segment": r.segment or "every shopper",
            "from": r.start.isoformat() if r.start else "",
            "until": r.end.isoformat() if r.end else "",
            "note": r.note,
        }
        for n, r in enumerate(rules, start=1)
    ]
    columns = ["rule", "action", "items", "categories", "position", "weight", "segment"]
    return pd.DataFrame(rows, columns=[*columns, "from", "until", "note"])


def segment_choices(segments: Segments) -> list[str]:
    """Every ``column=value`` segment a rule can be limited to (empty without segments)."""
    table = _table(segments)
    if table is None:
        return []
    return [
        f"{column}={value}"
        for column in SEGMENT_COLUMNS
        if column in table.columns
        for value in sorted(table[column].unique())  # text labels (recsys_core.segments)
    ]


def _segment_row(segments: Segments, user_id: str) -> Mapping[str, str] | None:
    table = _table(segments)
    if table is None or user_id not in table.index:
        return None
    row = table.loc[user_id]
    return {str(c): str(row[c]) for c in table.columns if c in SEGMENT_COLUMNS}


def rules_for_shopper(
    rules: Iterable[MerchandisingRule],
    user_id: str,
    today: date,
    segments: Segments,
) -> list[MerchandisingRule]:
    """The rules that apply to one shopper today (date window and segment)."""
    row: Mapping[str, str] | None = None
    looked = False
    out = []
    for rule in rules:
        if not rule.active_on(today):
            continue
        if rule.segment is not None and not looked:
            row, looked = _segment_row(segments, str(user_id)), True
        if rule.covers(row):
            out.append(rule)
    return out


def blocked_rows(
    rules: Sequence[MerchandisingRule],
    users: np.ndarray,
    items: np.ndarray,
    categories: Mapping[str, str],
    today: date,
    segments: Segments,
) -> np.ndarray:
    """Which (shopper, item) rows a ``block`` rule removes (``categories``: item -> category)."""
    out = np.zeros(len(items), dtype=bool)
    blocks = [r for r in rules if r.action == "block" and r.active_on(today)]
    if not blocks or not len(items):
        return out
    cats = _categories_of(items, categories) if any(r.categories for r in blocks) else None
    for rule in blocks:
        hit = rule.targets(items, cats)
        if rule.segment is not None:
            shoppers = np.asarray(pd.unique(users), dtype=object)
            table = _table(segments)
            column, _, value = rule.segment.partition("=")
            if table is None or column not in table.columns:
                hit[:] = False
            else:
                inside = table[column].reindex(shoppers) == value  # text labels
                hit &= member(users, shoppers[inside.to_numpy()])
        out |= hit
    return out


def _categories_of(items: np.ndarray, categories: Mapping[str, str]) -> np.ndarray | None:
    if not categories:
        return None
    get = categories.get
    return np.array([get(i) for i in items], dtype=object)


#: Above this many values :func:`member` uses pandas' hash table (below, a Python set wins).
_HASHED_FROM: Final = 512


def member(values: np.ndarray, wanted: Iterable[str]) -> np.ndarray:
    """Which of ``values`` are in ``wanted`` (hash lookups: ``np.isin`` sorts object arrays)."""
    if len(values) >= _HASHED_FROM:
        return np.asarray(pd.Index(values).isin(list(wanted)), dtype=bool)
    chosen = set(wanted)
    return np.fromiter((v in chosen for v in values), dtype=bool, count=len(values))


def boost_depth(rules: Iterable[MerchandisingRule], k: int) -> int:
    """How many policy-passing items a list must be asked for so that every boosted item that
    can reach the top ``k`` is among them: an item at position ``r`` with total boost
    ``1 + w`` beats position ``k`` only when ``r < k (1 + w)``."""
    factor = 1.0
    for rule in rules:
        if rule.action == "boost" and rule.weight > 0:
            factor *= 1 + rule.weight
    return int(np.ceil(k * factor))


#: A category pin looks for the shopper's best item of the category among this many of the
#: model's allowed items (or the boost window, when larger).
CATEGORY_PIN_WINDOW: Final = 100


def rule_window(rules: Sequence[MerchandisingRule], k: int) -> int:
    """How many of the model's allowed items a list under ``rules`` (those of one shopper
    today) is chosen from: ``k``, :func:`boost_depth` with boosts, at least
    :data:`CATEGORY_PIN_WINDOW` with a category pin."""
    window = max(k, boost_depth(rules, k))
    if any(r.action == "pin" and r.categories for r in rules):
        window = max(window, CATEGORY_PIN_WINDOW)
    return window


def arrange(
    rules: Sequence[MerchandisingRule],
    items: np.ndarray,
    categories: Mapping[str, str],
    k: int,
    allowed: Callable[[list[str]], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """One shopper's list after the boost and pin ``rules`` (already those that apply to the
    shopper today, in the rule set's order).

    Parameters
    ----------
    items:
        The policy-passing items of the model's list, best first.
    categories:
        Item -> category (empty when the catalog has none).
    allowed:
        Which of some item ids (not in ``items``) the rest of the policy lets the shopper see:
        a pinned item it refuses is not pinned.

    Returns
    -------
    (rows, item_ids)
        At most ``k`` entries, in list order: the index of each item in ``items`` (``-1`` for
        a pinned item the model did not rank) and its id.
    """
    items = np.asarray(items, dtype=object)
    n = len(items)
    cats = _categories_of(items, categories) if any(r.categories for r in rules) else None
    weight = np.ones(n)
    for rule in rules:
        if rule.action == "boost":
            weight[rule.targets(items, cats)] *= 1.0 + rule.weight
    order = np.argsort(-(weight / np.arange(1, n + 1)), kind="stable")
    slots: dict[int, tuple[int, str]] = {}
    taken: set[str] = set()

    def place(position: int, row: int, item: str) -> None:
        slot = position - 1
        while slot in slots:
            slot += 1
        if slot < k:
            slots[slot] = (row, item)
            taken.add(item)

    where = {str(item): i for i, item in enumerate(items)}
    for rule in rules:
        if rule.action != "pin":
            continue
        assert rule.position is not None
        outside = [i for i in rule.item_ids if i not in where and i not in taken]
        ok: dict[str, bool] = {}
        if outside:
            ok = dict(zip(outside, np.asarray(allowed(outside), dtype=bool).tolist(), strict=True))
        for item in rule.item_ids:
            if item in taken:
                continue
            if item in where:
                place(rule.position, where[item], item)
            elif ok.get(item, False):
                place(rule.position, -1, item)
        if rule.categories and cats is not None:
            for row in order:
                if cats[row] in rule.categories and str(items[row]) not in taken:
                    place(rule.position, int(row), str(items[row]))
                    break
    rest = iter(int(i) for i in order if str(items[i]) not in taken)
    picked: list[tuple[int, str]] = []
    for slot in range(k):
        if slot in slots:
            picked.append(slots[slot])
            continue
        row = next(rest, None)
        if row is not None:
            picked.append((row, str(items[row])))
    rows = np.array([r for r, _ in picked], dtype=np.int64)
    ids = np.array([i for _, i in picked], dtype=object)
    return rows, ids


def arrange_frame(
    kept: pd.DataFrame,
    pick: Callable[..., tuple[np.ndarray, np.ndarray]],
    rank_type: Any,
) -> pd.DataFrame:
    """Each shopper's list of ``kept`` (their policy-passing rows, best first and each
    shopper's rows together, as a model's ``recommend`` frame sorted by shopper and rank)
    after ``pick(user_id, items)`` (``rows, item_ids`` as :func:`arrange` gives them). A
    pinned item the model did not rank gets empty numbers and ``False`` flags; ranks are
    renumbered 1..k."""
    if not len(kept):
        return kept.iloc[:0]
    users = kept["user_id"].to_numpy(dtype=object)  # a model's list: canonical ids
    items = kept["item_id"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    at, ids, ranks, new = [], [], [], []
    for start, end in zip(starts, ends, strict=True):
        picked, chosen = pick(str(users[start]), items[start:end])
        at.append(start + np.maximum(picked, 0))  # an added item copies the shopper's row
        new.append(picked < 0)
        ids.append(chosen)
        ranks.append(np.arange(1, len(picked) + 1))
    added = np.concatenate(new)
    out = kept.iloc[np.concatenate(at)].reset_index(drop=True)
    if added.any():
        out["item_id"] = np.concatenate(ids)
        for column in out.columns.difference(["user_id", "item_id", "rank"]):
            values = out[column].to_numpy()
            if values.dtype.kind in "fb":
                values = values.copy()
                values[added] = np.nan if values.dtype.kind == "f" else False
                out[column] = values
    out["rank"] = np.concatenate(ranks).astype(rank_type)
    return out
