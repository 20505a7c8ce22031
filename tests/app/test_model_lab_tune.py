"""The Model lab's Tune action, driven headless (the page alone, on a small store CSV)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from recsys_core.data.loaders import load_event_file
from recsys_core.tuning import settings_for, tuned_path
from ui import state

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "model_lab.py")


@pytest.fixture()
def store_csv(small_store_csv: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(state.ENV_DATA, str(small_store_csv))
    monkeypatch.delenv(state.ENV_DATASET, raising=False)
    return small_store_csv


def test_tune_shows_trials_saves_the_settings_and_the_form_uses_them(store_csv: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception
    assert any("scaled defaults" in c.value for c in at.caption)
    at.number_input(key="lab_tune_budget").set_value(0.15)
    at.multiselect(key="lab_tune_models").set_value(["itemknn"])
    at.button(key="lab_tune").click().run()
    assert not at.exception and not at.error
    assert at.success and "saved" in at.success[0].value
    trials = next(f.value for f in at.dataframe if "best so far" in f.value.columns)
    assert len(trials) >= 2 and set(trials["model"]) == {"itemknn"}
    chart = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert any(trace.get("name") == "best so far" for trace in chart["data"])
    assert any("tuned on" in c.value for c in at.caption)
    dataset = load_event_file(store_csv)
    applied = settings_for(dataset)
    assert applied.origin == "tuned" and tuned_path(dataset.name).exists()
    neighbours = applied.preset.model_params["itemknn"]["neighbours"]
    assert at.number_input(key="lab_knn_k").value == neighbours
