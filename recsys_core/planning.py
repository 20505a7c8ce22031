"""What a product manager decides with: which model to ship, and how to test it online.

* :func:`decision_summary` reads a version's recorded headline metrics (the manifest's
  ``metrics``, the core of an evaluation's JSON) and says which model to ship, its money per
  shopper and its uplift over best sellers (popularity), with the 95 % intervals recorded.
* :func:`plan_ab_test` sizes an online A/B test from an offline uplift: shoppers per arm
  and days at a traffic level, for a chosen power and significance, with statsmodels' power
  analysis of two proportions (Cohen's *h* and ``NormalIndPower``), and the revenue at
  stake.

Offline uplifts are measured on one past test period and usually shrink online; the test
plan is what settles it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from recsys_core.errors import ConfigError
from recsys_core.models.registry import POPULARITY

#: The model every uplift is measured against.
BASELINE_MODEL = POPULARITY


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _bounds(entry: Mapping[str, Any], metric: str) -> tuple[float, float] | None:
    pair = (entry.get("ci95") or {}).get(metric)
    if not isinstance(pair, Sequence) or len(pair) != 2:
        return None
    low, high = _number(pair[0]), _number(pair[1])
    return None if low is None or high is None else (low, high)


@dataclass(frozen=True)
class DecisionSummary:
    """Which model to ship by the recorded metrics, and why, in figures.

    Attributes
    ----------
    ship:
        The model with the best ranking quality (NDCG@k), as the report's "In short".
    k:
        List length the metrics were measured at.
    ndcg, ndcg_ci:
        Its NDCG@k and 95 % interval (``None`` when not recorded).
    revenue_per_shopper, revenue_ci:
        Money per test shopper its lists held (revenue@k) and the interval.
    baseline_revenue, baseline_revenue_ci:
        The same for best sellers (popularity).
    uplift:
        ``revenue_per_shopper / baseline_revenue - 1`` (``None`` without both).
    uplift_low, uplift_high:
        Uplift bounds from the two models' intervals (the ship model's lower bound over the
        baseline's upper bound, and the other way round): conservative, not paired.
    hit_rate:
        Share of test shoppers who bought at least one suggestion.
    runner_up:
        The next best model by NDCG (``None`` with one model).
    intervals_overlap:
        Whether the ship model's and the runner-up's NDCG intervals overlap (a close call).
    """

    ship: str
    k: int
    ndcg: float | None
    ndcg_ci: tuple[float, float] | None
    revenue_per_shopper: float | None
    revenue_ci: tuple[float, float] | None
    baseline_revenue: float | None
    baseline_revenue_ci: tuple[float, float] | None
    uplift: float | None
    uplift_low: float | None
    uplift_high: float | None
    hit_rate: float | None
    runner_up: str | None
    intervals_overlap: bool | None


def decision_summary(metrics: Mapping[str, Any]) -> DecisionSummary | None:
    """The decision the recorded ``metrics`` support (``None`` when no model has NDCG)."""
    models: dict[str, dict[str, Any]] = dict(metrics.get("models") or {})
    k = int(metrics.get("k") or 10)
    ndcg_key, revenue_key = f"ndcg@{k}", f"revenue@{k}"
    scored = [(n, _number(e.get(ndcg_key))) for n, e in models.items()]
    ranked = sorted(((n, v) for n, v in scored if v is not None), key=lambda p: -p[1])
    if not ranked:
        return None
    ship = ranked[0][0]
    entry = models[ship]
    base = models.get(BASELINE_MODEL, {})
    revenue = _number(entry.get(revenue_key))
    baseline = _number(base.get(revenue_key))
    revenue_ci, baseline_ci = _bounds(entry, revenue_key), _bounds(base, revenue_key)
    uplift = revenue / baseline - 1 if revenue is not None and baseline else None
    low = high = None
    if revenue_ci and baseline_ci and baseline_ci[0] > 0 and baseline_ci[1] > 0:
        low = revenue_ci[0] / baseline_ci[1] - 1
        high = revenue_ci[1] / baseline_ci[0] - 1
    runner = ranked[1][0] if len(ranked) > 1 else None
    overlap = None
    if runner is not None:
        a, b = _bounds(entry, ndcg_key), _bounds(models[runner], ndcg_key)
        overlap = None if a is None or b is None else a[0] <= b[1] and b[0] <= a[1]
    return DecisionSummary(
        ship=ship,
        k=k,
        ndcg=ranked[0][1],
        ndcg_ci=_bounds(entry, ndcg_key),
        revenue_per_shopper=revenue,
        revenue_ci=revenue_ci,
        baseline_revenue=baseline,
        baseline_revenue_ci=baseline_ci,
        uplift=uplift,
        uplift_low=low,
        uplift_high=high,
        hit_rate=_number(entry.get(f"hit_rate@{k}")),
        runner_up=runner,
        intervals_overlap=overlap,
    )


def metric_changes(
    current: Mapping[str, Any], previous: Mapping[str, Any], model: str
) -> list[tuple[str, float, float]]:
    """``(metric, before, now)`` for every number ``model`` has in both recorded metrics."""
    now = dict((current.get("models") or {}).get(model) or {})
    before = dict((previous.get("models") or {}).get(model) or {})
    out = []
    for key, value in now.items():
        new, old = _number(value), _number(before.get(key))
        if new is not None and old is not None and key != "fit_seconds":
            out.append((key, old, new))
    return out


@dataclass(frozen=True)
class TestPlan:
    """An online A/B test sized from an offline uplift (two arms of equal size).

    Attributes
    ----------
    baseline_conversion:
        Share of shoppers in the control arm who convert (buy a recommended item) today.
    relative_uplift:
        Relative lift in that share the new model is expected to bring (0.05 = +5 %).
    expected_conversion:
        ``baseline_conversion * (1 + relative_uplift)``.
    effect_size:
        Cohen's *h* of the two proportions (statsmodels' ``proportion_effectsize``).
    alpha, power:
        Significance level (two-sided) and power the test is sized for.
    shoppers_per_arm, total_shoppers:
        Shoppers needed in each arm and in both.
    traffic_per_day, share_in_test:
        Shoppers a day, and the share of them sent into the test.
    days:
        Days the test runs to reach the sample size (rounded up to whole days).
    revenue_per_shopper:
        Money per shopper in the control arm over the test's horizon (``None``: unknown).
    revenue_at_stake_per_day:
        Extra money a day if the new model serves all traffic and the uplift holds.
    revenue_forgone_during_test:
        What the test costs if the uplift holds: the control arm's missing uplift over the
        test's days.
    """

    baseline_conversion: float
    relative_uplift: float
    expected_conversion: float
    effect_size: float
    alpha: float
    power: float
    shoppers_per_arm: int
    total_shoppers: int
    traffic_per_day: float
    share_in_test: float
    days: int
    revenue_per_shopper: float | None
    revenue_at_stake_per_day: float | None
    revenue_forgone_during_test: float | None

    def to_frame(self) -> pd.DataFrame:
        """The plan as ``field, value`` rows (for a CSV export)."""
        return pd.DataFrame([{"field": key, "value": value} for key, value in asdict(self).items()])


def plan_ab_test(
    *,
    baseline_conversion: float,
    relative_uplift: float,
    traffic_per_day: float,
    power: float = 0.8,
    alpha: float = 0.05,
    share_in_test: float = 1.0,
    revenue_per_shopper: float | None = None,
) -> TestPlan:
    """Size a two-arm A/B test on a conversion rate with statsmodels' power analysis.

    Parameters
    ----------
    baseline_conversion:
        Control arm's conversion rate, in (0, 1).
    relative_uplift:
        Expected relative lift (e.g. the offline uplift, often shrunk), not 0 and such that
        the expected rate stays in (0, 1).
    traffic_per_day:
        Shoppers a day (> 0).
    power, alpha:
        Chance of detecting the uplift if it is real, and the two-sided significance level.
    share_in_test:
        Share of the daily traffic in the test, in (0, 1].
    revenue_per_shopper:
        Control arm's money per shopper over the test's horizon; gives the revenue at stake.

    Raises
    ------
    ConfigError
        An input out of range (the message names it and its valid range).
    """
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    checks = (
        (0 < baseline_conversion < 1, "baseline conversion must be between 0 and 1"),
        (relative_uplift != 0, "the uplift must not be 0 (nothing to detect)"),
        (traffic_per_day > 0, "traffic per day must be above 0"),
        (0 < power < 1, "power must be between 0 and 1 (e.g. 0.8)"),
        (0 < alpha < 1, "significance must be between 0 and 1 (e.g. 0.05)"),
        (0 < share_in_test <= 1, "the share of traffic in the test must be in (0, 1]"),
    )
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"test plan: {message}")
    expected = baseline_conversion * (1 + relative_uplift)
    if not 0 < expected < 1:
        raise ConfigError(
            f"test plan: a {relative_uplift:+.0%} uplift on {baseline_conversion:.1%} gives "
            f"{expected:.1%}, outside 0-100 %; lower the uplift or the baseline"
        )
    effect = float(proportion_effectsize(expected, baseline_conversion))
    per_arm = NormalIndPower().solve_power(
        effect_size=abs(effect), alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
    )
    shoppers_per_arm = int(math.ceil(float(per_arm)))
    total = 2 * shoppers_per_arm
    days = int(math.ceil(total / (traffic_per_day * share_in_test)))
    at_stake = forgone = None
    if revenue_per_shopper is not None and math.isfinite(revenue_per_shopper):
        gain_per_shopper = revenue_per_shopper * relative_uplift
        at_stake = traffic_per_day * gain_per_shopper
        forgone = days * traffic_per_day * share_in_test / 2 * gain_per_shopper
    return TestPlan(
        baseline_conversion=baseline_conversion,
        relative_uplift=relative_uplift,
        expected_conversion=expected,
        effect_size=effect,
        alpha=alpha,
        power=power,
        shoppers_per_arm=shoppers_per_arm,
        total_shoppers=total,
        traffic_per_day=traffic_per_day,
        share_in_test=share_in_test,
        days=days,
        revenue_per_shopper=revenue_per_shopper,
        revenue_at_stake_per_day=at_stake,
        revenue_forgone_during_test=forgone,
    )
