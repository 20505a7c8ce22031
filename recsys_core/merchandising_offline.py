"""The offline money figure under merchandising rules: evaluate's "money per shopper"
(``revenue@k``, :func:`recsys_core.metrics.per_user_revenue`: what the listed items that each
test shopper went on to buy were worth) recomputed on the recorded test window with a rule
set applied through the one list policy (:func:`recsys_core.policy.recommend_with_policy`).

Two steps, so that a product manager's preview stays quick:

1. :func:`fit_offline_window` runs :func:`recsys_core.evaluation.evaluate` for one model with
   the version's recorded settings (the split the recorded figures were measured on: the
   last 30 days held out; the version's weights, model settings and seed) and keeps the
   model fitted on the training part, the test purchases and evaluation's own list policy.
   Its ``revenue_all`` is the recorded figure over every test shopper (the models' own
   lists, no rules). This is the slow step (a fit on the training part): cache the window
   (one per version, model and ``k``).
2. :func:`offline_effect` lists a seeded sample of the test shoppers (``sample_size``,
   stated in the result) under two rule sets (e.g. the rules served now and a draft) and
   compares the mean money per shopper, with a paired bootstrap 95 % interval of the
   change. Rules are checked on ``today`` (default: today, UTC): a dated rule counts when
   it is in force today; a segment rule uses the shoppers' segments at the window's cutoff
   (:func:`recsys_core.segments.shopper_segments`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Final

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.schema import Dataset
from recsys_core.errors import DataValidationError
from recsys_core.evaluation import EvaluationConfig, evaluate
from recsys_core.evaluation.protocol import fold_splits, seen_pairs, test_purchase_revenue
from recsys_core.merchandising import MerchandisingRule, today_utc
from recsys_core.metrics import per_user_revenue
from recsys_core.models import MODEL_NAMES
from recsys_core.policy import ListContext, ListPolicy, recommend_with_policy
from recsys_core.repeats import bought_pairs
from recsys_core.segments import shopper_countries, shopper_segments

__all__ = [
    "DEFAULT_SAMPLE",
    "OfflineEffect",
    "OfflineWindow",
    "fit_offline_window",
    "offline_effect",
]

#: Test shoppers listed under each rule set by default (a seeded sample; all when fewer).
DEFAULT_SAMPLE: Final = 500
#: Bootstrap resamples of the paired interval of the change.
RESAMPLES: Final = 1000

Progress = Callable[[str, float], None]


@dataclass
class OfflineWindow:
    """The recorded test window with one model fitted on its training part.

    Attributes
    ----------
    model_name, k, cutoff:
        The model, the list length and the window's first instant.
    model:
        The model fitted on the window's training part (evaluation's own fit).
    policy:
        Evaluation's list policy of this window (its repeat rule), without rules.
    context:
        What the policy needs (bought pairs, catalog, segments at the cutoff).
    purchases:
        Test-period purchases (``user_id, item_id, revenue``).
    test_shoppers:
        Every test shopper (sorted).
    own_lists:
        Evaluation's lists of every test shopper (the models' own, no rules).
    revenue_all:
        ``revenue@k`` over every test shopper: the recorded money per shopper.
    """

    model_name: str
    k: int
    cutoff: str
    model: Any
    policy: ListPolicy
    context: ListContext
    purchases: pd.DataFrame
    test_shoppers: list[str]
    own_lists: pd.DataFrame
    revenue_all: float


@dataclass(frozen=True)
class OfflineEffect:
    """Money per shopper on a sample of the window's test shoppers under two rule sets.

    ``before``/``after`` are means over the ``shoppers`` sampled of ``test_shoppers``;
    ``change_ci`` the paired bootstrap 95 % interval of ``after - before``; ``recorded``
    the figure over every test shopper without rules (the Decision page's).
    """

    model: str
    k: int
    shoppers: int
    test_shoppers: int
    recorded: float
    before: float
    after: float
    change_ci: tuple[float, float]
    changed_lists: int
    today: date

    @property
    def change(self) -> float:
        """``after - before`` (money per shopper)."""
        return self.after - self.before

    @property
    def relative_change(self) -> float:
        """``after / before - 1`` (NaN when ``before`` is 0)."""
        return self.after / self.before - 1 if self.before else float("nan")


def _evaluation_config(model: str, k: int, train_config: Mapping[str, Any]) -> EvaluationConfig:
    """The settings the version's figures were recorded with (as training records them)."""
    params = train_config.get("model_params") or {}
    return EvaluationConfig(
        models=[model],
        k=k,
        weights=train_config.get("weights"),
        model_params={n: p for n, p in params.items() if n in MODEL_NAMES},
        seed=int(train_config.get("seed", 42)),
        new_items_variant=False,
        bootstrap_resamples=0,  # no interval of the recorded figure is needed here
        choose_on_validation=False,  # only the ranker's ratio reads that choice
    )


def fit_offline_window(
    dataset: Dataset,
    model: str,
    *,
    train_config: Mapping[str, Any] | None = None,
    k: int = 10,
    progress: Progress | None = None,
) -> OfflineWindow:
    """Fit ``model`` on the recorded window's training part (see the module docstring).

    ``train_config`` is the version's ``manifest["config"]`` (weights, model settings, seed).

    Raises
    ------
    DataValidationError
        The log leaves no test shoppers, has no prices, or ``model`` cannot run on it.
    """
    config = _evaluation_config(model, k, train_config or {})
    result = evaluate(dataset, config, progress=progress)
    if model not in result.models:
        why = result.skipped.get(model, "it did not run")
        raise DataValidationError(f"no offline money figure for {model}: {why}")
    fitted = result.models[model]
    splits, _ = fold_splits(dataset.events, config)
    split = splits[-1]
    purchases = test_purchase_revenue(split.test)
    if purchases is None or f"revenue@{k}" not in fitted.metrics:
        raise DataValidationError(
            "no offline money figure: the log has no prices (add a price column to measure "
            "what the listed items were worth)"
        )
    seen = seen_pairs(split.train)
    bought = bought_pairs(split.train)
    countries = shopper_countries(dataset.name)
    train = split.train
    cutoff = split.cutoff
    context = ListContext(
        bought=None if len(bought) == len(seen) else bought,  # as evaluation's own context
        catalog=dataset.catalog,
        segments=lambda: shopper_segments(train, cutoff, countries=countries),
    )
    return OfflineWindow(
        model_name=model,
        k=k,
        cutoff=str(split.cutoff),
        model=fitted.model,
        policy=ListPolicy.from_dict(result.split["list_policy"]),
        context=context,
        purchases=purchases,
        test_shoppers=[str(u) for u in fitted.per_user.index],
        own_lists=fitted.recommendations,
        revenue_all=float(fitted.metrics[f"revenue@{k}"]),
    )


def sample_shoppers(window: OfflineWindow, size: int | None, seed: int = 0) -> list[str]:
    """A seeded sample of ``size`` test shoppers (every one when ``size`` is None or more)."""
    shoppers = window.test_shoppers
    if size is None or size >= len(shoppers):
        return list(shoppers)
    rng = np.random.default_rng(seed)
    return sorted(shoppers[i] for i in rng.choice(len(shoppers), size=size, replace=False))


def _lists(
    window: OfflineWindow, shoppers: list[str], rules: Sequence[MerchandisingRule], today: date
) -> pd.DataFrame:
    if not rules:  # the models' own lists: evaluation's, already made
        own = window.own_lists
        return own[own[Columns.USER].isin(shoppers).to_numpy()]
    policy = replace(window.policy, rules=tuple(rules), merchandising="offline")
    context = replace(window.context, today=today)
    return recommend_with_policy(window.model, shoppers, window.k, policy, context)


def offline_effect(
    window: OfflineWindow,
    before: Sequence[MerchandisingRule],
    after: Sequence[MerchandisingRule],
    *,
    sample_size: int | None = DEFAULT_SAMPLE,
    today: date | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> OfflineEffect:
    """Money per shopper on a sample of the window's test shoppers with the ``before`` and
    the ``after`` rule set applied (each the whole rule set; empty: the models' own lists).
    """
    today = today or today_utc()
    shoppers = sample_shoppers(window, sample_size, seed)
    index = pd.Index(shoppers, name=Columns.USER)
    revenue: list[np.ndarray] = []
    items: list[dict[str, tuple[str, ...]]] = []
    for step, rules in enumerate((before, after)):
        if progress is not None:
            which = ("before", "after")[step]
            progress(f"listing {len(shoppers):,} test shoppers ({which})", step / 2)
        lists = _lists(window, shoppers, rules, today)
        revenue.append(
            per_user_revenue(lists, window.purchases, window.k, users=index).to_numpy(float)
        )
        top = lists[lists[Columns.RANK] <= window.k]
        items.append(top.groupby(Columns.USER, sort=False)[Columns.ITEM].agg(tuple).to_dict())
    if progress is not None:
        progress("done", 1.0)
    diff = revenue[1] - revenue[0]
    low, high = _paired_interval(diff, seed)
    changed = sum(items[0].get(u, ()) != items[1].get(u, ()) for u in shoppers)
    return OfflineEffect(
        model=window.model_name,
        k=window.k,
        shoppers=len(shoppers),
        test_shoppers=len(window.test_shoppers),
        recorded=window.revenue_all,
        before=float(revenue[0].mean()) if len(diff) else float("nan"),
        after=float(revenue[1].mean()) if len(diff) else float("nan"),
        change_ci=(low, high),
        changed_lists=changed,
        today=today,
    )


def _paired_interval(diff: np.ndarray, seed: int) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of the mean of per-shopper differences."""
    if not len(diff):
        return float("nan"), float("nan")
    if not diff.any():
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(RESAMPLES, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)
