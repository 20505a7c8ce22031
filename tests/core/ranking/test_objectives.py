"""Ranking objectives and window-age weights of the purchase classifier (objectives.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from recsys_core.ranking.config import PurchaseModelConfig
from recsys_core.ranking.objectives import (
    booster_params,
    ranking_rows,
    window_ages,
    window_weights,
)
from recsys_core.ranking.purchase_model import PurchaseModel


@pytest.fixture(scope="module")
def lists_data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows of 300 shoppers in 3 windows, lists interleaved (not contiguous)."""
    rng = np.random.default_rng(1)
    n = 9000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(-2.0 + 1.5 * X["a"])))).astype(int)
    shopper = rng.integers(0, 300, size=n)
    age = rng.integers(0, 3, size=n)
    return X, np.asarray(y), shopper, shopper * 3 + age, age


def test_ranking_rows_groups_each_list_contiguously() -> None:
    lists = np.array([5, 2, 5, 9, 2, 5, 7])
    rows = np.array([0, 1, 2, 3, 4, 5])  # row 6 not among them
    order, sizes = ranking_rows(rows, lists)
    assert lists[rows[order]].tolist() == [2, 2, 5, 5, 5, 9]
    assert rows[order].tolist() == [1, 4, 0, 2, 5, 3]  # original order within a list
    assert sizes.tolist() == [2, 3, 1]


def test_window_ages_and_weights() -> None:
    cutoffs = pd.to_datetime(["2011-10-09", "2011-08-10", "2011-09-09", "2011-10-09"])
    ages = window_ages(cutoffs.to_numpy())
    assert ages.tolist() == [0, 2, 1, 0]
    assert window_weights(ages, 1.0) is None
    assert window_weights(None, 0.5) is None
    np.testing.assert_allclose(window_weights(ages, 0.5), [1.0, 0.25, 0.5, 1.0])


def test_booster_params_only_change_ranking_objectives() -> None:
    binary = {"objective": "binary", "metric": ["binary_logloss"]}
    assert booster_params(binary, True) is binary
    rank = booster_params({"objective": "lambdarank", "metric": ["binary_logloss"]}, True)
    assert rank["metric"] == ["ndcg"] and rank["eval_at"] == [10]
    assert booster_params({"objective": "rank_xendcg"}, False)["metric"] == []


@pytest.mark.parametrize("objective", ["lambdarank", "rank_xendcg"])
def test_ranking_objective_fits_stops_and_calibrates(
    objective: str,
    lists_data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    X, y, shopper, lists, _ = lists_data
    model = PurchaseModel(
        n_estimators=200, min_child_samples=20, cross_fit_folds=2, early_stopping_rounds=10,
        objective=objective,  # type: ignore[arg-type]
    ).fit(X, y, groups=shopper, lists=lists)  # fmt: skip
    assert all(1 <= trees < 200 for trees in model.best_iterations_)  # stopped by NDCG@10
    prob = model.purchase_probability(X)
    assert np.all((prob > 0) & (prob < 1))
    assert abs(prob.mean() - y.mean()) < 0.05  # the calibrator maps the ranking margin
    assert roc_auc_score(y, model.decision_function(X)) > 0.7
    model.save(tmp_path)
    loaded = PurchaseModel.load(tmp_path)
    assert loaded.objective == objective
    np.testing.assert_array_equal(loaded.purchase_probability(X), prob)


def test_window_weights_change_the_trees_and_default_is_unweighted(
    lists_data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    X, y, shopper, lists, age = lists_data
    settings = {"n_estimators": 30, "min_child_samples": 20, "cross_fit_folds": 2}
    plain = PurchaseModel(**settings).fit(X, y, groups=shopper, lists=lists)
    same = PurchaseModel(**settings).fit(X, y, groups=shopper, lists=lists, window_age=age)
    weighted = PurchaseModel(**settings, window_weight_decay=0.5).fit(
        X, y, groups=shopper, lists=lists, window_age=age
    )
    assert [b.model_to_string() for b in same.boosters_] == [
        b.model_to_string() for b in plain.boosters_
    ]
    assert weighted.boosters_[0].model_to_string() != plain.boosters_[0].model_to_string()


def test_ranking_objective_and_weights_need_fold_models(
    lists_data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    X, y, shopper, lists, age = lists_data
    with pytest.raises(ValueError, match="cross_fit_folds"):
        PurchaseModel(objective="lambdarank").fit(X, y, groups=shopper, lists=lists)
    with pytest.raises(ValueError, match="cross_fit_folds"):
        PurchaseModel(window_weight_decay=0.8).fit(X, y, groups=shopper, window_age=age)


def test_config_defaults_are_the_binary_unweighted_model() -> None:
    config = PurchaseModelConfig()
    assert config.objective == "binary" and config.window_weight_decay == 1.0
    with pytest.raises(ValueError):
        PurchaseModelConfig(objective="xentropy")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PurchaseModelConfig(window_weight_decay=1.5)


def test_the_ranker_passes_its_lists_and_window_ages(small_store: object) -> None:
    """The ranker's fit gives the classifier each row's list and window age: a decay changes
    the trees, a ranking objective fits and still serves calibrated probabilities."""
    from recsys_core.ranking import TwoStageRanker
    from tests.conftest import SMALL_RANKER, SMALL_RANKER_CUTOFF

    events, catalog = small_store.events, small_store.catalog  # type: ignore[attr-defined]

    def fitted(**classifier: object) -> TwoStageRanker:
        settings = {**SMALL_RANKER, "classifier": {**SMALL_RANKER["classifier"], **classifier}}  # type: ignore[dict-item]
        return TwoStageRanker(settings).fit(events, catalog, cutoff=SMALL_RANKER_CUTOFF)

    plain, weighted = fitted(), fitted(window_weight_decay=0.5)
    trees = lambda r: [b.model_to_string() for b in r.purchase_model_.boosters_]  # noqa: E731
    assert trees(weighted) != trees(plain)
    ranked = fitted(objective="lambdarank")
    assert ranked.purchase_model_.objective == "lambdarank"
    users = list(events["user_id"].astype(str).unique()[:20])
    reco = ranked.recommend(users, 5, filter_seen=False)
    assert len(reco) > 0 and reco["score"].between(0, 1).all()
