"""The model registry is the one owner of model names and of what the lab knows about each."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest

from recsys_core.columns import Columns
from recsys_core.errors import ConfigError
from recsys_core.models import registry

ROOT = Path(registry.__file__).resolve().parents[1]  # recsys_core/
#: Names other issues add; they must live in the registry from the start too.
COMING = ("buy-again", "ease", "sasrec")


def _allowed_files() -> set[Path]:
    """The registry, each model's own module and, for a model living in a package of its
    own (the ranker in ``recsys_core/ranking/``), that package."""
    allowed = {Path(registry.__file__).resolve()}
    for spec in registry.all_specs():
        parts = spec.module.split(".")
        module = ROOT.parent.joinpath(*parts).with_suffix(".py").resolve()
        allowed.add(module)
        if parts[1] != "models":  # a package of its own
            allowed.update(p.resolve() for p in ROOT.joinpath(parts[1]).rglob("*.py"))
    return allowed


def _literals(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.relative_to(ROOT.parent)}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
    ]


def test_model_names_appear_only_in_the_registry_and_their_own_modules() -> None:
    names = {*registry.model_names(), *COMING}
    allowed = _allowed_files()
    found = [
        hit
        for path in sorted(ROOT.rglob("*.py"))
        if path.resolve() not in allowed
        for hit in _literals(path, names)
    ]
    assert not found, (
        "model names spelled outside the registry (use recsys_core.models.registry's "
        "constants or ask the registry):\n" + "\n".join(found)
    )


def test_the_scan_would_catch_a_literal(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('CHAIN = ("ranker", "als")\nDOC = "the als model"\n', encoding="utf-8")
    found = [hit.split(": ")[-1] for hit in _literals_in(module)]
    assert found == ["'ranker'", "'als'"]


def _literals_in(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set(registry.model_names())
    return [
        f"{path.name}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
    ]


@pytest.mark.parametrize("name", registry.model_names())
def test_registered_capabilities_are_the_classes_own(name: str) -> None:
    spec = registry.spec(name)
    cls = spec.cls
    assert cls.name == name
    assert cls.requires_timestamps == spec.requires_timestamps
    assert cls.scores_are_probabilities == spec.scores_are_probabilities
    assert bool(cls.stage_one_models) == spec.two_stage
    assert cls.slow_to_train == spec.slow_to_train
    for stage in cls.stage_one_models:
        registry.spec(stage)  # a two-stage model is built on registered models
    for other in spec.similar_fill:
        assert registry.spec(other).similarity_label is not None


@pytest.mark.parametrize("name", registry.model_names())
def test_what_a_model_can_train_on_is_the_classes_own_answer(name: str) -> None:
    """The app decides which models to train from the registry, without importing their
    classes (issue 24): its answer must be the class's ``cannot_train_on``."""
    spec = registry.spec(name)
    timed = pd.DataFrame(
        {
            Columns.USER: ["u1", "u2"],
            Columns.ITEM: ["i1", "i2"],
            Columns.EVENT: ["purchase", "view"],
            Columns.TIMESTAMP: pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    )
    for events in (timed, timed.drop(columns=[Columns.TIMESTAMP])):
        assert spec.can_train_on(events.columns) == (spec.cls.cannot_train_on(events) is None)


def test_the_registry_answers_what_callers_ask() -> None:
    chain = registry.fallback_chain()
    assert chain[0] == registry.purchase_model() and chain[-1] == registry.cold_start_model()
    assert registry.ALS in registry.tunable_models()
    assert registry.RANKER not in registry.single_stage_models()
    assert registry.ALS_SPARK in registry.optional_models()
    with pytest.raises(ConfigError, match="choose one of"):
        registry.spec("svd")
    with pytest.raises(ValueError, match="twice"):
        registry.register(registry.spec(registry.ALS))
