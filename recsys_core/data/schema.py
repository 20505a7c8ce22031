"""The canonical event log, its validation, and the :class:`Dataset` that carries it.

An event log has one row per behaviour with the columns ``user_id``, ``item_id``, ``event``
(``view``, ``cart``, ``favorite``, ``purchase``) and optionally ``timestamp``, ``quantity`` and
``price``. :func:`validate_events` turns a raw frame (all columns as text is fine) into that
shape with compact dtypes, or raises :class:`DataValidationError` saying what is wrong, where
and how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from recsys_core.columns import EVENT_TYPES, OPTIONAL_EVENT_COLUMNS, REQUIRED_EVENT_COLUMNS, Columns
from recsys_core.data.dataset import Dataset, canonical_ids
from recsys_core.errors import DataValidationError

__all__ = ["Dataset", "catalog_from_events", "validate_events"]

#: Common spellings of event names that map onto the canonical ones without being asked.
EVENT_ALIASES: dict[str, str] = {
    "view": "view",
    "views": "view",
    "pageview": "view",
    "page_view": "view",
    "click": "view",
    "detail": "view",
    "cart": "cart",
    "addtocart": "cart",
    "add_to_cart": "cart",
    "add-to-cart": "cart",
    "basket": "cart",
    "favorite": "favorite",
    "favourite": "favorite",
    "fav": "favorite",
    "wishlist": "favorite",
    "like": "favorite",
    "purchase": "purchase",
    "buy": "purchase",
    "order": "purchase",
    "transaction": "purchase",
    "sale": "purchase",
}

EVENT_DTYPE = pd.CategoricalDtype(categories=list(EVENT_TYPES), ordered=False)

_MAX_LISTED = 5
#: Most columns an event log may have (a real one has a handful; a file of a million
#: columns is an attack on the parser, refused before anything else is read).
MAX_COLUMNS = 1_000


def duplicated_names(names: list[str]) -> list[str]:
    """The names that occur more than once, sorted (linear in the number of names)."""
    from collections import Counter

    return sorted(name for name, count in Counter(names).items() if count > 1)


def check_column_count(count: int, source: str) -> None:
    """Refuse a table with more than :data:`MAX_COLUMNS` columns.

    Raises
    ------
    DataValidationError
        Too many columns (an :class:`~recsys_core.errors.InputLimitError`).
    """
    if count > MAX_COLUMNS:
        from recsys_core.errors import InputLimitError

        raise InputLimitError(
            f"{source} has {count:,} columns, more than {MAX_COLUMNS:,}: an event log needs "
            "a handful (user, item, event, time, quantity, price). Export only the columns "
            "the lab needs."
        )


#: How a message tells the user to map columns and event names: on the command line, or in
#: the app's mapping tables (``mapping_hint`` of :func:`validate_events`).
MAPPING_HINTS = ("cli", "app")


def _problems_error(problems: list[str], source: str) -> DataValidationError:
    """One error carrying every problem found (``.problems``); one problem reads as before."""
    if len(problems) == 1:
        exc = DataValidationError(problems[0])
    else:
        listed = "\n".join(f"- {p}" for p in problems)
        exc = DataValidationError(f"{len(problems)} problems{_where(source)}:\n{listed}")
    exc.problems = list(problems)  # type: ignore[attr-defined]
    return exc


def _collect(problems: list[str], exc: DataValidationError) -> None:
    problems.extend(getattr(exc, "problems", None) or [str(exc)])


def _where(source: str) -> str:
    return f" in {source}" if source else ""


def _line_of(row_position: int, header_lines: int) -> int:
    """1-based file line of a 0-based data row (the header takes ``header_lines`` lines)."""
    return int(row_position) + 1 + header_lines


def _list_rows(positions: np.ndarray, values: pd.Series | None, header_lines: int) -> str:
    shown = []
    for pos in positions[:_MAX_LISTED]:
        where = f"line {_line_of(pos, header_lines)}"
        if values is not None:
            where += f" ({values.iloc[int(pos)]!r})"
        shown.append(where)
    more = f" and {len(positions) - _MAX_LISTED} more" if len(positions) > _MAX_LISTED else ""
    return ", ".join(shown) + more


def _check_columns(df: pd.DataFrame, source: str, mapping_hint: str = "cli") -> None:
    names = [str(c) for c in df.columns]
    check_column_count(len(names), f"the event log{_where(source)}")
    dupes = duplicated_names(names)
    if dupes:
        raise DataValidationError(
            f"duplicated column name(s) {dupes}{_where(source)}: every column needs its own name. "
            "Rename or delete the repeated column in the header."
        )
    missing = [c for c in REQUIRED_EVENT_COLUMNS if c not in names]
    if missing:
        raise DataValidationError(
            f"missing required column(s) {missing}{_where(source)}. The file has the columns "
            f"{names}. "
            + (
                "Choose the file's column for each of them in the column mapping table."
                if mapping_hint == "app"
                else "Rename them in the file, or map them, e.g. "
                "`--map user_id=CustomerID --map item_id=SKU --map event=action`."
            )
        )


def _normalise_ids(col: pd.Series) -> pd.Series:
    """Ids as trimmed strings; floats such as ``12346.0`` become ``12346``."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = col.cat.categories
        if cats.dtype == object or pd.api.types.is_string_dtype(cats.dtype):
            return col
        col = col.astype(object)
    if pd.api.types.is_float_dtype(col.dtype):
        whole = col.dropna()
        if len(whole) and bool((whole == np.floor(whole)).all()):
            col = col.astype("Int64")
    text = col.astype("string").str.strip()
    return text


