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
from recsys_core.serving import backup, registry
from recsys_core.serving.lab import save_lab
from recsys_core.training import TrainConfig, train_lab


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
    result = backup.backup(archive, home_copy)
    assert len(result.versions) == 2
    active_before = registry.active_version("demo-small", home_copy)
    shutil.rmtree(registry.models_root(home_copy))
    restored = backup.restore(archive, home_copy)
    assert len(restored.added) == 2
    assert registry.active_version("demo-small", home_copy) == active_before
    assert registry.resolve_version(home=home_copy).name == active_before


def _refused(archive: Path, home: Path, match: str) -> None:
    before = _tree(home)
    with pytest.raises(backup.BackupRefusedError, match=match):
        backup.restore(archive, home)
    assert _tree(home) == before
    assert main(["registry", "restore", str(archive)]) == 2


def test_truncated_foreign_and_tampered_archives_are_refused(
    home_copy: Path, tmp_path: Path
) -> None:
    active, _ = _versions(home_copy)
    good = tmp_path / "lab.tar.zst"
    backup.backup(good, home_copy)
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
    backup.restore(good, home_copy)
    assert registry.verify_version(active).ok


def test_tampered_member_with_recomputed_compression_is_refused(
    home_copy: Path, tmp_path: Path
) -> None:
    """A member changed and re-packed (valid compression) fails its manifest checksum."""
    from recsys_core.security.encryption import decrypt_file

    good = tmp_path / "lab.tar.gz"
    backup.backup(good, home_copy)
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


# ------------------------------------------------------------------ issue 23: failing closed


@pytest.mark.parametrize("pointer", ["LAST", "ACTIVE"])
def test_binary_bytes_in_a_pointer_are_named_and_repaired(
    home_copy: Path, tmp_path: Path, capsys, pointer: str
) -> None:
    """``printf '\\x00\\xffgarbage' > models/LAST`` (or ACTIVE): no traceback anywhere,
    the reason named, and ``restore`` / ``rollback`` repair the pointer."""
    archive = tmp_path / "lab.tar.zst"
    backup.backup(archive, home_copy)
    root = registry.models_root(home_copy)
    path = root / "LAST" if pointer == "LAST" else root / "demo-small" / "ACTIVE"
    path.write_bytes(b"\x00\xffgarbage")

    problems = registry.pointer_problems(home_copy)
    assert any("damaged" in p and "registry rollback" in p for p in problems.values())
    dataset = "demo-small" if pointer == "ACTIVE" else None
    with pytest.raises(registry.PointerDamagedError, match="damaged"):
        registry.resolve_version(dataset, home=home_copy)
    assert main(["registry", "list", "--quick"]) == 0
    assert "damaged" in capsys.readouterr().err
    where = ["--dataset", "demo-small"] if dataset else []
    assert main(["recommend", "--user", "x", *where]) == 2  # a plain message, no traceback
    assert "damaged" in capsys.readouterr().err

    assert main(["registry", "restore", str(archive)]) == 0
    assert "repaired the damaged pointer" in capsys.readouterr().out
    assert registry.pointer_problems(home_copy) == {}
    registry.resolve_version(dataset, home=home_copy)

    path.write_bytes(b"\x00\xffgarbage")
    assert main(["registry", "rollback", "--dataset", "demo-small"]) == 0
    assert registry.pointer_problems(home_copy) == {}


def test_restore_does_not_claim_success_with_last_naming_a_missing_version(
    home_copy: Path, tmp_path: Path, capsys
) -> None:
    archive = tmp_path / "lab.tar.zst"
    backup.backup(archive, home_copy)
    root = registry.models_root(home_copy)
    (root / "LAST").write_text("demo-small/20990101-000000\n")  # a version that is not there
    assert main(["registry", "restore", str(archive)]) == 0
    assert registry.resolve_version(home=home_copy).is_dir()  # LAST points somewhere real
    assert "repaired the damaged pointer LAST" in capsys.readouterr().out
    # nothing in the registry or the archive can replace it: the restore says so, exit 1
    import shutil

    shutil.rmtree(root / "demo-small")
    (root / "other").mkdir()
    (root / "LAST").write_text("demo-small/20990101-000000\n")
    from recsys_core.serving.backup import _repair_last

    problems = _repair_last(home_copy, {"last": None}, {}, [])
    assert problems and "does not exist" in problems[0]


def test_version_names_do_not_accept_a_trailing_newline() -> None:
    with pytest.raises(ConfigError):
        registry.check_version_name("20240601-120000\n")
    assert registry.check_version_name("20240601-120000") == "20240601-120000"


