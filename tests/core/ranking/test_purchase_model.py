"""The calibrated LightGBM purchase classifier: probabilities, calibration, saving."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import log_loss, roc_auc_score

from recsys_core.errors import ArtifactError, DataValidationError
from recsys_core.metrics import expected_calibration_error
from recsys_core.ranking.purchase_model import (
    Calibrator,
    PurchaseModel,
    _group_split,
    top_of_lists,
)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 6000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.uniform(size=n)})
    X.loc[rng.uniform(size=n) < 0.1, "b"] = np.nan
    logit = -2.5 + 1.5 * X["a"] + np.nan_to_num(X["b"].to_numpy()) - X["c"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    groups = rng.integers(0, 600, size=n)
    return X, np.asarray(y), groups


@pytest.fixture(scope="module")
def model(data: tuple[pd.DataFrame, np.ndarray, np.ndarray]) -> PurchaseModel:
    X, y, groups = data
    return PurchaseModel(n_estimators=60, min_child_samples=20, n_jobs=1).fit(X, y, groups=groups)


def test_probabilities_are_calibrated_probabilities(
    model: PurchaseModel, data: tuple[pd.DataFrame, np.ndarray, np.ndarray]
) -> None:
    X, y, _ = data
    prob = model.purchase_probability(X)
    assert prob.shape == (len(X),)
    assert np.all((prob >= 0) & (prob <= 1))
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict_proba(X)[:, 1], prob)
    assert abs(prob.mean() - y.mean()) < 0.02
    assert model.calibrator_.method in ("isotonic", "sigmoid")
    assert set(model.calibration_log_loss_) == {"isotonic", "sigmoid"}
    # calibration is monotone in the margin, so it never reorders rows
    margin = model.decision_function(X)
    order = np.argsort(margin)
    assert np.all(np.diff(prob[order]) >= -1e-12)
    assert list(model.classes_) == [0, 1]
    assert clone(model).get_params() == model.get_params()


def test_numpy_input_and_column_order(model: PurchaseModel, data: tuple) -> None:
    X, _, _ = data
    np.testing.assert_array_equal(
        model.purchase_probability(X[["c", "a", "b"]]), model.purchase_probability(X.to_numpy())
    )
    with pytest.raises(ValueError):
        model.purchase_probability(X.to_numpy()[:, :2])


def test_fixed_calibration_methods(data: tuple) -> None:
    X, y, groups = data
    for method in ("isotonic", "sigmoid"):
        fitted = PurchaseModel(n_estimators=20, calibration=method, n_jobs=1).fit(
            X, y, groups=groups
        )
        assert fitted.calibrator_.method == method


def test_calibrator_round_trip() -> None:
    margin = np.linspace(-4, 2, 200)
    label = (np.random.default_rng(1).uniform(size=200) < 1 / (1 + np.exp(-margin))).astype(int)
    for method in ("isotonic", "sigmoid"):
        cal = Calibrator.fit(method, margin, label)
        again = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
        np.testing.assert_array_equal(again.predict(margin), cal.predict(margin))


def test_save_load_gives_identical_probabilities(
    model: PurchaseModel, data: tuple, tmp_path: Path
) -> None:
    X, _, _ = data
    model.save(tmp_path / "pm")
    loaded = PurchaseModel.load(tmp_path / "pm")
    np.testing.assert_array_equal(loaded.purchase_probability(X), model.purchase_probability(X))
    np.testing.assert_array_equal(loaded.decision_function(X), model.decision_function(X))
    assert not list((tmp_path / "pm").glob("*.pkl"))


def test_corrupted_folder_raises_artifact_error(model: PurchaseModel, tmp_path: Path) -> None:
    folder = tmp_path / "pm"
    model.save(folder)
    (folder / "booster_0.txt").write_text("this is not a tree model")
    with pytest.raises(ArtifactError):
        PurchaseModel.load(folder)
    model.save(folder)
    (folder / "calibrator.json").write_text("{broken")
    with pytest.raises(ArtifactError):
        PurchaseModel.load(folder)
    with pytest.raises(ArtifactError):
        PurchaseModel.load(tmp_path / "missing")


def test_needs_both_classes(data: tuple) -> None:
    X, y, groups = data
    with pytest.raises(DataValidationError):
        PurchaseModel(n_estimators=5, n_jobs=1).fit(X, np.zeros_like(y), groups=groups)


def _fresh(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """New rows from the same distribution as the ``data`` fixture."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.uniform(size=n)})
    X.loc[rng.uniform(size=n) < 0.1, "b"] = np.nan
    logit = -2.5 + 1.5 * X["a"] + np.nan_to_num(X["b"].to_numpy()) - X["c"]
    return X, (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)


