"""Do shoppers of this log buy the same item again? (repeat consumption)

Whether a list should keep items the shopper already bought depends on the shop: Online
Retail's wholesalers reorder the same items every few weeks, so their past items are most of
what they buy next; in a shop where an item is bought once per shopper (a book, a phone) the
same items are mostly unbuyable and belong out of the list. :func:`repeat_profile` measures
this on the events it is given (training data only, never the test period) and says which
default follows:

* **repeat rate** = share of the (shopper, item) pairs with a purchase that were bought on
  two or more distinct days (with timestamps) or in two or more purchase events (without).
  Logs without purchases use every event instead (and say so).
* **return rate** = share of the (shopper, item) pairs with *any* event (view, cart,
  favourite, purchase) that had events on two or more distinct days (two or more events
  without timestamps).
* return rate below :data:`REPEAT_RATE_THRESHOLD` (shoppers practically never come back to an
  item they interacted with, e.g. a log where every item is consumed once): lists **leave out
  every seen item**; else repeat rate below it (shoppers rarely re-buy): lists **leave out
  already-bought items**; otherwise lists keep them. A caller's explicit choice (e.g.
  ``evaluate --filter-bought`` / ``--keep-bought``) always wins.

"Already bought" means *purchase events* before the cutoff, not every item the shopper
viewed, carted or favourited: on a log with views, removing every seen item also removes the
items shoppers look at before buying them (``bench/bench_seen_filter.py``). One function
applies the rule to any model: :func:`recsys_core.policy.recommend_with_policy` under the
``leave-out-bought`` policy (lists without the shopper's
:func:`bought_pairs`, filled up to ``k`` from the next candidates).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_event_frame

__all__ = [
    "REPEAT_RATE_THRESHOLD",
    "BoughtRule",
    "Removes",
    "RepeatProfile",
    "bought_rule",
    "bought_pairs",
    "repeat_profile",
]

#: Below this repeat rate shoppers "rarely re-buy": lists leave out already-bought items.
REPEAT_RATE_THRESHOLD: Final = 0.05

#: What leaves a list: every item the shopper interacted with, the bought ones, or nothing.
Removes = Literal["seen", "bought", "nothing"]

_DAY_NS: Final = 86_400 * 1_000_000_000


@dataclass(frozen=True)
class RepeatProfile:
    """How often shoppers re-buy, and the list default that follows.

    Attributes
    ----------
    repeat_rate:
        Share of (shopper, item) pairs bought on two or more days (NaN: no pairs).
    pairs:
        (shopper, item) pairs with a counted event.
    repeated_pairs:
        Of those, the pairs bought again.
    counted:
        What was counted: ``"purchase days"``, ``"purchase events"`` or ``"event days"`` /
        ``"events"`` for logs without purchases.
    threshold:
        The repeat rate below which already-bought items are removed.
    filter_seen:
        The default that follows: ``True`` removes already-bought items from lists.
    reason:
        One sentence saying why.
    return_rate:
        Share of (shopper, item) pairs with any event that had events on two or more days
        (NaN: no pairs).
    removes:
        ``"seen"`` (every item the shopper interacted with leaves the lists: the return
        rate is below the threshold), ``"bought"`` (already-bought items leave) or
        ``"nothing"``.
    """

    repeat_rate: float
    pairs: int
    repeated_pairs: int
    counted: str
    threshold: float
    filter_seen: bool
    reason: str
    return_rate: float = float("nan")
    removes: Removes = "nothing"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        out = asdict(self)
        out["repeat_rate"] = None if np.isnan(self.repeat_rate) else round(self.repeat_rate, 6)
        out["return_rate"] = None if np.isnan(self.return_rate) else round(self.return_rate, 6)
        return out


def _repeated_share(frame: pd.DataFrame, has_time: bool) -> tuple[int, int]:
    """(pairs, pairs seen on two or more days / in two or more events) of ``frame``."""
    pairs = pd.DataFrame(
        {
            "u": frame[Columns.USER].to_numpy(dtype=object),
            "i": frame[Columns.ITEM].to_numpy(dtype=object),
        }
    )
    if has_time:
        ts = frame[Columns.TIMESTAMP].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        pairs["occasion"] = ts // _DAY_NS
        occasions = pairs.drop_duplicates().groupby(["u", "i"], sort=False).size()
    else:
        occasions = pairs.groupby(["u", "i"], sort=False).size()
    return int(len(occasions)), int((occasions >= 2).sum())


def repeat_profile(
    events: pd.DataFrame, *, threshold: float = REPEAT_RATE_THRESHOLD
) -> RepeatProfile:
    """Measure the repeat rate of ``events`` and choose the already-bought default.

    Parameters
    ----------
    events:
        Canonical event log (pass the *training* part: the test period must not decide
        the protocol).
    threshold:
        Repeat rate below which already-bought items are removed from lists.
    """
    events = canonical_event_frame(events)
    purchases = (events[Columns.EVENT] == "purchase").to_numpy()
    chosen = events[purchases] if purchases.any() else events
    has_time = Columns.TIMESTAMP in events.columns
    if purchases.any():
        counted = "purchase days" if has_time else "purchase events"
    else:
        counted = "event days" if has_time else "events"
    n_pairs, repeated = _repeated_share(chosen, has_time)
    # with purchases and other events, "seen" is more than "bought": measure both
    mixed = bool(purchases.any() and not purchases.all())
    if mixed:
        n_any, returned = _repeated_share(events, has_time)
    else:
        n_any, returned = n_pairs, repeated
    back = returned / n_any if n_any else float("nan")
    rate = repeated / n_pairs if n_pairs else float("nan")
    what = "bought" if purchases.any() else "used"
    if n_pairs == 0:
        return RepeatProfile(
            rate,
            0,
            0,
            counted,
            threshold,
            False,
            "no events to measure re-buying: lists keep already-bought items",
        )
    days = "days" if has_time else "events"
    if mixed and back < threshold:
        reason = (
            f"shoppers practically never come back to an item: {back:.1%} of shopper-item "
            f"pairs had events (any type) on two or more {days} (below {threshold:.0%}), so "
            "lists leave out every item the shopper interacted with (viewed ones too)"
        )
        return RepeatProfile(
            rate, n_pairs, repeated, counted, threshold, True, reason, back, "seen"
        )
    if rate < threshold:
        reason = (
            f"shoppers rarely re-buy: {rate:.1%} of shopper-item pairs were {what} on two or "
            f"more {counted.split()[-1]} (below {threshold:.0%}), so lists leave out items the "
            f"shopper already bought (they come back to {back:.1%} of the items they "
            "interact with, so viewed items stay)"
        )
        return RepeatProfile(
            rate, n_pairs, repeated, counted, threshold, True, reason, back, "bought"
        )
    reason = (
        f"shoppers re-buy: {rate:.1%} of shopper-item pairs were {what} on two or more "
        f"{counted.split()[-1]} (at least {threshold:.0%}), so lists keep items the shopper "
        "already bought (reorders count as hits)"
    )
    return RepeatProfile(
        rate, n_pairs, repeated, counted, threshold, False, reason, back, "nothing"
    )


def bought_pairs(events: pd.DataFrame) -> pd.DataFrame:
    """Distinct (``user_id``, ``item_id``) string pairs with a purchase event in ``events``.

    Logs without purchase events count every event (as :func:`repeat_profile` does), so on a
    purchase-only log and on a log without purchases "bought" equals "seen".
    """
    events = canonical_event_frame(events)
    purchases = (events[Columns.EVENT] == "purchase").to_numpy()
    chosen = events[purchases] if purchases.any() else events
    return pd.DataFrame(
        {
            Columns.USER: chosen[Columns.USER].to_numpy(dtype=object),
            Columns.ITEM: chosen[Columns.ITEM].to_numpy(dtype=object),
        }
    ).drop_duplicates(ignore_index=True)


def last_purchases(events: pd.DataFrame) -> pd.DataFrame | None:
    """When each shopper last bought each item: ``user_id``, ``item_id``, ``timestamp`` (the
    latest purchase event of the pair; every event on a log without purchases, as
    :func:`bought_pairs` counts). ``None`` for a log without timestamps. Saved with a trained
    version so the list policy's "hide items bought in the last N days" works on every path
    (API, CLI, batch), not only where the whole log is at hand."""
    if Columns.TIMESTAMP not in events.columns or events[Columns.TIMESTAMP].isna().all():
        return None
    events = canonical_event_frame(events)
    purchases = (events[Columns.EVENT] == "purchase").to_numpy()
    chosen = events[purchases] if purchases.any() else events
    frame = pd.DataFrame(
        {
            Columns.USER: chosen[Columns.USER].to_numpy(dtype=object),
            Columns.ITEM: chosen[Columns.ITEM].to_numpy(dtype=object),
            Columns.TIMESTAMP: chosen[Columns.TIMESTAMP].to_numpy(),
        }
    )
    last = frame.groupby([Columns.USER, Columns.ITEM], sort=False)[Columns.TIMESTAMP].max()
    return last.reset_index()


@dataclass(frozen=True)
class BoughtRule:
    """What a served list does with the items the shopper already used, and why.

    Attributes
    ----------
    removes:
        What leaves the lists: ``"seen"`` (every item the shopper interacted with: the
        training data's return rate is below the threshold and removing was not the caller's
        own ``bought`` choice), ``"bought"`` (purchases before training ended; viewed,
        carted and favourited items stay) or ``"nothing"``; :class:`RepeatProfile`'s
        ``removes`` words.
    source:
        ``"request"`` (the caller asked), ``"settings"`` (the lab's settings, e.g. a tune
        result), ``"repeat rate"`` (:func:`repeat_profile` of the training data) or
        ``"unrecorded"`` (a version trained before the rule was stored: kept).
    why:
        One sentence.
    """

    removes: Removes
    source: str
    why: str

    @property
    def remove(self) -> bool:
        """Lists leave out already-bought items (with ``removes == "seen"`` viewed ones too)."""
        return self.removes != "nothing"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"remove": self.remove, **asdict(self)}


def bought_rule(
    asked: bool | None,
    settings_filter: bool | None = None,
    profile: dict[str, Any] | None = None,
) -> BoughtRule:
    """The already-bought rule of a list, in the order evaluation applies it.

    The caller's explicit choice wins; else the settings' ``filter_seen`` (a tune result);
    else the repeat rule of the training data (``profile``: :meth:`RepeatProfile.to_dict`);
    a version without a stored profile keeps the items. When removing is decided by the
    settings or the repeat rate and shoppers practically never come back to anything they
    interacted with (the profile's ``removes`` is ``"seen"``), viewed items leave too
    (``removes="seen"``); a caller's own choice stays as asked. Evaluation, tuning, the
    service and the app all take the list's repeats from here
    (:meth:`recsys_core.policy.ListPolicy.from_rule`).
    """
    never_return = profile is not None and profile.get("removes") == "seen"

    def removes(remove: bool, seen: bool = False) -> Removes:
        return ("seen" if seen else "bought") if remove else "nothing"

    if asked is not None:
        what = "leave out" if asked else "keep"
        return BoughtRule(removes(bool(asked)), "request", f"asked to {what} already-bought items")
    if settings_filter is not None:
        what = "leave out" if settings_filter else "keep"
        why = f"the lab's settings {what} already-bought items"
        if settings_filter and never_return:
            why += (
                "; shoppers practically never come back to an item they interacted with "
                "(the training data's return rate), so viewed items leave too"
            )
        return BoughtRule(removes(bool(settings_filter), never_return), "settings", why)
    if profile is not None:
        remove = bool(profile["filter_seen"])
        return BoughtRule(removes(remove, never_return), "repeat rate", str(profile["reason"]))
    return BoughtRule(
        "nothing",
        "unrecorded",
        "this version was trained before the repeat rule was stored: lists keep "
        "already-bought items (retrain to apply the rule)",
    )
