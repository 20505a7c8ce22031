"""Stage one: ALS + item-kNN + own-history candidates, fitted only on the past."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.data.demo_store import generate_demo_store
from recsys_core.errors import ArtifactError, UnknownUserError
from recsys_core.models import ALSConfig, ItemKNNConfig
from recsys_core.ranking.candidates import CandidateGenerator
from recsys_core.ranking.features import STAGE_ONE_FEATURES

CUTOFF = pd.Timestamp("2024-05-01")


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    events, _ = generate_demo_store(n_users=300, n_items=150, n_events=20_000, seed=1)
    return events


@pytest.fixture(scope="module")
def generator(events: pd.DataFrame) -> CandidateGenerator:
    return CandidateGenerator(
        als=ALSConfig(factors=16, iterations=5, num_threads=1),
        itemknn=ItemKNNConfig(num_threads=1),
        n_als=20,
        n_itemknn=20,
        n_history=1000,
    ).fit(events, CUTOFF)


def _some_users(events: pd.DataFrame, n: int = 25) -> list[str]:
    past = events[events["timestamp"] < CUTOFF]
    return sorted(past["user_id"].astype(str).unique())[:n]


def test_candidates_hold_top_lists_and_history(
    generator: CandidateGenerator, events: pd.DataFrame
) -> None:
    users = _some_users(events)
    cands = generator.candidates(users)
    assert list(cands.columns) == ["user_id", "item_id", *STAGE_ONE_FEATURES]
    assert not cands.duplicated(["user_id", "item_id"]).any()
    assert set(cands["user_id"]) == set(users)
    # the ALS and item-kNN top lists (seen items included) are all there
    als_top = generator.als_.recommend(users, 20, filter_seen=False)
    merged = als_top.merge(cands, on=["user_id", "item_id"], how="left")
    assert merged["als_score"].notna().all()
    np.testing.assert_allclose(merged["als_score"], merged["score"], rtol=1e-4, atol=1e-5)
    assert (cands["als_rank"] <= 20).groupby(cands["user_id"]).sum().eq(20).all()
    knn_top = generator.itemknn_.recommend(users, 20, filter_seen=False)
    assert knn_top.merge(cands, on=["user_id", "item_id"], how="left")["itemknn_rank"].le(20).all()
    # every item of the user's past is a candidate (n_history is large here)
    past = events[events["timestamp"] < CUTOFF]
    history = past[past["user_id"].astype(str).isin(users)][["user_id", "item_id"]].astype(str)
    history = history.drop_duplicates()
    found = history.merge(cands, on=["user_id", "item_id"], how="left", indicator=True)
    assert (found["_merge"] == "both").all()


def test_history_is_capped_to_most_recent(events: pd.DataFrame) -> None:
    gen = CandidateGenerator(
        als=ALSConfig(factors=8, iterations=2, num_threads=1), n_als=0, n_itemknn=0, n_history=3
    ).fit(events, CUTOFF)
    user = _some_users(events, 1)[0]
    cands = gen.candidates([user])
    past = events[(events["timestamp"] < CUTOFF) & (events["user_id"].astype(str) == user)]
    recent = (
        past.assign(item_id=past["item_id"].astype(str))
        .groupby("item_id")["timestamp"]
        .max()
        .sort_values(ascending=False)
    )
    assert set(cands["item_id"]) == set(recent.index[:3])


def test_score_pairs_match_candidates_and_models(
    generator: CandidateGenerator, events: pd.DataFrame
) -> None:
    cands = generator.candidates(_some_users(events, 10))
    scores = generator.score_pairs(cands["user_id"].tolist(), cands["item_id"].tolist())
    np.testing.assert_allclose(scores, cands[list(STAGE_ONE_FEATURES)].to_numpy(), equal_nan=True)
    als = generator.als_.score_items(cands["user_id"].tolist(), cands["item_id"].tolist())
    np.testing.assert_allclose(scores[:, 0], als, rtol=1e-4, atol=1e-5)
    knn = generator.itemknn_.score_items(cands["user_id"].tolist(), cands["item_id"].tolist())
    np.testing.assert_allclose(scores[:, 2], knn, rtol=1e-6, atol=1e-9)
    unknown = generator.score_pairs(["nobody", cands["user_id"].iloc[0]], ["P001", "no-item"])
    assert np.isnan(unknown).all()


def test_fitted_only_on_events_before_the_cutoff(
    generator: CandidateGenerator, events: pd.DataFrame
) -> None:
    later_only = set(events["user_id"].astype(str)) - set(
        events[events["timestamp"] < CUTOFF]["user_id"].astype(str)
    )
    assert all(u not in generator.users_ for u in later_only)
    assert generator.als_.user_items_.sum() == pytest.approx(generator.itemknn_.user_items_.sum())
    with pytest.raises(UnknownUserError):
        generator.candidates(["nobody"])


def test_save_load_round_trip(
    generator: CandidateGenerator, events: pd.DataFrame, tmp_path: Path
) -> None:
    generator.save(tmp_path / "stage_one")
    loaded = CandidateGenerator(n_als=20, n_itemknn=20, n_history=1000).load(tmp_path / "stage_one")
    users = _some_users(events, 5)
    pd.testing.assert_frame_equal(loaded.candidates(users), generator.candidates(users))
    (tmp_path / "stage_one" / "history.npz").write_bytes(b"garbage")
    with pytest.raises(ArtifactError):
        CandidateGenerator().load(tmp_path / "stage_one")
