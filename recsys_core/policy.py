"""What a list may contain: the :class:`ListPolicy`, and the one function that applies it.

Every path that produces a list (the service behind the Shopper page, the REST API, the CLI's
``recommend`` and ``batch``, the bulk export, evaluation and tuning) takes a policy as a
required argument and applies it here; models have no filtering defaults of their own
(implicit's ``filter_already_liked_items`` habit: the filter is an argument of the call).
Every answer and file names the policy that applied (:meth:`ListPolicy.to_dict`).

A policy says

* what happens to items the shopper already used (:data:`REPEATS`): ``keep`` them,
  ``leave-out-bought`` (purchases before training ended; viewed, carted and favourited
  items stay) or ``leave-out-seen`` (every item the shopper interacted with);
* the shop's business filters (:class:`BusinessFilters`: categories, price band, items
  bought in the last N days);
* merchandising: items never shown (``exclude_items``), an allow-list (``allow_items``)
  and :class:`~recsys_core.merchandising.MerchandisingRule` s (pin, boost, block items or
  categories, per segment and date window; :mod:`recsys_core.merchandising` says what each
  does). ``merchandising`` names the rule set (``"v3"`` of the rule store, ``"draft"``);
  the service adds the store's active rules to a policy that names none.

:func:`policy_mask` is the one function that decides which (shopper, item) rows pass;
:func:`recommend_with_policy` (many shoppers, any model) and :func:`top_with_policy` (one
shopper, the service's hot path) ask a model for a list deep enough that ``k`` items are
left after it, and rank the survivors 1..k. "Seen" is the model's own knowledge of the
shopper (its ``filter_seen``: the training interactions); "bought" comes from the
:class:`ListContext` (the training log's purchase pairs; ``None`` where bought equals seen,
a purchase-only log).

>>> policy = ListPolicy("leave-out-bought")
>>> policy.name
'leave-out-bought'
>>> ListPolicy("keep", BusinessFilters(max_price=10.0)).name
'keep + price <= 10'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Final, Literal, TypeAlias, get_args

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import ID_COLUMNS, id_values
from recsys_core.errors import ConfigError
from recsys_core.list_context import ListContext, catalog_column
from recsys_core.merchandising import (
    MerchandisingRule,
    arrange,
    arrange_frame,
    blocked_rows,
    member,
    rule_window,
    rules_for_shopper,
    today_utc,
)
from recsys_core.repeats import BoughtRule, Removes

__all__ = [
    "LAB_RULE",
    "REPEATS_OF_RULE",
    "REPEATS",
    "PolicyChoice",
    "BusinessFilters",
    "ListContext",
    "ListPolicy",
    "MerchandisingRule",
    "Repeats",
    "catalog_column",
    "merchandise",
    "merchandising_window",
    "policy_mask",
    "recommend_with_policy",
    "top_with_policy",
]

#: What a list does with the items a shopper already used.
Repeats = Literal["keep", "leave-out-bought", "leave-out-seen"]
#: The values of :data:`Repeats`, in order.
REPEATS: Final[tuple[str, ...]] = get_args(Repeats)

#: A repeat rule's ``removes`` (:class:`recsys_core.repeats.BoughtRule`) as a policy's repeats.
REPEATS_OF_RULE: Final[dict[Removes, Repeats]] = {
    "nothing": "keep",
    "bought": "leave-out-bought",
    "seen": "leave-out-seen",
}

#: Passed instead of a policy: "the lab's own rule" (its settings, else the training data's
#: repeat rate; :meth:`~recsys_core.serving.service.RecommendationService.default_policy`).
#: A caller still says it: no path has a silent default.
LAB_RULE: Final = "lab-rule"

#: Longest list :func:`recommend_with_policy` asks a model for while filling ``k`` rows.
MAX_DEPTH: Final = 1 << 16


@dataclass(frozen=True)
class BusinessFilters:
    """Which recommended items a shop wants to show.

    Attributes
    ----------
    categories:
        Keep only items of these catalog categories (empty: all).
    min_price, max_price:
        Keep only items priced within ``[min_price, max_price]`` (``None``: no bound; items
        without a price are dropped when a bound is set).
    exclude_bought_days:
        Leave out items the shopper bought in the last N days before ``now`` (0: keep).
    """

    categories: Sequence[str] = field(default_factory=tuple)
    min_price: float | None = None
    max_price: float | None = None
    exclude_bought_days: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", tuple(str(c) for c in self.categories))
        low, high = self.min_price, self.max_price
        if low is not None and high is not None and low > high:
            raise ConfigError(f"min_price {low:g} is above max_price {high:g}: no item can pass")

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return bool(
            self.categories
            or self.min_price is not None
            or self.max_price is not None
            or self.exclude_bought_days > 0
        )

    def describe(self) -> list[str]:
        """Each active filter in a few words."""
        out = []
        if self.categories:
            out.append("categories " + ", ".join(str(c) for c in self.categories))
        if self.min_price is not None:
            out.append(f"price >= {self.min_price:g}")
        if self.max_price is not None:
            out.append(f"price <= {self.max_price:g}")
        if self.exclude_bought_days > 0:
            out.append(f"not bought in the last {self.exclude_bought_days} days")
        return out


@dataclass(frozen=True)
class ListPolicy:
    """What a list may contain; a required argument of every path that produces a list.

    Attributes
    ----------
    repeats:
        ``keep``, ``leave-out-bought`` or ``leave-out-seen`` (:data:`REPEATS`).
    filters:
        The shop's business filters.
    exclude_items:
        Items never shown.
    allow_items:
        When set, only these items are shown.
    rules:
        Merchandising rules, applied in order (:mod:`recsys_core.merchandising`).
    merchandising:
        Which rule set ``rules`` are (``"v3"``, ``"draft"``, ``"none"``); empty: not chosen
        yet (the service then adds its rule store's active set).
    source:
        Who chose ``repeats``: ``"request"`` (the caller), ``"settings"`` (the lab's
        settings, e.g. a tune result), ``"repeat rate"`` (the training data's repeat rule,
        :func:`recsys_core.repeats.bought_rule`) or ``"unrecorded"`` (an older version).
    why:
        One sentence saying why.
    """

    repeats: Repeats
    filters: BusinessFilters = field(default_factory=BusinessFilters)
    exclude_items: frozenset[str] = frozenset()
    allow_items: frozenset[str] | None = None
    rules: tuple[MerchandisingRule, ...] = ()
    merchandising: str = ""
    source: str = "request"
    why: str = ""

    def __post_init__(self) -> None:
        if self.repeats not in REPEATS:
            raise ConfigError(
                f"unknown repeats rule {self.repeats!r}: choose one of " + ", ".join(REPEATS)
            )
        object.__setattr__(self, "exclude_items", frozenset(str(i) for i in self.exclude_items))
        if self.allow_items is not None:
            object.__setattr__(self, "allow_items", frozenset(str(i) for i in self.allow_items))
        if not self.why:
            object.__setattr__(self, "why", f"asked to {_REPEAT_WORDS[self.repeats]}")

    @classmethod
    def from_flags(
        cls,
        filter_bought: bool | None = None,
        *,
        filter_seen: bool = False,
        default: ListPolicy | None = None,
    ) -> ListPolicy:
        """The policy of the command-line and API flags (``--filter-bought/--keep-bought``,
        ``--filter-seen``); ``default`` (the lab's rule) when neither is given.

        Raises
        ------
        ConfigError
            Neither flag and no default.
        """
        if filter_seen:
            return cls("leave-out-seen")
        if filter_bought is not None:
            return cls("leave-out-bought" if filter_bought else "keep")
        if default is None:
            raise ConfigError("say what the list may contain: pass a ListPolicy")
        return default

    @classmethod
    def from_rule(cls, rule: BoughtRule, filters: BusinessFilters | None = None) -> ListPolicy:
        """The policy of a repeat rule (:func:`recsys_core.repeats.bought_rule`: the lab's
        rule, which evaluation, the service and the app all apply), with ``filters``."""
        return cls(
            REPEATS_OF_RULE[rule.removes],
            filters or BusinessFilters(),
            source=rule.source,
            why=rule.why,
        )

    @property
    def removes_bought(self) -> bool:
        """Whether already-bought items are left out (by either repeat rule)."""
        return self.repeats != "keep"

    @property
    def name(self) -> str:
        """A short name: the repeat rule plus each active filter or rule."""
        parts = [self.repeats, *self.filters.describe()]
        if self.exclude_items:
            parts.append(f"{len(self.exclude_items)} items excluded")
        if self.allow_items is not None:
            parts.append(f"only {len(self.allow_items)} allowed items")
        if self.rules:
            label = f"merchandising {self.merchandising}".rstrip()
            parts.append(f"{label} ({len(self.rules)} rules)")
        return " + ".join(parts)

    def with_filters(self, filters: BusinessFilters) -> ListPolicy:
        """The same policy with other business filters."""
        return replace(self, filters=filters)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, named in every answer and file."""
        return {
            "name": self.name,
            "repeats": self.repeats,
            "source": self.source,
            "why": self.why,
            "categories": [str(c) for c in self.filters.categories],
            "min_price": self.filters.min_price,
            "max_price": self.filters.max_price,
            "exclude_bought_days": int(self.filters.exclude_bought_days),
            "exclude_items": sorted(self.exclude_items),
            "allow_items": None if self.allow_items is None else sorted(self.allow_items),
            "rules": [r.to_dict() for r in self.rules],
            "merchandising": self.merchandising,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ListPolicy:
        """The policy :meth:`to_dict` described (a batch file's metadata)."""
        allow = data.get("allow_items")
        return cls(
            repeats=data["repeats"],
            filters=BusinessFilters(
                categories=tuple(data.get("categories") or ()),
                min_price=data.get("min_price"),
                max_price=data.get("max_price"),
                exclude_bought_days=int(data.get("exclude_bought_days") or 0),
            ),
            exclude_items=frozenset(data.get("exclude_items") or ()),
            allow_items=None if allow is None else frozenset(allow),
            rules=tuple(MerchandisingRule.from_dict(r) for r in data.get("rules") or ()),
            merchandising=str(data.get("merchandising") or ""),
            source=str(data.get("source", "request")),
            why=str(data.get("why", "")),
        )

    def same_lists(self, other: ListPolicy) -> bool:
        """Whether two policies give the same lists (who chose them does not matter)."""
        return replace(self, source="", why="-") == replace(other, source="", why="-")


#: A policy, or :data:`LAB_RULE`.
PolicyChoice: TypeAlias = ListPolicy | Literal["lab-rule"]

_REPEAT_WORDS: Final[dict[str, str]] = {
    "keep": "keep already-bought items",
    "leave-out-bought": "leave out already-bought items",
    "leave-out-seen": "leave out every item the shopper interacted with",
}


def uses_model_seen_filter(policy: ListPolicy, context: ListContext) -> bool:
    """Whether the model's own seen filter does the repeat rule (``leave-out-seen``, or
    ``leave-out-bought`` on a log where bought equals seen)."""
    return policy.repeats == "leave-out-seen" or (
        policy.repeats == "leave-out-bought" and context.bought is None
    )


def policy_mask(
    policy: ListPolicy,
    context: ListContext,
    user_ids: Sequence[str] | np.ndarray,
    item_ids: Sequence[str] | np.ndarray,
) -> np.ndarray:
    """Which (shopper, item) rows a list under ``policy`` may hold: the one place the
    policy is applied (apart from the model's own seen filter, see
    :func:`uses_model_seen_filter`).

    Pin and boost rules change the order, not what passes: :func:`merchandise` applies them.

    Raises
    ------
    ConfigError
        A filter the context cannot answer.
    """
    users = np.asarray(user_ids, dtype=object)  # canonical: a model's ids, the policy's pins
    items = np.asarray(item_ids, dtype=object)
    keep = np.ones(len(items), dtype=bool)
    if not len(items):
        return keep
    if policy.repeats == "leave-out-bought" and context.bought is not None:
        keep &= ~_bought_rows(context, users, items)
    if policy.exclude_items:
        keep &= ~member(items, policy.exclude_items)
    if policy.rules:
        today = context.today or today_utc()
        category = context.mapping(Columns.CATEGORY)
        segments = context.segment_table if any(r.segment for r in policy.rules) else None
        keep &= ~blocked_rows(policy.rules, users, items, category, today, segments)
    if policy.allow_items is not None:
        keep &= member(items, policy.allow_items)
    filters = policy.filters
    if filters.categories:
        if not len(context.lookup(Columns.CATEGORY)):
            raise ConfigError("a category filter needs a catalog with a 'category' column")
        wanted = [str(c) for c in filters.categories]
        category_of = context.mapping(Columns.CATEGORY).get
        keep &= member(np.array([category_of(i) for i in items], dtype=object), wanted)
    if filters.min_price is not None or filters.max_price is not None:
        price = pd.to_numeric(context.lookup(Columns.PRICE), errors="coerce")
        values = price.reindex(items).to_numpy(dtype=float)
        ok = np.isfinite(values)
        if filters.min_price is not None:
            ok &= values >= filters.min_price
        if filters.max_price is not None:
            ok &= values <= filters.max_price
        keep &= ok
    if filters.exclude_bought_days > 0:
        recent = context.recent_purchases(int(filters.exclude_bought_days))
        keep &= ~pd.MultiIndex.from_arrays([users, items]).isin(recent)
    return keep


#: Above this many shoppers in one call, bought pairs are matched as one pair index.
_PAIR_INDEX_FROM: Final = 64


def _bought_rows(context: ListContext, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Which (user, item) rows are purchase pairs of :attr:`ListContext.bought`."""
    shoppers = pd.unique(users)
    if len(shoppers) <= _PAIR_INDEX_FROM:  # one shopper (the hot path): plain lookups
        out = np.zeros(len(items), dtype=bool)
        for user in shoppers:
            mine = users == user
            bought = context.bought_items(str(user))
            if bought is not None and len(bought):
                out[mine] = np.isin(items[mine], bought)
        return out
    bought = context.bought
    assert bought is not None
    owned = pd.MultiIndex.from_arrays(
        [id_values(bought[c], where="the bought pairs") for c in ID_COLUMNS]
    )
    return np.asarray(pd.MultiIndex.from_arrays([users, items]).isin(owned), dtype=bool)


def _first_depth(policy: ListPolicy, context: ListContext, user_id: str, k: int) -> int:
    """How deep to ask first: the merchandising window (``k`` without pins or boosts) plus
    the items the repeat rule will drop, doubled to a power of two (as evaluation's grouping
    always did)."""
    if _nothing_to_filter(policy, context):
        return k
    depth = merchandising_window(policy, context, user_id, k) + len(policy.exclude_items)
    if policy.repeats == "leave-out-bought" and context.bought is not None:
        bought = context.bought_items(user_id)
        depth += 0 if bought is None else len(bought)
    return int(2 ** np.ceil(np.log2(depth)))


def _shopper_rules(policy: ListPolicy, context: ListContext, user_id: str) -> list[Any]:
    """The pin and boost rules that apply to this shopper today."""
    rules = [r for r in policy.rules if r.action != "block"]
    if not rules:
        return []
    return rules_for_shopper(rules, user_id, context.today or today_utc(), context.segment_table)


def merchandising_window(policy: ListPolicy, context: ListContext, user_id: str, k: int) -> int:
    """How many of the model's allowed items the shopper's list is chosen from: ``k``, or
    more for boosts and category pins (:func:`~recsys_core.merchandising.rule_window`).
    Every path asks at least this deep, so
    every path gives the same list."""
    return rule_window(_shopper_rules(policy, context, user_id), k)


def merchandise(
    policy: ListPolicy, context: ListContext, user_id: str, items: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """One shopper's top ``k`` from the policy-passing ``items`` (best first): the pin and
    boost rules that apply to the shopper today, over the first
    :func:`merchandising_window` items (block rules already left items out in
    :func:`policy_mask`).

    Returns
    -------
    (rows, item_ids)
        Index of each list item in ``items`` (``-1``: a pinned item the model did not rank)
        and its id. Without pin or boost rules: the first ``k`` items.
    """
    rules = _shopper_rules(policy, context, user_id)
    items = np.asarray(items, dtype=object)
    if not rules:
        rows = np.arange(min(k, len(items)), dtype=np.int64)
        return rows, items[rows]
    window = items[: merchandising_window(policy, context, user_id, k)]

    def allowed(ids: list[str]) -> np.ndarray:
        ok = policy_mask(policy, context, np.full(len(ids), user_id, dtype=object), ids)
        if context.catalog is not None:  # an id the catalog does not know is never pinned
            ok &= member(np.asarray(ids, dtype=object), context.mapping(Columns.TITLE))
        if uses_model_seen_filter(policy, context):
            seen = set() if context.seen is None else {str(i) for i in context.seen(user_id)}
            ok &= np.array([context.seen is not None and i not in seen for i in ids], bool)
        return ok

    return arrange(rules, window, context.mapping(Columns.CATEGORY), k, allowed)


def top_with_policy(
    fetch: Callable[[int], Any],
    items_of: Callable[[Any], np.ndarray],
    user_id: str,
    k: int,
    policy: ListPolicy,
    context: ListContext,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """One shopper's list under ``policy``: ``(fetched, rows, item_ids)``.

    ``fetch(depth)`` asks the model for ``depth`` items (with its own seen filter when
    :func:`uses_model_seen_filter`); ``items_of(fetched)`` gives their ids. The list is
    asked deeper (doubling) until :func:`merchandising_window` rows pass or the model has no
    more; ``rows`` are the list's rows of ``fetched`` in list order (``-1``: a pinned item the
    model did not rank) and ``item_ids`` their ids (:func:`merchandise`).
    """
    depth = _first_depth(policy, context, user_id, k)
    arranged = any(r.action != "block" for r in policy.rules)
    window = merchandising_window(policy, context, user_id, k) if arranged else k
    while True:
        fetched = fetch(depth)
        items = np.asarray(items_of(fetched), dtype=object)
        passed = policy_mask(policy, context, np.full(len(items), user_id, dtype=object), items)
        if int(passed.sum()) >= window or len(items) < depth or depth >= MAX_DEPTH:
            where = np.flatnonzero(passed)
            if not arranged:  # no pin or boost: the first k that pass
                return fetched, where[:k], items[where[:k]]
            rows, ids = merchandise(policy, context, user_id, items[where], k)
            return fetched, np.where(rows >= 0, where[np.maximum(rows, 0)], -1), ids
        depth *= 2


def recommend_with_policy(
    model: Any,
    user_ids: Iterable[object],
    k: int,
    policy: ListPolicy,
    context: ListContext,
    **extra: Any,
) -> pd.DataFrame:
    """Top-``k`` lists of ``model`` for many shoppers under ``policy``.

    Any model with ``recommend(user_ids, k, filter_seen=..., **extra)``. Shoppers are
    grouped by how deep their list must be asked (:func:`_first_depth`, one ``recommend``
    call per group); shoppers left short are asked again twice as deep. Ranks are
    renumbered 1..k; columns are the model's own (a pinned item the model did not rank has
    an empty score and ``merchandised`` rows are marked when pin or boost rules apply).
    """
    native = uses_model_seen_filter(policy, context)
    users = list(pd.unique(pd.Series([str(u) for u in user_ids], dtype=object)))
    if not users:
        return model.recommend([], k, filter_seen=native, **extra)
    depths = np.array([_first_depth(policy, context, u, k) for u in users], dtype=np.int64)
    if _nothing_to_filter(policy, context):
        return model.recommend(users, k, filter_seen=native, **extra)
    arranged = any(r.action != "block" for r in policy.rules)
    windows = {u: merchandising_window(policy, context, u, k) for u in users}
    done: list[pd.DataFrame] = []
    pending = pd.Series(depths, index=users)
    while len(pending):
        short: dict[str, int] = {}
        for depth in np.unique(pending.to_numpy()):
            chunk = list(pending.index[pending.to_numpy() == depth])
            reco = model.recommend(chunk, int(depth), filter_seen=native, **extra)
            reco = reco.sort_values([Columns.USER, Columns.RANK], kind="stable")
            passed = policy_mask(
                policy, context, reco[Columns.USER].to_numpy(), reco[Columns.ITEM].to_numpy()
            )
            kept = reco[passed]
            asked = reco[Columns.USER].value_counts()  # the model's (canonical) ids
            got = kept[Columns.USER].value_counts()
            for user in chunk:
                more = int(asked.get(user, 0)) >= depth and int(got.get(user, 0)) < windows[user]
                if more and depth < MAX_DEPTH:
                    short[user] = int(depth) * 2
            kept = kept[~kept[Columns.USER].isin(short).to_numpy()]
            if arranged:
                pick = partial(merchandise, policy, context, k=k)
                done.append(arrange_frame(kept, pick, reco[Columns.RANK].dtype))
                continue
            rank = kept.groupby(Columns.USER, sort=False).cumcount().to_numpy() + 1
            kept = kept[rank <= k].copy()
            kept[Columns.RANK] = rank[rank <= k].astype(reco[Columns.RANK].dtype)
            done.append(kept)
        pending = pd.Series(short, dtype=np.int64)
    reco = pd.concat(done, ignore_index=True) if len(done) > 1 else done[0]
    return reco.sort_values([Columns.USER, Columns.RANK], kind="stable", ignore_index=True)


def _nothing_to_filter(policy: ListPolicy, context: ListContext) -> bool:
    """Whether the model's own list (with its seen filter where asked) is the answer."""
    return (
        (policy.repeats != "leave-out-bought" or context.bought is None)
        and not policy.filters.active
        and not policy.exclude_items
        and policy.allow_items is None
        and not policy.rules
    )
