"""Memory-frugal steps of the ranker's fit (same rows, same boosters, fewer copies).

The ranker's training rows are ~50 float64 features a row: with a training sample of
20,000 shoppers, ~5M rows or ~2 GB per copy. Two steps used to hold several copies at once:

* stacking the training windows (:func:`stack_frames`): ``pd.concat`` holds every window
  and the result at the same time (2 copies); here the features go into one preallocated
  block and each window is released as soon as it is copied (1 copy plus one window);
* training a fold model on a subset of the rows (:func:`train_booster_on_rows`): LightGBM's
  scikit-learn ``fit`` keeps the caller's copy of the subset (and of the early-stopping
  rows) alive for the whole training, on every fold thread at once; here each subset is
  copied, binned into a LightGBM ``Dataset`` and released before training starts, one
  subset at a time (a lock), so the raw copies never overlap.

Both give exactly what the plain steps give (tests: ``test_fit_memory.py`` compares the
frames and LightGBM's model text).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Final

import lightgbm as lgb
import numpy as np
import pandas as pd

from recsys_core.ranking.objectives import RANKING_OBJECTIVES, booster_params, ranking_rows

__all__ = ["stack_frames", "train_booster_on_rows"]

#: One subset of rows is copied and binned at a time (across fold threads).
_BINNING: Final = threading.Lock()


def stack_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """``pd.concat(frames, ignore_index=True)`` of frames with the same columns, holding at
    most one copy of the float64 columns plus one frame.

    The float64 columns must be contiguous in the column order (the ranker's features); they
    become one block the caller can select without a copy. ``frames`` is emptied as the
    frames are copied (so they can be freed; a frame still referenced elsewhere stays).
    """
    if not frames:
        raise ValueError("stack_frames needs at least one frame")
    columns = list(frames[0].columns)
    for frame in frames[1:]:
        if list(frame.columns) != columns:
            raise ValueError("stack_frames needs frames with the same columns in the same order")
    dtypes = frames[0].dtypes
    floats = [c for c in columns if dtypes[c] == np.float64]
    first = columns.index(floats[0]) if floats else len(columns)
    if floats and columns[first : first + len(floats)] != floats:
        # not one contiguous run of float64 columns: the plain concatenation
        return pd.concat(frames, ignore_index=True)
    others = [c for c in columns if c not in set(floats)]
    sizes = [len(f) for f in frames]
    # (features x rows) C-order: each column is one contiguous row of the block
    block = np.empty((len(floats), sum(sizes)), dtype=np.float64)
    pieces: dict[str, list[Any]] = {c: [] for c in others}
    start = 0
    while frames:
        frame = frames.pop(0)
        stop = start + len(frame)
        for j, name in enumerate(floats):
            block[j, start:stop] = frame[name].to_numpy(dtype=np.float64)
        for name in others:
            pieces[name].append(frame[name])
        start = stop
        del frame
    out = pd.DataFrame(block.T, columns=floats, copy=False)
    for position, name in enumerate(columns):
        if name in pieces:
            out.insert(position, name, pd.concat(pieces.pop(name), ignore_index=True))
    return out


def _lgb_params(classifier: lgb.LGBMClassifier, metrics: Sequence[str]) -> dict[str, Any]:
    """The parameters ``classifier.fit(..., eval_metric=metrics)`` passes to ``lgb.train``."""
    params: dict[str, Any] = classifier._process_params(stage="fit")
    metric = params.get("metric")
    listed = [metric] if isinstance(metric, str | type(None)) else list(metric)
    params["metric"] = [m for m in [*(e for e in metrics if e not in listed), *listed] if m]
    return params


def _binned(
    features: np.ndarray,
    rows: np.ndarray,
    label: np.ndarray,
    names: Sequence[str],
    params: dict[str, Any],
    reference: lgb.Dataset | None = None,
    weight: np.ndarray | None = None,
    group: np.ndarray | None = None,
) -> lgb.Dataset:
    """A constructed LightGBM dataset of ``features[rows]`` (with each row's ``weight`` and
    the list sizes ``group``, when given); the raw copy is released."""
    with _BINNING:
        subset = np.ascontiguousarray(features[rows])
        kwargs: dict[str, Any] = {"feature_name": list(names)} if reference is None else {}
        dataset = lgb.Dataset(
            subset,
            label=label,
            weight=weight,
            group=group,
            categorical_feature="auto",
            params=params,
            reference=reference,
            free_raw_data=True,
            **kwargs,
        )
        # as from a frame without categorical columns (the model text's last line)
        dataset.pandas_categorical = []
        dataset.construct()
        del subset
    return dataset


def train_booster_on_rows(
    classifier: lgb.LGBMClassifier,
    features: np.ndarray,
    names: Sequence[str],
    rows: np.ndarray,
    label: np.ndarray,
    stop: tuple[np.ndarray, np.ndarray] | None = None,
    early_stopping_rounds: int = 0,
    *,
    lists: np.ndarray | None = None,
    weight: np.ndarray | None = None,
) -> lgb.Booster:
    """A booster trained on ``features[rows]``, without holding the row copies while
    LightGBM trains.

    Without ``stop`` rows (or with ``early_stopping_rounds=0``) it is exactly
    ``classifier.fit(frame.iloc[rows], label).booster_``, ``frame`` being ``features`` with
    columns ``names``. With them it is the booster of ``classifier.fit(frame.iloc[rows], label,
    eval_X=(frame.iloc[stop_rows],), eval_y=(stop_label,), eval_metric="binary_logloss",
    callbacks=[lgb.early_stopping(early_stopping_rounds)])`` cut at its best iteration (what
    :class:`~recsys_core.ranking.purchase_model.PurchaseModel` keeps).

    Parameters
    ----------
    classifier:
        An unfitted binary :class:`lightgbm.LGBMClassifier` (its settings are used).
    features:
        Every row's features (float64, any layout).
    names:
        Feature names (the model's).
    rows, label:
        The training rows' positions in ``features`` and their 0/1 labels.
    stop:
        Early-stopping rows' positions and labels (scored by ``binary_logloss``).
    early_stopping_rounds:
        Trees without improvement on the ``stop`` rows before training stops.
    lists:
        The list code of every row of ``features``: with a ranking objective
        (:mod:`~recsys_core.ranking.objectives`) the rows (and the stopping rows) are grouped
        by list, and NDCG@10 of the stopping lists stops the model.
    weight:
        The weight of every row of ``features`` (training and stopping rows); ``None``: 1.
    """
    stopping = stop is not None and early_stopping_rounds > 0
    params = _lgb_params(classifier, ("binary_logloss",) if stopping else ())
    params = booster_params(params, stopping)
    ranking = params.get("objective") in RANKING_OBJECTIVES

    def dataset(at: np.ndarray, y: np.ndarray, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        group = None
        if ranking:
            if lists is None:
                raise ValueError(f"objective {params['objective']!r} needs each row's list")
            order, group = ranking_rows(at, lists)
            at, y = at[order], y[order]
        w = None if weight is None else np.asarray(weight, dtype=np.float64)[at]
        return _binned(features, at, y, names, params, reference, w, group)

    train_set = dataset(np.asarray(rows), np.asarray(label))
    valid_sets, callbacks = [], []
    if stop is not None and stopping:
        stop_rows, stop_label = stop
        valid_sets.append(dataset(np.asarray(stop_rows), np.asarray(stop_label), train_set))
        callbacks.append(lgb.early_stopping(int(early_stopping_rounds), verbose=False))
    booster = lgb.train(
        params=params,
        train_set=train_set,
        num_boost_round=classifier.n_estimators,
        valid_sets=valid_sets,
        valid_names=None,
        feval=[],
        init_model=None,
        callbacks=[*callbacks, lgb.record_evaluation({})],
    )
    booster.free_dataset()
    if not stopping:
        return booster
    best = int(booster.best_iteration) or booster.current_iteration()
    # only the trees up to the best iteration (LightGBM's own API, no text editing)
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
