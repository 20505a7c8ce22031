"""Merchandising: pin, boost or block items or categories, per segment and dates.

The rules served now, a draft to edit, its preview on one shopper's list and on the money
(before / after), its effect on the offline money per shopper (the Decision page's figure,
on a sample of test shoppers), Save (analysts and admins; viewers see the page read-only)
and the version history. Rules, the previews and the store live in ``recsys_core``
(merchandising, merchandising_preview, merchandising_offline, merchandising_store); this
page only draws them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from recsys_core.business import currency_symbol, format_money
from recsys_core.merchandising import MerchandisingRule, rules_frame, segment_choices
from recsys_core.merchandising_preview import preview_rules, revenue_change
from recsys_core.merchandising_store import SAVE_ROLE, RuleStore, parse_rules
from recsys_core.models.registry import fallback_chain, recommendable_models
from recsys_core.policy import LAB_RULE
from recsys_core.security.users import role_allows
from ui import auth, offline_money
from ui.components import shopper_picker, table
from ui.errors import show_errors
from ui.resources import active_data, service

st.title("Merchandising")

with show_errors():
    data = active_data()
    svc = service(data)
    store = RuleStore(svc.lab.dataset)
    active = store.active()
user = auth.current_user() if auth.login_enabled() else None
role = user.role if user is not None else "admin"  # local single-user mode: may do anything
can_edit = role_allows(role, SAVE_ROLE)
currency = currency_symbol(data.dataset.name)

st.caption(
    "Pin puts an item at a position (if the list policy allows it for the shopper: an item "
    "already bought or seen and left out, or blocked, is not pinned); boost multiplies an "
    "item's rank-based score by 1 + weight before the top-k cut (weight 1: about twice as "
    "high in the list); block never shows it. Rules can target products or categories, one "
    "shopper segment and a date window. Every list the lab serves (pages, API, CLI, batch, "
    "exports) follows the saved rules."
)

st.subheader("Rules served now")
if active is None or not active.rules:
    st.info("No merchandising rules are served: lists are the models' own.")
else:
    st.markdown(
        f"Version **{active.version}**, saved by {active.saved_by} on "
        f"{active.saved_at:%Y-%m-%d %H:%M} UTC."
    )
    table(rules_frame(active.rules), name="merchandising_rules", key="merch_active")

# ------------------------------------------------------------------ the draft
DRAFT = f"merch_draft_{data.key}"
if DRAFT not in st.session_state:
    st.session_state[DRAFT] = [r.to_dict() for r in (active.rules if active else ())]
draft_rows: list[dict[str, Any]] = st.session_state[DRAFT]

st.subheader("Draft")
if not can_edit:
    st.info(f"Read-only: changing the rules needs the {SAVE_ROLE} or admin role.")
draft: tuple[MerchandisingRule, ...] = ()
with show_errors(stop=False):
    draft = parse_rules(draft_rows, "the draft")
if draft_rows:
    table(rules_frame(draft), name="merchandising_draft", key="merch_draft", download=False)
else:
    st.caption("The draft has no rules (saving it turns merchandising off).")

if can_edit:
    catalog = svc.lab.catalog
    titles = dict(zip(catalog["item_id"].astype(str), catalog["title"].astype(str), strict=True))
    categories = (
        sorted(catalog["category"].dropna().astype(str).unique())
        if "category" in catalog.columns
        else []
    )
    segments = segment_choices(svc.list_context().segment_table())
    with st.form("merch_add", clear_on_submit=True):
        st.markdown("**Add a rule**")
        cols = st.columns(3)
        action = cols[0].radio(
            "Action", ["pin", "boost", "block"], horizontal=True, key="merch_action"
        )
        position = cols[1].number_input("Position (pin)", 1, 100, 1, key="merch_position")
        weight = cols[2].number_input(
            "Weight (boost)", -0.9, 10.0, 1.0, 0.1, key="merch_weight",
            help="The rank-based score is multiplied by 1 + weight (negative: demote).",
        )  # fmt: skip
        items = st.multiselect(
            "Products", list(titles), key="merch_items",
            format_func=lambda i: f"{titles.get(i, i)} ({i})",
        )  # fmt: skip
        chosen_categories = st.multiselect("Categories", categories, key="merch_categories")
        segment = st.selectbox(
            "Segment", ["every shopper", *segments], key="merch_segment",
            help="Segments come from the purchase model's shopper figures at training time.",
        )  # fmt: skip
        cols = st.columns(3)
        dated = cols[0].checkbox("Only between dates", key="merch_dated")
        start = cols[1].date_input("From", date.today(), key="merch_start")
        end = cols[2].date_input("Until", date.today() + timedelta(days=14), key="merch_end")
        note = st.text_input("Why (shown in the rules table)", key="merch_note")
        if st.form_submit_button("Add to the draft"):
            row = {
                "action": action,
                "item_ids": items,
                "categories": chosen_categories,
                "position": int(position) if action == "pin" else None,
                "weight": float(weight) if action == "boost" else 0.0,
                "segment": None if segment == "every shopper" else segment,
                "start": start.isoformat() if dated and isinstance(start, date) else None,
                "end": end.isoformat() if dated and isinstance(end, date) else None,
                "note": note,
            }
            with show_errors(stop=False):
                parse_rules([row], "the new rule")
                draft_rows.append(row)
                st.rerun()
    cols = st.columns(2)
    if draft_rows:
        drop = cols[0].selectbox("Rule to remove", range(1, len(draft_rows) + 1), key="merch_drop")
        if cols[0].button("Remove it", key="merch_remove"):
            draft_rows.pop(int(drop) - 1)
            st.rerun()
    if cols[1].button("Start again from the served rules", key="merch_reset"):
        st.session_state[DRAFT] = [r.to_dict() for r in (active.rules if active else ())]
        st.rerun()

# ------------------------------------------------------------------ the preview
st.subheader("Preview on a shopper")
shopper = shopper_picker(data, key="merch_shopper")
cols = st.columns(2)
models = [m for m in fallback_chain() if m in svc.lab.models]  # the served model first
models += [m for m in recommendable_models() if m in svc.lab.models and m not in models]
model = cols[0].selectbox("Model", models, key="merch_model")
k = int(cols[1].number_input("Items (k)", 1, 50, 10, key="merch_k"))
if shopper is not None and model is not None:
    with show_errors(stop=False):
        preview = preview_rules(svc, shopper, k, model, parse_rules(draft_rows), policy=LAB_RULE)
        priced = np.isfinite(preview.revenue_before) or np.isfinite(preview.revenue_after)
        change = revenue_change(preview)
        cols = st.columns(2)
        cols[0].metric(
            "Expected revenue now",
            format_money(preview.revenue_before, currency) if priced else "—",
        )
        cols[1].metric(
            "Expected revenue with the draft",
            format_money(preview.revenue_after, currency) if priced else "—",
            delta=format_money(change, currency) if np.isfinite(change) and change else None,
        )
        if not priced:
            st.caption("No money figure: it needs the purchase model and prices.")
        st.markdown(
            f"**Now** ({preview.policy_before.name}) and **with the draft**"
            + ("" if preview.changed else " (no change for this shopper)")
        )
        table(preview.side_by_side(), name="merchandising_preview", key="merch_preview")
        for line in preview.notes:
            st.caption(line)

# ------------------------------------------------------------------ the offline money
st.subheader("Effect on the offline money per shopper")
offline_k = offline_money.recorded_k(svc)
if model is not None:
    st.caption(
        f"The evaluation's money per shopper for {model} (what the {offline_k} listed items "
        "that test shoppers went on to buy were worth, over the recorded test window: the "
        "Decision page's figure) recomputed with the rules served now and with the draft, "
        f"on the same {offline_money.sample_size():,} test shoppers (a seeded sample); rules "
        "count as in force today. The first estimate fits the model on the window's training "
        "part once (seconds; a minute or more for the purchase model); later drafts reuse it."
    )
    ready = offline_money.window_ready(svc, model, offline_k)
    if ready or st.button("Estimate the offline effect", key="merch_offline"):
        with show_errors(stop=False):
            served_rules = active.rules if active is not None else ()
            effect = offline_money.effect(data, svc, model, served_rules, parse_rules(draft_rows))
            cols = st.columns(2)
            cols[0].metric("Money per shopper now (offline)", format_money(effect.before, currency))
            cols[1].metric(
                "Money per shopper with the draft (offline)",
                format_money(effect.after, currency),
                delta=f"{format_money(effect.change, currency)} ({effect.relative_change:+.1%})"
                if effect.change and np.isfinite(effect.relative_change)
                else None,
            )
            low, high = effect.change_ci
            st.caption(
                f"Change {format_money(effect.change, currency)} per shopper, 95 % interval "
                f"{format_money(low, currency)} to {format_money(high, currency)} (paired "
                f"bootstrap over {effect.shoppers:,} of {effect.test_shoppers:,} test "
                f"shoppers; {effect.changed_lists:,} of their lists change). Recorded over "
                f"every test shopper without rules: {format_money(effect.recorded, currency)}."
            )

# ------------------------------------------------------------------ save and history
if can_edit:
    st.subheader("Save")
    note = st.text_input("What changed", key="merch_save_note")
    if st.button("Save the draft as a new version", key="merch_save", type="primary"):
        with show_errors(stop=False):
            saved = store.save(parse_rules(draft_rows), role=role, actor=auth.actor(), note=note)
            st.success(f"Saved as {saved.version}: every list now follows it.")

st.subheader("Version history")
with show_errors(stop=False):
    history = store.history()
    if not history:
        st.caption("No rule set saved yet.")
    else:
        served = store.active_version()
        rows = [{**h.summary(), "served": h.version == served} for h in history]
        table(pd.DataFrame(rows), name="merchandising_versions", key="merch_history")
        if can_edit:
            cols = st.columns(2)
            back = cols[0].selectbox(
                "Serve an earlier version", [h.version for h in history], key="merch_back"
            )
            if cols[1].button("Serve it", key="merch_activate"):
                store.activate(str(back), role=role, actor=auth.actor())
                st.session_state.pop(DRAFT, None)
                st.rerun()