def _parse_events(
    col: pd.Series,
    event_map: Mapping[str, str] | None,
    source: str,
    mapping_hint: str = "cli",
) -> pd.Series:
    if isinstance(col.dtype, pd.CategoricalDtype) and list(col.cat.categories) == list(EVENT_TYPES):
        if col.isna().any():
            raise DataValidationError(f"empty event names{_where(source)}")
        return col
    raw = col.astype("string").str.strip()
    mapping = {k.lower(): v for k, v in EVENT_ALIASES.items()}
    if event_map:
        for k, v in event_map.items():
            if v not in EVENT_TYPES:
                raise DataValidationError(
                    f"the event mapping {k!r} -> {v!r} targets an unknown event; targets must be "
                    f"one of {list(EVENT_TYPES)}"
                )
            mapping[str(k).strip().lower()] = v
    uniq = pd.Series(raw.dropna().unique()).astype(str)  # event names from the file
    unknown = sorted({u for u in uniq if u.lower() not in mapping})
    n_empty = int(raw.isna().sum() + (raw == "").sum())
    problems: list[str] = []
    if unknown:
        counts = raw[raw.isin(unknown)].value_counts()
        listed = ", ".join(f"{name!r} ({int(counts.get(name, 0))} rows)" for name in unknown[:10])
        if len(unknown) > 10:
            listed += f" and {len(unknown) - 10} more"
        if mapping_hint == "app":
            how = "in the event names table (column 'canonical event')"
        else:
            example = " ".join(
                f"--event-map {u}=<view|cart|favorite|purchase>" for u in unknown[:2]
            )
            how = f"e.g. `{example}`,"
        problems.append(
            f"unknown event name(s){_where(source)}: {listed}. The lab understands "
            f"{list(EVENT_TYPES)}. Map yours onto them {how} or drop those rows."
        )
    if n_empty:
        positions = np.flatnonzero((raw.isna() | (raw == "")).to_numpy())
        problems.append(
            f"{n_empty} row(s) have an empty event{_where(source)} at "
            f"{_list_rows(positions, None, 1)}. Fill in the event name or delete those rows."
        )
    if problems:
        raise _problems_error(problems, source)
    lowered = raw.str.lower().map(mapping)
    return pd.Series(pd.Categorical(lowered, dtype=EVENT_DTYPE), index=col.index)


def _text_in_first(values: pd.Series, n: int = 100) -> bool:
    """Whether one of the first ``n`` values is not a number (then the whole column is not
    epochs, and converting all of it to numbers, 0.2 s on Online Retail, is skipped)."""
    head = values.iloc[:n].astype("string").str.strip()
    return bool(pd.to_numeric(head, errors="coerce").isna().any())


