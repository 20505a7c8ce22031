"""The memory-frugal fit steps give exactly what the plain steps give."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from recsys_core.ranking.fit_memory import stack_frames, train_booster_on_rows
from recsys_core.ranking.purchase_model import PurchaseModel


def _window(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 50, n).astype(str).astype(object),
            "item_id": rng.integers(0, 80, n).astype(str).astype(object),
        }
    )
    frame["window_cutoff"] = pd.Timestamp("2024-01-01") + pd.Timedelta(days=seed)
    for j in range(6):
        values = rng.random(n)
        values[rng.random(n) < 0.1] = np.nan
        frame[f"f{j}"] = values
    frame["label"] = (rng.random(n) < 0.2).astype(np.int64)
    return frame


def test_stack_frames_equals_concat_and_releases_the_windows() -> None:
    frames = [_window(s, n) for s, n in ((1, 40), (2, 0), (3, 75), (4, 9))]
    expected = pd.concat(frames, ignore_index=True)
    pending = list(frames)
    stacked = stack_frames(pending)
    pd.testing.assert_frame_equal(stacked, expected)
    assert pending == []  # every window was handed over
    # the features are one block: selecting them does not copy
    features = stacked[[f"f{j}" for j in range(6)]].to_numpy()
    assert np.shares_memory(features, stacked["f0"].to_numpy())


def test_stack_frames_refuses_other_columns() -> None:
    with pytest.raises(ValueError, match="same columns"):
        stack_frames([_window(1, 5), _window(2, 5).drop(columns=["f3"])])
    with pytest.raises(ValueError, match="at least one"):
        stack_frames([])


def _classifier(seed: int) -> lgb.LGBMClassifier:
    return PurchaseModel(n_estimators=60, min_child_samples=5)._classifier(seed)


@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_booster_on_rows_equals_the_scikit_learn_fit(layout: str, early_stopping: bool) -> None:
    rng = np.random.default_rng(7)
    n, names = 3_000, [f"x{j}" for j in range(8)]
    matrix = np.asarray(rng.normal(size=(n, len(names))), order=layout)
    matrix[rng.random(matrix.shape) < 0.05] = np.nan
    label = (matrix[:, 0] + rng.normal(size=n) > 0.8).astype(np.int64)
    rows, stop_rows = np.sort(rng.choice(n, 1_800, replace=False)), np.arange(0, n, 7)
    frame = pd.DataFrame(matrix, columns=names)
    callbacks = [lgb.early_stopping(5, verbose=False)] if early_stopping else []
    stop_kwargs = (
        {
            "eval_X": (frame.iloc[stop_rows],),
            "eval_y": (label[stop_rows],),
            "eval_metric": "binary_logloss",
        }
        if early_stopping
        else {}
    )
    plain = (
        _classifier(3)
        .fit(frame.iloc[rows], label[rows], callbacks=callbacks, **stop_kwargs)
        .booster_
    )
    if early_stopping:  # PurchaseModel keeps the trees up to the best iteration
        plain = lgb.Booster(model_str=plain.model_to_string(num_iteration=plain.best_iteration))
    stop = (stop_rows, label[stop_rows]) if early_stopping else None
    lean = train_booster_on_rows(_classifier(3), matrix, names, rows, label[rows], stop, 5)
    assert lean.num_trees() == plain.num_trees()
    assert lean.model_to_string() == plain.model_to_string()


def test_fold_models_are_the_same_whatever_the_frame_layout() -> None:
    """PurchaseModel's fold path reads the rows from one view of the frame."""
    rng = np.random.default_rng(11)
    n = 4_000
    features = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"x{j}" for j in range(6)])
    label = (features["x0"] + rng.normal(size=n) > 1).astype(np.int64).to_numpy()
    groups = np.repeat(np.arange(n // 20), 20).astype(str)
    settings = {"n_estimators": 40, "cross_fit_folds": 2, "early_stopping_rounds": 5}
    one_block = PurchaseModel(**settings).fit(features, label, groups=groups)
    split = features.copy()
    split["x5"] = split["x5"].to_numpy().copy()  # a second block
    two_blocks = PurchaseModel(**settings).fit(split, label, groups=groups)
    assert [b.model_to_string() for b in one_block.boosters_] == [
        b.model_to_string() for b in two_blocks.boosters_
    ]
