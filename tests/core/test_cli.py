"""The command-line contract: exit codes, messages and JSON keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from recsys_core.cli import main

GOOD = "user_id,item_id,event,timestamp,quantity,price\nu1,i1,view,2024-01-01,1,2.5\n"


def test_validate_accepts_a_generic_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.csv"
    path.write_text(GOOD)
    assert main(["validate", str(path)]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["validate", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events"] == 1 and summary["users"] == 1


def test_validate_accepts_the_shipped_online_retail_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from recsys_core.paths import DATA_DIR

    assert main(["validate", str(DATA_DIR / "online_retail.parquet"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events_by_type"]["purchase"] == summary["events"] > 390_000


def test_validate_rejects_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("user_id,item_id,event\nu1,i1,teleport\n")
    proc = subprocess.run(
        [sys.executable, "-m", "recsys_core", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "teleport" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_mapping_options(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("cust,sku,what\n1,a,acquired\n")
    args = ["validate", str(path), "--map", "user_id=cust", "--map", "item_id=sku"]
    assert main([*args, "--map", "event=what", "--event-map", "acquired=purchase"]) == 0
    assert main([*args, "--map", "event=what"]) == 2  # unknown event, not mapped
    assert main([*args, "--map", "event=nope"]) == 2  # mapping names a missing column
    assert main([*args, "--map", "broken"]) == 2


def test_validate_accepts_a_generated_demo_store_log(
    small_store_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(small_store_csv), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    by_type = summary["events_by_type"]
    assert by_type["view"] > by_type["cart"] > by_type["purchase"] > 0


def test_datasets_json_lists_both_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) >= {"online-retail", "demo-store"}
    assert rows["online-retail"]["events"] == 396_337 and rows["online-retail"]["kind"] == "real"
    assert rows["demo-store"]["users"] > 0 and rows["demo-store"]["items"] > 0
