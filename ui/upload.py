"""Uploaded logs: read a file for its columns, guess a mapping, validate, store it encrypted.

:func:`preview_upload` reads the raw table (so the user can map columns before anything is
validated); :func:`handle_upload` validates with the loader the CLI uses
(:func:`recsys_core.data.loaders.load_event_file`, the same checks, every problem in one
message, worded for the mapping tables) and, only on success, stores the validated log
encrypted in the uploader's workspace (:mod:`recsys_core.security.uploads`), keeps it in the
session under ``upload:<checksum>`` and makes it active. It stays on disk, so a page reload
finds it again. A bad file leaves the previous dataset active and the loader's message in
``state[UPLOAD_MESSAGE]``; choosing another file clears that message
(:func:`clear_message`).

Nothing here draws; :func:`handle_upload` takes the session state as an optional mapping so
it can be tested with a plain ``dict``.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core.columns import EVENT_TYPES, Columns
from recsys_core.data.loaders import detect_format, load_event_file, read_table
from recsys_core.data.schema import EVENT_ALIASES
from recsys_core.errors import InputLimitError, RecsysError
from recsys_core.provenance import data_checksum
from recsys_core.security.settings import get_settings
from recsys_core.security.uploads import load_upload, store_upload
from ui import state as session

#: Canonical columns the user maps, required first.
MAPPED_COLUMNS: tuple[str, ...] = (
    Columns.USER,
    Columns.ITEM,
    Columns.EVENT,
    Columns.TIMESTAMP,
    Columns.QUANTITY,
    Columns.PRICE,
    Columns.TITLE,
    Columns.CATEGORY,
)
REQUIRED: tuple[str, ...] = (Columns.USER, Columns.ITEM, Columns.EVENT)
#: Uploaded logs kept per session (the oldest is forgotten first).
MAX_UPLOADS = 3
#: Distinct values listed for event-name mapping.
MAX_EVENT_NAMES = 50

#: File-column spellings that suggest a canonical column.
_HINTS: dict[str, tuple[str, ...]] = {
    Columns.USER: (
        "user_id",
        "userid",
        "user",
        "customerid",
        "customer",
        "customer_id",
        "visitorid",
        "shopper",
    ),
    Columns.ITEM: ("item_id", "itemid", "item", "product_id", "productid", "sku", "stockcode"),
    Columns.EVENT: ("event", "event_type", "action", "type", "behaviour", "behavior"),
    Columns.TIMESTAMP: (
        "timestamp",
        "time",
        "date",
        "datetime",
        "invoicedate",
        "event_time",
        "when",
    ),
    Columns.QUANTITY: ("quantity", "qty", "amount", "count"),
    Columns.PRICE: ("price", "unitprice", "unit_price", "value"),
    Columns.TITLE: ("title", "name", "product_name", "description"),
    Columns.CATEGORY: ("category", "category_name", "department"),
}


@dataclass(frozen=True)
class UploadPreview:
    """What the mapping step shows: the raw columns, a few rows, notes and event names."""

    name: str
    columns: list[str]
    head: pd.DataFrame
    rows: int
    notes: list[str]
    detected_format: str
    value_counts: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


@dataclass(frozen=True)
class UploadOutcome:
    """The result of :func:`handle_upload`."""

    ok: bool
    message: str
    key: str | None = None


def _safe_file_name(name: str) -> str:
    base = Path(name or "upload.csv").name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload.csv"


def _write_temp(folder: str, name: str, data: bytes) -> Path:
    path = Path(folder) / _safe_file_name(name)
    path.write_bytes(data)
    return path


def check_upload_size(name: str, size: int) -> None:
    """Refuse a file larger than ``RECSYS_MAX_UPLOAD_MB`` with a message naming the limit."""
    limit = get_settings().max_upload_mb
    if size > limit * 1024 * 1024:
        raise InputLimitError(
            f"{_safe_file_name(name)} is {size / 2**20:,.1f} MB; uploads are limited to "
            f"{limit:g} MB (RECSYS_MAX_UPLOAD_MB). Compress it (gzip), upload a shorter period, "
            "or ask whoever runs the lab to raise the limit."
        )


def clear_message(state: MutableMapping[str, Any] | None = None) -> None:
    """Forget the last upload's outcome (called when another file is chosen)."""
    session.session_store(state).pop(session.UPLOAD_MESSAGE, None)


#: Text encodings the Data page offers for CSV files.
ENCODINGS: tuple[str, ...] = ("utf-8", "latin-1", "cp1252", "utf-16")


def app_wording(message: str) -> str:
    """A loader message worded for the page: its encoding menu, not the CLI's option."""
    return re.sub(
        r"pass its real encoding \(e\.g\. `--encoding ([\w-]+)` or `--encoding ([\w-]+)`\)",
        r"choose its real encoding under 'Text encoding' (e.g. \1 or \2)",
        message,
    )


