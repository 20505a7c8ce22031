"""The registry: checksums, verify, list, backup/restore, rollback, history, prune, names."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from recsys_core.cli import main
from recsys_core.errors import ArtifactError, ConfigError, RecsysError
from recsys_core.serving import registry
from recsys_core.serving.lab import TrainConfig, save_lab, train_lab


def _flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if offset is None else offset
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def _tree(home: Path) -> dict[str, str]:
    """Every file under home with its SHA-256 (to prove that nothing changed)."""
    return {
        p.relative_to(home).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file()
    }


def _versions(home: Path) -> tuple[Path, Path]:
    root = registry.models_root(home) / "demo-small"
    newer, older = registry.version_names("demo-small", home)
    return root / newer, root / older


def test_checksums_cover_every_file_and_verify(home_copy: Path) -> None:
    active, _ = _versions(home_copy)
    listed = json.loads((active / "checksums.json").read_text())["files"]
    on_disk = {
        p.relative_to(active).as_posix()
        for p in active.rglob("*")
        if p.is_file() and p.name != "checksums.json"
    }
    assert set(listed) == on_disk
    assert {"manifest.json", "catalog.parquet", "als/arrays.npz"} <= on_disk
    assert any(name.startswith("ranker/purchase_model/booster") for name in on_disk)
    assert registry.verify_version(active).ok
    assert main(["registry", "verify"]) == 0


def test_one_changed_byte_is_named_by_verify(home_copy: Path, capsys) -> None:
    active, older = _versions(home_copy)
    _flip_byte(active / "als" / "arrays.npz")
    assert main(["registry", "verify"]) == 1
    out = capsys.readouterr().out
    assert "als/arrays.npz" in out and "checksum mismatch" in out
    assert f"ok         demo-small/{older.name}" in out
    assert main(["registry", "verify", "--dataset", "demo-small", "--version", older.name]) == 0
    (active / "itemknn" / "users.npy").unlink()
    check = registry.verify_version(active)
    assert check.problems["itemknn/users.npy"] == "missing"
    assert set(check.broken_parts()) == {"als", "itemknn"}


def test_list_json_shows_versions_newest_first_with_metrics(home_copy: Path, capsys) -> None:
    assert main(["registry", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["active"] for r in rows] == [True, False]
    assert rows[0]["version"] > rows[1]["version"]
    for row in rows:
        assert {"dataset", "version", "created", "active", "path", "models", "metrics"} <= set(row)
        assert row["verification"] == "ok" and row["size_bytes"] > 0
        # headline metrics recorded at training time (single-stage models, last 30 days)
        assert set(row["metrics"]["models"]) >= {"als", "itemknn", "popularity"}
        assert 0 <= row["headline"]["als"] <= 1
    assert main(["registry", "list"]) == 0
    assert "demo-small" in capsys.readouterr().out


def test_backup_restore_heals_the_active_version(home_copy: Path, tmp_path: Path) -> None:
    active, _ = _versions(home_copy)
    archive = tmp_path / "lab.tar.zst"
    assert main(["registry", "backup", str(archive)]) == 0
    before = _tree(registry.models_root(home_copy))
    _flip_byte(active / "als" / "arrays.npz")
    assert not registry.verify_version(active).ok
    assert main(["registry", "restore", str(archive)]) == 0
    assert registry.verify_version(active).ok
    after = _tree(registry.models_root(home_copy))
    after.pop("history.jsonl"), before.pop("history.jsonl")
    assert after == before
    history = registry.activation_history("demo-small", home_copy)
    assert history[0]["why"] == "restore" and "healed" in history[0]["note"]


def test_restore_of_a_deleted_registry_and_gzip(home_copy: Path, tmp_path: Path) -> None:
    import shutil

    archive = tmp_path / "lab.tar.gz"
    result = registry.backup(archive, home_copy)
    assert len(result.versions) == 2
    active_before = registry.active_version("demo-small", home_copy)
    shutil.rmtree(registry.models_root(home_copy))
    restored = registry.restore(archive, home_copy)
    assert len(restored.added) == 2
    assert registry.active_version("demo-small", home_copy) == active_before
    assert registry.resolve_version(home=home_copy).name == active_before


def _refused(archive: Path, home: Path, match: str) -> None:
    before = _tree(home)
    with pytest.raises(registry.BackupRefusedError, match=match):
        registry.restore(archive, home)
    assert _tree(home) == before
    assert main(["registry", "restore", str(archive)]) == 2


def test_truncated_foreign_and_tampered_archives_are_refused(
    home_copy: Path, tmp_path: Path
) -> None:
    active, _ = _versions(home_copy)
    good = tmp_path / "lab.tar.zst"
    registry.backup(good, home_copy)
    _flip_byte(active / "als" / "arrays.npz")  # damage that a good restore would heal
    data = good.read_bytes()

    truncated = tmp_path / "truncated.tar.zst"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    _refused(truncated, home_copy, "truncated or damaged|missing")

    changed = tmp_path / "changed.tar.zst"
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    changed.write_bytes(bytes(flipped))
    _refused(changed, home_copy, "refused")

    foreign = tmp_path / "foreign.tar.gz"
    with tarfile.open(foreign, "w:gz") as tar:
        body = b"hello"
        info = tarfile.TarInfo("models/demo-small/20240101-000000/manifest.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    _refused(foreign, home_copy, "not a backup of this lab")

    escaping = tmp_path / "escape.tar.gz"
    with tarfile.open(escaping, "w:gz") as tar:
        info = tarfile.TarInfo("../../outside.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    _refused(escaping, home_copy, "unexpected entry")

    not_an_archive = tmp_path / "plain.tar.zst"
    not_an_archive.write_text("just text")
    _refused(not_an_archive, home_copy, "neither")

    # the damaged file is still damaged: nothing was changed by the refused restores
    assert not registry.verify_version(active).ok
    registry.restore(good, home_copy)
    assert registry.verify_version(active).ok


def test_tampered_member_with_recomputed_compression_is_refused(
    home_copy: Path, tmp_path: Path
) -> None:
    """A member changed and re-packed (valid compression) fails its manifest checksum."""
    from recsys_core.security.encryption import decrypt_file

    good = tmp_path / "lab.tar.gz"
    registry.backup(good, home_copy)
    plain = tmp_path / "plain.tar.gz"  # backups are encrypted at rest: a tamperer with the key
    decrypt_file(good, plain)
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(plain, "r:gz") as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            body = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.endswith("als/arrays.npz"):
                body = bytearray(body)
                body[100] ^= 0xFF
                body = bytes(body)
            dst.addfile(member, io.BytesIO(body))
    _refused(tampered, home_copy, "does not match its checksum")


def test_rollback_history_and_names(home_copy: Path, capsys) -> None:
    newer, older = _versions(home_copy)
    assert main(["registry", "rollback"]) == 0
    assert registry.active_version("demo-small", home_copy) == older.name
    assert registry.resolve_version(home=home_copy) == older
    assert main(["registry", "rollback", newer.name, "--dataset", "demo-small"]) == 0
    assert registry.active_version("demo-small", home_copy) == newer.name
    capsys.readouterr()
    assert main(["registry", "history", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [h["why"] for h in history[:4]] == ["rollback", "rollback", "train", "train"]
    assert history[0]["from"] == older.name and history[0]["to"] == newer.name
    assert history[0]["user"]
    for bad in ["../../etc", "20240101-000000/../x", "", "/tmp"]:
        with pytest.raises(ConfigError):
            registry.rollback("demo-small", bad, home_copy)
    for bad in ["..", "../..", "/etc"]:  # never a folder outside the registry
        with pytest.raises(RecsysError):
            registry.dataset_folder(bad, home_copy)
    assert main(["registry", "rollback", "../x"]) == 2
    assert main(["recommend", "--user", "U001", "--version", "../../x"]) == 2
    with pytest.raises(ArtifactError, match="no version"):
        registry.rollback("demo-small", "20000101-000000", home_copy)


def test_rollback_refuses_a_damaged_target(home_copy: Path) -> None:
    _, older = _versions(home_copy)
    _flip_byte(older / "catalog.parquet")
    with pytest.raises(ArtifactError, match="no verified version"):
        registry.rollback("demo-small", home=home_copy)
    with pytest.raises(ArtifactError, match="fails verification"):
        registry.rollback("demo-small", older.name, home_copy)


def test_prune_keeps_the_active_version(home_copy: Path) -> None:
    newer, older = _versions(home_copy)
    registry.rollback("demo-small", older.name, home_copy)
    assert main(["registry", "prune", "--keep", "1"]) == 0
    assert older.exists() and newer.exists()  # newest kept, older is active
    registry.activate_version("demo-small", newer.name, home_copy)
    assert registry.prune("demo-small", 1, home_copy) == [older.name]
    assert not older.exists()


def test_training_prunes_to_the_configured_number(
    small_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = train_lab(small_store, TrainConfig(models=["popularity"], headline_metrics=False))
    monkeypatch.setenv("RECSYS_KEEP_VERSIONS", "2")
    for _ in range(3):
        save_lab(lab, home=tmp_path)
    assert len(registry.version_names("demo-small", tmp_path)) == 2


def test_killed_training_leaves_the_previous_version_active(
    home_copy: Path, small_store, monkeypatch: pytest.MonkeyPatch
) -> None:
    active, _ = _versions(home_copy)
    lab = train_lab(small_store, TrainConfig(models=["popularity", "als"], headline_metrics=False))
    als = lab.models["als"]

    def dies(path: Path) -> None:
        Path(path).mkdir(parents=True)
        (Path(path) / "half-written").write_bytes(b"\0" * 1000)
        raise KeyboardInterrupt("killed while writing a model")

    monkeypatch.setattr(als, "save", dies)
    with pytest.raises(KeyboardInterrupt):
        save_lab(lab, home=home_copy)
    assert registry.active_version("demo-small", home_copy) == active.name
    assert len(registry.version_names("demo-small", home_copy)) == 2
    assert not list((registry.models_root(home_copy) / "demo-small").glob(".*partial"))
    assert main(["registry", "verify"]) == 0