def _parse_timestamps(col: pd.Series, source: str, header_lines: int) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        ts = col
        if getattr(ts.dt, "tz", None) is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        return ts.astype("datetime64[ns]")
    empty = col.isna() | (col.astype("string").str.strip() == "")
    if pd.api.types.is_numeric_dtype(col.dtype):
        numeric = pd.to_numeric(col, errors="coerce")
    elif _text_in_first(col[~empty]):  # dates as text: not every value is a number
        numeric = pd.Series(np.nan, index=col.index)
    else:
        numeric = pd.to_numeric(col.astype("string").str.strip(), errors="coerce")
    if numeric.notna().sum() == (~empty).sum() and (~empty).any():
        # Unix epochs: pick the unit from the magnitude (seconds, milliseconds, microseconds).
        top = float(numeric.abs().max())
        unit = "s" if top < 1e11 else "ms" if top < 1e14 else "us"
        parsed = pd.to_datetime(numeric, unit=unit, errors="coerce")
    else:
        text = col.astype("string").str.strip()
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
        retry = parsed.isna() & ~empty
        if retry.any():  # slower, but reads e.g. '12/01/2010 08:26' or 'Dec 1 2010'
            parsed[retry] = pd.to_datetime(text[retry], errors="coerce", format="mixed", utc=True)
        parsed = parsed.dt.tz_localize(None)
    bad = parsed.isna() & ~empty
    problems: list[str] = []
    if bad.any():
        positions = np.flatnonzero(bad.to_numpy())
        problems.append(
            f"{len(positions)} timestamp(s) cannot be read{_where(source)}, column 'timestamp' at "
            f"{_list_rows(positions, col, header_lines)}. Use ISO 8601 "
            "('2024-03-01 14:05:00') or Unix seconds/milliseconds."
        )
    if empty.any():
        positions = np.flatnonzero(empty.to_numpy())
        problems.append(
            f"{len(positions)} row(s) have an empty timestamp{_where(source)} at "
            f"{_list_rows(positions, None, header_lines)}. Fill them in, or drop the whole "
            "'timestamp' column to use a random split."
        )
    if problems:
        raise _problems_error(problems, source)
    return parsed.astype("datetime64[ns]")


def _parse_number(
    col: pd.Series, name: str, source: str, header_lines: int, default: float
) -> pd.Series:
    if pd.api.types.is_numeric_dtype(col.dtype):
        return col.astype("float64").fillna(default)
    text = col.astype("string").str.strip()
    empty = text.isna() | (text == "")
    numeric = pd.to_numeric(text.where(~empty), errors="coerce")
    bad = numeric.isna() & ~empty
    if bad.any():
        positions = np.flatnonzero(bad.to_numpy())
        raise DataValidationError(
            f"{len(positions)} non-numeric value(s) in column {name!r}{_where(source)} at "
            f"{_list_rows(positions, col, header_lines)}. Use plain numbers with a dot as "
            "decimal separator (e.g. 2.50), no currency signs."
        )
    return numeric.astype("float64").fillna(default)