def test_fold_models_serve_their_mean_margin_and_shap_adds_up_to_it(
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray],
) -> None:
    X, y, groups = data
    model = PurchaseModel(n_estimators=15, min_child_samples=20, cross_fit_folds=3).fit(
        X, y, groups=groups
    )
    assert len(model.boosters_) == 3  # kept apart: no hand-edited LightGBM model text
    matrix = X.to_numpy(dtype=np.float64)
    expected = np.mean([b.predict(matrix, raw_score=True) for b in model.boosters_], axis=0)
    np.testing.assert_allclose(model.decision_function(X), expected, atol=1e-12)
    values = model.shap_values(X.iloc[:200])
    np.testing.assert_allclose(
        model.expected_value + values.sum(axis=1), expected[:200], rtol=1e-6, atol=1e-6
    )
    with pytest.raises(AttributeError, match="mean of 3 fold models"):
        _ = model.booster_


def test_the_calibrator_learns_the_served_margin_on_held_out_shoppers(
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray],
) -> None:
    """Calibrated on the mean margin of held-out shoppers, the served probabilities are
    calibrated on new rows too, with equal-width and with equal-mass bins."""
    X, y, groups = data
    model = PurchaseModel(n_estimators=40, min_child_samples=20, cross_fit_folds=3).fit(
        X, y, groups=groups
    )
    assert 0.15 * len(X) < model.calibration_rows_ < 0.35 * len(X)  # a quarter of shoppers
    X_new, y_new = _fresh(20_000, seed=5)
    prob = model.purchase_probability(X_new)
    assert abs(prob.mean() - y_new.mean()) < 0.015
    assert expected_calibration_error(y_new, prob, strategy="uniform") < 0.03
    assert expected_calibration_error(y_new, prob, strategy="quantile") < 0.03


def test_an_old_saved_format_asks_for_a_retrain(model: PurchaseModel, tmp_path: Path) -> None:
    folder = tmp_path / "pm"
    model.save(folder)
    payload = json.loads((folder / "calibrator.json").read_text())
    payload["format_version"] = 1
    (folder / "calibrator.json").write_text(json.dumps(payload))
    with pytest.raises(ArtifactError, match="format version 1.*retrain"):
        PurchaseModel.load(folder)


