"""Batch scoring to Parquet, and the service answering from the batch table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import SMALL_RANKER

from recsys_core.cli import main
from recsys_core.errors import ArtifactError, ConfigError
from recsys_core.policy import ListPolicy
from recsys_core.serving import RecommendationService, save_lab
from recsys_core.serving.batch import BatchTable, score_batch, write_batch
from recsys_core.training import TrainConfig, train_lab


@pytest.fixture(scope="module")
def lab(small_store):
    config = TrainConfig(
        models=["popularity", "als", "ranker"], model_params={"ranker": dict(SMALL_RANKER)}
    )
    return train_lab(small_store, config)


@pytest.mark.parametrize("model", ["als", "ranker", "popularity"])
def test_batch_rows_equal_live_answers(lab, model: str, tmp_path: Path) -> None:
    live = RecommendationService(lab)
    policy = live.default_policy()
    result = score_batch(lab, model, 5, policy=policy, chunk_size=37, workers=2)
    frame = result.frame
    assert result.users == frame["user_id"].nunique() > 250
    assert frame.groupby("user_id").size().max() == 5
    for user in frame["user_id"].unique()[::40]:
        rows = frame[frame["user_id"] == user].sort_values("rank")
        answer = live.recommend(user, 5, model, policy=policy)
        assert rows["item_id"].tolist() == [i["item_id"] for i in answer["items"]]
        expected = [i["score"] for i in answer["items"]]  # JSON rounds to 6 decimals
        assert rows["score"].tolist() == pytest.approx(expected, abs=1e-6)
    path = write_batch(result, tmp_path / "recs.parquet")
    table = BatchTable.read(path)
    assert table.model == model and table.model_version == lab.version and table.k == 5
    assert table.policy.same_lists(policy) and table.metadata["list_policy"]["name"]


@pytest.mark.parametrize("model", ["als", "popularity"])
@pytest.mark.parametrize("filter_seen", [False, True])
def test_single_stage_batch_is_the_models_own_answer(lab, model: str, filter_seen: bool) -> None:
    """The fast path (one batch call, categorical ids) answers exactly what the model's own
    ``recommend`` answers for the same shoppers, unknown ones included."""
    engine = lab.models[model]
    users = [*engine.known_users()[::-3], "nobody"]  # not in id order, and a stranger
    policy = ListPolicy("leave-out-seen" if filter_seen else "keep")
    frame = score_batch(lab, model, 4, users, policy=policy).frame
    expected = engine.recommend(users, 4, filter_seen=filter_seen)
    got = frame.assign(
        user_id=frame["user_id"].astype(str), item_id=frame["item_id"].astype(str)
    ).sort_values(["user_id", "rank"], kind="stable", ignore_index=True)
    assert list(frame["user_id"].astype(str).drop_duplicates()) == users  # in the given order
    for column in ("user_id", "item_id", "score", "rank", "cold_start"):
        assert got[column].astype(str).tolist() == expected[column].astype(str).tolist(), column


def test_service_answers_from_the_batch_table_and_says_so(lab, tmp_path: Path) -> None:
    service = RecommendationService(lab)
    policy = service.default_policy()
    path = write_batch(score_batch(lab, "ranker", 5, policy=policy), tmp_path / "recs.parquet")
    live = service.recommend("U001", 3, "ranker", policy="lab-rule")
    assert live["source"] == "live" and live["computed_at"] is None
    assert service.attach_batch(BatchTable.read(path))
    served = service.recommend("U001", 3, "ranker", policy="lab-rule")
    assert served["source"] == "batch" and served["computed_at"]
    assert {k: v for k, v in served.items() if k not in ("source", "computed_at")} == {
        k: v for k, v in live.items() if k not in ("source", "computed_at")
    }
    assert (
        service.recommend("U001", 6, "ranker", policy="lab-rule")["source"] == "live"
    )  # longer than the table
    assert (
        service.recommend("U001", 3, "als", policy="lab-rule")["source"] == "live"
    )  # another model
    assert service.recommend("nobody", 3, "ranker", policy="lab-rule")[
        "degraded"
    ]  # not in the table: the chain


def test_a_table_of_another_version_is_not_used(lab, tmp_path: Path) -> None:
    result = score_batch(lab, "als", 3, policy=ListPolicy("keep"))
    result.model_version = "someone-else"
    table = BatchTable.read(write_batch(result, tmp_path / "old.parquet"))
    service = RecommendationService(lab)
    assert not service.attach_batch(table)
    assert service.recommend("U001", 3, "als", policy="lab-rule")["source"] == "live"


def test_bad_inputs(lab, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        score_batch(lab, "bpr", 3, policy=ListPolicy("keep"))  # not trained
    with pytest.raises(ConfigError):
        score_batch(lab, "als", 0, policy=ListPolicy("keep"))
    plain = tmp_path / "plain.parquet"
    pd.DataFrame({"user_id": ["a"]}).to_parquet(plain)
    with pytest.raises(ArtifactError, match="not a batch table"):
        BatchTable.read(plain)


def test_cli_batch_for_a_list_of_shoppers(lab, tmp_path: Path, monkeypatch, capsys) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("RECSYS_HOME", str(home))
    save_lab(lab, home=home)
    users = tmp_path / "users.txt"
    users.write_text("U001\nU002\nnobody\n")
    out = tmp_path / "recs.parquet"
    assert (
        main(["batch", "--out", str(out), "--model", "als", "--k", "4", "--users", str(users)]) == 0
    )
    frame = pd.read_parquet(out)
    assert set(frame["user_id"]) == {"U001", "U002", "nobody"}
    assert frame.loc[frame["user_id"] == "nobody", "cold_start"].all()
    assert "scored 3 shoppers" in capsys.readouterr().out
    assert main(["batch", "--out", str(tmp_path / "x.csv")]) == 2
    assert main(["batch", "--out", str(out), "--model", "bpr"]) == 2
