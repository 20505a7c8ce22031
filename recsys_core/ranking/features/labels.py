"""Building blocks of the features' value labels (a value in the shop's words)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from recsys_core.ranking.features.registry import ValueLabel

# --------------------------------------------------------------------------------------
# Building blocks of the value labels
# --------------------------------------------------------------------------------------


def _number(value: float) -> str:
    """A count or amount without needless decimals (``3``, ``2.5``, ``0.42``)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 10:
        return f"{value:,.0f}"
    return f"{value:.2g}" if abs(value) < 0.1 else f"{value:.2f}".rstrip("0").rstrip(".")


def _times(value: float) -> str:
    n = int(round(value))
    return "once" if n == 1 else f"{n:,} times"


def _days_ago(value: float) -> str:
    if value < 1:
        return "today"
    days = int(math.floor(value))
    return "1 day ago" if days == 1 else f"{days:,} days ago"


def _days(value: float) -> str:
    days = round(value)
    return "1 day" if days == 1 else f"{days:,} days"


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def _missing(value: float) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _count_label(did: str, never: str) -> ValueLabel:
    def label(value: float, row: Mapping[str, float]) -> str:
        return never if value <= 0 else f"{did} {_times(value)}"

    return label


def _since_label(did: str, never: str) -> ValueLabel:
    def label(value: float, row: Mapping[str, float]) -> str:
        return never if _missing(value) else f"{did} {_days_ago(value)}"

    return label


def _score(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def _stage_one_label(model: str, score: str, rank: str, *, rank_first: bool) -> ValueLabel:
    """``"ALS score 0.42"`` for the score feature, ``"ALS ranks it 3rd"`` for the rank one.

    The two labels never read the same, so a waterfall can show both side by side.
    """

    def label(value: float, row: Mapping[str, float]) -> str:
        s, r = row.get(score, math.nan), row.get(rank, math.nan)
        if rank_first:
            if _missing(r):
                return f"not in {model}'s top list"
            return f"{model} ranks it {_ordinal(int(r))}"
        if _missing(s) or (model == "item-kNN" and s <= 0):
            return f"{model} has no score for it" + (
                " (no similar item in their history)" if model == "item-kNN" else ""
            )
        return f"{model} score {_score(s)}"

    return label


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def _simple(template: str, missing: str | None = None) -> ValueLabel:
    def label(value: float, row: Mapping[str, float]) -> str:
        if _missing(value):
            return missing or template.format(v="unknown")
        return template.format(v=_number(value))

    return label
