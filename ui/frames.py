"""Frames derived from the event log for charts and pickers, cached with ``st.cache_data``.

Every function takes the dataset ``key`` and ``checksum`` (what the cache is keyed by) and the
event log or catalog as an underscore argument (not hashed). The computations are small
descriptive counts of the log; the co-purchase count is the one piece of arithmetic, kept
here because only the Similar items page shows it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import streamlit as st

from recsys_core.columns import EVENT_TYPES, Columns

#: The funnel's stages (favourites are a side branch, shown in the counts only).
FUNNEL_STAGES: tuple[tuple[str, str], ...] = (
    ("view", "Views"),
    ("cart", "Carts"),
    ("purchase", "Purchases"),
)


@st.cache_data(show_spinner=False, max_entries=16)
def event_counts(key: str, checksum: str, _events: pd.DataFrame) -> pd.DataFrame:
    """Events, shoppers and products per event type (``event, events, shoppers, products``)."""
    ev = _events
    grouped = ev.groupby(Columns.EVENT, observed=False)
    out = pd.DataFrame(
        {
            "events": grouped.size(),
            "shoppers": grouped[Columns.USER].nunique(),
            "products": grouped[Columns.ITEM].nunique(),
        }
    ).reindex(list(EVENT_TYPES), fill_value=0)
    out.index.name = "event"
    return out.reset_index()


def funnel_frame(counts: pd.DataFrame) -> pd.DataFrame:
    """Views -> carts -> purchases with the share of the first stage present in the log.

    Stages the log does not record at all (e.g. Online Retail has only purchases) are left
    out, so the funnel starts at the first recorded stage.
    """
    by_event = counts.set_index("event")
    rows = []
    for event, label in FUNNEL_STAGES:
        n = int(by_event.loc[event, "events"]) if event in by_event.index else 0
        shoppers = int(by_event.loc[event, "shoppers"]) if event in by_event.index else 0
        rows.append({"stage": label, "event": event, "events": n, "shoppers": shoppers})
    frame = pd.DataFrame(rows)
    recorded = frame["events"].to_numpy() > 0
    if recorded.any():
        frame = frame.iloc[int(np.argmax(recorded)) :].reset_index(drop=True)
    top = frame["events"].iloc[0] if len(frame) else 0
    frame["share_of_first"] = frame["events"] / top if top else np.nan
    return frame


#: Orders per shopper at each stage of the repeat-purchase funnel (purchase-only logs).
REPEAT_STAGES: tuple[int, ...] = (1, 2, 5, 10)


@st.cache_data(show_spinner=False, max_entries=16)
def repeat_funnel(key: str, checksum: str, _events: pd.DataFrame) -> pd.DataFrame:
    """Shoppers who ordered at least 1, 2, 5 and 10 times (an order: a day with a purchase;
    a purchase without timestamps). The funnel of a log that records only purchases.

    Returns ``stage, event, events, shoppers, share_of_first`` like :func:`funnel_frame`
    (``events`` = ``shoppers``), so the same chart draws it.
    """
    ev = _events[(_events[Columns.EVENT] == "purchase").to_numpy()]
    users = ev[Columns.USER].astype(str)
    if Columns.TIMESTAMP in ev.columns:
        days = ev[Columns.TIMESTAMP].dt.floor("D")
        orders = pd.DataFrame({"u": users.to_numpy(), "d": days.to_numpy()}).drop_duplicates()
        per_user = orders.groupby("u").size()
    else:
        per_user = users.value_counts()
    rows = []
    for n in REPEAT_STAGES:
        count = int((per_user >= n).sum())
        label = "Ordered once or more" if n == 1 else f"Ordered {n}+ times"
        rows.append({"stage": label, "event": "purchase", "events": count, "shoppers": count})
    frame = pd.DataFrame(rows)
    top = frame["events"].iloc[0]
    frame["share_of_first"] = frame["events"] / top if top else np.nan
    return frame


@st.cache_data(show_spinner=False, max_entries=16)
def weekly_activity(key: str, checksum: str, _events: pd.DataFrame) -> pd.DataFrame:
    """Events per week by type (``week, event, events``); empty without timestamps."""
    if Columns.TIMESTAMP not in _events.columns or _events.empty:
        return pd.DataFrame({"week": [], "event": [], "events": []})
    week = _events[Columns.TIMESTAMP].dt.to_period("W-SUN").dt.start_time
    frame = (
        pd.DataFrame({"week": week, "event": _events[Columns.EVENT].astype(str)})
        .groupby(["week", "event"], observed=True)
        .size()
        .rename("events")
        .reset_index()
    )
    frame["event"] = pd.Categorical(frame["event"], categories=list(EVENT_TYPES), ordered=True)
    return frame.sort_values(["week", "event"]).reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=16)
def item_popularity(
    key: str, checksum: str, _events: pd.DataFrame, _catalog: pd.DataFrame
) -> pd.DataFrame:
    """Products by number of shoppers who interacted with them, most popular first.

    Columns ``rank, item_id, title, shoppers, events, share_of_events, cumulative_share``.
    """
    ev = _events
    items = ev[Columns.ITEM].astype(str)
    frame = (
        pd.DataFrame({Columns.ITEM: items, Columns.USER: ev[Columns.USER].astype(str)})
        .groupby(Columns.ITEM)
        .agg(shoppers=(Columns.USER, "nunique"), events=(Columns.USER, "size"))
        .sort_values(["shoppers", "events"], ascending=False)
        .reset_index()
    )
    titles = _catalog.assign(**{Columns.ITEM: _catalog[Columns.ITEM].astype(str)}).set_index(
        Columns.ITEM
    )[Columns.TITLE]
    frame.insert(1, Columns.TITLE, titles.reindex(frame[Columns.ITEM]).fillna("").to_numpy())
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    total = frame["events"].sum()
    frame["share_of_events"] = frame["events"] / total if total else 0.0
    frame["cumulative_share"] = frame["share_of_events"].cumsum()
    return frame


@st.cache_data(show_spinner=False, max_entries=16)
def shopper_activity(key: str, checksum: str, _events: pd.DataFrame) -> pd.DataFrame:
    """Shoppers by activity, most active first: ``user_id, events, products, purchases``."""
    ev = _events
    frame = pd.DataFrame(
        {
            Columns.USER: ev[Columns.USER].astype(str),
            Columns.ITEM: ev[Columns.ITEM].astype(str),
            "purchase": (ev[Columns.EVENT] == "purchase").to_numpy(),
        }
    )
    out = (
        frame.groupby(Columns.USER)
        .agg(
            events=(Columns.ITEM, "size"),
            products=(Columns.ITEM, "nunique"),
            purchases=("purchase", "sum"),
        )
        .sort_values(["events", "products"], ascending=False)
        .reset_index()
    )
    out["purchases"] = out["purchases"].astype(int)
    return out


@st.cache_data(show_spinner=False, max_entries=64)
def shopper_history(
    key: str, checksum: str, user_id: str, _events: pd.DataFrame, _catalog: pd.DataFrame
) -> pd.DataFrame:
    """One shopper's events with product titles, oldest first."""
    ev = _events
    mine = ev[(ev[Columns.USER] == str(user_id)).to_numpy()].copy()
    mine[Columns.ITEM] = mine[Columns.ITEM].astype(str)
    mine[Columns.EVENT] = mine[Columns.EVENT].astype(str)
    mine[Columns.USER] = mine[Columns.USER].astype(str)
    titles = _catalog.assign(**{Columns.ITEM: _catalog[Columns.ITEM].astype(str)}).set_index(
        Columns.ITEM
    )[Columns.TITLE]
    mine.insert(2, Columns.TITLE, titles.reindex(mine[Columns.ITEM]).fillna("").to_numpy())
    return mine.reset_index(drop=True)


