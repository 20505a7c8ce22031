"""The two-stage ranker on a small seeded demo store: leakage, recommendations, saving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys_core.errors import ArtifactError, ConfigError, UnknownItemError, UnknownUserError
from recsys_core.ranking import TwoStageRanker, build_training_frame
from recsys_core.ranking.features import FEATURE_NAMES
from recsys_core.ranking.ranker import LABEL, WINDOW_CUTOFF, RankerConfig
from tests.conftest import SMALL_RANKER, SMALL_RANKER_CUTOFF

CUTOFF = SMALL_RANKER_CUTOFF
SMALL = SMALL_RANKER


@pytest.fixture(scope="module")
def store(small_store) -> tuple[pd.DataFrame, pd.DataFrame]:
    return small_store.events, small_store.catalog


@pytest.fixture(scope="module")
def ranker(small_ranker) -> TwoStageRanker:
    return small_ranker


def _users(events: pd.DataFrame, n: int = 20) -> list[str]:
    past = events[events["timestamp"] < CUTOFF]
    return sorted(past["user_id"].astype(str).unique())[:n]


def _inject(events: pd.DataFrame, rows: list[dict[str, Any]]) -> pd.DataFrame:
    extra = pd.DataFrame(rows)
    for column in ("user_id", "item_id", "event"):
        extra[column] = extra[column].astype(str)
    out = pd.concat(
        [events.astype({"user_id": str, "item_id": str, "event": str}), extra], ignore_index=True
    )
    out["event"] = out["event"].astype(events["event"].dtype)
    return out.sort_values("timestamp", kind="stable", ignore_index=True)


# ---------------------------------------------------------------------------------- leakage


def test_events_after_the_cutoff_change_no_feature_or_probability(
    store: tuple[pd.DataFrame, pd.DataFrame], ranker: TwoStageRanker
) -> None:
    events, catalog = store
    users = _users(events, 10)
    before = ranker.candidate_frame(users)
    user, item = before.loc[before["ui_purchases"] == 0, ["user_id", "item_id"]].iloc[0]
    future = [
        {
            "user_id": user,
            "item_id": item,
            "event": "purchase",
            "timestamp": CUTOFF,
            "quantity": 50.0,
            "price": 1.0,
        },
        {
            "user_id": user,
            "item_id": item,
            "event": "purchase",
            "timestamp": CUTOFF + pd.Timedelta(hours=1),
            "quantity": 50.0,
            "price": 1.0,
        },
        {
            "user_id": "brand-new",
            "item_id": item,
            "event": "view",
            "timestamp": CUTOFF + pd.Timedelta(days=2),
            "quantity": 1.0,
            "price": 1.0,
        },
    ]
    changed = _inject(events, future)
    # later prices move, in the events and in a catalog built from the whole log
    later = (changed["timestamp"] >= CUTOFF).to_numpy()
    changed.loc[later, "price"] = changed.loc[later, "price"] * 3.0 + 1.0
    repriced_catalog = catalog.assign(price=catalog["price"] * 4.0)
    refit = TwoStageRanker(SMALL).fit(changed, repriced_catalog, cutoff=CUTOFF)
    after = refit.candidate_frame(users)
    pd.testing.assert_frame_equal(after, before)
    np.testing.assert_array_equal(
        refit.purchase_probability(user, [item]), ranker.purchase_probability(user, [item])
    )


def test_training_windows_never_see_events_at_or_after_their_cutoff(
    store: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    events, catalog = store
    config = RankerConfig(**SMALL)
    frame = build_training_frame(events, catalog, CUTOFF, config)
    c1 = CUTOFF - pd.Timedelta(days=config.horizon_days)
    assert pd.Timestamp(frame[WINDOW_CUTOFF].max()) == c1
    window1 = frame[frame[WINDOW_CUTOFF] == c1]
    # a candidate of a window-1 shopper that they did not buy in the label window
    user, item = window1.loc[window1[LABEL] == 0, ["user_id", "item_id"]].iloc[0]
    late = [
        {
            "user_id": user,
            "item_id": item,
            "event": "purchase",
            "timestamp": c1,
            "quantity": 20.0,
            "price": 1.0,
        },
        {
            "user_id": user,
            "item_id": item,
            "event": "cart",
            "timestamp": c1 + pd.Timedelta(days=3),
            "quantity": 1.0,
            "price": 1.0,
        },
        {
            "user_id": "newcomer",
            "item_id": item,
            "event": "purchase",
            "timestamp": c1 + pd.Timedelta(days=5),
            "quantity": 1.0,
            "price": 1.0,
        },
    ]
    injected = build_training_frame(_inject(events, late), catalog, CUTOFF, config)
    keys = ["user_id", "item_id", WINDOW_CUTOFF]
    assert len(injected) == len(frame)
    pd.testing.assert_frame_equal(
        injected[keys + list(FEATURE_NAMES)], frame[keys + list(FEATURE_NAMES)]
    )
    # ... the late purchase is seen where it belongs: as the label of window 1 only
    changed = (injected[LABEL] != frame[LABEL]).to_numpy()
    assert changed.sum() == 1
    row = injected[changed].iloc[0]
    assert (row["user_id"], row["item_id"], row[WINDOW_CUTOFF], row[LABEL]) == (user, item, c1, 1)


def test_overlapping_training_windows(store: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, catalog = store
    config = RankerConfig(**{**SMALL, "training_windows": 3, "window_step_days": 10})
    frame = build_training_frame(events, catalog, CUTOFF, config)
    expected = [CUTOFF - pd.Timedelta(days=d) for d in (50, 40, 30)]
    assert sorted(pd.Timestamp(c) for c in frame[WINDOW_CUTOFF].unique()) == expected


# ---------------------------------------------------------------------------------- scoring


def test_recommend_returns_k_rows_per_user_with_probability(
    store: tuple[pd.DataFrame, pd.DataFrame], ranker: TwoStageRanker
) -> None:
    events, _ = store
    users = _users(events, 15)
    reco = ranker.recommend(users, k=5, filter_seen=False)
    assert list(reco.columns) == [
        "user_id",
        "item_id",
        "score",
        "rank",
        "purchase_probability",
        "cold_start",
    ]
    assert reco.groupby("user_id").size().eq(5).all() and set(reco["user_id"]) == set(users)
    assert reco.groupby("user_id")["rank"].apply(list).map(lambda r: r == [1, 2, 3, 4, 5]).all()
    np.testing.assert_array_equal(reco["score"], reco["purchase_probability"])
    assert reco["purchase_probability"].between(0, 1).all()
    assert not reco["cold_start"].any()
    decreasing = reco.groupby("user_id")["score"].apply(lambda s: s.is_monotonic_decreasing)
    assert decreasing.all()
    # the top items are the candidates with the highest probability
    frame = ranker.candidate_frame(users[:1])
    best = frame.nlargest(5, "raw_score")["item_id"].tolist()
    assert reco[reco["user_id"] == users[0]]["item_id"].tolist() == best


def test_unknown_shoppers_get_the_cold_start_list(ranker: TwoStageRanker) -> None:
    reco = ranker.recommend(["nobody", "nobody-else"], k=4, filter_seen=False)
    assert reco["cold_start"].all() and reco.groupby("user_id").size().eq(4).all()
    rates = reco[reco["user_id"] == "nobody"]["purchase_probability"].to_numpy()
    assert np.all(np.diff(rates) <= 0) and np.all((rates > 0) & (rates <= 1))
    with pytest.raises(UnknownUserError):
        ranker.purchase_probability("nobody", ["P001"])
    with pytest.raises(UnknownUserError):
        ranker.candidate_frame(["nobody"])


def test_filter_seen_leaves_out_the_shoppers_past_items(
    store: tuple[pd.DataFrame, pd.DataFrame], ranker: TwoStageRanker
) -> None:
    events, _ = store
    users = _users(events, 10)
    reco = ranker.recommend(users, k=10, filter_seen=True)
    past = events[events["timestamp"] < CUTOFF][["user_id", "item_id"]].astype(str)
    seen = reco.merge(past.drop_duplicates(), on=["user_id", "item_id"], how="inner")
    assert seen.empty and len(reco) > 0


def test_recommending_from_scored_candidates_gives_the_same_lists(
    store: tuple[pd.DataFrame, pd.DataFrame], ranker: TwoStageRanker
) -> None:
    events, _ = store
    users = [*_users(events, 12), "nobody"]
    scored = ranker.warm_candidate_frame(users)
    assert "nobody" not in set(scored["user_id"])
    for filter_seen in (False, True):
        pd.testing.assert_frame_equal(
            ranker.recommend(users, 7, filter_seen=filter_seen, candidates=scored),
            ranker.recommend(users, 7, filter_seen=filter_seen),
        )


def test_purchase_probability_for_any_item(
    store: tuple[pd.DataFrame, pd.DataFrame], ranker: TwoStageRanker
) -> None:
    events, catalog = store
    user = _users(events, 1)[0]
    items = catalog["item_id"].astype(str).tolist()  # every item, candidates or not
    prob = ranker.purchase_probability(user, items)
    assert prob.shape == (len(items),) and np.all((prob >= 0) & (prob <= 1))
    frame = ranker.candidate_frame([user])
    again = ranker.purchase_probability(user, frame["item_id"].tolist())
    np.testing.assert_allclose(again, frame["purchase_probability"], rtol=1e-12)
    with pytest.raises(UnknownItemError):
        ranker.purchase_probability(user, ["no-such-item"])


def test_score_items_are_the_listed_probabilities_nan_when_unknown(
    store: tuple[pd.DataFrame, pd.DataFrame], ranker: TwoStageRanker
) -> None:
    """The contract's ``score_items`` on a realistic log (the contract tests' checkerboard
    makes the ranker's probabilities nearly constant)."""
    events, _ = store
    users = _users(events, 8)
    for filter_seen in (False, True):
        reco = ranker.recommend(users, k=10, filter_seen=filter_seen)
        scores = ranker.score_items(reco["user_id"].tolist(), reco["item_id"].tolist())
        np.testing.assert_allclose(scores, reco["score"], rtol=1e-9)
        assert reco["score"].nunique() > 10  # not a constant
    scores = ranker.score_items([users[0], "nobody", users[0]], [reco["item_id"][0], "P001", "x"])
    assert np.isfinite(scores[0]) and np.isnan(scores[1:]).all()


