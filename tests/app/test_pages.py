"""The Streamlit pages, driven headless with ``streamlit.testing.v1.AppTest``.

One lab is trained per session on a small seeded demo store (300 shoppers, 150 products,
20k events) written as a CSV with titles; ``$RECSYS_APP_DATA`` points at it and
``$RECSYS_HOME`` at the folder holding the lab, so every AppTest only loads models.

The upload widget is not driven (AppTest cannot feed ``st.file_uploader``): the upload logic
is the function :func:`ui.upload.handle_upload`, tested directly, and the pages are then run
with the session state it leaves behind.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from recsys_core.data.loaders import load_event_file
from recsys_core.errors import DataValidationError
from recsys_core.serving import (
    RecommendationService,
    list_versions,
    load_lab,
    resolve_version,
    save_lab,
)
from recsys_core.serving.lab import models_root
from recsys_core.training import TrainConfig, train_lab
from ui import state
from ui.charts import timeline_days, timeline_figure, waterfall_figure, waterfall_frame
from ui.frames import co_counts, other_model_ranks
from ui.resources import wanted_models
from ui.upload import guess_column_map, guess_event_map, handle_upload, mapping_problems

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 120

#: Page file -> the title it must show (and the browser test's url path).
PAGES: dict[str, str] = {
    "app_pages/decision.py": "Decision",
    "app_pages/overview.py": "Overview",
    "app_pages/data.py": "Data",
    "app_pages/shopper.py": "Shopper",
    "app_pages/similar.py": "Similar items",
    "app_pages/search.py": "Search",
    "app_pages/model_lab.py": "Model lab",
    "app_pages/explanations.py": "Explanations",
    "app_pages/planner.py": "Test planner",
    "app_pages/merchandising.py": "Merchandising",
}


@dataclasses.dataclass(frozen=True)
class AppData:
    """The small store the app runs on."""

    csv: Path
    home: Path
    catalog: pd.DataFrame
    dataset_name: str


@pytest.fixture(scope="session")
def app_data(tmp_path_factory: pytest.TempPathFactory) -> AppData:
    """Write the small demo store as a CSV and train + save a lab on it (once)."""
    from recsys_core.data.demo_store import generate_demo_store

    root = tmp_path_factory.mktemp("app")
    events, catalog = generate_demo_store(n_users=300, n_items=150, n_events=20_000, seed=1)
    events = events.merge(catalog[["item_id", "title", "category"]], on="item_id", how="left")
    csv = root / "small_store.csv"
    events.to_csv(csv, index=False)
    home = root / "home"
    dataset = load_event_file(csv)
    save_lab(train_lab(dataset, TrainConfig(models=wanted_models(dataset))), home=home)
    return AppData(csv=csv, home=home, catalog=catalog, dataset_name=dataset.name)


@pytest.fixture(autouse=True)
def _isolated_home(app_data: AppData, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Overrides the shared fixture: the app reads the pre-trained lab and the small CSV."""
    monkeypatch.setenv("RECSYS_HOME", str(app_data.home))
    monkeypatch.setenv(state.ENV_DATA, str(app_data.csv))
    monkeypatch.delenv(state.ENV_DATASET, raising=False)
    yield


def _run(page: str | None = None, session: dict[str, Any] | None = None) -> AppTest:
    """Run the app (and then ``page``), with ``session`` copied into its session state."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (session or {}).items():
        at.session_state[key] = value
    at.run()
    if page is not None and page != "app_pages/overview.py":
        at.switch_page(page).run()
    return at


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.exception] + [e.value for e in at.error]


def _recommendations(at: AppTest) -> pd.DataFrame:
    """The Shopper page's main table (the one with probabilities and per-model ranks)."""
    for frame in at.dataframe:
        value = frame.value
        if "purchase_probability" in value.columns and "rank" in value.columns:
            return value
    raise AssertionError("no recommendation table on the page")


# ---------------------------------------------------------------------------------- pages


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_runs_without_exception(page: str) -> None:
    at = _run(page)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == PAGES[page]


def test_overview_shows_dataset_and_trained_models(app_data: AppData) -> None:
    at = _run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Events"] == "20,000"
    assert metrics["Shoppers"] == "300"
    models = at.dataframe[0].value
    assert set(wanted_models(load_event_file(app_data.csv))) == set(models["model"])
    assert not at.status, "a saved lab must be loaded, not retrained"


def test_shopper_page_shows_k_recommendations_with_probabilities() -> None:
    at = _run("app_pages/shopper.py")
    at.slider(key="shopper_k").set_value(7).run()
    assert not _errors(at)
    reco = _recommendations(at)
    assert len(reco) == 7
    assert reco["rank"].tolist() == list(range(1, 8))
    assert reco["title"].str.len().gt(0).all()
    probs = reco["purchase_probability"].to_numpy(dtype=float)
    assert np.isfinite(probs).all()
    assert ((probs >= 0) & (probs <= 1)).all()
    # where the other models rank each item: "model #rank" parts, or a dash for none
    others = reco["other_ranks"].astype(str)
    pattern = r"^(—|[a-z]+ #\d+( · [a-z]+ #\d+)*)$"
    assert others.str.match(pattern).all(), others.tolist()


def test_shopper_bought_checkbox_starts_at_the_labs_rule() -> None:
    """The list's already-bought default is the lab's rule (evaluation's), named in the help."""
    at = _run("app_pages/shopper.py")
    box = at.checkbox(key="shopper_bought")
    assert box.label == "Hide items already bought"
    assert box.help.startswith("Default (")
    remove = box.value
    box.set_value(not remove).run()
    assert not _errors(at) and len(_recommendations(at)) > 0


def test_shopper_answers_feed_the_operations_health_window() -> None:
    from ui.operations import live_service

    at = _run("app_pages/shopper.py")
    names = [p.name for p in models_root().iterdir() if p.is_dir()]
    before = sum(live_service(n).stats()["answers"] for n in names)
    at.slider(key="shopper_k").set_value(4).run()
    assert not _errors(at)
    assert sum(live_service(n).stats()["answers"] for n in names) == before + 1


