"""Decision: what a product manager acts on, live from the recorded metrics.

The report's "In short" (which model to ship and why), the money per shopper and the uplift
over best sellers with their intervals, what changed since the previous version, the metric
history, and the forwardable forms: a link to this page and the PDF report. The recorded
figures are the models' own lists: with merchandising rules served, the page says so and
estimates the money per shopper with the rules applied (:mod:`ui.offline_money`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from recsys_core.business import currency_symbol, format_money
from recsys_core.merchandising import MerchandisingRule
from recsys_core.merchandising_store import RuleStore
from recsys_core.planning import decision_summary, metric_changes
from recsys_core.reporting import ReportData, pdf_bytes
from recsys_core.reporting.formatting import metric_name
from recsys_core.reporting.shop_sections import MODEL_WORDS, plain_summary_section
from ui import auth, charts, offline_money, state
from ui import operations as ops
from ui.components import table
from ui.errors import show_errors
from ui.resources import active_data, service

st.title("Decision")

with show_errors():
    data = active_data()
    svc = service(data)
lab = svc.lab
metrics = dict(lab.manifest.get("metrics") or {})
currency = currency_symbol(data.dataset.name)
state.share_view()  # the link below reopens this page on this dataset

if not (metrics.get("models") or {}):
    st.info(
        "No metrics recorded for this version yet: they are recorded when the models are "
        "trained (the purchase model's once its background training ends), or from the "
        "Model lab's evaluation."
    )
    st.stop()

evaluation = {**metrics, "dataset": data.dataset.name}
report = ReportData.from_evaluation(evaluation)

# ------------------------------------------------------------------ in short
st.subheader("In short")
section = plain_summary_section(report)
if section is not None:
    for block in section.blocks:
        text = getattr(block, "text", None)
        if text is None:
            continue
        tone = getattr(block, "tone", "normal")
        if tone == "ok":
            st.success(text, icon=":material/check_circle:")
        elif tone == "warning":
            st.warning(text)
        else:
            st.markdown(text)

summary = decision_summary(metrics)
if summary is not None:
    cols = st.columns(3)
    cols[0].metric(
        "Model to ship",
        summary.ship,
        help=f"{MODEL_WORDS.get(summary.ship, summary.ship)}: the best ranking quality "
        f"(NDCG@{summary.k}) on the held-out period.",
    )
    if summary.revenue_per_shopper is not None:
        cols[1].metric(
            f"Money per shopper ({currency or 'currency not given'})",
            format_money(summary.revenue_per_shopper, currency),
            help="What the suggested items that shoppers went on to buy were worth, per test "
            "shopper, over the held-out period.",
        )
        if summary.revenue_ci is not None:
            low, high = summary.revenue_ci
            cols[1].caption(
                f"95 % interval {format_money(low, currency)} to {format_money(high, currency)}"
            )
    else:
        cols[1].metric("Money per shopper", "—", help="This log has no prices.")
    if summary.uplift is not None:
        cols[2].metric(
            "Uplift over best sellers",
            f"{summary.uplift:+.0%}",
            help="Money per shopper against the popularity model's lists.",
        )
        if summary.uplift_low is not None and summary.uplift_high is not None:
            cols[2].caption(
                f"between {summary.uplift_low:+.0%} and {summary.uplift_high:+.0%} "
                "(from the two models' 95 % intervals, conservative)"
            )
    else:
        cols[2].metric("Uplift over best sellers", "—", help="Needs prices and popularity.")
    st.page_link(
        "app_pages/planner.py",
        label="Plan the online A/B test of this uplift",
        icon=":material/biotech:",
    )

# ------------------------------------------------------------------ merchandising rules
served = None
served_rules: tuple[MerchandisingRule, ...] = ()
with show_errors(stop=False):
    served = RuleStore(lab.dataset).active()
    served_rules = served.rules if served is not None else ()
if summary is not None and not served_rules:
    st.caption("No merchandising rules are served: these figures are the lists shoppers get.")
elif summary is not None and served is not None:
    st.warning(
        "The money, uplift, changes, history and PDF on this page are the models' own lists: "
        f"they **exclude the merchandising rules served now** (version {served.version}, "
        f"{len(served_rules)} rule{'s' if len(served_rules) != 1 else ''}).",
        icon=":material/storefront:",
    )
    if summary.revenue_per_shopper is not None:
        ready = offline_money.window_ready(svc, summary.ship, offline_money.recorded_k(svc))
        if ready or st.button(
            "Estimate the money per shopper with the rules served now",
            key="decision_rules",
            help=f"Recomputes the held-out money per shopper of {summary.ship} with the rules "
            f"applied, on a sample of {offline_money.sample_size():,} test shoppers (the "
            "first time fits the model on the held-out window's training part).",
        ):
            with show_errors(stop=False):
                effect = offline_money.effect(data, svc, summary.ship, (), served_rules)
                cols = st.columns(3)
                cols[0].metric(
                    f"Money per shopper with the rules ({currency or 'currency not given'})",
                    format_money(effect.after, currency),
                    delta=f"{effect.relative_change:+.1%} against no rules"
                    if effect.change and np.isfinite(effect.relative_change)
                    else None,
                )
                low, high = effect.change_ci
                st.caption(
                    f"{summary.ship}, held-out period, {effect.shoppers:,} of "
                    f"{effect.test_shoppers:,} test shoppers: "
                    f"{format_money(effect.before, currency)} without the rules, "
                    f"{format_money(effect.after, currency)} with them (change "
                    f"{format_money(effect.change, currency)}, 95 % interval "
                    f"{format_money(low, currency)} to {format_money(high, currency)}); rules "
                    f"as in force on {effect.today.isoformat()}."
                )

# ------------------------------------------------------------------ what changed
st.subheader("What changed since the previous version")
with show_errors(stop=False):
    versions = ops.dataset_versions(lab.dataset)
    names = [v["version"] for v in versions]
    older = versions[names.index(lab.version) + 1 :] if lab.version in names else []
    previous = next((v for v in older if (v.get("metrics") or {}).get("models")), None)
    if previous is None or summary is None:
        st.caption("No earlier version with recorded metrics: nothing to compare yet.")
    else:
        changes = metric_changes(metrics, previous["metrics"], summary.ship)
        st.caption(f"Version {lab.version} against {previous['version']}, model {summary.ship}.")
        if changes:
            rows = [
                {
                    "metric": metric_name(key, currency),
                    "before": before,
                    "now": now,
                    "change": f"{now / before - 1:+.1%}" if before else "—",
                }
                for key, before, now in changes
                if key.split("@")[0] in ("ndcg", "hit_rate", "revenue", "coverage", "recall")
            ]
            table(pd.DataFrame(rows), name=f"changes-{lab.version}", key="decision_changes")
        else:
            st.caption(f"{summary.ship} has no recorded metrics in the previous version.")

    # ------------------------------------------------------------------ history
    st.subheader("Metric history")
    history = ops.metric_history(list(reversed(versions)))
    if history.empty:
        st.caption("No recorded metrics yet.")
    else:
        st.plotly_chart(charts.metric_history_figure(history, currency), key="decision_history")

# ------------------------------------------------------------------ forward it
st.subheader("Forward it")
link_col, pdf_col = st.columns(2)
with link_col:
    st.markdown("**Link to this page** (opens this dataset's decision; log-in needed)")
    try:
        url = str(st.context.url)
    except Exception:  # noqa: BLE001 - no request (tests): the relative path still works
        url = "/decision"
    dataset_param = st.query_params.get(state.URL_DATASET)
    st.code(url.split("?")[0] + (f"?dataset={dataset_param}" if dataset_param else ""))
with pdf_col:
    st.markdown("**The report as a PDF** (the same 'In short' first, then the details)")
    if st.button("Prepare the PDF", key="decision_pdf", icon=":material/picture_as_pdf:"):
        with st.spinner("Writing the PDF ..."), show_errors(stop=False):
            st.session_state["decision_pdf_bytes"] = (lab.version, pdf_bytes(report))
            auth.record("export", {"report": data.dataset.name, "from": "decision"})
    ready = st.session_state.get("decision_pdf_bytes")
    if ready is not None and ready[0] == lab.version:
        st.download_button(
            "Download the PDF",
            ready[1],
            file_name=f"decision-{data.dataset.name}-{lab.version}.pdf",
            mime="application/pdf",
            key="decision_pdf_download",
            on_click="ignore",
            icon=":material/download:",
        )