def test_cross_fitted_model_saves_and_loads(
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y, groups = data
    model = PurchaseModel(n_estimators=15, min_child_samples=20, cross_fit_folds=3).fit(
        X, y, groups=groups
    )
    assert [b.num_trees() for b in model.boosters_] == [15, 15, 15]
    prob = model.purchase_probability(X)
    assert abs(prob.mean() - y.mean()) < 0.02
    holdout = PurchaseModel(n_estimators=15, min_child_samples=20).fit(X, y, groups=groups)
    assert roc_auc_score(y, prob) > roc_auc_score(y, holdout.purchase_probability(X)) - 0.02
    model.save(tmp_path / "pm")
    loaded = PurchaseModel.load(tmp_path / "pm")
    assert loaded.cross_fit_folds == 3
    np.testing.assert_array_equal(loaded.purchase_probability(X), prob)
    # fold models trained in parallel threads give the same model as one after another
    parallel = PurchaseModel(
        n_estimators=15, min_child_samples=20, cross_fit_folds=3, fold_workers=3
    ).fit(X, y, groups=groups)
    assert [b.model_to_string() for b in parallel.boosters_] == [
        b.model_to_string() for b in model.boosters_
    ]
    np.testing.assert_array_equal(parallel.purchase_probability(X), prob)
    for bad in (1, -1):
        with pytest.raises(ValueError, match="cross_fit_folds"):
            PurchaseModel(cross_fit_folds=bad).fit(X, y, groups=groups)
    with pytest.raises(DataValidationError, match="folds"):
        PurchaseModel(cross_fit_folds=6).fit(X[:40], np.arange(40) % 2, groups=np.arange(40) % 5)


def test_early_stopping_keeps_the_best_trees_of_held_out_fit_shoppers(
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """One model stops on a seeded slice of the fit part's shoppers (never the calibration
    shoppers), keeps exactly the trees up to the best held-out log loss, and is the same
    model on every run."""
    X, y, groups = data
    params = {"n_estimators": 400, "min_child_samples": 20, "early_stopping_rounds": 10}
    model = PurchaseModel(**params).fit(X, y, groups=groups)
    again = PurchaseModel(**params).fit(X, y, groups=groups)
    (trees,) = model.best_iterations_
    assert 1 <= trees < 400
    assert model.boosters_[0].num_trees() == trees  # nothing beyond the best tree is kept
    assert model.boosters_[0].model_to_string() == again.boosters_[0].model_to_string()

    # the same model, unstopped, on the same rows: the held-out loss is lowest at `trees`
    fit_part, cal_part = _group_split(groups, 0.25, 42)
    train, stop = _group_split(groups[fit_part], 0.2, 42 + 2)
    Xf, yf = X[fit_part].astype(np.float64), y[fit_part]
    full = PurchaseModel(n_estimators=trees + 10, min_child_samples=20)._classifier(42)
    booster = full.fit(Xf[train], yf[train]).booster_
    losses = [
        log_loss(yf[stop], booster.predict(Xf[stop].to_numpy(), num_iteration=i))
        for i in range(1, trees + 11)
    ]
    assert int(np.argmin(losses)) + 1 == trees

    # labels of the calibration shoppers do not move the trees (they never stop a model)
    y_cal = y.copy()
    y_cal[cal_part] = 1 - y_cal[cal_part]
    other = PurchaseModel(**params).fit(X, y_cal, groups=groups)
    assert other.boosters_[0].model_to_string() == model.boosters_[0].model_to_string()

    model.save(tmp_path / "pm")
    loaded = PurchaseModel.load(tmp_path / "pm")
    assert loaded.best_iterations_ == [trees]
    np.testing.assert_array_equal(loaded.purchase_probability(X), model.purchase_probability(X))
    values = loaded.shap_values(X.iloc[:100])  # SHAP explains the cut model that is served
    np.testing.assert_allclose(
        loaded.expected_value + values.sum(axis=1),
        loaded.decision_function(X.iloc[:100]),
        rtol=1e-6,
        atol=1e-6,
    )


def test_early_stopped_fold_models_stop_on_their_own_left_out_fold(
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray],
) -> None:
    X, y, groups = data
    params = {
        "n_estimators": 400,
        "min_child_samples": 20,
        "cross_fit_folds": 2,
        "early_stopping_rounds": 10,
    }
    model = PurchaseModel(**params).fit(X, y, groups=groups)
    assert len(model.best_iterations_) == 2
    assert all(1 <= t < 400 for t in model.best_iterations_)
    assert [b.num_trees() for b in model.boosters_] == model.best_iterations_
    parallel = PurchaseModel(**params, fold_workers=2).fit(X, y, groups=groups)
    assert [b.model_to_string() for b in parallel.boosters_] == [
        b.model_to_string() for b in model.boosters_
    ]
    prob = model.purchase_probability(X)
    assert abs(prob.mean() - y.mean()) < 0.02
    # without early stopping every model has the full n_estimators trees
    plain = PurchaseModel(n_estimators=30, min_child_samples=20).fit(X, y, groups=groups)
    assert plain.best_iterations_ == [30]


def test_the_ranker_default_is_two_early_stopped_fold_models(
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray], small_ranker: object
) -> None:
    from recsys_core.ranking.ranker import PurchaseModelConfig

    config = PurchaseModelConfig()
    assert (config.cross_fit_folds, config.early_stopping_rounds) == (2, 30)
    served = small_ranker.purchase_model_  # type: ignore[attr-defined]
    assert served.early_stopping_rounds == 30 and len(served.boosters_) == 2
    assert all(1 <= t <= 40 for t in served.best_iterations_)  # the tests' ranker caps at 40
    model = PurchaseModel(**config.model_dump()).fit(*data[:2], groups=data[2])
    assert len(model.boosters_) == 2
    assert all(1 <= t < config.n_estimators for t in model.best_iterations_)


