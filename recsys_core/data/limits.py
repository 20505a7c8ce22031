"""Input caps of the event-log readers: no file can make the lab read more than it allows.

Every reader counts what it *decodes*, never what a file's metadata claims: a compressed CSV
is read as a stream and stopped past ``max_decompressed_mb`` or ``max_rows``
(:func:`read_capped`), a Parquet file is read in batches of rows with its decoded bytes
counted (:func:`read_parquet_capped`), and a table with more than
:data:`~recsys_core.data.schema.MAX_COLUMNS` columns is refused before its rows are read.
The caps are :class:`~recsys_core.settings.LabSettings`
(``RECSYS_MAX_DECOMPRESSED_MB``, ``RECSYS_MAX_ROWS``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from recsys_core.data.schema import check_column_count
from recsys_core.errors import DataValidationError, InputLimitError
from recsys_core.settings import lab_settings

if TYPE_CHECKING:
    import pyarrow as pa


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


#: Bytes read from a stream at a time while checking the input caps.
_CHUNK = 1 << 20


def limit_message(name: str, what: str, setting: str, value: object) -> str:
    return (
        f"{name} {what}; reading stopped there to protect the machine. If the file is genuine, "
        f"raise the limit with the environment variable {setting} (now {value}), or split "
        "the log."
    )


def read_capped(stream: _Readable, name: str, compressed: bool) -> bytes:
    """Read a (decompressing) stream, stopping as soon as a size or row cap is passed.

    Raises
    ------
    InputLimitError
        More than ``max_decompressed_mb`` bytes or more than ``max_rows`` lines.
    """
    cfg = lab_settings()
    max_bytes = int(cfg.max_decompressed_mb * 1024 * 1024)
    buf = bytearray()
    lines = 0
    while chunk := stream.read(_CHUNK):
        buf += chunk
        lines += chunk.count(b"\n")
        if len(buf) > max_bytes:
            what = "decompresses to" if compressed else "is"
            raise InputLimitError(
                limit_message(
                    name,
                    f"{what} more than {cfg.max_decompressed_mb:g} MB",
                    "RECSYS_MAX_DECOMPRESSED_MB",
                    f"{cfg.max_decompressed_mb:g}",
                )
            )
        if lines > cfg.max_rows + 1:  # + the header line
            raise InputLimitError(
                limit_message(
                    name, f"has more than {cfg.max_rows:,} rows", "RECSYS_MAX_ROWS", cfg.max_rows
                )
            )
    return bytes(buf)


#: Rows decoded at a time while reading Parquet (the decoded size is counted per batch).
_PARQUET_BATCH_ROWS = 8192


def _parquet_limit(name: str, what: str) -> InputLimitError:
    cfg = lab_settings()
    if "rows" in what:
        return InputLimitError(limit_message(name, what, "RECSYS_MAX_ROWS", cfg.max_rows))
    return InputLimitError(
        limit_message(name, what, "RECSYS_MAX_DECOMPRESSED_MB", f"{cfg.max_decompressed_mb:g}")
    )


def _decoded_bytes(batch: pa.RecordBatch) -> int:
    """Bytes ``batch`` takes once decoded: a dictionary column counts its value per row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    total = 0
    for column in batch.columns:
        if pa.types.is_dictionary(column.type):
            values = column.dictionary
            if pa.types.is_string(values.type) or pa.types.is_binary(values.type):
                lengths = pc.binary_length(values).fill_null(0)
                per_row = pc.take(lengths, column.indices.fill_null(0))
                total += int(pc.sum(per_row).as_py() or 0) + 8 * len(column)
            else:
                total += values.nbytes // max(len(values), 1) * len(column) + column.nbytes
        else:
            total += column.nbytes
    return total


def read_parquet_capped(path: Path) -> pd.DataFrame:
    """Read Parquet in batches of rows, counting rows and *decoded* bytes as it goes.

    The file's metadata cannot be trusted for size: a 223 KB file of 2 M rows of one
    1,000-character dictionary value decodes to 2 GB. Text columns are kept
    dictionary-encoded while counting, so no batch is larger than its file; the table is
    decoded only once it is known to fit the caps.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    cfg = lab_settings()
    max_bytes = int(cfg.max_decompressed_mb * 1024 * 1024)
    try:
        schema = pq.read_schema(path)
        check_column_count(len(schema.names), path.name)
        text = [
            f.name
            for f in schema
            if pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type)
            or pa.types.is_binary(f.type)
        ]
        parquet = pq.ParquetFile(path, read_dictionary=text)
        if parquet.metadata.num_rows > cfg.max_rows:
            raise _parquet_limit(
                path.name, f"has {parquet.metadata.num_rows:,} rows, more than {cfg.max_rows:,}"
            )
        batches, rows, decoded = [], 0, 0
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
            rows += batch.num_rows
            decoded += _decoded_bytes(batch)
            if rows > cfg.max_rows:
                raise _parquet_limit(path.name, f"has more than {cfg.max_rows:,} rows")
            if decoded > max_bytes:
                raise _parquet_limit(
                    path.name,
                    f"decodes to more than {cfg.max_decompressed_mb:g} MB (its metadata "
                    "claims far less)",
                )
            batches.append(batch)
        table = pa.Table.from_batches(batches, schema=parquet.schema_arrow)
        columns = [
            col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col
            for col in table.columns
        ]
        return pa.table(columns, names=table.column_names).to_pandas()
    except DataValidationError:
        raise
    except Exception as exc:  # pyarrow raises many types for broken files
        raise DataValidationError(
            f"cannot read {path.name}: it looks like Parquet but is damaged or truncated "
            f"({exc}). Export it again."
        ) from exc
