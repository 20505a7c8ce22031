"""A tiny lab with every model, trained once per session and saved; tests copy it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import SMALL_RANKER


@pytest.fixture(scope="session")
def saved_home(small_store: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``$RECSYS_HOME`` with two saved versions of the small store (the second active).

    Read-only: copy it with :func:`home_copy`.
    """
    from recsys_core.serving import save_lab
    from recsys_core.training import TrainConfig, train_lab

    home = tmp_path_factory.mktemp("saved_home")
    params = {
        "als": {"factors": 8, "iterations": 3, "num_threads": 1},
        # one LightGBM model (no cross-fitted folds): faster, and one booster file to damage
        "ranker": {
            **SMALL_RANKER,
            "classifier": {**SMALL_RANKER["classifier"], "cross_fit_folds": 0},
        },
    }
    config = TrainConfig(
        models=["popularity", "itemknn", "als", "ranker"], model_params=params, seed=3
    )
    lab = train_lab(small_store, config)  # type: ignore[arg-type]
    save_lab(lab, home=home)
    save_lab(lab, home=home)  # same second: saved as "<version>-1", the newer one
    return home


@pytest.fixture()
def home_copy(saved_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of :func:`saved_home`, set as ``$RECSYS_HOME``."""
    home = tmp_path / "home"
    shutil.copytree(saved_home, home)
    monkeypatch.setenv("RECSYS_HOME", str(home))
    return home