def test_capabilities_and_stage_one(ranker: TwoStageRanker) -> None:
    assert ranker.requires_timestamps and ranker.scores_are_probabilities
    assert ranker.slow_to_train and ranker.stage_one_models == ("als", "itemknn")
    assert ranker.stage_one_model("als") is ranker.generator_.als_
    assert ranker.stage_one_model("itemknn") is ranker.generator_.itemknn_
    item = ranker.generator_.als_.items_.external_ids[0]
    pd.testing.assert_frame_equal(
        ranker.similar_items([item], k=5), ranker.generator_.als_.similar_items([item], k=5)
    )


def test_candidate_frame_columns(
    store: tuple[pd.DataFrame, pd.DataFrame], ranker: TwoStageRanker
) -> None:
    frame = ranker.candidate_frame(_users(store[0], 3))
    assert list(frame.columns) == [
        "user_id",
        "item_id",
        *FEATURE_NAMES,
        "raw_score",
        "purchase_probability",
    ]
    np.testing.assert_allclose(
        frame["purchase_probability"],
        ranker.purchase_model_.calibrator_.predict(frame["raw_score"].to_numpy()),
    )


def test_refit_is_deterministic_and_default_cutoff(
    store: tuple[pd.DataFrame, pd.DataFrame], ranker: TwoStageRanker
) -> None:
    events, catalog = store
    again = TwoStageRanker(SMALL).fit(events, catalog, cutoff=CUTOFF)
    users = _users(events, 5)
    pd.testing.assert_frame_equal(
        again.recommend(users, 5, filter_seen=False), ranker.recommend(users, 5, filter_seen=False)
    )
    now = TwoStageRanker(SMALL).fit(events, catalog)
    assert now.cutoff_ == events["timestamp"].max() + pd.Timedelta(seconds=1)


