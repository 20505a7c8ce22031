"""Readers for event logs: generic CSV / Parquet, UCI Online Retail and RetailRocket.

Every reader returns a :class:`~recsys_core.data.schema.Dataset` or raises
:class:`~recsys_core.errors.DataValidationError` with one plain message. Files are read by
their content, not their name: a gzip/bz2/xz/zip/zstd file under a plain ``.csv`` name is
decompressed, a Parquet file under a ``.csv`` name is read as Parquet (with a note), and
binary junk is reported as such.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_ids
from recsys_core.data.limits import read_capped, read_parquet_capped
from recsys_core.data.schema import (
    Dataset,
    catalog_from_events,
    check_column_count,
    duplicated_names,
    validate_events,
)
from recsys_core.errors import DataValidationError

if TYPE_CHECKING:
    pass

FileFormat = Literal["auto", "events", "online-retail", "retailrocket"]
FORMATS: tuple[str, ...] = ("auto", "events", "online-retail", "retailrocket")

ONLINE_RETAIL_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
)
RETAILROCKET_COLUMNS = ("timestamp", "visitorid", "event", "itemid")
RETAILROCKET_EVENTS = {"view": "view", "addtocart": "cart", "transaction": "purchase"}

#: Stock codes of real products start with five digits (85123A, 22423, 47566B, ...);
#: everything else (POST, D, M, DOT, BANK CHARGES, AMAZONFEE, gift vouchers, ...) is a fee,
#: a discount, postage or a manual adjustment.
_PRODUCT_CODE = re.compile(r"^\d{5}")

_MAGIC: list[tuple[bytes, str]] = [
    (b"PAR1", "parquet"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
]


def sniff_kind(path: Path) -> str:
    """What a file holds judging by its first bytes.

    Returns one of ``parquet``, ``gzip``, ``bz2``, ``xz``, ``zip``, ``zstd``, ``text``,
    ``utf-16``, ``binary`` or ``empty``.
    """
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if not head.strip():
        return "empty"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" in head:
        return "binary"
    # Mostly control bytes other than tab/newline means it is not text.
    ctrl = sum(1 for b in head if b < 9 or 13 < b < 32)
    return "binary" if ctrl > len(head) * 0.05 else "text"


def _fail_open(path: Path, what: str) -> DataValidationError:
    return DataValidationError(f"cannot read {path.name}: {what}")


def _csv_text(path: Path, kind: str, encoding: str) -> str:
    """Decode a (possibly compressed) text file, pointing at the line of a decoding error.

    Compressed files are decompressed as a stream under the caps of
    :class:`~recsys_core.settings.LabSettings` (decompressed size, rows), so a
    decompression bomb stops early with a plain message instead of exhausting memory.
    """
    raw: bytes
    if kind in ("gzip", "bz2", "xz", "zstd", "zip"):
        try:
            if kind == "gzip":
                import gzip

                with gzip.open(path, "rb") as stream:
                    raw = read_capped(stream, path.name, True)
            elif kind == "bz2":
                import bz2

                with bz2.open(path, "rb") as stream:
                    raw = read_capped(stream, path.name, True)
            elif kind == "xz":
                import lzma

                with lzma.open(path, "rb") as stream:
                    raw = read_capped(stream, path.name, True)
            elif kind == "zip":
                import zipfile

                with zipfile.ZipFile(path) as zf:
                    names = [n for n in zf.namelist() if not n.endswith("/")]
                    if len(names) != 1:
                        raise _fail_open(
                            path,
                            f"it is a zip archive with {len(names)} files; "
                            "put exactly one CSV file in it.",
                        )
                    with zf.open(names[0]) as stream:
                        raw = read_capped(stream, path.name, True)
            else:
                raise _fail_open(
                    path, "it is zstd-compressed; decompress it (`zstd -d`) and load the CSV."
                )
        except DataValidationError:
            raise
        except Exception as exc:
            raise _fail_open(path, f"it is {kind}-compressed but damaged ({exc}).") from exc
    else:
        with open(path, "rb") as stream:
            raw = read_capped(stream, path.name, False)
    if kind == "utf-16" or raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif raw.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    if b"\x00" in raw[:8192] and encoding != "utf-16":
        raise _fail_open(path, "after decompression it is binary data, not a CSV file.")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataValidationError(
            f"{path.name} is not valid {encoding} text: line {line} has the byte "
            f"0x{raw[exc.start]:02x} that cannot be decoded. Save the file as UTF-8, or pass "
            "its real encoding (e.g. `--encoding latin-1` or `--encoding cp1252`)."
        ) from exc
    except LookupError as exc:
        raise DataValidationError(f"unknown text encoding {encoding!r}") from exc


def _read_csv_text(text: str, name: str) -> pd.DataFrame:
    """Parse CSV text with every field as a string, checking field counts per line."""
    if not text.strip():
        raise DataValidationError(f"{name} is empty: there is no header and no data.")
    sample = text[:65536]
    try:
        dialect = csv.Sniffer().sniff(sample.splitlines()[0], delimiters=",;\t|")
        sep = dialect.delimiter
    except csv.Error:
        sep = ","
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    try:
        header = next(reader)
    except StopIteration as exc:  # pragma: no cover - guarded by the strip() check
        raise DataValidationError(f"{name} is empty.") from exc
    width = len(header)
    check_column_count(width, name)
    names = [h.strip() for h in header]
    dupes = duplicated_names(names)
    if dupes:
        raise DataValidationError(
            f"duplicated column name(s) {dupes} in the header of {name}: every column needs "
            "its own name. Rename or delete the repeated column."
        )
    bad: list[tuple[int, int]] = []
    n_rows = 0
    try:
        for row in reader:
            n_rows += 1
            if len(row) != width and row:
                bad.append((reader.line_num, len(row)))
                if len(bad) >= 5:
                    break
    except csv.Error as exc:
        raise DataValidationError(
            f"{name} is not well-formed CSV near line {reader.line_num}: {exc}. "
            "Check for unbalanced quotes."
        ) from exc
    if bad:
        where = ", ".join(f"line {ln} has {n}" for ln, n in bad)
        raise DataValidationError(
            f"rows with the wrong number of fields in {name}: the header has {width} fields "
            f"({sep!r}-separated) but {where}. Quote values that contain {sep!r} or fix those "
            "lines."
        )
    if n_rows == 0:
        raise DataValidationError(
            f"{name} has a header ({', '.join(names)}) but no rows: add at least one event."
        )
    df = pd.read_csv(
        io.StringIO(text),
        sep=sep,
        dtype=str,
        keep_default_na=False,
        skip_blank_lines=True,
    )
    df.columns = names
    return df


def read_table(path: str | Path, *, encoding: str = "utf-8") -> tuple[pd.DataFrame, list[str]]:
    """Read a CSV or Parquet file by its content; return the raw frame and notes.

    Raises
    ------
    DataValidationError
        For a missing, empty, binary, damaged or undecodable file.
    """
    path = Path(path)
    if not path.exists():
        raise DataValidationError(f"no such file: {path}. Check the path.")
    if path.is_dir():
        raise DataValidationError(f"{path} is a folder; give the path of a CSV or Parquet file.")
    if path.stat().st_size == 0:
        raise DataValidationError(
            f"{path.name} is empty (0 bytes): there is no header and no data."
        )
    kind = sniff_kind(path)
    suffix = path.suffix.lower()
    notes: list[str] = []
    if kind == "empty":
        raise DataValidationError(f"{path.name} is empty: it holds only blank space.")
    if kind == "binary":
        raise DataValidationError(
            f"{path.name} is binary data, not CSV or Parquet (its first bytes "
            f"{path.read_bytes()[:8]!r} match no known format). Export the log as CSV or Parquet."
        )
    if kind == "parquet":
        if suffix != ".parquet":
            notes.append(f"{path.name} is a Parquet file despite its {suffix or 'missing'} suffix")
        return read_parquet_capped(path), notes
    if suffix == ".parquet":
        what = "compressed text" if kind in ("gzip", "bz2", "xz", "zip", "zstd") else "text"
        notes.append(f"{path.name} is {what}, not Parquet as its suffix says: read it as CSV")
    elif kind in ("gzip", "bz2", "xz", "zip", "zstd") and suffix not in (
        ".gz",
        ".bz2",
        ".xz",
        ".zip",
        ".zst",
    ):
        notes.append(f"{path.name} is {kind}-compressed: decompressed it before reading")
    text = _csv_text(path, kind, encoding)
    return _read_csv_text(text, path.name), notes


def _parse_mapping(pairs: Mapping[str, str] | None) -> dict[str, str]:
    return {str(k).strip(): str(v).strip() for k, v in (pairs or {}).items()}


def detect_format(df: pd.DataFrame) -> str:
    """Guess the format of a raw frame from its columns."""
    cols = set(map(str, df.columns))
    if set(ONLINE_RETAIL_COLUMNS) <= cols:
        return "online-retail"
    if set(RETAILROCKET_COLUMNS) <= cols:
        return "retailrocket"
    return "events"


def load_event_file(
    path: str | Path,
    *,
    fmt: str = "auto",
    column_map: Mapping[str, str] | None = None,
    event_map: Mapping[str, str] | None = None,
    encoding: str = "utf-8",
    name: str | None = None,
    mapping_hint: str = "cli",
) -> Dataset:
    """Load any supported log file into a :class:`Dataset`.

    Parameters
    ----------
    path:
        CSV (any of ``, ; tab |`` separated, optionally compressed) or Parquet file.
    fmt:
        ``auto`` (detect from the columns), ``events`` (the canonical columns, after
        ``column_map``), ``online-retail`` or ``retailrocket``.
    column_map:
        Canonical name -> the file's column name, e.g. ``{"user_id": "CustomerID"}``.
    event_map:
        The file's event name -> canonical event, e.g. ``{"buy": "purchase"}``.
    encoding:
        Text encoding of a CSV file (UTF-8 by default; a BOM is honoured).
    name:
        Dataset name; the file name by default.
    mapping_hint:
        ``cli`` or ``app``: whether messages show ``--map`` options or point at the app's
        mapping tables.
    """
    if fmt not in FORMATS:
        raise DataValidationError(f"unknown format {fmt!r}; choose one of {list(FORMATS)}")
    path = Path(path)
    raw, notes = read_table(path, encoding=encoding)
    if fmt == "auto":
        fmt = detect_format(raw) if not column_map else "events"
    ds_name = name or path.name
    if fmt == "online-retail":
        return online_retail_from_frame(raw, source=path.name, name=ds_name, notes=notes)
    if fmt == "retailrocket":
        return retailrocket_from_frame(raw, source=path.name, name=ds_name, notes=notes)
    mapping = _parse_mapping(column_map)
    if mapping:
        absent = [src for src in mapping.values() if src not in raw.columns]
        if absent:
            raise DataValidationError(
                f"the column mapping names column(s) {absent} that {path.name} does not have; "
                f"its columns are {[str(c) for c in raw.columns]}"
            )
        raw = raw.rename(columns={src: dst for dst, src in mapping.items()})
    events = validate_events(raw, source=path.name, event_map=event_map, mapping_hint=mapping_hint)
    if Columns.TIMESTAMP not in events.columns:
        notes.append("no timestamps: evaluation uses a seeded per-user random split")
    catalog = catalog_from_events(events)
    for col in (Columns.TITLE, Columns.CATEGORY, Columns.BRAND):
        if col in events.columns:
            events = events.drop(columns=col)
    return Dataset(ds_name, events, catalog, source=str(path), notes=tuple(notes))


#: Trailing words of Online Retail descriptions that are not the product noun.
_NOT_A_NOUN = frozenset(
    [
        "pink",
        "blue",
        "red",
        "white",
        "black",
        "green",
        "ivory",
        "gold",
        "silver",
        "purple",
        "orange",
        "yellow",
        "cream",
        "brown",
        "grey",
        "large",
        "small",
        "mini",
        "jumbo",
        "medium",
        "big",
        "assorted",
        "design",
        "set",
        "sets",
        "of",
        "the",
        "and",
        "in",
        "with",
        "retrospot",
        "vintage",
        "asst",
        "colour",
        "colours",
        "love",
        "heart",
        "hearts",
        "christmas",
        "spot",
        "spots",
        "polkadot",
    ]
)


def _product_noun(title: str) -> str:
    """A coarse category for an Online Retail item: its last word that names a product.

    'White Hanging Heart T-Light Holder' -> 'Holder', 'Lunch Bag Red Retrospot' -> 'Bag',
    'Paper Chain Kit 50'S Christmas' -> 'Kit'. A heuristic: the data has no categories.
    """
    words = [w.strip(".,'\"()").lower() for w in str(title).split()]
    for word in reversed(words):
        if word.isalpha() and len(word) > 2 and word not in _NOT_A_NOUN:
            if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
                word = word[:-1]
            return word.title()
    return "Other"


def online_retail_from_frame(
    raw: pd.DataFrame,
    *,
    source: str = "",
    name: str = "online-retail",
    notes: list[str] | None = None,
) -> Dataset:
    """Map the UCI Online Retail columns onto the canonical log.

    Drops cancellations (invoices starting with ``C``), non-positive quantities and prices,
    rows without a customer, and stock codes that are not products (``POST``, ``D``, ``M``,
    ``BANK CHARGES``, ...: codes not starting with five digits). Each remaining row is a
    purchase with quantity and price. The catalog takes each item's most frequent
    Description as title, its median UnitPrice as price, and a coarse category from the
    description's last word (a heuristic; the data has no categories). The catalog price
    is the median over the whole log, for display only: it includes later prices, so the
    ranker's features never read it (they take prices from the events before their cutoff).
    """
    notes = list(notes or [])
    missing = [c for c in ONLINE_RETAIL_COLUMNS if c not in raw.columns]
    if missing:
        raise DataValidationError(
            f"{source or 'the file'} is not in the Online Retail format: missing column(s) "
            f"{missing}; it has {[str(c) for c in raw.columns]}."
        )
    n0 = len(raw)
    if n0 == 0:
        raise DataValidationError(f"{source or 'the file'} has a header but no rows.")
    df = raw[list(ONLINE_RETAIL_COLUMNS)].copy()
    # the file's text columns (the input boundary); item ids become canonical in validate_events
    df["InvoiceNo"] = df["InvoiceNo"].astype(str)
    df["StockCode"] = df["StockCode"].astype(str).str.strip()
    qty = pd.to_numeric(df["Quantity"], errors="coerce")
    price = pd.to_numeric(df["UnitPrice"], errors="coerce")
    for label, parsed, col in (("Quantity", qty, "Quantity"), ("UnitPrice", price, "UnitPrice")):
        bad = parsed.isna() & df[col].notna() & (df[col].astype(str).str.strip() != "")
        if bad.any():
            pos = np.flatnonzero(bad.to_numpy())[:5]
            vals = ", ".join(f"line {p + 2} ({df[col].iloc[p]!r})" for p in pos)
            raise DataValidationError(
                f"non-numeric {label} in {source or 'the file'} at {vals}: use plain numbers."
            )
    cust = pd.to_numeric(df["CustomerID"], errors="coerce")
    keep = (
        ~df["InvoiceNo"].str.upper().str.startswith("C")
        & (qty > 0)
        & (price > 0)
        & cust.notna()
        & df["StockCode"].str.match(_PRODUCT_CODE)
    )
    df = df[keep.to_numpy()]
    if df.empty:
        raise DataValidationError(
            f"{source or 'the file'} has no usable purchases after dropping cancellations, "
            "returns, rows without CustomerID and non-product stock codes."
        )
    df["StockCode"] = df["StockCode"].str.upper()
    events = pd.DataFrame(
        {
            Columns.USER: canonical_ids(cust[keep].astype("int64")).to_numpy(),
            Columns.ITEM: df["StockCode"].to_numpy(),
            Columns.EVENT: "purchase",
            Columns.TIMESTAMP: df["InvoiceDate"].to_numpy(),
            Columns.QUANTITY: qty[keep].to_numpy(),
            Columns.PRICE: price[keep].to_numpy(),
        }
    )
    events = validate_events(events, source=source)
    desc = df["Description"].astype("string").str.strip()
    titles = (
        pd.DataFrame({"item": df["StockCode"].to_numpy(), "title": desc.to_numpy()})
        .dropna()
        .value_counts()
        .reset_index()
        .drop_duplicates("item")
        .set_index("item")["title"]
    )
    prices = pd.Series(price[keep].to_numpy(), index=df["StockCode"].to_numpy()).groupby(level=0)
    catalog = pd.DataFrame({Columns.ITEM: np.sort(df["StockCode"].unique())})
    catalog[Columns.TITLE] = (
        catalog[Columns.ITEM].map(titles).fillna(catalog[Columns.ITEM]).astype(str).str.title()
    )
    catalog[Columns.CATEGORY] = catalog[Columns.TITLE].map(_product_noun)
    catalog[Columns.PRICE] = catalog[Columns.ITEM].map(prices.median()).astype(float)
    notes.append(
        f"kept {len(events):,} of {n0:,} rows: dropped cancellations, non-positive quantities "
        "or prices, rows without CustomerID and non-product stock codes"
    )
    return Dataset(name, events, catalog, source=source, notes=tuple(notes))


def retailrocket_from_frame(
    raw: pd.DataFrame,
    *,
    source: str = "",
    name: str = "retailrocket",
    notes: list[str] | None = None,
) -> Dataset:
    """Map RetailRocket's ``events.csv`` (timestamp in ms, visitorid, event, itemid)."""
    missing = [c for c in RETAILROCKET_COLUMNS if c not in raw.columns]
    if missing:
        raise DataValidationError(
            f"{source or 'the file'} is not in the RetailRocket format: missing column(s) "
            f"{missing}; it has {[str(c) for c in raw.columns]}."
        )
    ts = pd.to_numeric(raw["timestamp"], errors="coerce")
    bad = ts.isna()
    if bad.any():
        pos = np.flatnonzero(bad.to_numpy())[:5]
        vals = ", ".join(f"line {p + 2} ({raw['timestamp'].iloc[p]!r})" for p in pos)
        raise DataValidationError(
            f"RetailRocket timestamps must be Unix milliseconds; cannot read {vals}"
            f"{' in ' + source if source else ''}."
        )
    frame = pd.DataFrame(
        {
            Columns.USER: raw["visitorid"],
            Columns.ITEM: raw["itemid"],
            Columns.EVENT: raw["event"],
            Columns.TIMESTAMP: pd.to_datetime(ts.astype("int64"), unit="ms"),
        }
    )
    events = validate_events(frame, source=source, event_map=RETAILROCKET_EVENTS)
    catalog = catalog_from_events(events)
    return Dataset(name, events, catalog, source=source, notes=tuple(notes or []))
