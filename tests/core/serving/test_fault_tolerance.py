"""Damaged models: verify names them, answers fall back (degraded), a restore heals them live."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from recsys_core.cli import main
from recsys_core.errors import ArtifactError
from recsys_core.serving import registry
from recsys_core.serving.lab import load_lab
from recsys_core.serving.live import LiveService


def _active(home: Path) -> Path:
    return registry.resolve_version(home=home)


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _recommend_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["recommend", "--user", "U001", "--k", "10", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def _damage_heal_cycle(
    home: Path, tmp_path: Path, capsys, damage, part: str, bad_file: str, model: str
) -> None:
    """Back up, damage, check verify + degraded answers, restore, check healthy answers."""
    archive = tmp_path / "backup.tar.zst"
    registry.backup(archive, home)
    live = LiveService(check_interval=0)
    healthy = live.recommend("U001", 10, model, policy="lab-rule")
    assert not healthy["degraded"] and healthy["model"] == model

    damage(_active(home))
    capsys.readouterr()
    assert main(["registry", "verify"]) == 1
    assert bad_file in capsys.readouterr().out

    cli_answer = _recommend_json(capsys, "--model", model)  # a fresh process loads per model
    live_answer = live.recommend(
        "U001", 10, model, policy="lab-rule"
    )  # the running service notices the damage
    for answer in (cli_answer, live_answer):
        assert len(answer["items"]) == 10
        assert answer["degraded"] is True and answer["model"] != model
        assert part in answer["reason"] and "broken" in answer["reason"]
    assert part in live.lab_broken()

    assert main(["registry", "restore", str(archive)]) == 0
    healed = live.recommend("U001", 10, model, policy="lab-rule")  # same process, no restart
    assert not healed["degraded"] and healed["model"] == model
    assert healed["items"] == healthy["items"]
    assert live.reloads == 3 and live.stats()["degraded_share"] == pytest.approx(1 / 3, abs=1e-3)


def test_changed_byte_in_als_factors(home_copy: Path, tmp_path: Path, capsys) -> None:
    _damage_heal_cycle(
        home_copy,
        tmp_path,
        capsys,
        lambda v: _flip_byte(v / "als" / "arrays.npz"),
        "als",
        "als/arrays.npz",
        "als",
    )


def _booster(home: Path) -> str:
    """The ranker's (first) LightGBM model file, relative to the version folder."""
    folder = _active(home)
    return (
        next((folder / "ranker" / "purchase_model").glob("booster*.txt"))
        .relative_to(folder)
        .as_posix()
    )


def test_changed_byte_in_the_rankers_booster(home_copy: Path, tmp_path: Path, capsys) -> None:
    booster = _booster(home_copy)
    _damage_heal_cycle(
        home_copy,
        tmp_path,
        capsys,
        lambda v: _flip_byte(v / booster),
        "ranker",
        booster,
        "ranker",
    )


def test_deleted_model_folder(home_copy: Path, tmp_path: Path, capsys) -> None:
    _damage_heal_cycle(
        home_copy,
        tmp_path,
        capsys,
        lambda v: shutil.rmtree(v / "itemknn"),
        "itemknn",
        "itemknn/arrays.npz",
        "itemknn",
    )


def test_broken_ranker_falls_back_to_als_then_itemknn(home_copy: Path) -> None:
    folder = _active(home_copy)
    _flip_byte(folder / _booster(home_copy))
    _flip_byte(folder / "als" / "arrays.npz")
    lab = load_lab(folder, tolerant=True)
    assert set(lab.broken) == {"ranker", "als"}
    from recsys_core.serving import RecommendationService

    answer = RecommendationService(lab).recommend("U001", 10, "ranker", policy="lab-rule")
    assert answer["model"] == "itemknn" and answer["degraded"] and "ranker" in answer["reason"]
    with pytest.raises(ArtifactError, match="als/arrays.npz: checksum mismatch"):
        lab.model("als")


def test_everything_broken_still_answers_from_stored_counts(home_copy: Path) -> None:
    folder = _active(home_copy)
    for name in ("ranker", "als", "itemknn", "popularity"):
        shutil.rmtree(folder / name)
    _flip_byte(folder / "catalog.parquet")
    lab = load_lab(folder, tolerant=True)
    assert set(lab.broken) == {"ranker", "als", "itemknn", "popularity", "catalog"}
    from recsys_core.serving import RecommendationService

    answer = RecommendationService(lab).recommend("U001", 10, "ranker", policy="lab-rule")
    assert answer["model"] == "popularity" and answer["degraded"]
    assert len(answer["items"]) == 10


def test_automatic_rollback_when_allowed(home_copy: Path) -> None:
    newer = _active(home_copy)
    older = registry.version_names("demo-small", home_copy)[1]
    _flip_byte(newer / "als" / "arrays.npz")
    off = LiveService(check_interval=0)
    assert off.service().lab.version == newer.name and "als" in off.lab_broken()
    on = LiveService(check_interval=0, auto_rollback=True)
    answer = on.recommend("U001", 10, "als", policy="lab-rule")
    assert answer["model_version"] == older and not answer["degraded"]
    assert registry.active_version("demo-small", home_copy) == older
    last = registry.activation_history("demo-small", home_copy)[0]
    assert last["why"] == "automatic" and "als" in last["note"]
    # the other service follows the pointer change too
    assert off.recommend("U001", 10, "als", policy="lab-rule")["model_version"] == older


def test_live_service_follows_rollback_and_retrain(home_copy: Path) -> None:
    live = LiveService(check_interval=0)
    first = live.service().lab.version
    registry.rollback(home=home_copy)
    assert live.service().lab.version != first
    registry.rollback("demo-small", first, home_copy)
    assert live.service().lab.version == first
