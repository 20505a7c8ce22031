"""Reusable widgets: tables with a CSV download, shopper and item pickers, an item card."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
import streamlit as st

from recsys_core.business import BusinessFilters, catalog_prices, currency_symbol
from recsys_core.columns import Columns
from recsys_core.security import audit, sessions
from recsys_core.security.exports import to_csv_bytes
from recsys_core.security.pseudonyms import find_by_pseudonym
from ui import auth, frames, state
from ui.glossary import category_label
from ui.resources import ActiveData

#: Most options a picker lists at once (type in its search box to reach the others).
MAX_OPTIONS = 1000

#: Column formats used by every table. The probability bars have a fixed width that fits
#: their header, so a list of k items fits a 1280 px window (issue 24, 6); a wider window
#: stretches them.
PROBABILITY_COLUMN = st.column_config.ProgressColumn(
    "if they order",
    width=130,
    help=(
        "Purchase probability if the shopper orders in the next 30 days: the calibrated chance "
        "that this item is in that order."
    ),
    min_value=0.0,
    max_value=1.0,
    format="percent",
)
OVERALL_COLUMN = st.column_config.ProgressColumn(
    "overall",
    width=110,
    help=(
        "Overall chance that the shopper buys this item in the next 30 days: the chance they "
        "order at all (order model) × the chance the item is in that order."
    ),
    min_value=0.0,
    max_value=1.0,
    format="percent",
)
NOT_TRAINED = (
    "Purchase model not trained: purchase probabilities and SHAP explanations need the "
    "two-stage ranker (it needs timestamps and `recsys_core.ranking`). Retrain with the "
    "'ranker' model to see them."
)


#: What a table shows for a missing value (never "None").
MISSING = "—"
#: Decimals kept in CSV downloads (no 16-digit floats).
CSV_DECIMALS = 4


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    floats = frame.select_dtypes(include="floating").columns
    return frame.assign(**{c: frame[c].round(CSV_DECIMALS) for c in floats})


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as UTF-8 CSV without the index: floats rounded to :data:`CSV_DECIMALS`
    decimals, missing values left empty, shopper ids as this session may see them, and
    cells that a spreadsheet would run as formulas neutralised."""
    return to_csv_bytes(auth.shown_frame(_rounded(frame)))


def audited_download(
    make: Callable[[], bytes],
    action: str,
    detail: Mapping[str, Any],
    *,
    who: str,
    token: str | None,
) -> Callable[[], bytes]:
    """Download data made when the user clicks, with the audit row written then.

    Streamlit calls it on its own thread when the button is clicked (deferred data, with
    ``on_click="ignore"``: the page does not rerun), so the click is never lost the way
    ``on_click="ignore"`` alone lost it. ``who`` and ``token`` are taken while the page is
    drawn (that thread has no session); a session that has ended by the click gets no data,
    and the refusal is audited too.
    """
    facts = dict(detail)

    def produce() -> bytes:
        if token is not None and sessions.current_user(token) is None:
            audit.record(who, f"{action}-refused", {**facts, "why": "the session has ended"})
            return b"Your session has ended: log in again, then download once more.\n"
        data = make()
        audit.record(who, action, {**facts, "bytes": len(data)})
        return data

    return produce


def download_csv(frame: pd.DataFrame, name: str, key: str, label: str = "Download CSV") -> None:
    """A download button for ``frame`` as ``<name>.csv`` (does not rerun the page); the
    download is audited as ``export`` when it happens (:func:`audited_download`)."""
    shown = auth.shown_frame(_rounded(frame))  # as this session may see it, taken now
    st.download_button(
        label,
        audited_download(
            lambda: to_csv_bytes(shown),
            "export",
            {"file": f"{name}.csv", "rows": len(frame)},
            who=auth.actor(),
            token=st.session_state.get(auth.TOKEN),
        ),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"download_{key}",
        on_click="ignore",
        icon=":material/download:",
    )


