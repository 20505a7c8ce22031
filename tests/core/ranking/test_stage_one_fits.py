"""Stage one fitted ahead on a background thread gives exactly what fitting it in line gives.

The ranker's fit queues each training window's stage one (ALS, item-kNN) one window ahead,
and the cutoff's after the last window, on a second thread (``StageOneFits``). These tests
run the fit once that way and once with a ``StageOneFits`` that fits every generator in
line when it is taken (the sequential fit before the change) and compare the training rows,
the fold models' text and the lists with their probabilities, bit for bit.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

import numpy as np
import pandas as pd
import pytest

from recsys_core.ranking import TwoStageRanker, build_training_frame, ranker, training_frame
from recsys_core.ranking.candidates import CandidateGenerator
from recsys_core.ranking.purchase_model import PurchaseModel
from recsys_core.ranking.ranker import RankerConfig
from tests.conftest import SMALL_RANKER, SMALL_RANKER_CUTOFF

WINDOWS = {**SMALL_RANKER, "training_windows": 3}


class InlineFits(training_frame.StageOneFits):
    """Every generator fitted in line, in the calling thread, when it is taken."""

    def start(self, cutoff: pd.Timestamp) -> None:
        pass

    def take(self, cutoff: pd.Timestamp) -> Future[CandidateGenerator]:
        future: Future[CandidateGenerator] = Future()
        generator = training_frame.make_generator(self._config).fit(self._events, cutoff)
        future.set_result(generator)
        return future


class RecordedFits(training_frame.StageOneFits):
    """The real fits, recording the order in which cutoffs were queued."""

    queued: list[pd.Timestamp] = []

    def start(self, cutoff: pd.Timestamp) -> None:
        RecordedFits.queued.append(pd.Timestamp(cutoff))
        super().start(cutoff)


@pytest.fixture(scope="module")
def store(small_store) -> tuple[pd.DataFrame, pd.DataFrame]:  # type: ignore[no-untyped-def]
    return small_store.events, small_store.catalog


def _same_generator(a: CandidateGenerator, b: CandidateGenerator) -> None:
    assert np.array_equal(a.als_.user_factors_, b.als_.user_factors_)
    assert np.array_equal(a.als_.item_factors_, b.als_.item_factors_)
    assert (a.itemknn_.similarity_ != b.itemknn_.similarity_).nnz == 0
    assert np.array_equal(a.history_indptr_, b.history_indptr_)
    assert np.array_equal(a.history_items_, b.history_items_)


def test_generators_fitted_ahead_equal_the_ones_fitted_in_line(
    store: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    events, _ = store
    config = RankerConfig(**WINDOWS)
    cutoffs = [SMALL_RANKER_CUTOFF - pd.Timedelta(days=d) for d in (30, 60, 0)]
    names: list[str] = []
    fitted = CandidateGenerator.fit

    def spy(self: CandidateGenerator, *args: object) -> CandidateGenerator:
        names.append(threading.current_thread().name)
        return fitted(self, *args)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CandidateGenerator, "fit", spy)
        with training_frame.StageOneFits(events, config) as fits:
            for cutoff in cutoffs:  # all queued at once, taken in order
                fits.start(cutoff)
            ahead = [fits.take(cutoff).result() for cutoff in cutoffs]
            fits.start(cutoffs[0])  # queued and never taken: dropped or waited for on close
    assert names and all(name.startswith("stage-one") for name in names)
    for cutoff, generator in zip(cutoffs, ahead, strict=True):
        _same_generator(generator, training_frame.make_generator(config).fit(events, cutoff))


def test_the_fit_with_stage_one_ahead_equals_the_fit_in_line(
    store: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    events, catalog = store
    config = RankerConfig(**WINDOWS)
    users = sorted(events["user_id"].unique())[:40]

    RecordedFits.queued = []
    monkeypatch.setattr(training_frame, "StageOneFits", RecordedFits)
    monkeypatch.setattr(ranker, "StageOneFits", RecordedFits)
    rows_ahead = build_training_frame(events, catalog, SMALL_RANKER_CUTOFF, config)
    RecordedFits.queued = []
    ahead = TwoStageRanker(config).fit(events, catalog, cutoff=SMALL_RANKER_CUTOFF)
    # each window one ahead, then the ranker's own cutoff after the last window
    windows = sorted({c for c in RecordedFits.queued if c < SMALL_RANKER_CUTOFF}, reverse=True)
    assert len(windows) == 3 and RecordedFits.queued[-1] == SMALL_RANKER_CUTOFF

    monkeypatch.setattr(training_frame, "StageOneFits", InlineFits)
    monkeypatch.setattr(ranker, "StageOneFits", InlineFits)
    rows_inline = build_training_frame(events, catalog, SMALL_RANKER_CUTOFF, config)
    inline = TwoStageRanker(config).fit(events, catalog, cutoff=SMALL_RANKER_CUTOFF)

    pd.testing.assert_frame_equal(rows_ahead, rows_inline, check_exact=True)
    texts = [b.model_to_string() for b in ahead.purchase_model_.boosters_]
    assert texts == [b.model_to_string() for b in inline.purchase_model_.boosters_]
    _same_generator(ahead.generator_, inline.generator_)
    pd.testing.assert_frame_equal(
        ahead.recommend(users, 10, filter_seen=False),
        inline.recommend(users, 10, filter_seen=False),
        check_exact=True,
    )


def test_the_fold_models_margin_on_threads_is_the_served_margin() -> None:
    rng = np.random.default_rng(3)
    features = pd.DataFrame(rng.random((3_000, 5)), columns=[f"f{j}" for j in range(5)])
    label = (features["f0"] + rng.random(3_000) > 1.2).astype(np.int64).to_numpy()
    groups = rng.integers(0, 300, 3_000)
    model = PurchaseModel(n_estimators=30, cross_fit_folds=2, fold_workers=2).fit(
        features, label, groups=groups
    )
    matrix = features.to_numpy()
    assert np.array_equal(model._margin(matrix, 2), model._margin(matrix))
    assert np.array_equal(model._margin(matrix[:0], 2), model._margin(matrix[:0]))