def test_choosing_another_shopper_changes_the_list() -> None:
    at = _run("app_pages/shopper.py")
    picker = at.selectbox(key="shopper_select")
    first_user = picker.value
    before = _recommendations(at)["item_id"].tolist()
    changed = False
    for other in ("U038", "U062", "U011", "U150"):
        if other == first_user:
            continue
        at.selectbox(key="shopper_select").select(other).run()
        assert not _errors(at)
        assert at.session_state[state.SHOPPER] == other
        if _recommendations(at)["item_id"].tolist() != before:
            changed = True
            break
    assert changed, "every other shopper got exactly the same list"


def test_shopper_search_box_filters_the_picker() -> None:
    at = _run("app_pages/shopper.py")
    at.text_input(key="shopper_query").input("U01").run()
    values = [o.split(" ")[0] for o in at.selectbox(key="shopper_select").options]
    assert values and all("U01" in v for v in values)


def test_search_finds_items_for_a_word_from_a_title(app_data: AppData) -> None:
    title = str(app_data.catalog["title"].iloc[0])
    word = max(title.split(), key=len)
    at = _run("app_pages/search.py")
    at.text_input(key="search_query").input(word).run()
    assert not _errors(at)
    plain = at.dataframe[0].value
    assert title in plain["title"].tolist()
    assert plain["title"].str.contains(word, case=False).any()
    personal = at.dataframe[1].value
    assert set(personal["item_id"]) <= set(plain["item_id"]) | set(personal["item_id"])
    assert personal["purchase_probability"].between(0, 1).all()


def test_similar_items_shows_both_models_with_co_counts() -> None:
    at = _run("app_pages/similar.py")
    tables = [f.value for f in at.dataframe if "co_shoppers" in f.value.columns]
    assert len(tables) == 2
    for frame in tables:
        assert len(frame) == 10
        assert (frame["co_shoppers"] >= frame["co_buyers"]).all()
        assert frame["title"].str.len().gt(0).all()
    # k similar items from every model, filled from the next one when short (issue 16)
    at.slider(key="similar_k").set_value(30).run()
    tables = [f.value for f in at.dataframe if "co_shoppers" in f.value.columns]
    assert [len(frame) for frame in tables] == [30, 30]
    assert all(
        frame["source"].isin(["ALS", "item-kNN", "BPR", "popularity"]).all() for frame in tables
    )


def test_similar_items_have_one_comparable_score_whatever_the_source() -> None:
    """Issue 24 (4): rows filled from another model are on the same 0-1 similarity scale as
    the asked model's rows; no column mixes an item-kNN count with an ALS cosine."""
    at = _run("app_pages/similar.py")
    at.slider(key="similar_k").set_value(30).run()
    tables = [f.value for f in at.dataframe if "co_shoppers" in f.value.columns]
    assert tables
    for frame in tables:
        assert "score" not in frame.columns
        similarity = frame["similarity"].astype(float)
        assert similarity.between(0.0, 1.0).all(), similarity.tolist()
        assert similarity.iloc[0] == pytest.approx(1.0)  # the asked model's best match
    assert any(frame["source"].nunique() > 1 for frame in tables), "no filled rows to compare"
    assert not any("ⓘ" in c.value for c in at.caption)  # a glyph Chromium lacks


def test_model_lab_evaluates_and_records_headline_metrics(app_data: AppData) -> None:
    at = _run("app_pages/model_lab.py")
    at.multiselect(key="lab_models").set_value(["popularity", "itemknn"])
    at.button[0].click().run()  # the form's submit button sends the new value
    assert not _errors(at)
    metrics = at.dataframe[0].value
    assert metrics["model"].tolist() == ["popularity", "itemknn"]
    assert "ndcg@10" in metrics.columns
    selection = next(f.value for f in at.dataframe if "interpretability" in f.value.columns)
    assert selection["interpretability"].str.len().gt(0).all()
    # metrics by segment: every test shopper is in exactly one tenure segment
    by_segment = next(f.value for f in at.dataframe if "new vs returning" in f.value.columns)
    assert set(by_segment["new vs returning"]) <= {"new", "returning"}
    assert {"popularity", "itemknn"} <= set(by_segment.columns)
    assert (
        by_segment["shoppers"].sum()
        == at.session_state[state.EVALUATION]["result"].split["test_users"]
    )
    at.radio(key="lab_segment").set_value("volume").run()
    assert not _errors(at)
    assert any("light vs heavy buyers" in f.value.columns for f in at.dataframe)
    assert any("Glossary" in e.label for e in at.expander)
    assert selection["95% interval"].str.match(r"^\[0\.\d{4}, 0\.\d{4}\]$").all()
    at.button(key="lab_record").click().run()
    assert not _errors(at)
    assert at.success
    manifest_path = Path(list_versions(app_data.dataset_name)[0]["path"]) / "manifest.json"
    recorded = json.loads(manifest_path.read_text())["metrics"]
    assert set(recorded["models"]) == {"popularity", "itemknn"}
    overview = _run()
    models = overview.dataframe[0].value
    assert "ndcg@10" in models.columns
    assert models.set_index("model").loc["itemknn", "ndcg@10"] == pytest.approx(
        recorded["models"]["itemknn"]["ndcg@10"]
    )