def test_invalid_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        TwoStageRanker(n_candidates=5)
    with pytest.raises(ConfigError):
        TwoStageRanker(horizon_days=0)
    with pytest.raises(ConfigError):
        TwoStageRanker(als={"factors": 0})
    with pytest.raises(ConfigError, match="cross_fit_folds"):
        TwoStageRanker(classifier={"cross_fit_folds": 1})


# ---------------------------------------------------------------------------------- saving


def test_save_load_round_trip_gives_identical_probabilities(
    store: tuple[pd.DataFrame, pd.DataFrame], ranker: TwoStageRanker, tmp_path: Path
) -> None:
    events, _ = store
    ranker.save(tmp_path / "ranker")
    loaded = TwoStageRanker.load(tmp_path / "ranker")
    users = _users(events, 8)
    pd.testing.assert_frame_equal(loaded.candidate_frame(users), ranker.candidate_frame(users))
    pd.testing.assert_frame_equal(
        loaded.recommend([*users, "nobody"], 5, filter_seen=False),
        ranker.recommend([*users, "nobody"], 5, filter_seen=False),
    )
    assert loaded.cutoff_ == ranker.cutoff_ and loaded.config == ranker.config
    assert not list((tmp_path / "ranker").rglob("*.pkl"))


@pytest.mark.parametrize(
    "damage",
    [
        "purchase_model/booster_0.txt",
        "behaviour/tables.npz",
        "stage_one/als/arrays.npz",
        "cold_start.npz",
        "config.json",
    ],
)
def test_corrupted_folder_raises_artifact_error(
    ranker: TwoStageRanker, tmp_path: Path, damage: str
) -> None:
    folder = tmp_path / "ranker"
    ranker.save(folder)
    (folder / damage).write_text("garbage")
    with pytest.raises(ArtifactError):
        TwoStageRanker.load(folder)


