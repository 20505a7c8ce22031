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