def test_model_lab_offers_als_spark_only_when_spark_can_run(
    app_data: AppData, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from recsys_core.models.als_spark import spark_available

    at = _run("app_pages/model_lab.py")
    models = at.multiselect(key="lab_models")
    assert ("als-spark" in models.options) == spark_available()
    assert "als-spark" not in models.value  # offered, never preselected (a slow fit)

    monkeypatch.setenv("PATH", str(tmp_path))  # no java anywhere
    monkeypatch.delenv("JAVA_HOME", raising=False)
    at = _run("app_pages/model_lab.py")
    assert not _errors(at)
    assert "als-spark" not in at.multiselect(key="lab_models").options


def test_model_lab_trains_the_ranker_with_the_chosen_settings(app_data: AppData) -> None:
    at = _run("app_pages/model_lab.py")
    at.multiselect(key="lab_models").set_value(["popularity", "ranker"])
    at.number_input(key="lab_ranker_windows").set_value(2)
    at.selectbox(key="lab_ranker_folds").set_value(2)
    at.number_input(key="lab_ranker_trees").set_value(20)
    at.button[0].click().run()
    assert not _errors(at)
    metrics = at.dataframe[0].value
    assert metrics["model"].tolist() == ["popularity", "ranker"]
    ranker = at.session_state[state.EVALUATION]["result"].models["ranker"].model
    assert ranker.config.training_windows == 2
    assert ranker.config.classifier.cross_fit_folds == 2
    trees = [b.num_trees() for b in ranker.purchase_model_.boosters_]
    assert len(trees) == 2 and all(1 <= t <= 20 for t in trees)  # two folds, 20 trees at most
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Ranker / best single-stage (popularity) ndcg@10") for c in captions)
    at.radio(key="lab_bins").set_value("equal mass").run()
    assert not _errors(at)
    shown = next(f.value for f in at.dataframe if "fraction_positive" in f.value.columns)
    evaluated = at.session_state[state.EVALUATION]["result"]
    assert shown["count"].tolist() == evaluated.reliability_quantile["count"].tolist()


def _open_sections(at: AppTest, *keys: str) -> AppTest:
    """Open the Shopper page's lazy sections below the table (closed by default)."""
    for key in keys:
        at.session_state[key] = True
    return at.run()


def test_the_shopper_page_computes_no_chart_below_the_table_until_its_section_is_opened() -> None:
    """Issue 24: a switch to another shopper ran the side-by-side lists, the overlap chart
    and the history timeline after the table; they are lazy expanders now (closed until
    opened, then open for the next shopper too). The plain reasons stay open by default,
    with the SHAP charts behind their toggle."""
    at = _run("app_pages/shopper.py")
    assert not _errors(at)
    assert len(_recommendations(at)) == 10
    labels = [e.label for e in at.expander]
    assert {"Why this recommendation?", "Models side by side", "History"} <= set(labels)
    assert not at.get("plotly_chart")  # no overlap, timeline or SHAP chart
    side_by_side = [f for f in at.dataframe if "rank" not in f.value.columns]
    assert not side_by_side  # the ranks by model: one column per model, no "rank"
    assert any("Likely because the shopper" in m.value for m in at.markdown)
    _open_sections(at, state.SHOPPER_SIDE_BY_SIDE, state.SHOPPER_HISTORY)
    assert not _errors(at)
    assert len(at.get("plotly_chart")) == 2  # the overlap and the timeline
    assert [f for f in at.dataframe if "rank" not in f.value.columns]  # and the side by side
    first = at.session_state[state.SHOPPER]
    other = "U038" if first != "U038" else "U062"
    at.selectbox(key="shopper_select").select(other).run()
    assert not _errors(at)
    assert at.session_state[state.SHOPPER] == other
    assert len(at.get("plotly_chart")) == 2  # still open for the next shopper
    at.session_state[state.SHOPPER_WHY] = False
    at.run()
    assert not [m for m in at.markdown if "Likely because the shopper" in m.value]


def test_shopper_page_explains_a_recommendation_with_a_waterfall() -> None:
    at = _open_sections(_run("app_pages/shopper.py"), state.SHOPPER_WHY)
    assert not _errors(at)
    metrics = {m.label: m.value for m in at.metric}
    conditional = metrics["If they order, this item is in it"]
    order, overall = metrics["Orders in the next 30 days"], metrics["Overall"]
    assert all(v.endswith("%") for v in (conditional, order, overall))
    # overall = order chance x purchase chance if they order (shown rounded to 0.1 %)
    product = float(order[:-1]) * float(conditional[:-1]) / 100
    assert abs(float(overall[:-1]) - product) < 0.1
    # issue 24 (10): plain reasons first, no log-odds or base value; SHAP behind "details"
    reasons = [m.value for m in at.markdown if "Likely because the shopper" in m.value]
    assert reasons and not any(w in reasons[0] for w in ("log-odds", "base value", "score "))

    def waterfalls() -> list[str]:
        charts = at.get("plotly_chart")
        return [t["type"] for c in charts for t in json.loads(c.proto.spec)["data"]]

    assert waterfalls().count("waterfall") == 0
    at.toggle(key="shopper_shap_details").set_value(True).run()
    assert waterfalls().count("waterfall") == 2  # the item's purchase SHAP and the order model's
    labels = " ".join(
        str(label)
        for c in at.get("plotly_chart")
        for t in json.loads(c.proto.spec)["data"]
        if t["type"] == "waterfall"
        for label in t["y"]
    )
    assert "base value" not in labels and "log-odds" not in labels


@pytest.mark.parametrize("model", ["als", "itemknn"])
def test_a_list_served_by_another_model_is_explained_by_it_without_shap(model: str) -> None:
    """Under an ALS or item-kNN list the page shows that model's reasons, saying what was
    counted, and no purchase-model waterfall (its SHAP explains the ranker's lists)."""
    at = _open_sections(_run("app_pages/shopper.py"), state.SHOPPER_WHY)
    at.selectbox(key="shopper_model").select(model).run()
    assert not _errors(at)
    traces = [t["type"] for c in at.get("plotly_chart") for t in json.loads(c.proto.spec)["data"]]
    assert "waterfall" not in traces
    assert any(f"served by **{model}**" in i.value for i in at.info)
    headings = [m.value for m in at.markdown if m.value.startswith("**Because you")]
    assert headings  # "Because you bought / viewed": what the model counted


def test_explanations_page_shows_global_importance_and_effects() -> None:
    at = _run("app_pages/explanations.py")
    at.slider(key="expl_n").set_value(10).run()
    assert not _errors(at)
    importance = at.dataframe[0].value
    assert {"feature", "label", "mean_abs_shap"} <= set(importance.columns)
    assert len(importance) > 3 and (importance["mean_abs_shap"] >= 0).all()
    effect = at.dataframe[1].value
    assert {"value", "contribution"} <= set(effect.columns) and len(effect) > 0
    top = importance["feature"].iloc[0]
    mean_abs = effect["contribution"].abs().mean()
    assert mean_abs == pytest.approx(importance["mean_abs_shap"].iloc[0], rel=1e-6)
    second = importance["feature"].iloc[1]
    at.selectbox(key="expl_feature").select(second).run()
    assert not _errors(at)
    assert at.dataframe[1].value["contribution"].abs().mean() == pytest.approx(
        importance["mean_abs_shap"].iloc[1], rel=1e-6
    )
    assert top != second


def test_shap_sample_importance_is_the_explainers_global_importance(app_data: AppData) -> None:
    from ui.explanations import shap_sample

    lab = load_lab(resolve_version(app_data.dataset_name))
    svc = RecommendationService(lab)
    users = tuple(sorted(load_event_file(app_data.csv).events["user_id"].astype(str).unique()))
    sample = shap_sample("importance-test", "x", lab.version, users, 10, 1, svc)
    assert len(sample.pairs) == len(sample.features) == len(sample.shap) > 0
    expected = svc.explainer().global_importance(sample.features)
    pd.testing.assert_frame_equal(sample.importance, expected, rtol=1e-9)


# ---------------------------------------------------------------------------------- uploads

BAD_CSV = b"customer,sku\n1,A\n2,B\n"
CUSTOM_CSV = b"who;what;action;when\n" + b"".join(
    f"c{u};p{(u * 7 + j) % 13};{'buy' if j % 4 == 0 else 'look'};2024-01-{1 + j:02d}\n".encode()
    for u in range(30)
    for j in range(8)
)


def test_handle_upload_rejects_a_bad_file_pointing_at_the_mapping_table(tmp_path: Path) -> None:
    session: dict[str, Any] = {state.DATASET_KEY: "demo-store", state.UPLOADS: {}}
    outcome = handle_upload("bad.csv", BAD_CSV, state=session)
    assert not outcome.ok
    path = tmp_path / "bad.csv"
    path.write_bytes(BAD_CSV)
    with pytest.raises(DataValidationError) as cli:
        load_event_file(path)
    # the CLI's check and problem, worded for the page: the mapping table, not `--map`
    assert outcome.message.split(". ")[0] == str(cli.value).split(". ")[0]
    assert "missing required column" in outcome.message
    assert "column mapping table" in outcome.message and "--map" not in outcome.message
    assert session[state.DATASET_KEY] == "demo-store"
    assert session[state.UPLOADS] == {}
    assert session[state.UPLOAD_MESSAGE] == {"ok": False, "message": outcome.message, "key": None}


def test_handle_upload_unknown_event_names_keep_the_previous_dataset() -> None:
    session: dict[str, Any] = {state.DATASET_KEY: "demo-store", state.UPLOADS: {}}
    mapping = {"user_id": "who", "item_id": "what", "event": "action", "timestamp": "when"}
    outcome = handle_upload("custom.csv", CUSTOM_CSV, state=session, column_map=mapping)
    assert not outcome.ok
    assert "unknown event name" in outcome.message and "'look'" in outcome.message
    assert session[state.DATASET_KEY] == "demo-store"


def _upload_custom_log(session: dict[str, Any], mapping: dict[str, str | None]) -> Any:
    """Upload :data:`CUSTOM_CSV` with ``mapping``; 'buy' is guessed, 'look' mapped to view."""
    return handle_upload(
        "custom.csv",
        CUSTOM_CSV,
        state=session,
        column_map=mapping,
        event_map={**guess_event_map(["buy", "look"]), "look": "view"},
    )


def test_handle_upload_with_mapping_becomes_the_active_dataset() -> None:
    session: dict[str, Any] = {state.DATASET_KEY: "demo-store", state.UPLOADS: {}}
    columns = ["who", "what", "action", "when"]
    guess = guess_column_map(columns)
    assert guess["event"] == "action" and guess["timestamp"] == "when"
    mapping = {**guess, "user_id": "who", "item_id": "what"}
    assert mapping_problems(mapping) == []
    assert guess_event_map(["buy", "look"]) == {"buy": "purchase", "look": None}
    outcome = _upload_custom_log(session, mapping)
    assert outcome.ok, outcome.message
    assert session[state.DATASET_KEY] == outcome.key
    dataset = session[state.UPLOADS][outcome.key]
    assert len(dataset.events) == 240
    assert set(dataset.events["event"].astype(str)) == {"view", "purchase"}
    assert dataset.has_timestamps


def test_mapping_problems_name_missing_and_repeated_columns() -> None:
    problems = mapping_problems({"user_id": "a", "item_id": "a", "event": None})
    assert "choose the file's column for event" in problems
    assert any("more than one field" in p for p in problems)


def test_data_page_shows_the_upload_error_and_keeps_the_dataset(app_data: AppData) -> None:
    at = _run("app_pages/data.py")
    previous = at.session_state[state.DATASET_KEY]
    session = {k: at.session_state[k] for k in (state.DATASET_KEY, state.UPLOADS)}
    outcome = handle_upload("bad.csv", BAD_CSV, state=session)
    at = _run("app_pages/data.py", session)
    assert [e.value for e in at.error] == [outcome.message]
    assert not at.exception
    assert at.session_state[state.DATASET_KEY] == previous
    assert at.selectbox(key="data_dataset_select").value == previous
    assert {m.label: m.value for m in at.metric}["Events"] == "20,000"


def test_an_uploaded_log_trains_on_first_use_then_is_reused() -> None:
    import streamlit as st

    # "first use" in this process: an earlier test (the log-in tests upload the same log)
    # may have left its lab and finished background job in the process-wide caches
    st.cache_resource.clear()
    session: dict[str, Any] = {state.UPLOADS: {}}
    state.ensure_session(session)
    mapping = {"user_id": "who", "item_id": "what", "event": "action", "timestamp": "when"}
    outcome = _upload_custom_log(session, mapping)
    assert outcome.ok, outcome.message
    last = models_root() / "LAST"
    served_before = last.read_text() if last.exists() else None
    first = _run(None, session)  # Overview on the uploaded log: nothing saved yet -> trains
    assert not _errors(first)
    assert first.status, "the first start must show training progress"
    assert outcome.key is not None
    checksum = outcome.key.removeprefix(state.UPLOAD_PREFIX)
    name = session[state.UPLOADS][outcome.key].name
    assert name.startswith("upload-local-custom-")
    saved = [v for v in list_versions(name) if v["data_sha256"] == checksum]
    assert len(saved) >= 1 and not any(v["active"] for v in saved)
    job = _wait_for_background(outcome.key, checksum)
    trained = len(list_versions(name))
    assert trained == 2 and job.folder is not None  # quick, then complete (ranker or a note)
    assert not any(v["active"] for v in list_versions(name))
    # what the CLI serves is unchanged: no models/LAST written for an upload
    assert (last.read_text() if last.exists() else None) == served_before
    again = _run("app_pages/shopper.py", session)
    assert not _errors(again)
    assert not again.status
    assert len(list_versions(name)) == trained


def _wait_for_background(key: str, checksum: str) -> Any:
    """The background training job of a dataset, once its thread has finished.

    No clock: exactly one job was started for the dataset, and its thread is joined (a hung
    thread is stopped by pytest-timeout, with every thread's stack in the report).
    """
    from ui.resources import _jobs

    jobs = [job for (k, c), job in _jobs().items() if (k, c) == (key, checksum)]
    assert len(jobs) == 1, f"expected one background training job for {key}, found {len(jobs)}"
    job = jobs[0]
    assert job.thread is not None, "the job was registered but its thread never started"
    job.thread.join()
    assert not job.running
    return job


@pytest.mark.slow
def test_first_start_serves_single_stage_models_then_switches_to_the_ranker(
    app_data: AppData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh home: the pages work at once on the quick models; the ranker follows.

    Issue 24 (first useful page <= 10 s; 14.6 s measured): the first page waited for ALS's
    fit (4.6 s of it) and hashed the events three times (the page, the training, the
    background job). Now ALS trains in the background with the ranker, and the server
    hashes the events once."""
    from recsys_core import training, training_job
    from recsys_core.models.registry import ALS, RANKER
    from ui import resources

    monkeypatch.setenv("RECSYS_HOME", str(tmp_path / "fresh"))
    hashed: list[str] = []

    def counted(real: Any) -> Any:
        def checksum(events: pd.DataFrame) -> str:
            hashed.append(real.__module__)
            return str(real(events))

        return checksum

    for module in (training, training_job, resources):
        monkeypatch.setattr(module, "data_checksum", counted(module.data_checksum))
    resources._shared_checksum.clear()
    first = _run(None)  # the Overview trains the quick models
    assert not _errors(first)
    assert first.status, "the quick training shows its progress"
    quick = list_versions(home=tmp_path / "fresh")
    assert len(quick) == 1 and not {RANKER, ALS} & set(quick[0]["models"])
    assert len(hashed) == 1, hashed  # the page's checksum, reused by the training and the job
    key = first.session_state[state.DATASET_KEY]
    checksum = next(iter(first.session_state["lab_folders"]))[1]
    first.switch_page("app_pages/shopper.py").run()
    assert not _errors(first)
    assert len(_recommendations(first)) == 10  # the single-stage models answer meanwhile
    from ui.resources import _jobs

    if _jobs()[(key, checksum)].running:
        assert any("training in the background" in i.value for i in first.info)
    job = _wait_for_background(key, checksum)
    assert job.error is None and job.fraction == 1.0
    from recsys_core.security import audit

    trained = audit.read(action="train", contains='"background": true')
    assert [row["actor"] for row in trained] == ["app:local"]  # the thread's work is audited
    assert Path(job.folder).name in trained[0]["detail"]
    first.run()  # the next rerun switches to the complete version
    assert not _errors(first)
    # the page follows the switch: it now lists by the ranker, not still by ALS (issue 24)
    assert first.selectbox(key="shopper_model").value == "ranker"
    assert any("by **ranker**" in c.value for c in first.caption)
    reco = _recommendations(first)
    assert np.isfinite(reco["purchase_probability"].to_numpy(dtype=float)).all()
    versions = list_versions(home=tmp_path / "fresh")
    assert len(versions) == 2 and "ranker" in versions[0]["models"] and versions[0]["active"]
    assert ALS in versions[0]["models"]  # trained in the background with the ranker
    # the ranker's headline metrics are recorded at training time, not by a button (issue 24)
    assert job.metrics_recorded.wait(240)
    recorded = load_lab(Path(job.folder)).manifest["metrics"]["models"]
    assert np.isfinite(float(recorded["ranker"]["ndcg@10"]))
    first.switch_page("app_pages/overview.py").run()
    overview = next(f.value for f in first.dataframe if "fit time" in f.value.columns)
    ranker_row = overview[overview["model"] == "ranker"].iloc[0]
    assert np.isfinite(float(ranker_row["ndcg@10"]))


# ---------------------------------------------------------------------------------- helpers


def test_switching_dataset_forgets_the_chosen_shopper_and_lists_uploads() -> None:
    session: dict[str, Any] = {}
    state.ensure_session(session)
    assert session[state.DATASET_KEY].startswith(state.FILE_PREFIX)  # $RECSYS_APP_DATA
    session[state.SHOPPER] = "U001"
    session[state.UPLOADS] = {"upload:abc": object()}
    options = state.dataset_options(session)
    assert options[0] == session[state.DATASET_KEY]
    assert {"online-retail", "demo-store", "upload:abc"} <= set(options)
    state.set_active_key("demo-store", session)
    assert session[state.DATASET_KEY] == "demo-store"
    assert state.SHOPPER not in session


def test_initial_dataset_prefers_the_file_then_the_builtin_name(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    assert state.initial_dataset_key({state.ENV_DATA: str(path)}) == (
        state.FILE_PREFIX + str(path.resolve()),
        None,
    )
    assert state.initial_dataset_key({state.ENV_DATASET: "demo-store"}) == ("demo-store", None)
    key, warning = state.initial_dataset_key({state.ENV_DATASET: "nope"})
    assert key == "online-retail" and warning and "nope" in warning
    assert state.initial_dataset_key({}) == ("online-retail", None)


def test_co_counts_count_shoppers_of_both_items() -> None:
    events = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "c", "c"],
            "item_id": ["x", "y", "x", "y", "y", "y"],
            "event": ["purchase", "view", "purchase", "purchase", "purchase", "view"],
        }
    )
    out = co_counts("co-counts-test", "1", events, "x", ["y", "z"])
    assert out.to_dict("records") == [
        {"item_id": "y", "co_shoppers": 2, "co_buyers": 1},
        {"item_id": "z", "co_shoppers": 0, "co_buyers": 0},
    ]


def test_waterfall_goes_from_base_value_to_raw_score() -> None:
    contributions = [
        {"feature": f"f{i}", "value": float(i), "contribution": (-1) ** i * 0.1 * (i + 1)}
        for i in range(14)
    ]
    base = -2.0
    raw = base + sum(c["contribution"] for c in contributions)
    explanation = {
        "probability": 0.3,
        "raw_score": raw,
        "base_value": base,
        "contributions": contributions,
    }
    steps, got_base, got_raw = waterfall_frame(explanation, top=10)
    assert len(steps) == 11 and steps["label"].iloc[0] == "other (4 features)"
    assert got_base + steps["contribution"].sum() == pytest.approx(got_raw)
    assert got_raw == pytest.approx(raw)
    assert steps["label"].iloc[-1] == "f13"  # the largest effect sits next to the total
    twins = {
        **explanation,
        "contributions": [
            *contributions[:12],
            *[
                {**c, "feature": "same words", "name": f"n{i}"}
                for i, c in enumerate(contributions[12:])
            ],
        ],
    }
    labels = waterfall_frame(twins, top=14)[0]["label"].tolist()
    assert len(set(labels)) == len(labels) and "same words [n1]" in labels
    fig = waterfall_figure(explanation, top=10)
    assert list(fig.data[0].measure) == ["absolute", *["relative"] * 11, "total"]


def test_history_timeline_has_one_marker_per_day_and_event_type() -> None:
    history = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(
                ["2024-01-01 09:00", "2024-01-01 17:00", "2024-01-01 18:00", "2024-01-03 10:00"]
            ),
            "event": ["view", "view", "purchase", "view"],
            "item_id": ["a", "b", "a", "c"],
            "title": ["Mug", "Cup", "Mug", "Jug"],
        }
    )
    days = timeline_days(history, titles_shown=1)
    assert days["events"].sum() == len(history)
    first = days[(days["day"] == "2024-01-01") & (days["event"] == "view")].iloc[0]
    assert first["events"] == 2 and first["titles"] == "Mug<br>... and 1 more"
    fig = timeline_figure(history)
    assert sum(len(trace.x) for trace in fig.data) == len(days) == 3
    assert list(fig.layout.yaxis.categoryarray) == ["view", "purchase"]


def test_other_model_ranks_reads_model_and_rank() -> None:
    compare = pd.DataFrame({"item_id": ["a", "b"], "als": [2.0, np.nan], "itemknn": [1.0, np.nan]})
    got = other_model_ranks(pd.Series(["a", "b", "z"]), compare, ["itemknn", "als"])
    assert got == ["itemknn #1 · als #2", "—", "—"]


# ------------------------------------------------------------------ issue 16: shopper picker


@pytest.mark.parametrize(
    ("page", "key"),
    [("app_pages/shopper.py", "shopper"), ("app_pages/search.py", "search_shopper")],
)
def test_every_shopper_id_is_findable_by_typing_it(
    app_data: AppData, page: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond the listed options too: the least active shopper is found by its id."""
    import ui.components

    monkeypatch.setattr(ui.components, "MAX_OPTIONS", 20)  # fewer listed than shoppers
    events = load_event_file(app_data.csv).events
    activity = events.groupby("user_id", observed=True).size().sort_values(kind="stable")
    quiet = str(activity.index[0])  # the least active: never among the first 20 listed
    at = _run(page)
    listed = [o.split(" ")[0] for o in at.selectbox(key=f"{key}_select").options]
    assert quiet not in listed and len(listed) == 20
    at.text_input(key=f"{key}_query").input(quiet).run()
    assert not _errors(at)
    assert at.selectbox(key=f"{key}_select").value == quiet
    assert at.session_state[state.SHOPPER] == quiet


def test_typed_id_lists_the_exact_id_first() -> None:
    from ui.components import match_ids

    ids = pd.Series(["U0110", "U011", "XU011", "U0112", "U2"])
    assert match_ids(ids, "u011").tolist() == ["U011", "U0110", "U0112", "XU011"]
    assert match_ids(ids, "").tolist() == ids.tolist()


def test_personalised_search_keeps_relevant_matches_first(app_data: AppData) -> None:
    word = str(app_data.catalog["title"].iloc[0]).split()[-1]
    at = _run("app_pages/search.py")
    at.text_input(key="search_query").input(word).run()
    assert not _errors(at)
    personal = at.dataframe[1].value
    relevant = personal[personal["reranked"]]
    assert len(relevant) and relevant["title"].str.contains(word, case=False).all()
    # re-ranked rows come first, the others after them
    assert personal["reranked"].tolist() == sorted(personal["reranked"], reverse=True)
    assert any("Only relevant matches are re-ranked" in c.value for c in at.caption)


def test_search_method_switches_between_hybrid_and_tfidf(app_data: AppData) -> None:
    title = str(app_data.catalog["title"].iloc[0])
    word = max(title.split(), key=len)
    at = _run("app_pages/search.py")
    at.text_input(key="search_query").input(word + "x").run()  # a typo: no exact word
    assert not _errors(at)
    assert at.radio(key="search_method").value == "hybrid"
    hybrid = at.dataframe[0].value
    assert title in hybrid["title"].tolist()
    at.radio(key="search_method").set_value("tfidf").run()
    assert not _errors(at)


# ------------------------------------------------------------------ issue 16: formatting


@pytest.mark.parametrize(
    "page",
    [
        "app_pages/overview.py",
        "app_pages/shopper.py",
        "app_pages/similar.py",
        "app_pages/search.py",
        "app_pages/explanations.py",
        "app_pages/merchandising.py",
    ],
)
def test_no_table_cell_shows_none(page: str, app_data: AppData) -> None:
    """Missing values show as a dash (the table's placeholder), never the word None."""
    at = _run(page)
    if page.endswith("search.py"):
        word = str(app_data.catalog["title"].iloc[0]).split()[-1]
        at.text_input(key="search_query").input(word).run()
    assert not _errors(at)
    assert at.dataframe, "no table on the page"
    for frame in at.dataframe:
        assert frame.proto.placeholder == "—", frame.value.columns.tolist()
        value = frame.value
        text = value[[c for c in value.columns if pd.api.types.is_string_dtype(value[c])]]
        assert not text.isin(["None", "nan"]).any().any()
        assert not text.isna().any().any(), "object cells must not be None"


def test_shopper_page_shows_prices_and_expected_revenue() -> None:
    at = _run("app_pages/shopper.py")
    assert not _errors(at)
    reco = _recommendations(at)
    metrics = {m.label: m.value for m in at.metric}
    assert "Expected revenue of this list" in metrics
    if reco["expected_revenue"].notna().any():
        shown = float(metrics["Expected revenue of this list"].lstrip("£").replace(",", ""))
        assert shown == pytest.approx(reco["expected_revenue"].sum(), abs=0.01)
        np.testing.assert_allclose(
            reco["expected_revenue"], reco["probability"] * reco["price"], rtol=1e-9
        )
    assert "score" not in reco.columns or not reco["score"].equals(reco["purchase_probability"])
    # issue 24 (7): a log without a known currency says so, not "log units"
    table_config = next(f.proto.columns for f in at.dataframe if "expected_revenue" in f.value)
    assert "price (currency not given)" in table_config
    assert "log units" not in table_config


def test_money_metric_columns_name_the_currency_and_every_key_has_a_plain_name() -> None:
    """Issue 24 (7): ``revenue_total@10`` was shown as a raw key, without £ or separators."""
    from ui.glossary import describe, metric_columns

    config = metric_columns(["revenue@10", "revenue_total@10", "ndcg@10"], currency="£")
    assert config["revenue_total@10"]["label"] == "revenue, all test shoppers @10 (£)"
    assert config["revenue@10"]["type_config"]["format"] == "accounting"
    assert describe("revenue_total@10") is not None
    unknown = metric_columns(["revenue@10"])
    assert unknown["revenue@10"]["label"].endswith("(currency not given)")


def test_business_filters_on_the_shopper_page(app_data: AppData) -> None:
    at = _run("app_pages/shopper.py")
    category = str(app_data.catalog["category"].iloc[0])
    at.multiselect(key="shopper_categories").set_value([category]).run()
    assert not _errors(at)
    reco = _recommendations(at)
    categories = app_data.catalog.set_index("item_id")["category"].astype(str)
    assert len(reco) and reco["item_id"].map(categories).eq(category).all()
    assert any("Business filters:" in c.value for c in at.caption)


def test_csv_downloads_round_floats_and_leave_missing_empty() -> None:
    from ui.components import csv_bytes, plural

    text = csv_bytes(pd.DataFrame({"p": [0.123456789012345, np.nan], "n": ["a", None]})).decode()
    # every field quoted (issue 23 item 12: a quoted field cannot start a formula after a CR)
    assert text.splitlines() == ['"p","n"', '"0.1235","a"', '"",""']
    assert plural(1, "event") == "1 event" and plural(2, "event") == "2 events"


def test_one_event_history_axis_shows_days_not_clock_times() -> None:
    history = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2011-01-18 10:01"]),
            "event": ["purchase"],
            "item_id": ["a"],
            "title": ["Mug"],
        }
    )
    fig = timeline_figure(history)
    assert fig.layout.xaxis.tickformat == "%d %b %Y"
    low, high = (pd.Timestamp(x) for x in fig.layout.xaxis.range)
    assert high - low == pd.Timedelta(days=6)
    assert "1 purchase<" in fig.data[0].customdata[0][0] + "<"