def test_top_of_lists_marks_each_lists_highest_rows() -> None:
    score = np.array([0.1, 0.9, 0.5, 0.5, 0.2, 0.8, 0.3])
    lists = np.array([1, 1, 1, 2, 2, 2, 3])
    np.testing.assert_array_equal(
        top_of_lists(score, lists, 2), [False, True, True, True, False, True, True]
    )
    # ties: the earlier row first
    np.testing.assert_array_equal(
        top_of_lists(np.array([0.5, 0.5, 0.5]), np.array([0, 0, 0]), 2), [True, True, False]
    )
    assert top_of_lists(np.zeros(0), np.zeros(0, dtype=np.int64), 3).shape == (0,)


def _lists(n_lists: int, size: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Lists whose rows share the list's level (``u``) in the feature but not in the label:
    among rows of equal margin, those at the top of their list are bought more often than
    the pooled rows (the selection a served list of its top rows makes)."""
    rng = np.random.default_rng(seed)
    lists = np.repeat(np.arange(n_lists), size)
    u = rng.normal(size=n_lists)[lists]
    e = rng.normal(size=len(lists))
    X = pd.DataFrame({"a": u + e, "noise": rng.normal(size=len(lists))})
    y = (rng.uniform(size=len(lists)) < 1 / (1 + np.exp(-(-3 + 2 * e)))).astype(int)
    return X, y, lists


def test_calibration_top_k_learns_from_each_held_out_lists_top_rows() -> None:
    X, y, lists = _lists(1500, 20, seed=1)
    settings = {"n_estimators": 40, "min_child_samples": 20, "calibration": "sigmoid"}
    pooled = PurchaseModel(**settings).fit(X, y, groups=lists)
    top = PurchaseModel(**settings, calibration_top_k=3).fit(X, y, groups=lists, lists=lists)
    # exactly the held-out shoppers' three highest served margins of each list
    _, held = _group_split(lists, top.calibration_fraction, top.random_state)
    margin = top.decision_function(X[held])
    chosen = top_of_lists(margin, lists[held], 3)
    assert top.calibration_rows_ == int(chosen.sum()) == 3 * len(np.unique(lists[held]))
    expected = Calibrator.fit("sigmoid", margin[chosen], y[held][chosen])
    assert top.calibrator_.to_dict() == pytest.approx(expected.to_dict())
    # on new lists the top rows' mean probability matches what they buy; the pooled
    # calibrator misses it
    X_new, y_new, lists_new = _lists(4000, 20, seed=2)
    served = top_of_lists(top.decision_function(X_new), lists_new, 3)
    bought = y_new[served].mean()
    assert abs(top.purchase_probability(X_new[served]).mean() - bought) < 0.04
    assert abs(pooled.purchase_probability(X_new[served]).mean() - bought) > 0.1
    assert top.get_params()["calibration_top_k"] == 3
