"""Training a lab follows what each model class declares, not the model's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys_core.columns import Columns
from recsys_core.data.schema import Dataset
from recsys_core.models import load_model, model_class
from recsys_core.presets import Preset
from recsys_core.ranking import TwoStageRanker
from recsys_core.serving import load_lab, save_lab
from recsys_core.training import TrainConfig, train_lab
from tests.conftest import SMALL_RANKER

FAST_RANKER = {
    **SMALL_RANKER,
    "training_windows": 2,
    "classifier": {**SMALL_RANKER["classifier"], "cross_fit_folds": 0},  # type: ignore[dict-item]
}


def test_every_served_model_is_its_own_fit_not_the_rankers_stage_one(
    small_store: Dataset, tmp_path: Path
) -> None:
    """The stage-one substitution is gone (it never fired under the dataset's settings):
    the served ALS and item-kNN are their own fits, so each explains its own lists."""
    config = TrainConfig(
        models=["itemknn", "als", "ranker"],
        model_params={"ranker": FAST_RANKER},
        settings=Preset(),
        headline_metrics=False,
    )
    lab = train_lab(small_store, config)

    ranker = lab.models["ranker"]
    assert model_class("ranker").stage_one_models == ("als", "itemknn")
    assert lab.models["als"] is not ranker.stage_one_model("als")
    assert lab.models["itemknn"] is not ranker.stage_one_model("itemknn")
    assert set(lab.manifest["fit_seconds"]) == {"itemknn", "als", "ranker", "order"}
    assert lab.order_model is not None  # it completes a model scoring probabilities

    folder = save_lab(lab, home=tmp_path)
    assert isinstance(load_model(folder / "ranker"), TwoStageRanker)  # one loader for all
    loaded = load_lab(folder)
    users = ranker.known_users()[:5]
    for name in ("ranker", "als", "itemknn"):
        again = loaded.models[name].recommend(users, 5, filter_seen=False)
        assert again.equals(lab.models[name].recommend(users, 5, filter_seen=False))


def test_a_model_needing_timestamps_is_left_out_with_its_reason(small_store: Dataset) -> None:
    untimed = Dataset(
        "untimed",
        small_store.events.drop(columns=[Columns.TIMESTAMP]),
        small_store.catalog,
        source="test fixture",
    )
    config = TrainConfig(models=["popularity", "ranker"], settings=Preset(), headline_metrics=False)
    lab = train_lab(untimed, config)

    assert list(lab.models) == ["popularity"]
    reason = model_class("ranker").cannot_train_on(untimed.events)
    assert reason is not None and "needs timestamps" in reason
    assert reason in lab.manifest["notes"]
    assert lab.order_model is None


def test_unknown_model_names_list_every_known_one(small_store: Dataset) -> None:
    from recsys_core.errors import ConfigError

    with pytest.raises(ConfigError, match="popularity.*ranker"):
        train_lab(small_store, TrainConfig(models=["svd"], headline_metrics=False))