@st.cache_resource(show_spinner=False, max_entries=4)
def _shopper_item_matrix(
    key: str, checksum: str, _events: pd.DataFrame, event: str | None
) -> tuple[sp.csr_matrix, sp.csc_matrix, pd.Index]:
    """Binary shoppers x items matrix (of one event type, or any event) and its item index.

    Returned in both row (CSR) and column (CSC) layout; read-only.
    """
    ev = _events if event is None else _events[(_events[Columns.EVENT] == event).to_numpy()]
    users = pd.Categorical(ev[Columns.USER].astype(str))
    items = pd.Categorical(ev[Columns.ITEM].astype(str))
    n_users, n_items = len(users.categories), len(items.categories)
    matrix = sp.csr_matrix(
        (np.ones(len(ev), dtype=np.float32), (users.codes, items.codes)), shape=(n_users, n_items)
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0  # repeated events count once
    return matrix, matrix.tocsc(), pd.Index(items.categories.astype(str))


def co_counts(
    key: str, checksum: str, events: pd.DataFrame, item_id: str, others: list[str]
) -> pd.DataFrame:
    """How many shoppers interacted with (and bought) both ``item_id`` and each other item.

    Returns ``item_id, co_shoppers, co_buyers`` for ``others`` (0 where none).
    """
    out = pd.DataFrame({Columns.ITEM: [str(o) for o in others]})
    for column, event in (("co_shoppers", None), ("co_buyers", "purchase")):
        rows, cols_layout, index = _shopper_item_matrix(key, checksum, events, event)
        pos = index.get_indexer([str(item_id)])[0]
        if pos < 0 or not others:
            out[column] = 0
            continue
        shoppers = cols_layout[:, pos].nonzero()[0]
        together = np.asarray(rows[shoppers].sum(axis=0)).ravel()
        cols = index.get_indexer(out[Columns.ITEM])
        out[column] = np.where(cols >= 0, together[np.clip(cols, 0, None)], 0).astype(int)
    return out


def other_model_ranks(item_ids: pd.Series, compare: pd.DataFrame, models: list[str]) -> list[str]:
    """Per item, where each of ``models`` ranks it, e.g. "itemknn #2 · als #7" ("—": none).

    ``compare`` is :meth:`RecommendationService.compare_models`'s table (``item_id`` and
    one rank column per model, NaN outside that model's top k).
    """
    ranks = compare.set_index("item_id")
    out = []
    for item in item_ids:
        parts = []
        if item in ranks.index:
            row = ranks.loc[item]
            parts = [f"{m} #{int(row[m])}" for m in models if m in row and pd.notna(row[m])]
        out.append(" · ".join(parts) if parts else "—")
    return out


@st.cache_data(show_spinner="Computing shopper segments ...", max_entries=8)
def shopper_segments(
    key: str, checksum: str, _events: pd.DataFrame, dataset_name: str
) -> pd.DataFrame:
    """:func:`recsys_core.segments.shopper_segments` of the whole log (now), with countries
    where the dataset has them."""
    from recsys_core.segments import shopper_countries
    from recsys_core.segments import shopper_segments as segments_of

    return segments_of(_events, countries=shopper_countries(dataset_name))


def relative_similarity(frame: pd.DataFrame, best: dict[str, float]) -> pd.Series:
    """Each row's score as a share of the best score its own model gives this product.

    Similar-items lists are filled from several models whose scores are on different scales
    (an item-kNN co-purchase score in the thousands, an ALS cosine below 1); dividing by
    the model's score for its closest match puts every row on one 0-1 scale ("1 = as close
    as the model's best match"). ``best`` maps each ``source`` to that top score; rows whose
    model has no positive best score get NaN.
    """
    tops = frame["source"].map(best).astype(float)
    ratio = frame["score"].astype(float) / tops.where(tops > 0)
    return ratio.clip(lower=0.0, upper=1.0)
