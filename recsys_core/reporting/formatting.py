"""How numbers and values read in every report format (one place, so HTML and PDF agree).

The HTML and the PDF report put the same strings in their tables: whatever they show went
through :func:`format_value`. The JSON report keeps the raw numbers.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

#: Decimal places of every real number shown in a report table.
DECIMALS = 4

#: What a missing or non-finite number reads as.
MISSING = "n/a"


def format_value(value: object, decimals: int = DECIMALS) -> str:
    """A value as it appears in a report table.

    Parameters
    ----------
    value:
        A number, a string, a boolean or ``None``.
    decimals:
        Decimal places of real numbers.

    Returns
    -------
    str
        Integers with thousands separators (``1,395``), reals with ``decimals`` places
        (``0.2471``), booleans as ``yes``/``no``, ``None``/NaN/inf as ``n/a``, anything else
        as ``str(value)``.

    Examples
    --------
    >>> format_value(0.247136), format_value(1395), format_value(float("nan"))
    ('0.2471', '1,395', 'n/a')
    """
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Integral):
        return f"{int(value):,}"
    if isinstance(value, Real):
        number = float(value)
        if not math.isfinite(number):
            return MISSING
        return f"{number:.{decimals}f}"
    return str(value)


def format_change(relative: float | None) -> str:
    """A relative change as a signed percentage (``-7.3%``); ``n/a`` when undefined.

    Examples
    --------
    >>> format_change(-0.0734), format_change(0.0), format_change(None)
    ('-7.3%', '+0.0%', 'n/a')
    """
    if relative is None or not math.isfinite(relative):
        return MISSING
    return f"{relative:+.1%}"


def format_threshold(threshold: float) -> str:
    """A regression threshold as a percentage (``5%``)."""
    return f"{threshold:.1%}".replace(".0%", "%")


#: Plain names of the evaluate JSON's metric keys (``<family>@k`` or a plain key), so a
#: report never shows ``arp@10`` or ``fit_seconds``.
METRIC_NAMES: dict[str, str] = {
    "precision": "precision",
    "recall": "recall",
    "ndcg": "ranking quality (NDCG)",
    "map": "mean average precision (MAP)",
    "mrr": "first-hit score (MRR)",
    "hit_rate": "hit rate",
    "coverage": "catalogue coverage",
    "novelty": "novelty",
    "diversity": "diversity",
    "arp": "average popularity (shoppers)",
    "revenue": "revenue per shopper",
    "revenue_total": "revenue, all test shoppers",
    "fit_seconds": "fit time (s)",
    "recommend_seconds": "scoring time (s)",
    "model_mb": "model size (MB)",
    "auc": "AUC",
    "logloss": "log loss",
    "brier": "Brier score",
    "ece": "calibration error (ECE)",
    "ece_quantile": "calibration error (ECE, equal-mass bins)",
}
#: Metric families that are amounts of money.
MONEY_METRICS: frozenset[str] = frozenset({"revenue", "revenue_total"})


def metric_name(key: str, currency: str = "") -> str:
    """The plain name of a metric key: ``ndcg@10`` -> ``ranking quality (NDCG) @10``,
    ``revenue@10`` -> ``revenue per shopper @10 (£)``; unknown keys read with spaces.

    Examples
    --------
    >>> metric_name("fit_seconds"), metric_name("revenue@10", "£")
    ('fit time (s)', 'revenue per shopper @10 (£)')
    """
    family, _, k = key.partition("@")
    name = METRIC_NAMES.get(family, family.replace("_", " "))
    if k:
        name = f"{name} @{k}"
    if family in MONEY_METRICS and currency:
        name = f"{name} ({currency})"
    return name


def format_money(value: object, currency: str) -> str:
    """An amount as ``£1,234.50`` (``1,234.50`` without a known currency; ``n/a`` missing).

    Examples
    --------
    >>> format_money(51150.2, "£"), format_money(None, "£")
    ('£51,150.20', 'n/a')
    """
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        return MISSING
    return f"{currency}{float(value):,.2f}"


def format_interval(low: object, high: object, digits: int = DECIMALS) -> str:
    """``[low, high]`` with a no-break space after the comma, so a table cell never breaks
    an interval between its numbers ("[0.074 4, 0.08 70]" in the old PDF); ``n/a`` when
    either end is missing."""
    ends = []
    for value in (low, high):
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            return MISSING
        ends.append(f"{float(value):.{digits}f}")
    return f"[{ends[0]},\u00a0{ends[1]}]"


#: Ranking-accuracy metric families, in the order the comparison table shows them.
ACCURACY_METRICS: tuple[str, ...] = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
#: Cost columns of the comparison table (after the beyond-accuracy metrics).
COST_COLUMNS: tuple[str, ...] = ("fit_seconds", "recommend_seconds", "model_mb")
#: Label of the classifier's candidate count (shown as a whole number).
COUNT_LABEL = "candidates scored"
#: Purchase-classifier metrics, with their names in the report.
#: What any probability is scored by (the classifier's and the overall probability's).
PROBABILITY_METRICS: tuple[tuple[str, str], ...] = (
    ("auc", "AUC"),
    ("logloss", "log loss"),
    ("brier", "Brier score"),
    ("ece", "ECE (10 equal-width bins)"),
    ("ece_quantile", "ECE (10 equal-mass bins)"),
    ("mean_predicted", "mean predicted probability"),
)
CLASSIFIER_METRICS: tuple[tuple[str, str], ...] = (
    *PROBABILITY_METRICS,
    ("candidates", COUNT_LABEL),
    ("positive_rate", "positive rate"),
    ("candidate_recall", "candidate recall"),
)


def number_or_none(value: object) -> float | None:
    """``value`` as a float when it is a real number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
