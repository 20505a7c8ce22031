"""Trained labs (versioned folders) and the recommendation service's fallback chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys_core.cli import main
from recsys_core.errors import ArtifactError, ConfigError, ModelNotTrainedError, UnknownItemError
from recsys_core.serving import (
    RecommendationService,
    list_versions,
    load_lab,
    resolve_version,
    save_lab,
)
from recsys_core.training import TrainConfig, train_lab

SINGLE = ["popularity", "itemknn", "als"]


@pytest.fixture(scope="module")
def lab(small_store):
    return train_lab(small_store, TrainConfig(models=SINGLE))


def test_save_load_round_trip_and_activation(lab, tmp_path: Path) -> None:
    folder = save_lab(lab, home=tmp_path)
    assert resolve_version(home=tmp_path) == folder
    assert resolve_version("demo-small", home=tmp_path) == folder
    loaded = load_lab(folder)
    assert loaded.model_names == SINGLE
    a = RecommendationService(lab).recommend_frame("U001", 5, "als", policy="lab-rule")[0]
    b = RecommendationService(loaded).recommend_frame("U001", 5, "als", policy="lab-rule")[0]
    assert a["item_id"].tolist() == b["item_id"].tolist()
    versions = list_versions("demo-small", home=tmp_path)
    assert [v["active"] for v in versions] == [True]
    assert versions[0]["data_sha256"] == lab.manifest["data"]["sha256"]


def test_a_second_version_becomes_active_and_keeps_the_first(lab, tmp_path: Path) -> None:
    first = save_lab(lab, home=tmp_path)
    second = save_lab(lab, home=tmp_path)
    assert first != second and first.exists()
    assert resolve_version("demo-small", home=tmp_path) == second


def test_nothing_trained_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotTrainedError, match="train --dataset"):
        resolve_version(home=tmp_path)


def test_damaged_artifacts_are_reported(lab, tmp_path: Path) -> None:
    folder = save_lab(lab, home=tmp_path)
    arrays = folder / "als" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:100])
    with pytest.raises(ArtifactError):
        load_lab(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="manifest"):
        load_lab(folder)


def test_fallback_chain_for_unknown_and_untrained(lab) -> None:
    service = RecommendationService(lab)
    answer = service.recommend(
        "U001", 5, "ranker", policy="lab-rule"
    )  # ranker not trained: ALS serves
    assert answer["model"] == "als" and answer["degraded"] and "ranker" in answer["reason"]
    assert len(answer["items"]) == 5 and all(i["title"] for i in answer["items"])
    cold = service.recommend("nobody", 3, "ranker", policy="lab-rule")
    assert cold["model"] == "popularity" and cold["degraded"]
    assert "unknown" in cold["reason"]
    plain = service.recommend("U001", 4, "itemknn", policy="lab-rule")
    assert plain["model"] == "itemknn" and not plain["degraded"]
    with pytest.raises(ConfigError, match="not trained"):
        service.recommend("U001", 3, "bpr", policy="lab-rule")


def test_similar_items_and_unknown_item(lab) -> None:
    service = RecommendationService(lab)
    answer = service.similar("P001", 4, "itemknn")
    assert answer["item_id"] == "P001" and len(answer["items"]) <= 4
    assert all(i["item_id"] != "P001" for i in answer["items"])
    with pytest.raises(UnknownItemError):
        service.similar("nope", 3)


def test_compare_models_ranks_side_by_side(lab) -> None:
    table = RecommendationService(lab).compare_models("U001", 5, policy="lab-rule")
    assert set(SINGLE) <= set(table.columns)
    assert (table[SINGLE].notna().sum() == 5).all()


def test_compare_models_probabilities_match_the_ranker(lab, small_ranker) -> None:
    """The ranker's own top k keeps its probabilities; other models' items are scored by it."""
    from dataclasses import replace

    with_ranker = replace(lab, models={**lab.models, "ranker": small_ranker})
    service = RecommendationService(with_ranker)
    user = "U001"
    table = service.compare_models(user, 5, policy="lab-rule")
    expected = small_ranker.purchase_probability(user, table["item_id"].tolist())
    assert table["purchase_probability"].to_numpy() == pytest.approx(expected)
    # a repeated question is answered from the cache, with the same answer
    again = service.compare_models(user, 5, policy="lab-rule")
    assert again.equals(table)
    frame, served_by, _ = service.recommend_frame(user, 5, "ranker", policy="lab-rule")
    assert served_by == "ranker"
    assert (
        frame["item_id"].tolist()
        == table.dropna(subset=["ranker"]).sort_values("ranker")["item_id"].tolist()
    )


def test_cli_train_recommend_similar(small_store_csv: Path, capsys) -> None:
    assert main(["train", "--data", str(small_store_csv), "--models", "popularity,als"]) == 0
    capsys.readouterr()
    assert main(["recommend", "--user", "U001", "--k", "3", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert set(answer) >= {"user_id", "model_version", "degraded", "reason", "items"}
    assert set(answer["items"][0]) >= {"item_id", "title", "score", "purchase_probability", "rank"}
    assert main(["similar", "--item", "P001", "--k", "3", "--json"]) == 0
    sim = json.loads(capsys.readouterr().out)
    assert set(sim) >= {"item_id", "model_version", "items"} and len(sim["items"]) == 3
    assert main(["similar", "--item", "nope"]) == 2
    assert main(["recommend", "--user", "U001", "--k", "0"]) == 2
    assert main(["explain", "--user", "U001", "--item", "P001"]) == 2  # no ranker trained