def validate_events(
    df: pd.DataFrame,
    *,
    source: str = "",
    event_map: Mapping[str, str] | None = None,
    header_lines: int = 1,
    mapping_hint: str = "cli",
) -> pd.DataFrame:
    """Check a raw event log and return it in canonical form.

    Every problem found is reported in one pass (one error listing them all, with row
    numbers and counts); only missing columns or an empty log stop the checks early.

    Parameters
    ----------
    df:
        Raw frame whose columns are already named canonically (apply column mapping first).
        Extra columns (e.g. ``title``, ``category``) are kept.
    source:
        The file name, used in messages.
    event_map:
        Extra event-name mapping (``{"buy": "purchase"}``); common aliases are always known.
    header_lines:
        Lines before the first data row in the source file, so messages quote file lines.
    mapping_hint:
        ``cli`` (messages show ``--map`` / ``--event-map``) or ``app`` (they point at the
        app's mapping tables).

    Returns
    -------
    pandas.DataFrame
        ``user_id``/``item_id`` as categories of strings, ``event`` as a category over
        ``EVENT_TYPES``, ``timestamp`` as ``datetime64[ns]`` (if present), ``quantity`` and
        ``price`` as floats (if present), sorted by timestamp (stable).

    Raises
    ------
    DataValidationError
        With what is wrong, where (column, file line, value) and how to fix it.
    """
    _check_columns(df, source, mapping_hint)
    if len(df) == 0:
        raise DataValidationError(
            f"the event log{_where(source)} has a header but no rows: add at least one event "
            "(one line per view, cart, favourite or purchase)."
        )
    df = df.reset_index(drop=True)
    out = pd.DataFrame(index=df.index)
    for col in (Columns.USER, Columns.ITEM):
        out[col] = _normalise_ids(df[col])
    empty_u = out[Columns.USER].isna() | (out[Columns.USER].astype("string") == "")
    empty_i = out[Columns.ITEM].isna() | (out[Columns.ITEM].astype("string") == "")
    if (empty_u & empty_i).all():
        raise DataValidationError(
            f"every row{_where(source)} has an empty user_id and item_id: check that the "
            "columns are mapped to the right fields and the delimiter is right."
        )
    problems: list[str] = []
    for name, mask in ((Columns.USER, empty_u), (Columns.ITEM, empty_i)):
        if mask.any():
            positions = np.flatnonzero(mask.to_numpy())
            problems.append(
                f"{len(positions)} row(s) have an empty {name}{_where(source)} at "
                f"{_list_rows(positions, None, header_lines)}. Fill them in or delete those rows."
            )
    try:
        out[Columns.EVENT] = _parse_events(df[Columns.EVENT], event_map, source, mapping_hint)
    except DataValidationError as exc:
        _collect(problems, exc)
    if Columns.TIMESTAMP in df.columns:
        try:
            out[Columns.TIMESTAMP] = _parse_timestamps(df[Columns.TIMESTAMP], source, header_lines)
        except DataValidationError as exc:
            _collect(problems, exc)
    for col, default in ((Columns.QUANTITY, 1.0), (Columns.PRICE, float("nan"))):
        if col in df.columns:
            try:
                out[col] = _parse_number(df[col], col, source, header_lines, default)
            except DataValidationError as exc:
                _collect(problems, exc)
    if problems:
        raise _problems_error(problems, source)
    for extra in df.columns:
        if extra not in out.columns and extra not in OPTIONAL_EVENT_COLUMNS:
            out[extra] = df[extra]
    for col in (Columns.USER, Columns.ITEM):
        if not isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = canonical_ids(out[col]).astype("category")
    if Columns.TIMESTAMP in out.columns:
        out = out.sort_values(Columns.TIMESTAMP, kind="stable").reset_index(drop=True)
    return out


def catalog_from_events(events: pd.DataFrame) -> pd.DataFrame:
    """Build a catalog from an event log's extra columns (``title``, ``category``, ``price``).

    Items without a title get their id as title. The price is the median over the whole
    log (for display); features that must not see the future take prices from the events
    before their cutoff instead (:mod:`recsys_core.ranking.features`).
    """
    items = canonical_ids(events[Columns.ITEM])
    cat = pd.DataFrame({Columns.ITEM: items})
    for col in (Columns.TITLE, Columns.CATEGORY, Columns.BRAND, Columns.PRICE):
        if col in events.columns:
            cat[col] = events[col].to_numpy()
    agg: dict[str, Any] = {}
    for col in (Columns.TITLE, Columns.CATEGORY, Columns.BRAND):
        if col in cat.columns:
            agg[col] = "first"
    if Columns.PRICE in cat.columns:
        agg[Columns.PRICE] = "median"
    if agg:
        out = cat.groupby(Columns.ITEM, sort=True, observed=True).agg(agg).reset_index()
    else:
        out = pd.DataFrame({Columns.ITEM: np.sort(items.unique())})
    if Columns.TITLE not in out.columns:
        out[Columns.TITLE] = out[Columns.ITEM]
    out[Columns.TITLE] = out[Columns.TITLE].fillna(out[Columns.ITEM]).astype(str)  # display text
    return out