#: Height of one ``st.dataframe`` row (and of the header) in px.
ROW_PX = 35


def full_height(rows: int, most: int = 50) -> int:
    """A table height showing ``rows`` rows (up to ``most``) without an inner scroll box."""
    return ROW_PX * (min(rows, most) + 1) + 3


def table(
    frame: pd.DataFrame,
    *,
    name: str,
    key: str,
    column_config: Mapping[str, Any] | None = None,
    height: int | Literal["auto"] = "auto",
    download: bool = True,
    column_order: list[str] | None = None,
) -> None:
    """A sortable table (``st.dataframe``) with a CSV download under it (``column_order``:
    the columns shown, default all; the download has every column)."""
    st.dataframe(
        auth.shown_frame(frame),
        hide_index=True,
        column_config=dict(column_config or {}),
        column_order=column_order,
        width="stretch",
        height=height,
        key=f"table_{key}",
        placeholder=MISSING,
    )
    if download:
        download_csv(frame, name, key)


def match_ids(ids: pd.Series, query: str) -> pd.Series:
    """Ids matching a typed query: the exact id first, then ids starting with it, then the
    ids containing it (each group in the given order, e.g. most active first)."""
    text = query.strip()
    if not text:
        return ids
    lowered = ids.str.lower()
    needle = text.lower()
    exact = ids[lowered == needle]
    starts = ids[lowered.str.startswith(needle) & (lowered != needle)]
    contains = ids[lowered.str.contains(needle, regex=False) & ~lowered.str.startswith(needle)]
    return pd.concat([exact, starts, contains], ignore_index=True)


def shopper_picker(data: ActiveData, *, key: str = "shopper") -> str | None:
    """Pick any shopper: type (part of) an id, then choose; most active first.

    Every shopper of the log is findable: the typed text searches all ids (the exact id
    first, then ids starting with it, then ids containing it), and an exact id is selected
    as soon as it is typed. The choice is shared by the pages
    (``st.session_state[state.SHOPPER]``). Shoppers are shown (and searched) as pseudonyms
    once log-ins are on; a pseudonym finds its shopper.
    """
    auth.check_session()  # fragments rerun without the router's log-in check
    activity = frames.shopper_activity(data.key, data.checksum, data.dataset.events)
    ids = activity[Columns.USER]
    current = st.session_state.get(state.SHOPPER)
    if current is not None and current not in set(ids):  # e.g. a pseudonym from a shared link
        resolved = find_by_pseudonym(str(current), ids)
        if resolved is not None:
            st.session_state[state.SHOPPER] = resolved
    hidden = auth.pseudonymised()
    show = auth.id_display()  # decided once per run, not once per option
    query = st.text_input(
        "Find a shopper by pseudonym" if hidden else "Find a shopper by id",
        key=f"{key}_query",
        placeholder="e.g. S-K7Q2M9XABC" if hidden else "type an id or part of one, e.g. 12347",
        help=f"Searches all {len(ids):,} shoppers; leave empty to list the most active ones.",
    )
    text = query.strip()
    pseudonymous = find_by_pseudonym(text, ids) if text else None
    if pseudonymous is not None:  # a full pseudonym names one shopper
        found = ids[ids == pseudonymous]
    elif hidden and text:  # match the pseudonyms shown, never the hidden real ids
        shown = ids.map(show)
        found = match_ids(shown, text).map(dict(zip(shown, ids, strict=True)))
    else:
        found = match_ids(ids, text)
    if found.empty:
        st.warning(f"No shopper id contains {text!r}.")
        return None
    select_key = f"{key}_select"
    last_key = f"{key}_last_query"
    if text and st.session_state.get(last_key) != query:
        first = str(found.iloc[0])
        typed = text.lower() in (first.lower(), show(first).lower())
        if typed or pseudonymous is not None:  # a typed id selects that shopper
            st.session_state[state.SHOPPER] = first
    st.session_state[last_key] = query
    counts = dict(zip(activity[Columns.USER], activity["events"], strict=True))
    return _choose(
        found.tolist(),
        noun="Shopper",
        order="exact id first, then most active" if query.strip() else "most active first",
        state_key=state.SHOPPER,
        format_func=lambda u: f"{show(u)} · {_events_label(counts.get(u, 0))}",
        key=select_key,
    )


