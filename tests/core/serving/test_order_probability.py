"""Answers carry the order probability, the conditional purchase probability and their product."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recsys_core.ranking.order_model import OrderModel
from recsys_core.serving import RecommendationService, load_lab, save_lab
from recsys_core.training import TrainConfig, train_lab
from tests.conftest import SMALL_RANKER_CUTOFF


@pytest.fixture(scope="module")
def service(small_store, small_ranker) -> RecommendationService:
    lab = train_lab(small_store, TrainConfig(models=["popularity", "als"]))
    order = OrderModel(n_estimators=40, min_child_samples=10).fit(
        small_store.events, cutoff=SMALL_RANKER_CUTOFF
    )
    lab = replace(lab, models={**lab.models, "ranker": small_ranker}, order_model=order)
    return RecommendationService(lab)


def _known_user(service: RecommendationService) -> str:
    return str(service.lab.order_model.features_.index[0])


def test_overall_probability_is_order_times_purchase(service: RecommendationService) -> None:
    user = _known_user(service)
    answer = service.recommend(user, 5, "ranker", policy="lab-rule")
    order = answer["order_probability"]
    assert 0 < order < 1
    assert len(answer["items"]) == 5
    for item in answer["items"]:
        assert item["order_probability"] == order
        assert item["probability"] == pytest.approx(order * item["purchase_probability"], abs=1e-6)
        assert item["probability"] <= item["purchase_probability"]
    json.dumps(answer)  # plain JSON


def test_explain_carries_both_probabilities_and_the_order_shap(
    service: RecommendationService,
) -> None:
    user = _known_user(service)
    item = service.recommend(user, 1, "ranker", policy="lab-rule")["items"][0]["item_id"]
    answer = service.explain(user, item)
    assert answer["purchase_probability"] == pytest.approx(answer["probability"], abs=1e-6)
    assert answer["overall_probability"] == pytest.approx(
        answer["order_probability"] * answer["probability"], abs=1e-6
    )
    detail = answer["order_explanation"]
    total = detail["base_value"] + sum(c["contribution"] for c in detail["contributions"])
    assert total == pytest.approx(detail["raw_score"], abs=1e-6)


def test_unknown_shoppers_have_no_order_probability(service: RecommendationService) -> None:
    answer = service.recommend("nobody-at-all", 3, "ranker", policy="lab-rule")
    assert answer["order_probability"] is None
    assert all(i["probability"] is None for i in answer["items"])


def test_the_order_model_is_saved_and_loaded_with_the_lab(
    service: RecommendationService, tmp_path: Path
) -> None:
    lab = replace(service.lab, models={"popularity": service.lab.models["popularity"]})
    lab.manifest = {**lab.manifest, "models": ["popularity"], "order_model": True}
    folder = save_lab(lab, home=tmp_path)
    loaded = load_lab(folder)
    users = list(service.lab.order_model.features_.index[:10])
    np.testing.assert_array_equal(
        loaded.order_model.order_probability(users),
        service.lab.order_model.order_probability(users),
    )


def test_bulk_export_lists_top_k_for_every_shopper(service: RecommendationService) -> None:
    from recsys_core.business import top_k_for_shoppers

    users = [str(u) for u in service.lab.order_model.features_.index[:7]]
    seen: list[float] = []
    table = top_k_for_shoppers(
        service, users, 3, "ranker", "lab-rule", chunk=3, progress=lambda m, f: seen.append(f)
    )
    assert len(table) == 21 and set(table["user_id"]) == set(users)
    assert table.groupby("user_id")["rank"].apply(list).map(lambda r: r == [1, 2, 3]).all()
    np.testing.assert_allclose(
        table["probability"], table["order_probability"] * table["purchase_probability"]
    )
    assert seen[-1] == 1.0
    one = service.recommend(users[0], 3, "ranker", policy="lab-rule")
    assert table[table["user_id"] == users[0]]["item_id"].tolist() == [
        i["item_id"] for i in one["items"]
    ]
    als = top_k_for_shoppers(service, users, 4, "als", "lab-rule")
    assert len(als) == 28 and set(als["model"]) == {"als"}
    # the purchase probabilities the service shows next to ALS's list, as on the Shopper page
    one_als = service.recommend(users[0], 4, "als", policy="lab-rule")
    assert als[als["user_id"] == users[0]]["purchase_probability"].round(6).tolist() == [
        i["purchase_probability"] for i in one_als["items"]
    ]
