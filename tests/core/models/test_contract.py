"""The contract every recommender passes (implicit's shared ``RecommenderBase`` test habit).

Every model — the single-stage ones and the two-stage ranker — runs on a tiny
deterministic "checkerboard": user ``u`` buys items of its own parity, minus a few per user,
so every user has unseen items that the structure predicts. The purchases repeat every
week for four weeks, so the log has the time windows the ranker learns from, and the
ranker's cold-start list (base rates of the last week's buyers) is the all-time popularity
list. Every model is trained through the one call of the contract, ``fit_log``.
Hyperparameters are kept small so the whole module runs in seconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys_core.columns import Columns
from recsys_core.errors import ArtifactError, ConfigError, ModelNotTrainedError, UnknownItemError
from recsys_core.interactions import InteractionMatrix
from recsys_core.models import (
    COLD_START,
    MODEL_REGISTRY,
    RECOMMENDATION_COLUMNS,
    SIMILAR_ITEM,
    SIMILAR_ITEMS_COLUMNS,
    MatrixRecommender,
    Recommender,
    create_model,
    load_model,
    model_class,
)
from recsys_core.models.sequence import torch_unavailable_reason
from recsys_core.ranking import PURCHASE_PROBABILITY

N_USERS, N_ITEMS, K, WEEKS = 50, 30, 5, 4
MODEL_NAMES = ("popularity", "buy-again", "itemknn", "ease", "bpr", "als", "ranker", "sasrec")

#: ``sasrec`` needs torch (an optional extra): skipped without it, unless CI asks for it
#: (``RECSYS_REQUIRE_SEQ=1``), where the missing extra fails the run.
_NO_TORCH = torch_unavailable_reason()
_needs_torch = pytest.mark.skipif(
    _NO_TORCH is not None and os.environ.get("RECSYS_REQUIRE_SEQ") != "1", reason=str(_NO_TORCH)
)
MODEL_PARAMS = [pytest.param(n, marks=_needs_torch) if n == "sasrec" else n for n in MODEL_NAMES]

#: Small, fast settings per model (seed set explicitly to make the contract visible).
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "popularity": {},
    "buy-again": {},
    "ease": {"l2": 10.0},
    "itemknn": {"neighbours": 20},
    "bpr": {"factors": 8, "iterations": 30, "learning_rate": 0.05},
    "als": {"factors": 8, "iterations": 5},
    "ranker": {
        "horizon_days": 7,
        "training_windows": 2,
        "n_als": 30,  # the whole catalog: unseen items are candidates too
        "n_itemknn": 30,
        "n_history": 30,
        "als": {"factors": 8, "iterations": 5, "num_threads": 1},
        "itemknn": {"num_threads": 1},
        "classifier": {
            "n_estimators": 20,
            "min_child_samples": 5,
            "cross_fit_folds": 0,
            "n_jobs": 1,
        },
    },
    "sasrec": {
        "dim": 16,
        "max_len": 16,
        "blocks": 1,
        "heads": 1,
        "max_epochs": 5,
        "batch_size": 16,
        "validation_days": 0,
        "threads": 1,
    },
}


def checkerboard_events() -> pd.DataFrame:
    """Weekly purchases of users u0..u49 on items i0..i29 over four weeks.

    User ``u`` buys item ``i`` when both have the same parity, except one item in three
    (``(i // 2 + u) % 3 == 0``) and, for every fourth user, the last items of its parity,
    so popularity is not flat. Every user keeps at least 5 unseen items of its parity.
    Each pair is bought once a week, on day ``7 * week + (u + i) % 7``, so any 7-day window
    holds every pair once.
    """
    start = pd.Timestamp("2024-01-01 10:00")
    rows = [
        (f"u{u}", f"i{i}", "purchase", start + pd.Timedelta(days=7 * week + (u + i) % 7))
        for week in range(WEEKS)
        for u in range(N_USERS)
        for i in range(N_ITEMS)
        if i % 2 == u % 2 and (i // 2 + u) % 3 != 0 and not (u % 4 == 0 and i // 2 > 10)
    ]
    events = pd.DataFrame(
        rows, columns=[Columns.USER, Columns.ITEM, Columns.EVENT, Columns.TIMESTAMP]
    )
    return events.sort_values(Columns.TIMESTAMP, kind="stable", ignore_index=True)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return checkerboard_events()


@pytest.fixture(scope="module")
def matrix(events: pd.DataFrame) -> InteractionMatrix:
    return InteractionMatrix.from_events(events)


@pytest.fixture(scope="module")
def seen_pairs(events: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(events[Columns.USER], events[Columns.ITEM], strict=True))


@pytest.fixture(scope="module")
def all_users() -> list[str]:
    return [f"u{u}" for u in range(N_USERS)]


def make_model(name: str, **extra: Any) -> Recommender:
    return create_model(name, seed=7, **FAST_PARAMS[name], **extra)


@pytest.fixture(scope="module", params=MODEL_PARAMS)
def model(request: pytest.FixtureRequest, events: pd.DataFrame) -> Recommender:
    """A fitted model of each kind (shared by the read-only tests)."""
    return make_model(request.param).fit_log(events)


def expected_columns(model: Recommender) -> tuple[str, ...]:
    """The recommendation frame's columns: a probability model adds its probability."""
    if model.scores_are_probabilities:
        return (*RECOMMENDATION_COLUMNS[:-1], PURCHASE_PROBABILITY, COLD_START)
    return RECOMMENDATION_COLUMNS


def expected_popular_items(events: pd.DataFrame, k: int) -> list[str]:
    """Independent popularity ranking: distinct users per item, ties by item id."""
    counts = events.groupby(Columns.ITEM)[Columns.USER].nunique().rename("n").reset_index()
    counts = counts.sort_values(["n", Columns.ITEM], ascending=[False, True])
    return counts[Columns.ITEM].head(k).tolist()


# ---------------------------------------------------------------- recommend


def test_recommend_returns_k_ranked_rows_per_user(model: Recommender, all_users: list[str]) -> None:
    reco = model.recommend(all_users, k=K, filter_seen=True)

    assert tuple(reco.columns) == expected_columns(model)
    assert reco.groupby(Columns.USER).size().to_dict() == dict.fromkeys(all_users, K)
    assert (reco[Columns.RANK].to_numpy() == np.tile(np.arange(1, K + 1), N_USERS)).all()
    assert not reco[COLD_START].any()
    assert not reco.duplicated([Columns.USER, Columns.ITEM]).any()
    expected_order = reco.sort_values([Columns.USER, Columns.RANK], ignore_index=True)
    pd.testing.assert_frame_equal(reco, expected_order)
    score_steps = reco.groupby(Columns.USER)[Columns.SCORE].diff().dropna()
    assert (score_steps <= 1e-9).all(), "scores must not increase with rank"


def test_recommend_speaks_external_string_ids(
    model: Recommender, matrix: InteractionMatrix
) -> None:
    reco = model.recommend(["u3", "u4"], k=K, filter_seen=True)

    assert pd.api.types.is_string_dtype(reco[Columns.USER])
    assert pd.api.types.is_string_dtype(reco[Columns.ITEM])
    assert all(isinstance(i, str) for i in reco[Columns.ITEM])
    assert set(reco[Columns.USER]) == {"u3", "u4"}
    assert set(reco[Columns.ITEM]) <= set(matrix.items.external_ids)
    assert reco[Columns.RANK].dtype == np.int64
    assert reco[COLD_START].dtype == bool


def test_seen_items_are_filtered(
    model: Recommender, all_users: list[str], seen_pairs: set[tuple[str, str]]
) -> None:
    reco = model.recommend(all_users, k=K, filter_seen=True)
    pairs = set(zip(reco[Columns.USER], reco[Columns.ITEM], strict=True))

    assert not pairs & seen_pairs


def test_seen_items_are_allowed_without_filter(
    model: Recommender, all_users: list[str], seen_pairs: set[tuple[str, str]]
) -> None:
    reco = model.recommend(all_users, k=K, filter_seen=False)
    pairs = set(zip(reco[Columns.USER], reco[Columns.ITEM], strict=True))

    assert len(reco) == K * N_USERS
    assert pairs & seen_pairs


def test_fewer_items_than_k_gives_fewer_rows_never_seen_ones(
    model: Recommender, matrix: InteractionMatrix, seen_pairs: set[tuple[str, str]]
) -> None:
    reco = model.recommend(["u0", "u1"], k=100, filter_seen=True)

    for user, rows in reco.groupby(Columns.USER):
        n_seen = len(matrix.user_items(int(matrix.users.to_internal([user])[0])))
        assert len(rows) <= N_ITEMS - n_seen
        assert rows[Columns.ITEM].is_unique
        assert rows[Columns.RANK].tolist() == list(range(1, len(rows) + 1))
    assert not set(zip(reco[Columns.USER], reco[Columns.ITEM], strict=True)) & seen_pairs


def test_unknown_user_gets_flagged_popularity_rows(
    model: Recommender, events: pd.DataFrame
) -> None:
    reco = model.recommend(["u0", "nobody"], k=K, filter_seen=True)

    cold = reco[reco[Columns.USER] == "nobody"]
    warm = reco[reco[Columns.USER] == "u0"]
    assert cold[COLD_START].all() and not warm[COLD_START].any()
    assert cold[Columns.ITEM].tolist() == expected_popular_items(events, K)
    assert cold[Columns.RANK].tolist() == list(range(1, K + 1))
    assert len(warm) == K


def test_only_unknown_users_and_empty_requests(model: Recommender) -> None:
    only_cold = model.recommend(["x", "y", "x"], k=3, filter_seen=True)
    assert only_cold.groupby(Columns.USER).size().to_dict() == {"x": 3, "y": 3}
    assert only_cold[COLD_START].all()

    empty = model.recommend([], k=3, filter_seen=True)
    assert tuple(empty.columns) == expected_columns(model)
    assert empty.empty


def test_bad_k_is_a_config_error(model: Recommender) -> None:
    with pytest.raises(ConfigError, match="k must be"):
        model.recommend(["u0"], k=0, filter_seen=True)


# ---------------------------------------------------------------- similar items


def test_similar_items_exclude_the_item_itself(model: Recommender) -> None:
    similar = model.similar_items(["i0", "i1"], k=K)

    assert tuple(similar.columns) == SIMILAR_ITEMS_COLUMNS
    assert similar.groupby(Columns.ITEM).size().to_dict() == {"i0": K, "i1": K}
    assert (similar[Columns.ITEM] != similar[SIMILAR_ITEM]).all()
    assert (
        similar.groupby(Columns.ITEM)[Columns.RANK].apply(list).tolist()
        == [list(range(1, K + 1))] * 2
    )
    assert all(isinstance(i, str) for i in similar[SIMILAR_ITEM])


def test_similar_items_unknown_item_raises(model: Recommender) -> None:
    with pytest.raises(UnknownItemError, match=r"'nope'.*30 items"):
        model.similar_items(["i0", "nope"], k=K)


# ---------------------------------------------------------------- scoring pairs


def test_score_items_matches_recommend_scores(model: Recommender, all_users: list[str]) -> None:
    for filter_seen in (True, False):
        reco = model.recommend(all_users, k=K, filter_seen=filter_seen)
        scores = model.score_items(reco[Columns.USER].tolist(), reco[Columns.ITEM].tolist())
        np.testing.assert_allclose(scores, reco[Columns.SCORE], rtol=1e-5, atol=1e-6)


def test_score_items_is_nan_for_unknown_ids(model: Recommender) -> None:
    scores = model.score_items(["u0", "nobody", "u0"], ["i0", "i0", "nope"])

    assert scores.shape == (3,) and scores.dtype == np.float64
    assert np.isfinite(scores[0]) and np.isnan(scores[1:]).all()


def test_score_items_needs_same_length(model: Recommender) -> None:
    with pytest.raises(ValueError, match="one item per user"):
        model.score_items(["u0", "u1"], ["i0"])


# ---------------------------------------------------------------- determinism and persistence


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_refit_with_same_seed_is_identical(
    name: str, events: pd.DataFrame, matrix: InteractionMatrix, all_users: list[str]
) -> None:
    first = make_model(name).fit_log(events)
    second = make_model(name).fit_log(events)

    pd.testing.assert_frame_equal(
        first.recommend(all_users, k=K, filter_seen=True),
        second.recommend(all_users, k=K, filter_seen=True),
        check_exact=True,
    )
    users = np.repeat(all_users, N_ITEMS)
    items = np.tile(matrix.items.external_ids, N_USERS)
    np.testing.assert_array_equal(first.score_items(users, items), second.score_items(users, items))


def test_save_load_round_trip(
    model: Recommender, tmp_path: Path, all_users: list[str], matrix: InteractionMatrix
) -> None:
    model.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")

    assert type(loaded) is type(model)
    assert loaded.config == model.config
    for filter_seen in (True, False):
        pd.testing.assert_frame_equal(
            loaded.recommend([*all_users, "nobody"], k=K, filter_seen=filter_seen),
            model.recommend([*all_users, "nobody"], k=K, filter_seen=filter_seen),
            check_exact=True,
        )
    pd.testing.assert_frame_equal(
        loaded.similar_items(["i0", "i7"], k=K), model.similar_items(["i0", "i7"], k=K)
    )
    users = np.repeat(all_users, N_ITEMS)
    items = np.tile(matrix.items.external_ids, N_USERS)
    np.testing.assert_array_equal(loaded.score_items(users, items), model.score_items(users, items))
    assert type(type(model).load(tmp_path / "model")) is type(model)


def test_saved_folder_has_no_pickle(model: Recommender, tmp_path: Path) -> None:
    model.save(tmp_path)

    assert json.loads((tmp_path / "config.json").read_text())["model"] == model.name
    archives = sorted(p for p in tmp_path.rglob("*") if p.suffix in (".npz", ".npy"))
    assert archives
    for path in archives:
        if path.suffix == ".npy":
            assert np.load(path, allow_pickle=False).dtype != object
            continue
        with np.load(path, allow_pickle=False) as arrays:
            for key in arrays.files:
                assert arrays[key].dtype != object


def test_single_stage_folder_layout(model: Recommender, tmp_path: Path) -> None:
    if not isinstance(model, MatrixRecommender):
        pytest.skip("the layout of recsys_core.models.persistence is the single-stage one")
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "arrays.npz",
        "config.json",
        "items.npy",
        "users.npy",
    ]


def _part(folder: Path, name: str) -> Path:
    """The first file called ``name`` in a saved folder (a two-stage model nests its stage
    one's folders)."""
    return sorted(folder.rglob(name))[0]


def test_loading_a_damaged_folder_raises_artifact_error(model: Recommender, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        load_model(tmp_path / "missing")

    truncated = tmp_path / "truncated"
    model.save(truncated)
    data = _part(truncated, "arrays.npz").read_bytes()
    _part(truncated, "arrays.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"arrays\.npz"):
        load_model(truncated)

    no_config = tmp_path / "no_config"
    model.save(no_config)
    (no_config / "config.json").unlink()
    with pytest.raises(ArtifactError, match=r"config\.json"):
        load_model(no_config)

    bad_json = tmp_path / "bad_json"
    model.save(bad_json)
    (bad_json / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ArtifactError, match="cannot read"):
        load_model(bad_json)

    no_arrays = tmp_path / "no_arrays"
    model.save(no_arrays)
    _part(no_arrays, "arrays.npz").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_model(no_arrays)

    bad_ids = tmp_path / "bad_ids"
    model.save(bad_ids)
    _part(bad_ids, "users.npy").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match=r"users\.npy"):
        load_model(bad_ids)


def test_loading_as_another_model_raises_artifact_error(model: Recommender, tmp_path: Path) -> None:
    model.save(tmp_path)
    other = next(cls for name, cls in MODEL_REGISTRY.items() if name != model.name)
    with pytest.raises(ArtifactError, match=f"holds a '{model.name}' model"):
        other.load(tmp_path)


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_unfitted_model_raises_model_not_trained(name: str, tmp_path: Path) -> None:
    model = make_model(name)

    assert not model.is_fitted
    with pytest.raises(ModelNotTrainedError, match="fit"):
        model.recommend(["u0"], filter_seen=True)
    with pytest.raises(ModelNotTrainedError):
        model.save(tmp_path)


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_init_only_stores_settings(name: str) -> None:
    model = make_model(name)

    assert model.config.seed == 7
    assert model.name == name
    assert not [attr for attr in vars(model) if attr.endswith("_")]


def test_create_model_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(
        ConfigError, match="als, als-spark, bpr, buy-again, ease, itemknn, popularity, ranker"
    ):
        create_model("svd")


# ---------------------------------------------------------------- capabilities


def test_every_model_declares_its_capabilities(events: pd.DataFrame) -> None:
    untimed = events.drop(columns=[Columns.TIMESTAMP])
    for name in MODEL_NAMES:
        cls = model_class(name)
        assert cls.name == name
        for flag in ("requires_timestamps", "scores_are_probabilities", "slow_to_train"):
            assert isinstance(getattr(cls, flag), bool), (name, flag)
        assert set(cls.stage_one_models) <= set(MODEL_NAMES) - {name}
        assert cls.cannot_train_on(events) is None
        assert (cls.cannot_train_on(untimed) is not None) == cls.requires_timestamps


def test_two_stage_models_expose_their_fitted_stage_one(model: Recommender) -> None:
    for stage in model.stage_one_models:
        inner = model.stage_one_model(stage)
        assert inner.name == stage and inner.is_fitted
        assert not inner.stage_one_models
    with pytest.raises(ConfigError, match="not built on"):
        model.stage_one_model("svd")


def test_known_users_are_the_personalised_ones(model: Recommender, all_users: list[str]) -> None:
    assert sorted(model.known_users()) == sorted(all_users)
    reco = model.recommend(model.known_users()[:3], k=K, filter_seen=True)
    assert not reco[COLD_START].any()


def test_unknown_or_invalid_setting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'factorz'"):
        create_model("als", factorz=3)
    with pytest.raises(ConfigError, match="factors"):
        create_model("bpr", factors=0)
    with pytest.raises(ConfigError, match="weighting"):
        create_model("itemknn", weighting="jaccard")
