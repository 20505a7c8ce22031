"""Shopper segments: new vs returning, light vs heavy buyers, country where known.

Segments are computed from the events **before a cutoff** (the evaluation's test cutoff, or
"now" for the app), so they never use what they are later compared on:

* ``tenure`` — ``new`` when the shopper's first event is less than :data:`NEW_DAYS` days
  before the cutoff, else ``returning``;
* ``volume`` — ``heavy`` for the shoppers with the most orders (days with a purchase): the
  top :data:`HEAVY_SHARE` of the buyers, at least 2 orders; ``light`` for the other buyers;
  ``no purchases`` for shoppers who only browsed;
* ``country`` — where the log has one: Online Retail's ``Country`` of the customer (read
  from the shipped raw file; the most frequent one per customer).

:func:`metrics_by_segment` averages per-shopper metrics within each segment.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_ids, id_values

#: First event less than this many days before the cutoff: a new shopper.
NEW_DAYS: Final = 90
#: Share of the buyers (by number of orders) who count as heavy buyers.
HEAVY_SHARE: Final = 0.2
#: The segment columns, in the order they are shown.
SEGMENT_COLUMNS: Final = ("tenure", "volume", "country")


@lru_cache(maxsize=1)
def online_retail_countries() -> pd.Series:
    """Country of each Online Retail customer (str id -> country), from the shipped file."""
    from recsys_core.paths import DATA_DIR

    raw = pd.read_parquet(DATA_DIR / "online_retail.parquet", columns=["CustomerID", "Country"])
    raw = raw.dropna(subset=["CustomerID"])
    ids = canonical_ids(raw["CustomerID"].astype(np.int64))  # the loader's ids
    # file input; the country is a label, not an id
    counts = pd.DataFrame({"user_id": ids, "country": raw["Country"].astype(str)})
    top = counts.groupby(["user_id", "country"]).size().reset_index(name="n")
    top = top.sort_values(["user_id", "n"], ascending=[True, False], kind="stable")
    return top.drop_duplicates("user_id").set_index("user_id")["country"]


def shopper_countries(dataset_name: str) -> pd.Series | None:
    """Country per shopper where the dataset has one (``None`` otherwise)."""
    if dataset_name == "online-retail":
        return online_retail_countries()
    return None


def shopper_segments(
    events: pd.DataFrame,
    cutoff: pd.Timestamp | str | None = None,
    *,
    countries: pd.Series | None = None,
) -> pd.DataFrame:
    """Segments of every shopper with an event before ``cutoff`` (default: after the last).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``user_id`` (str): ``tenure``, ``volume``, ``orders`` and, when
        ``countries`` is given, ``country`` (``unknown`` where missing). Without
        timestamps every shopper is ``returning`` and ``orders`` counts purchases.
    """
    users = id_values(events[Columns.USER])
    has_time = Columns.TIMESTAMP in events.columns
    if has_time:
        ts = events[Columns.TIMESTAMP]
        cut = ts.max() + pd.Timedelta(seconds=1) if cutoff is None else pd.Timestamp(cutoff)
        before = (ts < cut).to_numpy()
        users, ts = users[before], ts[before]
        ev = events[Columns.EVENT][before]
    else:
        ev = events[Columns.EVENT]
    out = pd.DataFrame(index=pd.Index(sorted(users.unique()), name=Columns.USER))
    if has_time:
        first = pd.Series(ts.to_numpy(), index=users.to_numpy()).groupby(level=0).min()
        age = (cut - first.reindex(out.index)) / pd.Timedelta(days=1)
        out["tenure"] = np.where(age.to_numpy() < NEW_DAYS, "new", "returning")
        buys = pd.DataFrame(
            {"user": users.to_numpy(), "day": ts.dt.floor("D").to_numpy(), "ev": ev.to_numpy()}
        )
        buys = buys[buys["ev"] == "purchase"].drop_duplicates(["user", "day"])
        orders = buys.groupby("user").size()
    else:
        out["tenure"] = "returning"
        orders = users[(ev == "purchase").to_numpy()].value_counts()
    out["orders"] = orders.reindex(out.index).fillna(0).astype(np.int64)
    buyers = out.loc[out["orders"] > 0, "orders"]
    threshold = max(2.0, float(buyers.quantile(1 - HEAVY_SHARE))) if len(buyers) else np.inf
    out["volume"] = np.where(
        out["orders"] == 0, "no purchases", np.where(out["orders"] >= threshold, "heavy", "light")
    )
    if countries is not None:
        # a segment label, not an id
        out["country"] = countries.reindex(out.index).fillna("unknown").astype(str).to_numpy()
    return out


def segments_from_features(
    features: pd.DataFrame, *, countries: pd.Series | None = None
) -> pd.DataFrame:
    """The :func:`shopper_segments` of a trained lab, from its order model's shopper features
    at the training cutoff (``days_since_first_event`` and ``orders``, indexed by
    ``user_id``): the same rules without the event log, for serving merchandising rules
    limited to a segment."""
    # the order model's shopper features are indexed by text ids (shopper_features, or
    # canonical_ids when a saved model is read)
    out = pd.DataFrame(index=pd.Index(features.index, name=Columns.USER))
    age = features["days_since_first_event"].to_numpy(dtype=float)
    out["tenure"] = np.where(age < NEW_DAYS, "new", "returning")
    orders = features["orders"].fillna(0).to_numpy(dtype=float)
    out["orders"] = orders.astype(np.int64)
    buyers = orders[orders > 0]
    threshold = max(2.0, float(np.quantile(buyers, 1 - HEAVY_SHARE))) if len(buyers) else np.inf
    out["volume"] = np.where(
        orders == 0, "no purchases", np.where(orders >= threshold, "heavy", "light")
    )
    if countries is not None:
        out["country"] = countries.reindex(out.index).fillna("unknown").astype(str).to_numpy()
    return out


def metrics_by_segment(
    per_user: pd.DataFrame, segments: pd.DataFrame, metrics: list[str] | None = None
) -> pd.DataFrame:
    """Mean of per-shopper metrics within each segment value.

    Parameters
    ----------
    per_user:
        One row per shopper (``user_id`` column or index) and metric columns.
    segments:
        :func:`shopper_segments`.
    metrics:
        Metric columns to average (default: every numeric column).

    Returns
    -------
    pandas.DataFrame
        ``segment`` (e.g. ``tenure``), ``value`` (e.g. ``new``), ``shoppers`` and the mean
        of each metric. Countries beyond the 5 largest are grouped as ``other``.
    """
    frame = per_user.set_index(Columns.USER) if Columns.USER in per_user.columns else per_user
    frame = frame.copy()
    frame.index = canonical_ids(frame.index)
    names = metrics or [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    rows = []
    for column in SEGMENT_COLUMNS:
        if column not in segments.columns:
            continue
        values = segments[column].reindex(frame.index).fillna("unknown").astype(str)  # label
        if column == "country":
            largest = values.value_counts().index[:5]
            values = values.where(values.isin(largest), "other")
        for value, part in frame.groupby(values.to_numpy(), sort=True):
            row: dict[str, object] = {
                "segment": column,
                "value": str(value),
                "shoppers": int(len(part)),
            }
            row.update({m: float(part[m].mean()) for m in names})
            rows.append(row)
    return pd.DataFrame(rows)


def evaluation_segments(
    per_user: dict[str, pd.DataFrame],
    train: pd.DataFrame,
    cutoff: pd.Timestamp | str | None,
    dataset_name: str,
    k: int,
) -> list[dict[str, object]]:
    """Per-model metrics by segment of an evaluation (JSON-ready records).

    Parameters
    ----------
    per_user:
        Model name -> its per-shopper metrics (indexed by ``user_id``).
    train, cutoff:
        The split's training events and cutoff: segments use only what precedes it.
    dataset_name:
        For the country (Online Retail only).
    k:
        List length (which metric columns to average).

    Returns
    -------
    list of dict
        ``{"model", "segment", "value", "shoppers", "ndcg@k", "hit_rate@k", "precision@k",
        "recall@k"}`` records.
    """
    segments = shopper_segments(train, cutoff, countries=shopper_countries(dataset_name))
    wanted = [f"ndcg@{k}", f"hit_rate@{k}", f"precision@{k}", f"recall@{k}"]
    records: list[dict[str, object]] = []
    for model, frame in per_user.items():
        present = [m for m in wanted if m in frame.columns]
        table = metrics_by_segment(frame, segments, present)
        for row in table.to_dict(orient="records"):
            records.append({"model": model, **row})
    return records