def preview_upload(name: str, data: bytes, encoding: str = "utf-8") -> UploadPreview:
    """Read an uploaded file's raw table for the mapping step.

    Raises
    ------
    DataValidationError
        The file is too large, empty, binary, damaged or not CSV/Parquet (the loader's message).
    """
    check_upload_size(name, len(data))
    with tempfile.TemporaryDirectory(prefix="recsys-upload-") as folder:
        try:
            raw, notes = read_table(_write_temp(folder, name, data), encoding=encoding)
        except RecsysError as exc:
            raise type(exc)(app_wording(str(exc))) from exc
    values: dict[str, list[tuple[str, int]]] = {}
    for col in raw.columns:
        counts = raw[col].astype("string").str.strip().value_counts()
        if 0 < len(counts) <= MAX_EVENT_NAMES:
            values[str(col)] = [(str(v), int(n)) for v, n in counts.items()]
    return UploadPreview(
        name=_safe_file_name(name),
        columns=[str(c) for c in raw.columns],
        head=raw.head(20).reset_index(drop=True),
        rows=int(len(raw)),
        notes=list(notes),
        detected_format=detect_format(raw),
        value_counts=values,
    )


def guess_column_map(columns: list[str]) -> dict[str, str | None]:
    """A first guess of canonical column -> file column, by name (``None``: not in the file)."""
    lowered = {c.strip().lower(): c for c in columns}
    taken: set[str] = set()
    guess: dict[str, str | None] = {}
    for canonical in MAPPED_COLUMNS:
        found = None
        for hint in _HINTS[canonical]:
            col = lowered.get(hint)
            if col is not None and col not in taken:
                found = col
                break
        if found is not None:
            taken.add(found)
        guess[canonical] = found
    return guess


def guess_event_map(names: list[str]) -> dict[str, str | None]:
    """A first guess of file event name -> canonical event (``None`` when unknown)."""
    return {n: EVENT_ALIASES.get(n.strip().lower()) for n in names}


def mapping_problems(column_map: Mapping[str, str | None]) -> list[str]:
    """What is wrong with a column mapping before trying to load (missing, used twice)."""
    problems = [f"choose the file's column for {c}" for c in REQUIRED if not column_map.get(c)]
    used = [v for v in column_map.values() if v]
    twice = sorted({v for v in used if used.count(v) > 1})
    if twice:
        problems.append(f"column(s) {twice} are mapped to more than one field")
    return problems


def handle_upload(
    name: str,
    data: bytes,
    *,
    state: MutableMapping[str, Any] | None = None,
    fmt: str = "auto",
    column_map: Mapping[str, str | None] | None = None,
    event_map: Mapping[str, str | None] | None = None,
    encoding: str = "utf-8",
    owner: str = "local",
) -> UploadOutcome:
    """Validate an uploaded log; on success store it (encrypted), keep it in the session and
    make it active.

    Parameters
    ----------
    name, data:
        The uploaded file's name and content.
    state:
        The session state: ``st.session_state`` when ``None`` (a dict in tests).
    fmt:
        ``auto``, ``events``, ``online-retail`` or ``retailrocket`` (as the CLI's ``--format``).
    column_map:
        Canonical column -> the file's column; empty entries are ignored.
    event_map:
        The file's event name -> canonical event; empty entries are ignored.
    encoding:
        Text encoding of a CSV file.
    owner:
        Whose workspace keeps the upload (the logged-in user, ``local`` without log-ins).

    Returns
    -------
    UploadOutcome
        ``ok`` and the message shown (the loader's own message on failure). On failure the
        active dataset is unchanged.
    """
    session.ensure_session(state)
    state = session.session_store(state)
    columns = {k: v for k, v in (column_map or {}).items() if isinstance(v, str) and v}
    events = {k: v for k, v in (event_map or {}).items() if isinstance(v, str) and v}
    if columns and fmt == "auto":
        fmt = "events"
    try:
        check_upload_size(name, len(data))
        with tempfile.TemporaryDirectory(prefix="recsys-upload-") as folder:
            path = _write_temp(folder, name, data)
            dataset = load_event_file(
                path,
                fmt=fmt,
                column_map=columns or None,
                event_map=events or None,
                encoding=encoding,
                name=path.name,
                mapping_hint="app",
            )
        checksum = data_checksum(dataset.events)
        stored = store_upload(dataset, owner, _safe_file_name(name), checksum)
        dataset = load_upload(stored)  # what every later session reads back from disk
    except RecsysError as exc:
        outcome = UploadOutcome(False, app_wording(str(exc)))
        state[session.UPLOAD_MESSAGE] = dataclasses.asdict(outcome)
        return outcome
    except (OSError, ValueError) as exc:  # anything the loader did not phrase for a user
        outcome = UploadOutcome(False, f"{_safe_file_name(name)} cannot be read: {exc}")
        state[session.UPLOAD_MESSAGE] = dataclasses.asdict(outcome)
        return outcome
    key = session.UPLOAD_PREFIX + checksum
    uploads: dict[str, Any] = dict(state.get(session.UPLOADS, {}))
    uploads.pop(key, None)
    uploads[key] = dataset
    while len(uploads) > MAX_UPLOADS:
        oldest = next(iter(uploads))
        if oldest == state.get(session.DATASET_KEY):
            break
        uploads.pop(oldest)
    state[session.UPLOADS] = uploads
    session.set_active_key(key, state)
    summary = dataset.summary()
    message = (
        f"{_safe_file_name(name)}: {summary['events']:,} events, {summary['users']:,} shoppers, "
        f"{summary['items']:,} products — now the active dataset."
    )
    if dataset.notes:
        message += " Notes: " + "; ".join(dataset.notes)
    outcome = UploadOutcome(True, message, key)
    state[session.UPLOAD_MESSAGE] = dataclasses.asdict(outcome)
    return outcome


def canonical_events() -> list[str]:
    """The event names a file's events can be mapped onto."""
    return list(EVENT_TYPES)
