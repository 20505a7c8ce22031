"""Scoring every shopper in chunks answers what recommend answers for all of them at once."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys_core.errors import ConfigError
from recsys_core.ranking.batch_scoring import score_all_shoppers


@pytest.mark.parametrize("filter_seen", [False, True])
def test_chunked_scoring_equals_recommend(small_ranker: object, filter_seen: bool) -> None:
    shoppers = [*small_ranker.known_users()[:120], "never-seen-shopper"]  # type: ignore[attr-defined]
    whole = small_ranker.recommend(shoppers, 7, filter_seen=filter_seen)  # type: ignore[attr-defined]
    seen: list[float] = []
    chunked = score_all_shoppers(
        small_ranker,  # type: ignore[arg-type]
        shoppers,
        7,
        filter_seen=filter_seen,
        chunk_size=23,
        workers=2,
        progress=lambda message, fraction: seen.append(fraction),
    )
    pd.testing.assert_frame_equal(chunked, whole)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert chunked["cold_start"].sum() == 7  # the unknown shopper got the cold-start list


def test_every_known_shopper_by_default(small_ranker: object) -> None:
    reco = score_all_shoppers(small_ranker, k=3, chunk_size=100)  # type: ignore[arg-type]
    known = small_ranker.known_users()  # type: ignore[attr-defined]
    assert set(reco["user_id"]) == set(known)
    assert reco.groupby("user_id").size().max() == 3
    assert not reco["cold_start"].any()


def test_margins_function_is_used(small_ranker: object) -> None:
    model = small_ranker.purchase_model_  # type: ignore[attr-defined]
    calls: list[int] = []

    def margins(matrix):  # type: ignore[no-untyped-def]
        calls.append(len(matrix))
        return model.decision_function(matrix)

    shoppers = small_ranker.known_users()[:10]  # type: ignore[attr-defined]
    score_all_shoppers(small_ranker, shoppers, 5, chunk_size=4, margins=margins)  # type: ignore[arg-type]
    assert len(calls) == 3


@pytest.mark.parametrize("bad", [{"chunk_size": 0}, {"workers": 0}])
def test_bad_settings_are_refused(small_ranker: object, bad: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        score_all_shoppers(small_ranker, ["x"], 5, **bad)  # type: ignore[arg-type]


def test_recommend_and_the_evaluation_frame_score_in_chunks(
    small_ranker: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """recommend() without candidates and warm_candidate_frame() build the features of one
    chunk of shoppers at a time (the evaluation once held every test shopper's features:
    9 GB on a 30k-shopper grocery log) and keep no feature column; the lists are unchanged."""
    import recsys_core.ranking.candidate_scoring as batch
    import recsys_core.ranking.ranker as ranker_module

    shoppers = [*small_ranker.known_users()[:50], "never-seen-shopper"]  # type: ignore[attr-defined]
    whole = {fs: small_ranker.recommend(shoppers, 6, filter_seen=fs) for fs in (False, True)}  # type: ignore[attr-defined]
    sizes: list[int] = []
    original = batch.scored_candidates

    def spy(ranker, user_ids, margins=None):  # type: ignore[no-untyped-def]
        sizes.append(len(user_ids))
        return original(ranker, user_ids, margins)

    monkeypatch.setattr(batch, "scored_candidates", spy)
    monkeypatch.setattr(ranker_module, "DEFAULT_SCORING_CHUNK", 8)
    for filter_seen, expected in whole.items():
        chunked = small_ranker.recommend(shoppers, 6, filter_seen=filter_seen)  # type: ignore[attr-defined]
        pd.testing.assert_frame_equal(chunked, expected)
    assert sizes and max(sizes) <= 8 and sum(sizes) == 2 * 50
    sizes.clear()
    scored = small_ranker.warm_candidate_frame(shoppers)  # type: ignore[attr-defined]
    assert max(sizes) <= 8 and sum(sizes) == 50
    assert list(scored.columns) == list(batch.COMPACT_COLUMNS)
    for filter_seen, expected in whole.items():
        again = small_ranker.recommend(shoppers, 6, filter_seen=filter_seen, candidates=scored)  # type: ignore[attr-defined]
        pd.testing.assert_frame_equal(again, expected)


def test_chunks_run_in_forked_workers_with_a_closure() -> None:
    """Workers are processes (each its own core and interpreter lock), forked, so the
    scoring function may close over a fitted model that is never pickled."""
    import os

    from recsys_core.ranking.batch_scoring import map_chunks

    offset = 10
    got = list(map_chunks(lambda c: (c + offset, os.getpid()), [1, 2, 3, 4], 2))
    assert [value for value, _ in got] == [11, 12, 13, 14]
    assert os.getpid() not in {pid for _, pid in got}
    threads = list(map_chunks(lambda c: os.getpid(), [1, 2, 3], 2, processes=False))
    assert set(threads) == {os.getpid()}


def test_the_worker_count_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys_core.ranking.batch_scoring import scoring_workers

    monkeypatch.setenv("RECSYS_SCORING_WORKERS", "3")
    assert scoring_workers() == 3
    assert scoring_workers(1) == 1
    monkeypatch.setenv("RECSYS_SCORING_WORKERS", "0")
    with pytest.raises(ConfigError, match="RECSYS_SCORING_WORKERS"):
        scoring_workers()


def test_lightgbm_margins_are_never_forked(small_ranker: object) -> None:
    """LightGBM's predict runs OpenMP, whose pool does not survive a fork (a forked worker
    calling it hung): compiled trees go to worker processes, LightGBM's predict to threads."""
    from recsys_core.ranking.candidate_scoring import ChunkScorer

    assert ChunkScorer(small_ranker).fork_safe  # type: ignore[arg-type]
    model = small_ranker.purchase_model_  # type: ignore[attr-defined]
    assert not ChunkScorer(small_ranker, model.decision_function).fork_safe  # type: ignore[arg-type]


def test_a_chunk_without_candidates_gives_no_rows(small_ranker: object) -> None:
    import numpy as np

    from recsys_core.ranking.candidate_scoring import ChunkScorer

    scorer = ChunkScorer(small_ranker)  # type: ignore[arg-type]
    empty = scorer.top_k(np.array([], dtype=object), 5, filter_seen=True)
    expected = small_ranker.recommend([], 5, filter_seen=True)  # type: ignore[attr-defined]
    pd.testing.assert_frame_equal(empty, expected)
