"""The purchase model's group codes: ranks of the shoppers that split the rows exactly as
the shopper ids do, so every model fitted on them is the one fitted on the ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GroupKFold

from recsys_core.ranking import purchase_model
from recsys_core.ranking.calibration import _group_split
from recsys_core.ranking.purchase_model import PurchaseModel, group_codes

#: Text ids whose text order differs from their number order and from insertion order.
IDS = np.array(["u9", "u10", "u100", "U1", "é2", "12", "2", "u9", "12", "a b"], dtype=object)


def test_codes_are_the_ranks_numpy_unique_gives() -> None:
    _, ranks = np.unique(IDS, return_inverse=True)
    np.testing.assert_array_equal(group_codes(IDS), ranks)
    np.testing.assert_array_equal(group_codes(pd.Series(IDS)), ranks)
    numbers = np.array([30, 4, 4, 1000, -2])
    np.testing.assert_array_equal(group_codes(numbers), np.unique(numbers, return_inverse=True)[1])


def test_codes_split_the_rows_as_the_ids_do() -> None:
    rng = np.random.default_rng(3)
    ids = np.array([f"s{k}" for k in rng.integers(0, 400, size=5000)], dtype=object)
    codes = group_codes(ids)
    for fraction, seed in ((0.25, 42), (0.5, 43), (0.2, 44)):
        split_ids, split_codes = (
            _group_split(ids, fraction, seed),
            _group_split(codes, fraction, seed),
        )
        for a, b in zip(split_ids, split_codes, strict=True):
            np.testing.assert_array_equal(a, b)
    x = np.zeros((len(ids), 1))
    folds_ids = [held for _, held in GroupKFold(n_splits=3).split(x, groups=ids)]
    folds_codes = [held for _, held in GroupKFold(n_splits=3).split(x, groups=codes)]
    for a, b in zip(folds_ids, folds_codes, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("settings", [{"cross_fit_folds": 2}, {"early_stopping_rounds": 5}])
def test_a_model_fitted_on_codes_is_the_model_fitted_on_ids(
    settings: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    n = 4000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(size=n)})
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(2 - 1.5 * X["a"]))).astype(int).to_numpy()
    ids = np.array([f"shopper-{k}" for k in rng.integers(0, 500, size=n)], dtype=object)
    params = {"n_estimators": 30, "min_child_samples": 20, "n_jobs": 1, **settings}
    coded = PurchaseModel(**params).fit(X, y, groups=ids)
    monkeypatch.setattr(purchase_model, "group_codes", np.asarray)  # the ids themselves
    plain = PurchaseModel(**params).fit(X, y, groups=ids)
    assert [b.model_to_string() for b in coded.boosters_] == [
        b.model_to_string() for b in plain.boosters_
    ]
    assert coded.calibrator_.to_dict() == plain.calibrator_.to_dict()
    assert coded.calibration_rows_ == plain.calibration_rows_
    np.testing.assert_array_equal(coded.predict_proba(X), plain.predict_proba(X))
