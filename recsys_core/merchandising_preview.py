"""Preview a draft merchandising rule set before saving it: one shopper's list and the money
on it as served now and under the draft.

The lists come from the service (:meth:`~recsys_core.serving.service.RecommendationService.
recommend_frame`, the Shopper page's call) under the served policy and under the same
policy with the draft's rules instead of the active ones; the money is the Shopper page's
offline figure, the list's expected revenue (Σ overall probability x price,
:func:`recsys_core.business.with_prices` / :func:`~recsys_core.business.expected_revenue`),
and over a sample of shoppers the bulk export's same column
(:func:`~recsys_core.business.top_k_for_shoppers`), never a second formula. Notes say why a
rule does nothing for the shopper (outside its dates or segment, a pin the rest of the
policy refuses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from recsys_core.business import expected_revenue, top_k_for_shoppers, with_prices
from recsys_core.merchandising import MerchandisingRule, rules_for_shopper, today_utc
from recsys_core.policy import LAB_RULE, ListPolicy, PolicyChoice

__all__ = ["RulePreview", "preview_rules", "revenue_change"]

#: Columns of the preview lists.
LIST_COLUMNS = ["rank", "item_id", "title", "score", "probability", "price", "expected_revenue"]


@dataclass
class RulePreview:
    """One shopper's list as served now (``before``) and under a draft (``after``).

    ``revenue_before``/``revenue_after`` are the lists' expected revenue (NaN where the lab
    has no purchase model or no prices); ``sample`` holds the mean expected revenue per
    shopper over a sample of shoppers (``shoppers``, ``before``, ``after``) when asked.
    """

    user_id: str
    model: str
    k: int
    before: pd.DataFrame
    after: pd.DataFrame
    revenue_before: float
    revenue_after: float
    policy_before: ListPolicy
    policy_after: ListPolicy
    notes: list[str] = field(default_factory=list)
    sample: dict[str, float] | None = None

    def side_by_side(self) -> pd.DataFrame:
        """One row per position: the item now and with the draft (id and title)."""
        n = max(len(self.before), len(self.after))

        def column(frame: pd.DataFrame, name: str) -> list[str]:
            values = frame[name].tolist()  # the service's ids and titles: text already
            return values + [""] * (n - len(values))

        return pd.DataFrame(
            {
                "rank": range(1, n + 1),
                "item now": column(self.before, "item_id"),
                "title now": column(self.before, "title"),
                "item with the draft": column(self.after, "item_id"),
                "title with the draft": column(self.after, "title"),
            }
        )

    @property
    def changed(self) -> bool:
        """Whether the draft changes this shopper's list."""
        return self.before["item_id"].tolist() != self.after["item_id"].tolist()


def _priced(frame: pd.DataFrame, catalog: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    priced = with_prices(frame, catalog)
    return priced[[c for c in LIST_COLUMNS if c in priced.columns]], expected_revenue(priced)


def preview_rules(
    service: Any,
    user_id: str,
    k: int,
    model: str,
    draft: Sequence[MerchandisingRule],
    *,
    policy: PolicyChoice = LAB_RULE,
    sample_users: Sequence[str] = (),
) -> RulePreview:
    """The shopper's top ``k`` by ``model`` as served now and under ``draft`` (the whole
    rule set the draft would serve), with the money on each.

    Parameters
    ----------
    service:
        A :class:`~recsys_core.serving.service.RecommendationService`.
    policy:
        The repeat rule and filters (default: the lab's rule); its served rules make
        ``before``, ``draft`` replaces them in ``after``.
    sample_users:
        Shoppers over whom the mean expected revenue per shopper is compared too.
    """
    user_id = str(user_id)
    before_policy: ListPolicy = service.resolve_policy(policy)
    after_policy = replace(before_policy, rules=tuple(draft), merchandising="draft")
    catalog = service.lab.catalog
    lists = []
    for chosen in (before_policy, after_policy):
        frame = service.recommend_frame(user_id, k, model, policy=chosen)[0]
        lists.append(_priced(frame, catalog))
    (before, revenue_before), (after, revenue_after) = lists
    preview = RulePreview(
        user_id=user_id,
        model=model,
        k=k,
        before=before,
        after=after,
        revenue_before=revenue_before,
        revenue_after=revenue_after,
        policy_before=before_policy,
        policy_after=after_policy,
        notes=_notes(service, user_id, draft, after, k),
    )
    if sample_users:
        means = []
        for chosen in (before_policy, after_policy):
            frame = top_k_for_shoppers(service, list(sample_users), k, model, chosen)
            if "expected_revenue" not in frame.columns:
                means.append(float("nan"))
                continue
            per_shopper = frame.groupby("user_id")["expected_revenue"].sum(min_count=1)
            means.append(float(per_shopper.mean()))
        preview.sample = {
            "shoppers": float(len(sample_users)),
            "before": means[0],
            "after": means[1],
        }
    return preview


def _notes(
    service: Any, user_id: str, draft: Sequence[MerchandisingRule], after: pd.DataFrame, k: int
) -> list[str]:
    """Why each draft rule that does nothing visible for this shopper does nothing."""
    context = service.list_context()
    today = context.today or today_utc()
    applies = set(map(id, rules_for_shopper(draft, user_id, today, context.segment_table())))
    shown = set(after["item_id"])
    notes = []
    for n, rule in enumerate(draft, start=1):
        label = f"rule {n} ({rule.describe()})"
        if not rule.active_on(today):
            notes.append(f"{label} does nothing today ({today.isoformat()}): outside its dates")
        elif id(rule) not in applies:
            notes.append(f"{label} does not apply: the shopper is not in segment {rule.segment}")
        elif rule.action == "pin" and rule.position is not None and rule.position > k:
            notes.append(f"{label} does nothing: position {rule.position} is beyond the {k} items")
        elif rule.action == "pin" and rule.item_ids:
            missing = [i for i in rule.item_ids if i not in shown]
            if missing:
                notes.append(
                    f"{label}: {', '.join(missing)} not pinned — the list policy leaves it "
                    "out for this shopper (already bought or seen, blocked, filtered, or not "
                    "in the catalog)"
                )
    return notes


def revenue_change(preview: RulePreview) -> float:
    """After minus before (NaN when either is unknown)."""
    if not (np.isfinite(preview.revenue_before) and np.isfinite(preview.revenue_after)):
        return float("nan")
    return preview.revenue_after - preview.revenue_before
