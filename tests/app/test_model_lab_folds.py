"""The Model lab over time folds: a per-fold chart and the memory column of the selection
table, driven headless on the small store CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui import state

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "model_lab.py")


@pytest.fixture()
def store_csv(small_store_csv: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(state.ENV_DATA, str(small_store_csv))
    monkeypatch.delenv(state.ENV_DATASET, raising=False)
    return small_store_csv


def test_two_folds_draw_one_point_per_fold_and_model_and_show_training_memory(
    store_csv: Path,
) -> None:
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    assert not at.exception
    at.multiselect(key="lab_models").set_value(["popularity", "itemknn"])
    at.number_input(key="lab_folds").set_value(2)
    at.button[0].click().run()
    assert not at.exception and not at.error
    result = at.session_state[state.EVALUATION]["result"]
    assert len(result.folds) == 2
    selection = next(f.value for f in at.dataframe if "interpretability" in f.value.columns)
    assert {"training memory (MB)", "size on disk (MB)"} <= set(selection.columns)
    assert (selection["training memory (MB)"].dropna() >= 0).all()
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    per_fold = [c for c in charts if "per time fold" in json.dumps(c.get("layout", {}))]
    assert per_fold, "no per-fold chart"
    lines = {trace["name"]: trace["x"] for trace in per_fold[0]["data"]}
    assert set(lines) == {"popularity", "itemknn"}
    assert all(len(x) == 2 for x in lines.values())