def test_a_small_archive_cannot_write_more_than_its_manifest_lists(
    home_copy: Path, tmp_path: Path
) -> None:
    """A member whose tar header claims more than the manifest lists is refused before a
    byte of it is written (the old code wrote 3 GB from a 98 KB archive first)."""
    name = "models/demo-small/20240101-000000/als/arrays.npz"
    manifest = {
        "format": "recsys-lab-backup",
        "files": {name: {"sha256": "0" * 64, "size": 10}},
        "versions": ["demo-small/20240101-000000"],
        "active": {},
    }
    bomb = tmp_path / "bomb.tar.gz"
    size = 64 << 20

    class Zeros(io.RawIOBase):
        left = size

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    with tarfile.open(bomb, "w:gz", compresslevel=1) as tar:
        body = json.dumps(manifest).encode()
        info = tarfile.TarInfo("recsys-backup.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
        info = tarfile.TarInfo(name)
        info.size = size
        tar.addfile(info, io.BufferedReader(Zeros()))
    assert bomb.stat().st_size < 1 << 20
    _refused(bomb, home_copy, "claims 67,108,864 bytes, its manifest 10")


def test_restore_on_a_full_disk_says_the_disk_is_full(
    home_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import shutil

    from recsys_core.io_utils import DiskFullError
    from recsys_core.serving import backup

    archive = tmp_path / "lab.tar.zst"
    backup.backup(archive, home_copy)
    before = _tree(home_copy)
    usage = shutil.disk_usage(home_copy)
    monkeypatch.setattr(backup.shutil, "disk_usage", lambda _p: usage._replace(free=1 << 20))
    with pytest.raises(DiskFullError, match="disk is full"):
        backup.restore(archive, home_copy)
    assert _tree(home_copy) == before
    assert main(["registry", "restore", str(archive)]) == 2
    err = capsys.readouterr().err
    assert "disk is full" in err and "truncated" not in err


def _no_space(*_args: object, **_kwargs: object) -> None:
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def test_backup_and_training_on_a_full_disk_say_so_and_leave_nothing(
    home_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_store
) -> None:
    from recsys_core.io_utils import DiskFullError
    from recsys_core.serving import lab as lab_module

    monkeypatch.setattr(tarfile, "copyfileobj", _no_space)
    out = tmp_path / "backups"
    with pytest.raises(DiskFullError, match="disk is full"):
        backup.backup(out / "lab.tar.zst", home_copy)
    assert list(out.iterdir()) == []  # no .partial archive left
    monkeypatch.undo()
    monkeypatch.setenv("RECSYS_HOME", str(home_copy))

    config = TrainConfig(models=["popularity"], seed=1)
    lab = train_lab(small_store, config)
    monkeypatch.setattr(lab_module, "write_checksums", _no_space)
    with pytest.raises(DiskFullError, match="disk is full"):
        save_lab(lab, home=home_copy)
    assert not list((registry.models_root(home_copy) / "demo-small").glob(".*partial"))


def test_leftovers_of_killed_runs_are_removed_at_the_next_start(
    home_copy: Path, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    ds = registry.models_root(home_copy) / "demo-small"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    old = [ds / ".20240101-000000.partial", ds / ".20240101-000000.deleting"]
    for folder in old:
        folder.mkdir()
        (folder / "x").write_bytes(b"x")
        os.utime(folder / "x", (1, 1))
        os.utime(folder, (1, 1))
    staging = home_copy / f".restore-{dead_pid}-1"  # its process is gone: removed at once
    staging.mkdir()
    running = ds / ".20240102-000000.partial"  # fresh: another process may be saving it
    running.mkdir()
    partial_archive = tmp_path / f".lab.tar.zst.{dead_pid}.partial"
    partial_archive.write_bytes(b"half")

    backup.backup(tmp_path / "lab.tar.zst", home_copy)
    assert not any(p.exists() for p in [*old, staging, partial_archive])
    assert running.exists()
    assert registry.verify_version(registry.resolve_version(home=home_copy)).ok


def test_atomic_writes_set_modes_without_touching_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading the umask means setting it for every thread (folders made meanwhile came out
    0777): the mode is set explicitly instead."""
    import os
    import stat

    from recsys_core.io_utils import atomic_write_bytes

    def no_umask(_mask: int) -> int:
        raise AssertionError("atomic_write_bytes changed the process umask")

    monkeypatch.setattr(os, "umask", no_umask)
    atomic_write_bytes(tmp_path / "plain", b"x")
    atomic_write_bytes(tmp_path / "secret", b"x", mode=0o600)
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
