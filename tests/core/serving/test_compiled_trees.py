"""Compiled trees give LightGBM's raw margins bit for bit, missing values and zeros included."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from recsys_core.serving.compiled_trees import CompiledTrees


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, 6))
    x[rng.random(x.shape) < 0.15] = np.nan  # missing values in every column
    x[rng.random(x.shape) < 0.15] = 0.0  # exact zeros
    x[:, 5] = rng.integers(0, 4, len(x))  # a few distinct values (many equal to a threshold)
    y = (np.nan_to_num(x[:, 0]) + np.isnan(x[:, 1]) + (x[:, 5] == 2) > 0.8).astype(int)
    return x, y


@pytest.mark.parametrize("zero_as_missing", [False, True])
def test_margins_equal_lightgbm_exactly(zero_as_missing: bool) -> None:
    x, y = _data(0)
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "min_data_in_leaf": 5,
        "verbose": -1,
        "num_threads": 1,
        "zero_as_missing": zero_as_missing,
        "seed": 1,
    }
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=40)
    trees = CompiledTrees.from_booster(booster)
    assert trees is not None
    probe, _ = _data(1)
    probe[:5] = [1e-40, -1e-40, np.nan, 0.0, 2.0, 3.0]  # tiny values read as zero
    expected = booster.predict(probe, raw_score=True)
    assert np.array_equal(trees.raw_score(probe), expected)
    # a few rows: one group of eight walking side by side, then the rest one by one
    for start in range(0, 200, 10):
        few = probe[start : start + 10]
        assert np.array_equal(trees.raw_score(few), expected[start : start + 10])


def test_categorical_models_are_refused() -> None:
    x, y = _data(2)
    x[:, 5] = np.nan_to_num(x[:, 5])
    data = lgb.Dataset(x, y, categorical_feature=[5])
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1}, data, 10)
    assert CompiledTrees.from_booster(booster) is None


def test_wrong_width_is_an_error() -> None:
    x, y = _data(3)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1}, lgb.Dataset(x, y), 5
    )
    trees = CompiledTrees.from_booster(booster)
    assert trees is not None
    with pytest.raises(ValueError, match="feature columns"):
        trees.raw_score(x[:, :3])
