"""Hostile input files: a decompression bomb stops early with exit 2 under a memory cap."""

from __future__ import annotations

import gzip
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from recsys_core.data.loaders import load_event_file
from recsys_core.errors import InputLimitError

#: Address-space cap of the child process: far below what reading the bomb whole would take.
MEMORY_CAP = 3 * 1024**3


def _bomb(path: Path, rows_per_member: int = 1_000_000, members: int = 50) -> Path:
    """A gzip file of 50M identical event rows (~550 MB decompressed, ~1 MB on disk):
    one compressed member repeated (gzip readers concatenate members)."""
    member = gzip.compress(b"u1,i1,purchase\n" * rows_per_member, compresslevel=9)
    with path.open("wb") as fh:
        fh.write(gzip.compress(b"user_id,item_id,event\n"))
        for _ in range(members):
            fh.write(member)
    return path


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recsys_core", *args],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_memory,
        env={**os.environ, **(env or {}), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    )


@pytest.mark.slow
def test_a_decompression_bomb_is_refused_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "events.csv.gz")
    assert bomb.stat().st_size < 2_000_000
    for command in (
        ("validate", str(bomb)),
        ("train", "--data", str(bomb)),
        ("evaluate", "--data", str(bomb)),
    ):
        done = _cli(*command)
        assert done.returncode == 2, (command, done.stderr[-2000:])
        assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
        assert "RECSYS_MAX_ROWS" in done.stderr and "5,000,000 rows" in done.stderr


def test_the_decompressed_size_cap_names_its_setting(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "events.csv.gz", members=3)
    done = _cli("validate", str(bomb), env={"RECSYS_MAX_DECOMPRESSED_MB": "10"})
    assert done.returncode == 2
    assert "decompresses to more than 10 MB" in done.stderr
    assert "RECSYS_MAX_DECOMPRESSED_MB" in done.stderr and "Traceback" not in done.stderr


def test_raising_the_row_cap_lets_a_long_genuine_file_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,event\n" + "".join(f"u{i},i{i % 7},view\n" for i in range(50)))
    monkeypatch.setenv("RECSYS_MAX_ROWS", "40")
    with pytest.raises(InputLimitError, match="more than 40 rows"):
        load_event_file(path)
    monkeypatch.setenv("RECSYS_MAX_ROWS", "50")
    assert len(load_event_file(path).events) == 50


def test_a_parquet_file_over_the_row_cap_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    path = tmp_path / "events.parquet"
    pd.DataFrame({"user_id": ["a"] * 30, "item_id": ["b"] * 30, "event": ["view"] * 30}).to_parquet(
        path
    )
    monkeypatch.setenv("RECSYS_MAX_ROWS", "20")
    with pytest.raises(InputLimitError, match="30 rows, more than 20"):
        load_event_file(path)


def _dictionary_bomb(path: Path, rows: int = 2_000_000) -> Path:
    """A small Parquet file of ``rows`` rows of one 1,000-character dictionary value: its
    metadata claims little, it decodes to 2 GB (issue 23)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def column(value: str) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array([value]))

    table = pa.table(
        {"user_id": column("u" * 1000), "item_id": column("i1"), "event": column("view")}
    )
    pq.write_table(table, path, compression="zstd")
    return path


def test_a_parquet_dictionary_bomb_is_refused_by_its_decoded_size(tmp_path: Path) -> None:
    bomb = _dictionary_bomb(tmp_path / "events.parquet")
    assert bomb.stat().st_size < 1_000_000
    done = _cli("validate", str(bomb))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
    assert "decodes to more than 1024 MB" in done.stderr
    assert "RECSYS_MAX_DECOMPRESSED_MB" in done.stderr


def test_genuine_parquet_still_reads_as_plain_text_columns(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "events.parquet"
    frame = pd.DataFrame(
        {"user_id": ["a", "b", "a"], "item_id": ["x", "y", "y"], "event": ["view"] * 3}
    )
    frame.to_parquet(path)
    events = load_event_file(path).events
    assert len(events) == 3 and sorted(events["user_id"].astype(str).unique()) == ["a", "b"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_of_very_many_columns_is_refused_at_once(tmp_path: Path, suffix: str) -> None:
    """40k columns took 98 s in the quadratic duplicate check; now a column cap refuses
    them before any row is read."""
    import pandas as pd

    path = tmp_path / f"wide{suffix}"
    names = ["user_id", "item_id", "event"] + [f"c{i}" for i in range(40_000)]
    if suffix == ".csv":
        path.write_text(",".join(names) + "\n" + ",".join(["1"] * len(names)) + "\n")
    else:
        pd.DataFrame([[1] * len(names)], columns=names).to_parquet(path)
    with pytest.raises(InputLimitError, match="40,003 columns, more than 1,000"):
        load_event_file(path)


def test_duplicate_columns_are_still_named(tmp_path: Path) -> None:
    from recsys_core.data.schema import duplicated_names
    from recsys_core.errors import DataValidationError

    names = [f"c{i}" for i in range(900)] + ["c5", "c7", "c5"]
    assert duplicated_names(names) == ["c5", "c7"]
    path = tmp_path / "dupes.csv"
    path.write_text("user_id,item_id,event,event\nu,i,view,view\n")
    with pytest.raises(DataValidationError, match=r"duplicated column name\(s\) \['event'\]"):
        load_event_file(path)