def funnel_chart(data: ActiveData, key: str) -> None:
    """The funnel of the log: views -> carts -> purchases, or, when the log records one
    stage only (Online Retail: purchases), how many shoppers order again (a one-box funnel
    of 100 % says nothing)."""
    from ui import charts

    counts = frames.event_counts(data.key, data.checksum, data.dataset.events)
    funnel = frames.funnel_frame(counts)
    if len(funnel) > 1:
        st.plotly_chart(charts.funnel_figure(funnel), key=key)
        return
    repeat = frames.repeat_funnel(data.key, data.checksum, data.dataset.events)
    st.plotly_chart(
        charts.funnel_figure(repeat, "Repeat-purchase funnel: shoppers by orders"), key=key
    )
    stage = funnel["stage"].iloc[0].lower() if len(funnel) else "one kind of event"
    st.caption(
        f"This log records only {stage}, so the funnel shows how many shoppers order again "
        "(an order: a day with a purchase)."
    )


def plural(n: int, noun: str) -> str:
    """'1 event', '2 events', '1,234 events' (nouns that take an 's')."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _events_label(n: int) -> str:
    return plural(n, "event")


def business_filters(data: ActiveData, *, key: str = "shopper") -> BusinessFilters:
    """Category, price band and "not bought in the last N days" filters (an expander)."""
    catalog = data.dataset.catalog
    with st.expander("Business filters: category, price band, recently bought"):
        cols = st.columns(3)
        categories: list[str] = []
        if Columns.CATEGORY in catalog.columns:
            options = sorted(catalog[Columns.CATEGORY].dropna().astype(str).unique())
            words = category_label(data.dataset.name, plural=True)
            categories = cols[0].multiselect(
                words.capitalize(),
                options,
                key=f"{key}_categories",
                placeholder=f"all {words}",
                help="Keywords are taken from the product titles (this log has no categories)."
                if words == "keywords"
                else None,
            )
        else:
            cols[0].caption("This catalog has no categories.")
        low: float | None = None
        high: float | None = None
        prices = catalog_prices(catalog).dropna()
        if len(prices):
            top = float(np.ceil(prices.quantile(0.99)))
            symbol = currency_symbol(data.dataset.name)
            low, high = cols[1].slider(
                f"Price band ({symbol or 'currency not given'})",
                0.0,
                max(top, 1.0),
                (0.0, max(top, 1.0)),
                key=f"{key}_price_band",
                help="Items above the top of the range are kept when the band reaches it.",
            )
            if low <= 0.0:
                low = None
            if high >= max(top, 1.0):
                high = None
        else:
            cols[1].caption("This catalog has no prices.")
        days = int(
            cols[2].number_input(
                "Hide items bought in the last N days",
                0,
                3650,
                0,
                key=f"{key}_bought_days",
                help="0: keep them (repurchases are most of what wholesalers buy).",
            )
        )
    return BusinessFilters(
        categories=tuple(categories), min_price=low, max_price=high, exclude_bought_days=days
    )


def _choose(
    matches: list[str],
    *,
    noun: str,
    order: str,
    state_key: str,
    format_func: Callable[[str], str],
    key: str,
) -> str | None:
    """A selectbox over the first :data:`MAX_OPTIONS` matches, keeping the shared choice.

    The current choice (``st.session_state[state_key]``) stays selectable while it matches,
    even beyond the first options, and the new choice is stored back there.
    """
    options = matches[:MAX_OPTIONS]
    current = st.session_state.get(state_key)
    if current in set(matches) and current not in options:
        options.insert(0, current)
    plural = "es" if len(matches) != 1 else ""
    _sync_select(key, current, options)
    choice = st.selectbox(
        f"{noun} ({len(matches):,} match{plural}, {order})",
        options,
        index=0 if key in st.session_state else _position(current, options),
        format_func=format_func,
        key=key,
    )
    st.session_state[f"{key}_shown"] = choice
    st.session_state[state_key] = choice
    return None if choice is None else str(choice)


def _position(value: object, options: list[str]) -> int:
    return options.index(str(value)) if value in options else 0


def _sync_select(key: str, current: object, options: list[str]) -> None:
    """Make the select at ``key`` show ``current`` when the choice changed elsewhere.

    A typed id, a shared link or another page may change the shared choice; the select's
    own state must then be *set* through the session state (a new ``index`` is ignored once
    the widget exists, and the browser kept showing the previous shopper, issue 24). A
    change made in the select itself (its value differs from what it showed last run) wins.
    """
    shown = st.session_state.get(f"{key}_shown")
    value = st.session_state.get(key)
    if key in st.session_state and value not in options:
        del st.session_state[key]  # e.g. the query no longer matches it
        value = None
    changed_here = key in st.session_state and value != shown
    if current in options and not changed_here and value != current:
        st.session_state[key] = current


def item_picker(data: ActiveData, *, key: str = "item") -> str | None:
    """Pick a product: a search box over titles and ids, and a selectbox, most popular first."""
    popularity = frames.item_popularity(
        data.key, data.checksum, data.dataset.events, data.dataset.catalog
    )
    query = st.text_input(
        "Search a product (title or id)", key=f"{key}_query", placeholder="e.g. mug"
    )
    found = popularity
    if query.strip():
        text = popularity[Columns.TITLE].astype(str) + " " + popularity[Columns.ITEM]
        found = popularity[text.str.contains(query.strip(), case=False, regex=False)]
    if found.empty:
        st.warning("No product title or id contains that text.")
        return None
    titles = dict(zip(popularity[Columns.ITEM], popularity[Columns.TITLE], strict=True))
    return _choose(
        found[Columns.ITEM].tolist(),
        noun="Product",
        order="most popular first",
        state_key=state.ITEM,
        format_func=lambda i: f"{titles.get(i, '')} ({i})",
        key=f"{key}_select",
    )


def item_card(data: ActiveData, item_id: str) -> None:
    """Title, category, brand, price and popularity of one product."""
    catalog = data.dataset.catalog
    row = catalog[catalog[Columns.ITEM].astype(str) == str(item_id)]
    popularity = frames.item_popularity(
        data.key, data.checksum, data.dataset.events, data.dataset.catalog
    ).set_index(Columns.ITEM)
    with st.container(border=True):
        if row.empty:
            st.markdown(f"**{item_id}** (not in the catalog)")
            return
        info = row.iloc[0]
        st.markdown(f"**{info[Columns.TITLE]}**  \n`{item_id}`")
        cols = st.columns(4)
        fields = (Columns.CATEGORY, Columns.BRAND, Columns.PRICE)
        names = {Columns.CATEGORY: category_label(data.dataset.name)}
        for col, field in zip(cols[:3], fields, strict=True):
            if field in info.index and pd.notna(info[field]):
                value = info[field]
                shown = f"{value:,.2f}" if field == Columns.PRICE else str(value)
                col.metric(names.get(field, field), shown)
        if str(item_id) in popularity.index:
            stats = popularity.loc[str(item_id)]
            cols[3].metric(
                "shoppers", f"{int(stats['shoppers']):,}", help=f"popularity rank {stats['rank']}"
            )


def probability_metrics(explanation: Mapping[str, Any]) -> None:
    """Three metrics: orders at all, this item if they order, overall (their product)."""
    order = explanation.get("order_probability")
    overall = explanation.get("overall_probability")
    cols = st.columns(3)
    cols[0].metric(
        "Orders in the next 30 days",
        "—" if order is None else f"{order:.1%}",
        help="Order model: the chance the shopper places any order in the next 30 days.",
    )
    cols[1].metric(
        "If they order, this item is in it",
        f"{float(explanation['probability']):.1%}",
        help="Purchase model: conditional on an order in the period.",
    )
    cols[2].metric(
        "Overall",
        "—" if overall is None else f"{overall:.1%}",
        help="Order chance × purchase chance if they order.",
    )


def ranker_notice() -> None:
    """The standard "purchase model not trained" message (or "training in the background")."""
    from ui.resources import active_data, ranker_job

    job = ranker_job(active_data())
    if job is not None and job.running:
        st.info(
            f"The purchase model is training in the background ({job.fraction:.0%}, "
            f"{job.message}); these results use the single-stage models, and the page switches "
            "to purchase probabilities when it is ready (progress in the sidebar).",
            icon=":material/hourglass_top:",
        )
        return
    st.info(NOT_TRAINED, icon=":material/info:")


#: Segment choices of the bulk export: label -> (segment column, value).
_BULK_SEGMENTS: dict[str, tuple[str, str] | None] = {
    "every shopper": None,
    "new shoppers (first seen < 90 days ago)": ("tenure", "new"),
    "returning shoppers": ("tenure", "returning"),
    "light buyers": ("volume", "light"),
    "heavy buyers (top 20 % by orders)": ("volume", "heavy"),
}


def bulk_export(data: ActiveData, svc: Any) -> None:
    """Every shopper's (or a segment's) top k as a CSV or Parquet download."""
    from recsys_core.business import top_k_for_shoppers

    segments = frames.shopper_segments(
        data.key, data.checksum, data.dataset.events, data.dataset.name
    )
    choices = dict(_BULK_SEGMENTS)
    if "country" in segments.columns:
        for country in segments["country"].value_counts().index[:10]:
            choices[f"country: {country}"] = ("country", str(country))
    models = svc.lab.model_names
    cols = st.columns(4)
    model = cols[0].selectbox(
        "Model", models, index=models.index("ranker") if "ranker" in models else 0, key="bulk_model"
    )
    k = int(cols[1].number_input("Items per shopper (k)", 1, 100, 10, key="bulk_k"))
    segment = cols[2].selectbox("Shoppers", list(choices), key="bulk_segment")
    fmt = cols[3].radio("Format", ["CSV", "Parquet"], horizontal=True, key="bulk_format")
    chosen = choices[segment]
    users = segments.index if chosen is None else segments.index[segments[chosen[0]] == chosen[1]]
    st.caption(f"{len(users):,} shoppers; the ranker scores about a thousand per few seconds.")
    wanted = (data.key, data.checksum, svc.version, model, k, segment)
    if st.button("Prepare the export", key="bulk_prepare", icon=":material/table_view:"):
        bar = st.progress(0.0, text="starting")
        table = top_k_for_shoppers(
            svc,
            list(users),
            k,
            model,
            "lab-rule",  # the lab's list policy, as the Shopper page's default
            progress=lambda message, fraction: bar.progress(min(fraction, 1.0), text=message),
        )
        bar.empty()
        st.session_state["bulk_export"] = (wanted, table)
    ready = st.session_state.get("bulk_export")
    if ready is None or ready[0] != wanted:
        return
    table = ready[1]
    name = f"top{k}-{model}-{segment.split(' ')[0].replace(':', '')}-{data.dataset.name}"
    if fmt == "CSV":
        payload, file_name, mime = csv_bytes(table), f"{name}.csv", "text/csv"
    else:
        buffer = io.BytesIO()
        auth.shown_frame(table).to_parquet(buffer, index=False)
        payload, file_name, mime = buffer.getvalue(), f"{name}.parquet", "application/octet-stream"
    st.download_button(
        f"Download {len(table):,} rows ({fmt})",
        payload,
        file_name=file_name,
        mime=mime,
        key="bulk_download",
        on_click="ignore",
        icon=":material/download:",
    )