def test_missing_or_foreign_folder_raises_artifact_error(
    ranker: TwoStageRanker, tmp_path: Path
) -> None:
    with pytest.raises(ArtifactError):
        TwoStageRanker.load(tmp_path / "nothing-here")
    folder = tmp_path / "ranker"
    ranker.save(folder)
    metadata = json.loads((folder / "config.json").read_text())
    metadata["feature_names"] = metadata["feature_names"][:-1]
    (folder / "config.json").write_text(json.dumps(metadata))
    with pytest.raises(ArtifactError, match="features"):
        TwoStageRanker.load(folder)


def test_ranker_saved_by_an_older_version_asks_for_a_retrain(
    ranker: TwoStageRanker, tmp_path: Path
) -> None:
    folder = tmp_path / "ranker"
    ranker.save(folder)
    metadata = json.loads((folder / "config.json").read_text())
    metadata["format_version"] = 1  # 44 features, no order-count reorder features
    metadata["feature_names"] = metadata["feature_names"][:15] + metadata["feature_names"][22:]
    (folder / "config.json").write_text(json.dumps(metadata))
    with pytest.raises(ArtifactError, match="format version 1.*retrain"):
        TwoStageRanker.load(folder)


def test_calibration_top_k_ranks_within_each_shopper_and_training_window(
    store: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """A list is one shopper in one training window: the calibrator learns from the top K
    rows of each held-out (shopper, window), not of each shopper over all windows."""
    from recsys_core.ranking.purchase_model import _group_split, group_codes

    events, catalog = store
    settings = {**SMALL, "classifier": {**SMALL["classifier"], "calibration_top_k": 5}}  # type: ignore[dict-item]
    ranker = TwoStageRanker(settings).fit(events, catalog, cutoff=CUTOFF)
    frame = build_training_frame(events, catalog, CUTOFF, ranker.config)
    held = _group_split(
        group_codes(frame["user_id"].to_numpy()),
        ranker.config.classifier.calibration_fraction,
        ranker.config.seed,
    )[1]
    sizes = frame[held].groupby(["user_id", WINDOW_CUTOFF], observed=True).size()
    assert frame[WINDOW_CUTOFF].nunique() > 1 and (sizes > 5).any()
    assert ranker.training_summary_["calibration_rows"] == int(np.minimum(sizes, 5).sum())
