"""Validation reports every problem of a log in one pass, with row numbers and counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys_core.data.loaders import load_event_file
from recsys_core.errors import DataValidationError

LOG = (
    "user_id,item_id,event,timestamp,price\n"
    "u1,i1,view,2024-01-01,1.0\n"
    ",i2,view,2024-01-02,2.0\n"
    "u3,i3,zap,2024-01-03,3.0\n"
    "u4,i4,zap,yesterday,4.0\n"
    "u5,i5,purchase,2024-01-05,£5\n"
)


def test_every_problem_is_reported_with_lines_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    with pytest.raises(DataValidationError) as caught:
        load_event_file(path)
    message = str(caught.value)
    assert message.startswith("4 problems in log.csv:")
    assert "1 row(s) have an empty user_id in log.csv at line 3" in message
    assert "'zap' (2 rows)" in message and "--event-map zap=" in message
    assert "1 timestamp(s) cannot be read" in message and "line 5 ('yesterday')" in message
    assert "1 non-numeric value(s) in column 'price'" in message and "line 6 ('£5')" in message
    assert len(caught.value.problems) == 4  # type: ignore[attr-defined]


def test_the_app_wording_points_at_the_mapping_tables_not_cli_flags(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    with pytest.raises(DataValidationError) as caught:
        load_event_file(path, mapping_hint="app")
    assert "event names table" in str(caught.value) and "--" not in str(caught.value)
    bad = tmp_path / "cols.csv"
    bad.write_text("who,what\n1,2\n")
    with pytest.raises(DataValidationError) as missing:
        load_event_file(bad, mapping_hint="app")
    assert "column mapping table" in str(missing.value) and "--map" not in str(missing.value)