# ------------------------------------------------------------------ issue 16: links, export


def test_a_shared_link_reopens_the_same_shopper_model_and_k(app_data: AppData) -> None:
    events = load_event_file(app_data.csv).events
    quiet = str(events.groupby("user_id", observed=True).size().sort_values().index[0])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"shopper": quiet, "model": "als", "k": "7"})
    at.switch_page("app_pages/shopper.py").run()  # the link opens the Shopper page itself
    assert not _errors(at)
    assert at.session_state[state.SHOPPER] == quiet
    assert at.selectbox(key="shopper_model").value == "als"
    assert len(_recommendations(at)) == 7
    # the page writes its view back, so the address bar holds a link to it
    assert at.query_params["shopper"] in ([quiet], quiet)
    assert at.query_params["k"] in (["7"], "7")


def test_bulk_export_of_a_segment(app_data: AppData) -> None:
    at = _run("app_pages/shopper.py")
    at.selectbox(key="bulk_model").set_value("als")
    at.number_input(key="bulk_k").set_value(3)
    at.selectbox(key="bulk_segment").set_value("returning shoppers").run()
    at.button(key="bulk_prepare").click().run()
    assert not _errors(at)
    table = at.session_state["bulk_export"][1]
    events = load_event_file(app_data.csv).events
    assert 0 < table["user_id"].nunique() <= events["user_id"].nunique()
    assert (table.groupby("user_id").size() == 3).all()
    assert at.get("download_button")


