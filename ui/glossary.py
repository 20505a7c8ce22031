"""Plain-language names, units and explanations of every metric the app shows.

One place for the words: hover help on metric columns (:func:`metric_columns`) and the one
glossary section (:func:`glossary_section`) read the same entries.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st

#: Metric family -> (plain label, explanation with units). ``@k`` is added by the caller.
METRICS: dict[str, tuple[str, str]] = {
    "ndcg": (
        "NDCG",
        "Ranking quality from 0 to 1: 1 when every item the shopper went on to buy is at the "
        "top of the list; items bought lower down count less (log2 discount).",
    ),
    "precision": (
        "precision",
        "Share of the k suggestions the shopper bought in the test period (0 to 1).",
    ),
    "recall": (
        "recall",
        "Share of what the shopper bought in the test period that the k suggestions held.",
    ),
    "map": (
        "MAP",
        "Mean average precision: like precision, rewarding bought items placed early (0 to 1).",
    ),
    "mrr": (
        "first-hit score (MRR)",
        "Mean reciprocal rank: 1 / position of the first suggestion the shopper bought "
        "(1 = the first suggestion, 0.5 = the second, 0 = none).",
    ),
    "hit_rate": (
        "hit rate",
        "Share of shoppers for whom at least one of the k suggestions was bought.",
    ),
    "coverage": (
        "catalogue coverage",
        "Share of the catalogue that appears in anyone's list (0 to 1): low = the same few "
        "items for everyone.",
    ),
    "novelty": (
        "novelty (bits)",
        "How unexpected the suggestions are: mean -log2(share of shoppers who bought the "
        "item), in bits. Higher = less obvious items.",
    ),
    "diversity": (
        "diversity",
        "How different the items in one list are from each other (mean pairwise cosine "
        "distance of who bought them), 0 to 1.",
    ),
    "arp": (
        "average popularity (ARP, shoppers)",
        "Average recommendation popularity: mean number of training shoppers who bought each "
        "suggested item. Higher = more best-sellers.",
    ),
    "revenue": (
        "revenue per shopper",
        "Money of the suggested items the shopper went on to buy in the test period "
        "(mean over test shoppers).",
    ),
    "revenue_total": (
        "revenue, all test shoppers",
        "Money of the suggested items the test shoppers went on to buy in the test period, "
        "summed over every test shopper.",
    ),
    "fit_seconds": ("fit time (s)", "Seconds to train the model on this machine."),
    "recommend_seconds": (
        "scoring time (s)",
        "Seconds to produce every test shopper's list on this machine.",
    ),
    "model_mb": ("model size (MB)", "Size of the saved model in megabytes."),
    "auc": (
        "AUC",
        "Chance that a random purchase gets a higher probability than a random non-purchase "
        "(0.5 = guessing, 1 = perfect ranking).",
    ),
    "logloss": ("log loss", "Mean negative log-likelihood of the outcomes: lower is better."),
    "brier": ("Brier score", "Mean squared gap between probability and outcome: lower is better."),
    "ece": (
        "calibration error (ECE)",
        "Expected calibration error: average gap, in probability points, between predicted and "
        "observed rates over 10 bins. 0.01 = off by 1 point on average.",
    ),
    "probability": (
        "overall probability",
        "Chance the shopper buys the item in the next 30 days = order chance × chance the "
        "item is in the order.",
    ),
    "purchase_probability": (
        "if they order",
        "Purchase model: chance the item is in the shopper's order if they order in the next "
        "30 days (conditional, calibrated).",
    ),
    "order_probability": (
        "orders in the next 30 days",
        "Order model: chance the shopper places any order in the next 30 days (calibrated).",
    ),
    "expected_revenue": (
        "expected revenue",
        "Σ overall probability × price over the list: what the list is expected to sell to "
        "this shopper in the next 30 days.",
    ),
    "support": (
        "bought both (support)",
        "Number of shoppers who bought both products.",
    ),
    "log_odds": (
        "log-odds",
        "The classifier's raw scale: 0 = 50 %, +2 ≈ 88 %, -2 ≈ 12 % before calibration. SHAP "
        "contributions add up on this scale.",
    ),
}

#: What each model's recommendation score is: (column label, hover help).
RECOMMEND_SCORES: dict[str, tuple[str, str]] = {
    "popularity": ("shoppers who bought it", "Number of training shoppers who bought the item."),
    "itemknn": (
        "co-purchase score (item-kNN)",
        "Sum of the item's BM25-weighted co-purchase counts with what the shopper bought; "
        "its scale depends on the log, compare within one list only.",
    ),
    "als": (
        "ALS taste match",
        "Dot product of the shopper's and the item's ALS factors: higher = closer to their "
        "taste; no unit, compare within one list only.",
    ),
    "bpr": ("BPR taste match", "BPR's score: higher = ranked higher; no unit."),
}
#: What each model's similar-items score is (hover help on the Similar items page).
SCORE_HELP: dict[str, str] = {
    "als": "Cosine of the two products' ALS factor vectors: 1 = same taste profile.",
    "itemknn": (
        "BM25-weighted count of shoppers who bought both: larger = bought together more; "
        "its scale depends on the log, compare within the list only."
    ),
}

_AT_K = re.compile(r"^(?P<family>[a-z_]+)@(?P<k>\d+)$")


def describe(column: str, *, with_k: bool = True) -> tuple[str, str] | None:
    """(plain label, help) of a metric column such as ``ndcg@10`` or ``fit_seconds``
    (``with_k=False``: the label without " @10", for tables whose heading says k)."""
    match = _AT_K.match(column)
    family, k = (match["family"], match["k"]) if match else (column, None)
    entry = METRICS.get(family)
    if entry is None:
        return None
    label, text = entry
    return (f"{label} @{k}" if k and with_k else label), text


#: Datasets whose "category" is a word taken from the product title (Online Retail has no
#: categories: lunch bags land in "Girl" or "Skull"), so the app calls it a keyword.
TITLE_KEYWORD_DATASETS: frozenset[str] = frozenset({"online-retail"})


def category_label(dataset_name: str, plural: bool = False) -> str:
    """What the app calls a dataset's ``category`` column: "category", or "keyword" when
    it is derived from titles and a shop would not recognise it as a category."""
    word = "keyword" if dataset_name in TITLE_KEYWORD_DATASETS else "category"
    if not plural:
        return word
    return "keywords" if word == "keyword" else "categories"


#: Metric families that are amounts of money.
MONEY_FAMILIES: frozenset[str] = frozenset({"revenue", "revenue_total", "expected_revenue"})
#: A price column's unit when the lab does not know the log's currency.
UNKNOWN_CURRENCY = "currency not given"


def money_unit(currency: str) -> str:
    """What a money column's header says its unit is: the symbol, or that it is unknown."""
    return currency or UNKNOWN_CURRENCY


