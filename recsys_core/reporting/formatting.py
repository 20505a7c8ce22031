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