def test_purchase_only_logs_get_a_repeat_purchase_funnel() -> None:
    from ui.frames import repeat_funnel

    t = pd.Timestamp("2024-01-01")
    events = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "c", "c"],
            "item_id": "x",
            "event": "purchase",
            "timestamp": [t, t, t + pd.Timedelta(days=3), t, t, t + pd.Timedelta(days=9)],
        }
    )
    funnel = repeat_funnel("test-repeat", "c1", events)
    assert funnel["shoppers"].tolist() == [3, 2, 0, 0]
    assert funnel["stage"].iloc[1] == "Ordered 2+ times"


def _funnel_script(csv: str) -> None:
    """An AppTest script: the shared funnel chart of the log at ``csv``."""
    from recsys_core.data.loaders import load_event_file
    from recsys_core.evaluation import data_checksum
    from ui.components import funnel_chart
    from ui.resources import ActiveData

    dataset = load_event_file(csv)
    funnel_chart(ActiveData("file:" + csv, dataset, data_checksum(dataset.events)), "funnel")


def test_a_purchase_only_log_shows_the_repeat_funnel_not_one_full_box(
    app_data: AppData, tmp_path: Path
) -> None:
    """Issue 24 (8): the Data page and Overview share the funnel; a log of purchases only
    gets the repeat-purchase funnel, not one 100 % box."""
    events = pd.read_csv(app_data.csv)
    csv = tmp_path / "purchases_only.csv"
    events[events["event"] == "purchase"].to_csv(csv, index=False)
    at = AppTest.from_function(_funnel_script, args=(str(csv),), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "Repeat-purchase funnel" in json.dumps(spec["layout"]["title"])
    assert any("records only purchases" in c.value for c in at.caption)


def test_shopper_activity_axis_labels_only_powers_of_ten() -> None:
    """Issue 24 (8): the log axis had minor labels ("5 2 1000 5 2 100")."""
    from ui.charts import user_activity_figure

    activity = pd.DataFrame({"user_id": list("abcdef"), "events": [1, 2, 3, 50, 400, 9000]})
    axis = user_activity_figure(activity).layout.yaxis
    assert axis.dtick == 1 and axis.tickformat == ","


#: Column widths Streamlit gives "small", "medium" and "large" (px).
_WIDTH_PX = {"small": 75, "medium": 200, "large": 400}


def _clipped_headers(at: AppTest) -> list[str]:
    """Column headers that a fixed column width cuts off ("expected re…").

    A header needs about 7.5 px per character plus room for the sort arrow and padding;
    columns without a fixed width are sized by Streamlit to fit their header.
    """
    clipped = []
    for frame in at.dataframe:
        for name, cfg in json.loads(frame.proto.columns or "{}").items():
            label = str(cfg.get("label") or name.removeprefix("col:"))
            width = cfg.get("width")
            px = _WIDTH_PX.get(width, width) if width is not None else None
            if isinstance(px, int) and len(label) * 7.5 + 28 > px:
                clipped.append(f"{label!r} in {width} ({px} px)")
    return clipped


@pytest.mark.parametrize("page", [*PAGES, "app_pages/operations.py"])
def test_no_table_header_is_cut_by_a_fixed_width(page: str) -> None:
    """Issue 24 (6): headers such as "expected re…", "ALS taste m…" were cut off."""
    at = _run(page)
    assert not _errors(at)
    assert not _clipped_headers(at)


def test_title_words_are_called_keywords_not_categories() -> None:
    """Issue 24 (9): Online Retail's "categories" are words from the titles (lunch bags in
    "Girl", a cake stand in "Tier"): the app calls them keywords; real ones stay categories."""
    from ui.glossary import category_label

    assert category_label("online-retail") == "keyword"
    assert category_label("online-retail", plural=True) == "keywords"
    assert category_label("demo-store", plural=True) == "categories"
    at = _run("app_pages/shopper.py")
    assert at.multiselect(key="shopper_categories").label == "Categories"


def test_decision_page_says_what_to_ship_from_the_recorded_metrics(app_data: AppData) -> None:
    """Issue 24 (12): the report's "In short", live, with money and uplift, and a PDF."""
    at = _run("app_pages/decision.py")
    assert not _errors(at)
    ship = [s.value for s in at.success if "ship" in s.value]
    assert ship, "the In short's recommendation"
    metrics = {m.label: m.value for m in at.metric}
    # the figure and the In short name the same model (the best NDCG recorded)
    from recsys_core.reporting.shop_sections import MODEL_WORDS

    shown = metrics["Model to ship"]
    assert MODEL_WORDS.get(shown, shown) in ship[0]
    assert "Uplift over best sellers" in metrics
    assert at.get("plotly_chart"), "the metric history chart"
    at.button(key="decision_pdf").click().run()
    assert not _errors(at)
    assert at.get("download_button")


def test_test_planner_sizes_the_test_with_statsmodels() -> None:
    """Issue 24 (14): sample size and duration from the inputs, exportable."""
    from recsys_core.planning import plan_ab_test

    at = _run("app_pages/planner.py")
    assert not _errors(at)
    at.number_input(key="plan_uplift").set_value(10.0)
    at.number_input(key="plan_baseline").set_value(5.0)
    at.number_input(key="plan_traffic").set_value(1000).run()
    assert not _errors(at)
    plan = plan_ab_test(baseline_conversion=0.05, relative_uplift=0.10, traffic_per_day=1000)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Shoppers per arm"] == f"{plan.shoppers_per_arm:,}"
    assert metrics["Days to run"] == f"{plan.days:,}"
    assert at.get("download_button")
