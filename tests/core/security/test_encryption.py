"""Encryption at rest: round trip, a changed byte or another key refused, key rotation."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, MultiFernet

from recsys_core.errors import EncryptionError, RecsysError
from recsys_core.security import encryption
from recsys_core.security.keys import key_file

SECRET = b"user_id,item_id\n12346,85123A\n"


def test_a_round_trip_with_a_0600_key_file_and_0600_files(tmp_path: Path) -> None:
    path = tmp_path / "log.enc"
    encryption.write_encrypted(path, SECRET)
    assert SECRET not in path.read_bytes()
    assert encryption.read_encrypted(path) == SECRET
    assert stat.S_IMODE(key_file(encryption.KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_one_changed_byte_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.enc"
    encryption.write_encrypted(path, SECRET)
    data = bytearray(path.read_bytes())
    data[40] = ord("A") if data[40] != ord("A") else ord("B")
    path.write_bytes(bytes(data))
    with pytest.raises(EncryptionError, match="log.enc cannot be decrypted: it was changed"):
        encryption.read_encrypted(path)


def test_a_file_under_another_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log.enc"
    encryption.write_encrypted(path, SECRET)
    monkeypatch.setenv(encryption.ENV_KEYS, Fernet.generate_key().decode())
    with pytest.raises(EncryptionError, match="key this lab does not have"):
        encryption.read_encrypted(path)


def _newest_key() -> bytes:
    lines = key_file(encryption.KEY_FILE).read_bytes().splitlines()
    return [k for k in lines if k.strip() and not k.startswith(b"#")][0]


def test_rotation_re_encrypts_under_a_new_key_and_keeps_the_old_ones_retired(
    tmp_path: Path,
) -> None:
    files = [tmp_path / f"{i}.enc" for i in range(3)]
    for path in files:
        encryption.write_encrypted(path, SECRET)
    old_key = _newest_key()
    before = [p.read_bytes() for p in files]
    result = encryption.rotate(files)
    assert result.re_encrypted == files and not result.failed and result.retired_keys == 1
    new_key = _newest_key()
    assert new_key != old_key
    for path, old in zip(files, before, strict=True):
        assert path.read_bytes() != old
        assert encryption.read_encrypted(path) == SECRET
        Fernet(new_key).decrypt(path.read_bytes())
    # a copy kept from before the rotation (a backup elsewhere) still reads: the old key is
    # retired, not dropped
    assert encryption.decrypt_bytes(before[0]) == SECRET
    stale = tmp_path / "copy-from-before.enc"
    stale.write_bytes(before[0])
    assert stale in encryption.drop_retired([*files, stale])  # refused: it needs the old key
    assert encryption.decrypt_bytes(before[0]) == SECRET
    assert encryption.drop_retired(files) == {}  # nothing shown needs it: dropped
    assert encryption.key_counts() == (1, 0)
    with pytest.raises(EncryptionError):
        encryption.decrypt_bytes(before[0])


def test_encrypted_files_are_found_by_their_first_bytes_not_their_names(tmp_path: Path) -> None:
    token = tmp_path / "events.parquet"  # no .enc
    encryption.write_encrypted(token, SECRET)
    plain = tmp_path / "plain.bin"
    plain.write_bytes(SECRET)
    stream = tmp_path / "b1.tar.zst"
    encryption.encrypt_file(plain, stream)
    hidden = tmp_path / ".b1.tar.zst.partial"
    encryption.encrypt_file(plain, hidden)
    assert encryption.encrypted_format(token) == "token"
    assert encryption.encrypted_format(stream) == "stream"
    assert encryption.encrypted_format(plain) is None
    assert encryption.find_encrypted([tmp_path]) == [stream, token]


def test_cli_rotate_re_encrypts_files_under_the_home(tmp_path: Path) -> None:
    import subprocess
    import sys

    from recsys_core.paths import recsys_home

    path = recsys_home() / "uploads" / "ann" / "x" / "events.parquet.enc"
    path.parent.mkdir(parents=True)
    encryption.write_encrypted(path, SECRET)
    before = path.read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "recsys_core", "keys", "rotate"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "1 file(s) re-encrypted" in done.stdout
    assert path.read_bytes() != before and encryption.read_encrypted(path) == SECRET


def test_a_large_file_is_encrypted_in_numbered_chunks_and_any_change_is_refused(
    tmp_path: Path,
) -> None:
    import os

    src = tmp_path / "backup.tar.gz"
    payload = os.urandom(encryption.CHUNK * 2 + 123)
    src.write_bytes(payload)
    enc = tmp_path / "backup.tar.gz.enc"
    encryption.encrypt_file(src, enc)
    assert encryption.is_stream_encrypted(enc)
    out = tmp_path / "out"
    encryption.decrypt_file(enc, out)
    assert out.read_bytes() == payload
    data = enc.read_bytes()
    cases = {
        "changed": data[:5000] + bytes([data[5000] ^ 1]) + data[5001:],
        "cut": data[: len(data) * 2 // 3],
    }
    for name, broken in cases.items():
        bad = tmp_path / f"{name}.enc"
        bad.write_bytes(broken)
        target = tmp_path / f"{name}.out"
        with pytest.raises(EncryptionError, match="cannot be decrypted"):
            encryption.decrypt_file(bad, target)
        assert not target.exists()
    assert encryption.rotate([enc]).re_encrypted == [enc]
    encryption.decrypt_file(enc, out)
    assert out.read_bytes() == payload


def test_registry_backups_are_encrypted_at_rest_and_a_changed_byte_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tarfile

    from cryptography.fernet import Fernet

    from recsys_core.data.demo_store import generate_demo_store
    from recsys_core.data.schema import Dataset
    from recsys_core.serving import backup, save_lab
    from recsys_core.training import TrainConfig, train_lab

    events, catalog = generate_demo_store(n_users=40, n_items=20, n_events=600, seed=3)
    save_lab(train_lab(Dataset("tiny", events, catalog), TrainConfig(models=["popularity"])))
    archive = tmp_path / "lab.tar.zst"
    backup.backup(archive)
    assert encryption.is_stream_encrypted(archive)
    with pytest.raises(tarfile.TarError), tarfile.open(archive):
        pass
    assert backup.restore(archive).unchanged  # our own key reads it back
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed = tmp_path / "changed.tar.zst"
    changed.write_bytes(bytes(data))
    with pytest.raises(backup.BackupRefusedError, match="cannot be decrypted"):
        backup.restore(changed)
    monkeypatch.setenv(encryption.ENV_KEYS, Fernet.generate_key().decode())
    with pytest.raises(backup.BackupRefusedError, match="cannot be decrypted"):
        backup.restore(archive)
    monkeypatch.delenv(encryption.ENV_KEYS)
    monkeypatch.setenv("RECSYS_ENCRYPT_BACKUPS", "0")
    plain = tmp_path / "plain.tar.zst"
    backup.backup(plain)
    assert not encryption.is_stream_encrypted(plain)


def test_saved_versions_are_encrypted_when_the_setting_asks(
    small_store: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from cryptography.fernet import Fernet

    from recsys_core.serving import RecommendationService, save_lab
    from recsys_core.serving.lab import load_lab
    from recsys_core.training import TrainConfig, train_lab
    from tests.conftest import SMALL_RANKER

    monkeypatch.setenv("RECSYS_ENCRYPT_ARTIFACTS", "1")
    config = TrainConfig(
        models=["popularity", "als", "ranker"], model_params={"ranker": dict(SMALL_RANKER)}
    )
    lab = train_lab(small_store, config)  # type: ignore[arg-type]
    folder = save_lab(lab)
    stored = [p for p in folder.rglob("*") if p.is_file()]
    private = [p for p in stored if p.name not in ("manifest.json", "checksums.json")]
    assert any(p.name == "drift_reference.json" for p in private)  # it lists shopper ids
    assert any(p.parent.name == "purchase_model" for p in private)  # nested folders too
    assert any(p.name == "bought.parquet" for p in private)  # shopper ids: the bought pairs
    assert all(encryption.is_stream_encrypted(p) for p in private), [
        p for p in private if not encryption.is_stream_encrypted(p)
    ]
    loaded = load_lab(folder)
    user = str(small_store.events["user_id"].iloc[0])  # type: ignore[attr-defined]
    expected = RecommendationService(lab).recommend_frame(user, 5, "ranker", policy="lab-rule")[0]
    got = RecommendationService(loaded).recommend_frame(user, 5, "ranker", policy="lab-rule")[0]
    assert got["item_id"].tolist() == expected["item_id"].tolist()
    assert loaded.catalog.equals(lab.catalog)
    assert loaded.bought is not None and lab.bought is not None
    assert len(loaded.bought) == len(lab.bought)
    assert loaded.reference == json.loads(json.dumps(lab.reference, default=str))
    monkeypatch.setenv(encryption.ENV_KEYS, Fernet.generate_key().decode())
    with pytest.raises(RecsysError, match="cannot be decrypted"):
        load_lab(folder)
    tolerant = load_lab(folder, tolerant=True)
    assert "als" in tolerant.broken and "cannot be decrypted" in tolerant.broken["als"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recsys_core", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_rotating_keys_keeps_backups_and_encrypted_models_readable(
    small_store: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23 item 1: train encrypted, back up, rotate, then restore and `similar` still work
    (before: "0 file(s) re-encrypted, old keys dropped", then "chunk 0 does not decrypt")."""
    from recsys_core.paths import recsys_home
    from recsys_core.serving import backup, registry, save_lab
    from recsys_core.training import TrainConfig, train_lab

    monkeypatch.setenv("RECSYS_ENCRYPT_ARTIFACTS", "1")
    lab = train_lab(small_store, TrainConfig(models=["popularity", "itemknn"]))  # type: ignore[arg-type]
    folder = save_lab(lab)
    part = next(p for p in (folder / "itemknn").rglob("*") if p.is_file())
    assert encryption.is_stream_encrypted(part)  # keeps its name, encrypted inside
    item = str(small_store.catalog["item_id"].iloc[0])  # type: ignore[attr-defined]
    before = _cli("similar", "--item", item, "--model", "itemknn", "--json")
    assert before.returncode == 0, before.stderr
    archive = tmp_path / "b1.tar.zst"  # outside $RECSYS_HOME, as in the report
    backup.backup(archive)
    old_key = _newest_key()
    done = _cli("keys", "rotate")
    assert done.returncode == 0, done.stderr
    new_key = _newest_key()
    assert new_key != old_key
    assert "0 file(s)" not in done.stdout and "retired key(s) kept" in done.stdout
    # every encrypted part of the version is now under the new key, and still verifies
    newest = MultiFernet([Fernet(new_key)])
    with part.open("rb") as raw:
        reader = encryption._NewestOnlyReader(raw, part.name, newest)
        while reader.read(1 << 20):
            pass
    assert registry.verify_version(folder).ok
    # the backup written before the rotation restores, and `similar` answers as before
    shutil.rmtree(folder)
    backup.restore(archive)
    after = _cli("similar", "--item", item, "--model", "itemknn", "--json")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["items"] == json.loads(before.stdout)["items"]
    # the old key is not dropped while that backup (outside the home) needs it, nor while the
    # restored version's parts (under the old key again) do
    home_files = encryption.find_encrypted([recsys_home()])
    assert archive in encryption.drop_retired([*home_files, archive])
    blocked = encryption.drop_retired(home_files)
    assert any("itemknn" in str(p) for p in blocked)
    assert encryption.key_counts() == (1, 1)
    # re-encrypt them and back up again: then nothing needs the old key
    assert _cli("keys", "rotate").returncode == 0
    archive.unlink()
    fresh = tmp_path / "b2.tar.zst"
    backup.backup(fresh)
    assert encryption.drop_retired([*encryption.find_encrypted([recsys_home()]), fresh]) == {}
    assert encryption.key_counts() == (1, 0)
    backup.restore(fresh)
    assert registry.verify_version(folder).ok


def test_cli_drop_retired_names_what_still_needs_an_old_key(tmp_path: Path) -> None:
    from recsys_core.paths import recsys_home

    path = recsys_home() / "uploads" / "u-616e6e" / "x" / "events.parquet.enc"
    path.parent.mkdir(parents=True)
    encryption.write_encrypted(path, SECRET)
    kept = tmp_path / "elsewhere.enc"  # e.g. a copy kept outside the home
    kept.write_bytes(path.read_bytes())
    assert _cli("keys", "rotate").returncode == 0
    refused = _cli("keys", "drop-retired", "--also", str(tmp_path))
    assert refused.returncode == 1 and "elsewhere.enc" in refused.stderr
    assert encryption.read_encrypted(kept) == SECRET  # nothing was dropped
    kept.unlink()
    done = _cli("keys", "drop-retired", "--also", str(tmp_path))
    assert done.returncode == 0 and "dropped 1 retired key" in done.stdout, done.stderr
    assert encryption.read_encrypted(path) == SECRET
