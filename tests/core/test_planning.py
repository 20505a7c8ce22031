"""The decision summary and the A/B test planner (issue 24, items 12 and 14)."""

from __future__ import annotations

import math

import pytest

from recsys_core.errors import ConfigError
from recsys_core.planning import decision_summary, metric_changes, plan_ab_test


def test_sample_size_matches_the_textbook_formula_for_two_proportions() -> None:
    """statsmodels' answer agrees with n = 2 ((z_a/2 + z_b) / h)^2 per arm worked by hand
    (the arcsine transform has variance 1/n, a difference of two arms 2/n), and with the
    classic pooled formula (about 14,750 per arm for 10 % -> 11 %)."""
    plan = plan_ab_test(baseline_conversion=0.10, relative_uplift=0.10, traffic_per_day=1000)
    h = 2 * math.asin(math.sqrt(0.11)) - 2 * math.asin(math.sqrt(0.10))
    by_hand = 2 * ((1.959964 + 0.841621) / h) ** 2
    assert plan.shoppers_per_arm == math.ceil(by_hand)
    assert 14_600 < plan.shoppers_per_arm < 14_900
    assert plan.total_shoppers == 2 * plan.shoppers_per_arm
    assert plan.days == math.ceil(plan.total_shoppers / 1000)


def test_more_power_or_a_smaller_uplift_needs_more_shoppers() -> None:
    base = plan_ab_test(baseline_conversion=0.05, relative_uplift=0.2, traffic_per_day=500)
    stronger = plan_ab_test(
        baseline_conversion=0.05, relative_uplift=0.2, traffic_per_day=500, power=0.9
    )
    smaller = plan_ab_test(baseline_conversion=0.05, relative_uplift=0.1, traffic_per_day=500)
    assert stronger.shoppers_per_arm > base.shoppers_per_arm
    assert smaller.shoppers_per_arm > 3 * base.shoppers_per_arm
    half = plan_ab_test(
        baseline_conversion=0.05, relative_uplift=0.2, traffic_per_day=500, share_in_test=0.5
    )
    assert half.days >= 2 * base.days - 1


def test_revenue_at_stake_and_the_export() -> None:
    plan = plan_ab_test(
        baseline_conversion=0.1,
        relative_uplift=0.1,
        traffic_per_day=1000,
        revenue_per_shopper=20.0,
    )
    assert plan.revenue_at_stake_per_day == pytest.approx(1000 * 20.0 * 0.1)
    assert plan.revenue_forgone_during_test == pytest.approx(plan.days * 500 * 2.0)
    frame = plan.to_frame()
    assert list(frame.columns) == ["field", "value"] and "shoppers_per_arm" in set(frame["field"])


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"baseline_conversion": 0.0}, "baseline conversion"),
        ({"relative_uplift": 0.0}, "uplift"),
        ({"traffic_per_day": 0}, "traffic"),
        ({"baseline_conversion": 0.9, "relative_uplift": 0.5}, "outside 0-100 %"),
    ],
)
def test_out_of_range_inputs_are_named(kwargs: dict[str, float], words: str) -> None:
    args = {"baseline_conversion": 0.1, "relative_uplift": 0.1, "traffic_per_day": 100.0}
    with pytest.raises(ConfigError, match=words):
        plan_ab_test(**{**args, **kwargs})


METRICS = {
    "k": 10,
    "models": {
        "popularity": {"ndcg@10": 0.10, "revenue@10": 10.0, "ci95": {"revenue@10": [8.0, 12.0]}},
        "ranker": {
            "ndcg@10": 0.30,
            "revenue@10": 15.0,
            "hit_rate@10": 0.4,
            "ci95": {"ndcg@10": [0.25, 0.35], "revenue@10": [13.0, 17.0]},
        },
        "als": {"ndcg@10": 0.28, "ci95": {"ndcg@10": [0.24, 0.31]}},
    },
}


def test_decision_ships_the_best_ndcg_with_its_uplift_over_popularity() -> None:
    summary = decision_summary(METRICS)
    assert summary is not None
    assert summary.ship == "ranker" and summary.runner_up == "als"
    assert summary.uplift == pytest.approx(0.5)
    assert summary.uplift_low == pytest.approx(13 / 12 - 1)
    assert summary.uplift_high == pytest.approx(17 / 8 - 1)
    assert summary.intervals_overlap is True
    assert decision_summary({"models": {}}) is None


def test_metric_changes_pair_the_numbers_of_two_versions() -> None:
    previous = {"models": {"ranker": {"ndcg@10": 0.2, "revenue@10": 14.0, "fit_seconds": 3}}}
    changes = dict((m, (a, b)) for m, a, b in metric_changes(METRICS, previous, "ranker"))
    assert changes == {"ndcg@10": (0.2, 0.3), "revenue@10": (14.0, 15.0)}
