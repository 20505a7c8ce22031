"""Exports that are safe to open in a spreadsheet: CSV/formula injection neutralised.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a line break is read as a
formula by Excel, LibreOffice and Google Sheets; titles and ids come from uploaded data, so an
export could run ``=HYPERLINK(...)`` on the reader's machine. As OWASP recommends, such text
cells get a leading single quote. A line break *inside* a cell is just as dangerous: a reader
that splits records on a bare carriage return starts a new row with the text after it
(``"Mug\\r=cmd|' /C calc'!A0"`` became a row starting ``=cmd|...``), so carriage returns and
line feeds in text are replaced by a space before the check, and every field is quoted.
Numbers stay numbers (``-3.5`` is left alone).

Every CSV the lab writes for people (downloads in the app, report tables, the audit export)
goes through :func:`safe_frame` / :func:`to_csv_bytes` / :func:`neutralise_cell` /
:func:`csv_text`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

#: First characters a spreadsheet treats as the start of a formula (OWASP), line breaks too.
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r", "\n")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")


def neutralise_cell(value: Any) -> Any:
    """``value`` with line breaks replaced by a space and a leading ``'`` when it is text a
    spreadsheet would run as a formula (also when only spaces come before the formula)."""
    if not isinstance(value, str):
        return value
    starts_unsafe = value.startswith(FORMULA_PREFIXES)
    text = _LINE_BREAKS.sub(" ", value)
    if starts_unsafe or text.lstrip(" ").startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


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
    """CSV bytes (UTF-8) of ``frame`` with formula injection neutralised, every field quoted."""
    kwargs.setdefault("index", False)
    kwargs.setdefault("quoting", csv.QUOTE_ALL)
    kwargs.setdefault("lineterminator", "\r\n")
    return safe_frame(frame).to_csv(**kwargs).encode("utf-8")


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text of ``rows`` under ``header``: every cell neutralised, every field quoted."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow([neutralise_cell(h) for h in header])
    for row in rows:
        writer.writerow([neutralise_cell(v) for v in row])
    return buf.getvalue()
