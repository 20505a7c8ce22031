"""Exports that are safe to open in a spreadsheet: CSV/formula injection neutralised.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
formula by Excel, LibreOffice and Google Sheets; titles and ids come from uploaded data, so an
export could run ``=HYPERLINK(...)`` on the reader's machine. As OWASP recommends, such text
cells get a leading single quote. Numbers stay numbers (``-3.5`` is left alone).

Every CSV the lab writes for people (downloads in the app, report tables, the audit export)
goes through :func:`safe_frame` / :func:`to_csv_bytes` / :func:`neutralise_cell`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: First characters a spreadsheet treats as the start of a formula (OWASP).
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells (and column names) cannot start a formula."""
    out = frame.copy()
    for col in out.columns:
        series = out[col]
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype(object)
        if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
            out[col] = series.map(neutralise_cell)
    out.columns = [neutralise_cell(str(c)) if isinstance(c, str) else c for c in out.columns]
    return out


def to_csv_bytes(frame: pd.DataFrame, **kwargs: Any) -> bytes:
    """CSV bytes (UTF-8) of ``frame`` with formula injection neutralised."""
    kwargs.setdefault("index", False)
    return safe_frame(frame).to_csv(**kwargs).encode("utf-8")
