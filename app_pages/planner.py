"""Test planner: size the online A/B test that settles an offline uplift.

Sample size and duration from the offline uplift, the baseline conversion and the traffic,
at a chosen power and significance (statsmodels' power analysis, in
:func:`recsys_core.planning.plan_ab_test`), with the revenue at stake; exportable as CSV.
"""

from __future__ import annotations

import streamlit as st

from recsys_core.business import currency_symbol, format_money
from recsys_core.planning import decision_summary, plan_ab_test
from ui.components import download_csv
from ui.errors import show_errors
from ui.resources import active_data, service

st.title("Test planner")

with show_errors():
    data = active_data()
    svc = service(data)
currency = currency_symbol(data.dataset.name)
summary = decision_summary(svc.lab.manifest.get("metrics") or {})
offline = summary.uplift if summary is not None and summary.uplift is not None else None

st.caption(
    "Offline figures come from one past period; an online test tells whether the uplift "
    "holds with real shoppers. Uplifts measured offline usually shrink online: plan for the "
    "smallest uplift worth shipping, not the best case."
)
if offline is not None and summary is not None:
    st.markdown(
        f"Offline, **{summary.ship}**'s lists held **{offline:+.0%}** more money per shopper "
        "than best sellers (the Decision page has the details)."
    )
else:
    st.info("No offline uplift recorded (it needs prices and recorded metrics): enter one.")

left, right = st.columns(2)
with left:
    uplift_pct = st.number_input(
        "Uplift to detect (% relative to today's conversion)",
        min_value=0.1,
        max_value=500.0,
        value=float(round(min(max((offline or 0.05) * 100 / 2, 1.0), 100.0), 1)),
        step=0.5,
        key="plan_uplift",
        help="Default: half the offline uplift (offline uplifts usually shrink online).",
    )
    baseline_pct = st.number_input(
        "Baseline conversion (% of shoppers who buy a recommended item)",
        min_value=0.01,
        max_value=99.0,
        value=3.0,
        step=0.5,
        key="plan_baseline",
    )
    traffic = st.number_input(
        "Shoppers per day", min_value=1, max_value=10_000_000, value=2_000, key="plan_traffic"
    )
with right:
    power = st.slider("Power", 0.5, 0.99, 0.8, 0.01, key="plan_power")
    alpha = st.select_slider(
        "Significance (two-sided)", [0.01, 0.025, 0.05, 0.1], value=0.05, key="plan_alpha"
    )
    share = st.slider("Share of traffic in the test", 0.1, 1.0, 1.0, 0.05, key="plan_share")
    default_money = (
        float(summary.baseline_revenue)
        if summary is not None and summary.baseline_revenue is not None
        else 0.0
    )
    money = st.number_input(
        f"Money per shopper today ({currency or 'currency not given'})",
        min_value=0.0,
        value=round(default_money, 2),
        key="plan_money",
        help="Default: best sellers' money per shopper offline. 0: no revenue figures.",
    )

with show_errors(stop=False):
    plan = plan_ab_test(
        baseline_conversion=baseline_pct / 100,
        relative_uplift=uplift_pct / 100,
        traffic_per_day=float(traffic),
        power=power,
        alpha=float(alpha),
        share_in_test=share,
        revenue_per_shopper=money or None,
    )
    cols = st.columns(4)
    cols[0].metric("Shoppers per arm", f"{plan.shoppers_per_arm:,}")
    cols[1].metric("Shoppers in all", f"{plan.total_shoppers:,}")
    cols[2].metric("Days to run", f"{plan.days:,}")
    cols[3].metric(
        "Extra money a day if it holds",
        format_money(plan.revenue_at_stake_per_day, currency)
        if plan.revenue_at_stake_per_day is not None
        else "—",
    )
    st.markdown(
        f"To detect a change from **{plan.baseline_conversion:.2%}** to "
        f"**{plan.expected_conversion:.2%}** conversion with {plan.power:.0%} power at "
        f"{plan.alpha:.0%} significance, the test needs **{plan.shoppers_per_arm:,}** shoppers "
        f"in each of two arms: **{plan.days:,} days** at {plan.traffic_per_day:,.0f} shoppers "
        f"a day with {plan.share_in_test:.0%} of them in the test."
        + (
            f" If the uplift is real, the control arm forgoes about "
            f"{format_money(plan.revenue_forgone_during_test, currency)} during the test."
            if plan.revenue_forgone_during_test is not None
            else ""
        )
    )
    if plan.days > 56:
        st.warning(
            "Longer than 8 weeks: seasonality and returning shoppers blur the result. Test a "
            "bigger change, send more traffic, or accept less power."
        )
    download_csv(plan.to_frame(), f"ab-test-plan-{data.dataset.name}", "plan_export")