def metric_columns(
    columns: list[str], decimals: int = 4, currency: str = "", *, with_k: bool = True
) -> dict[str, Any]:
    """``column_config`` giving each known metric column its plain label, format and help.

    Money columns say their currency in the header ("revenue per shopper @10 (£)") and show
    thousands separators with two decimals. ``with_k=False`` leaves " @10" out of the
    labels (narrower columns, for a table whose heading names the list length).
    """
    config: dict[str, Any] = {}
    for column in columns:
        described = describe(column, with_k=with_k)
        if described is None:
            continue
        label, text = described
        if column.split("@")[0] in MONEY_FAMILIES:
            config[column] = st.column_config.NumberColumn(
                f"{label} ({money_unit(currency)})", help=text, format="accounting"
            )
            continue
        config[column] = st.column_config.NumberColumn(label, help=text, format=f"%.{decimals}f")
    return config


def glossary_frame() -> pd.DataFrame:
    """The glossary as a table: term, meaning."""
    return pd.DataFrame(
        [{"term": label, "meaning": text} for label, text in METRICS.values()],
    )


def glossary_section(expanded: bool = False) -> None:
    """The one glossary: every metric and probability in plain words."""
    with st.expander("Glossary: what the metrics mean", expanded=expanded, icon=":material/help:"):
        for label, text in METRICS.values():
            st.markdown(f"**{label}**: {text}")
