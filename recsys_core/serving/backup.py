"""Backup and restore of the model registry: one ``tar`` + zstd (or gzip) archive with its
own checksum manifest, restored only after the whole archive has been verified.

* :func:`backup` writes every verified version and the ``ACTIVE`` pointers; the archive is
  written to a hidden ``.<name>.<pid>.partial`` file and renamed into place when complete.
* :func:`restore` unpacks into a staging folder under ``$RECSYS_HOME``, checking every member
  against the archive's manifest *while it streams* (a member that is not listed, or larger
  than listed, stops it at once: a tiny archive cannot fill the disk), then moves verified
  versions into place and repairs the pointers (``ACTIVE``, ``LAST``).

Leftovers of killed runs (staging folders, ``.partial`` archives) are removed by the next
run. A full disk is reported as a full disk (:class:`~recsys_core.io_utils.DiskFullError`),
never as a damaged archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from recsys_core.errors import ArtifactError, ConfigError
from recsys_core.io_utils import DiskFullError, atomic_write_text, raise_if_disk_full
from recsys_core.paths import recsys_home
from recsys_core.serving.registry import (
    CHECKSUMS,
    DATASET_PATTERN,
    LEFTOVER_AGE_SECONDS,
    VERSION_PATTERN,
    _now,
    _os_user,
    _pid_alive,
    _version_files,
    activate_version,
    active_pointer,
    active_version,
    clean_leftovers,
    datasets,
    last_pointer,
    last_pointer_state,
    models_root,
    record_activation,
    sha256_file,
    verify_version,
    version_names,
)

#: The checksum manifest inside a backup archive (its first member).
BACKUP_MANIFEST = "recsys-backup.json"
BACKUP_FORMAT = "recsys-lab-backup"
BACKUP_FORMAT_VERSION = 1

_CHUNK = 1 << 20
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"
#: ``.<archive name>.<pid>.partial``: an archive being written (or left by a killed backup).
_PARTIAL = re.compile(r"\A\.(?P<name>.+)\.(?P<pid>[0-9]+)\.partial\Z")
#: Head room kept free on top of the archive's listed size before a restore starts.
_RESTORE_MARGIN = 16 << 20


@dataclass
class BackupResult:
    """What :func:`backup` wrote."""

    path: Path
    size: int
    files: int
    versions: list[str]
    skipped: dict[str, str]
    seconds: float


def _compression_or_none(name: str) -> bool:
    """Whether ``name`` (possibly followed by ``.<pid>``) is a backup archive's name."""
    stem = re.sub(r"\.[0-9]+\Z", "", name).lower()
    return stem.endswith((".tar.zst", ".tzst", ".tar.zstd", ".tar.gz", ".tgz"))


def _compression(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".tar.zst", ".tzst", ".tar.zstd")):
        return "zst"
    if name.endswith((".tar.gz", ".tgz")):
        return "gz"
    raise ConfigError(f"{path}: the backup file must end in .tar.zst or .tar.gz")


@contextmanager
def _compressed_writer(path: Path, kind: str) -> Iterator[IO[bytes]]:
    from recsys_core.security.encryption import EncryptingWriter
    from recsys_core.security.settings import get_settings

    with path.open("wb") as raw:
        # encrypted at rest as it is written (h11: recsys_core.security.encryption)
        sink: Any = EncryptingWriter(raw) if get_settings().encrypt_backups else raw
        if kind == "zst":
            import zstandard

            cctx = zstandard.ZstdCompressor(level=3, write_checksum=True, threads=-1)
            with cctx.stream_writer(sink, closefd=False) as zfh:
                yield zfh
        else:
            import gzip

            with gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6) as gfh:
                yield gfh  # type: ignore[misc]
        if sink is not raw:
            sink.finish()
        raw.flush()
        os.fsync(raw.fileno())


def backup(path: Path, home: Path | None = None) -> BackupResult:
    """Write every verified version and the ACTIVE pointers to one archive at ``path``.

    The archive's first member, ``recsys-backup.json``, lists the SHA-256 and size of every
    other member and the active versions. Versions that fail verification are left out (and
    reported in ``skipped``) so a backup never preserves damage.
    """
    start = time.perf_counter()
    kind = _compression(path)
    clean_leftovers(home)
    _clean_partial_archives(path.parent)
    root = models_root(home)
    files: dict[str, dict[str, Any]] = {}
    sources: dict[str, Path] = {}
    versions: list[str] = []
    skipped: dict[str, str] = {}
    active: dict[str, str] = {}
    for ds in datasets(home):
        current = active_version(ds, home)
        for version in version_names(ds, home):
            folder = root / ds / version
            check = verify_version(folder)
            if check.state == "damaged":
                first = next(iter(check.problems.items()))
                skipped[f"{ds}/{version}"] = f"{first[0]}: {first[1]}"
                continue
            for file in [*_version_files(folder), folder / CHECKSUMS]:
                if not file.exists():
                    continue
                name = f"models/{ds}/{version}/{file.relative_to(folder).as_posix()}"
                files[name] = {"sha256": sha256_file(file), "size": file.stat().st_size}
                sources[name] = file
            versions.append(f"{ds}/{version}")
            if version == current:
                active[ds] = version
    if not versions:
        raise ArtifactError(f"nothing to back up: no verified version under {root}")
    last = last_pointer(home)
    manifest = {
        "format": BACKUP_FORMAT,
        "format_version": BACKUP_FORMAT_VERSION,
        "created": _now(),
        "user": _os_user(),
        "active": active,
        "last": "/".join(last) if last and last[0] in active else None,
        "versions": versions,
        "skipped": skipped,
        "files": files,
    }
    body = json.dumps(manifest, indent=1, sort_keys=True).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with _compressed_writer(tmp, kind) as out, tarfile.open(fileobj=out, mode="w|") as tar:
            info = tarfile.TarInfo(BACKUP_MANIFEST)
            info.size, info.mtime, info.mode = len(body), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(body))
            for name, source in sources.items():
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = files[name]["size"], int(time.time()), 0o644
                with source.open("rb") as fh:
                    tar.addfile(info, fh)
        tmp.replace(path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        raise_if_disk_full(exc, "the backup", path.parent)
        raise
    return BackupResult(
        path, path.stat().st_size, len(files), versions, skipped, time.perf_counter() - start
    )


def _clean_partial_archives(folder: Path) -> list[Path]:
    """Remove ``.<name>.<pid>.partial`` archives of backups whose process is gone."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in folder.glob(".*.partial"):
        if not path.is_file() or not _compression_or_none(path.name[1:-8]):
            continue
        match = _PARTIAL.match(path.name)
        gone = match is not None and not _pid_alive(int(match["pid"]))
        stale = time.time() - path.stat().st_mtime > LEFTOVER_AGE_SECONDS  # older naming too
        if gone or stale:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


# ---------------------------------------------------------------------------------- restore


@dataclass
class RestoreResult:
    """What :func:`restore` changed."""

    added: list[str]
    healed: list[str]
    unchanged: list[str]
    activated: dict[str, str]
    seconds: float
    #: What the restore could not put right (e.g. ``LAST`` names a version neither the
    #: registry nor the archive has): the restore did not fully succeed when not empty.
    problems: list[str] = field(default_factory=list)
    #: Pointer files that were damaged and have been rewritten.
    repaired: list[str] = field(default_factory=list)


class BackupRefusedError(ArtifactError):
    """An archive that is not a complete, untampered backup of this lab: nothing was changed."""


def _refuse(archive: Path, why: str) -> BackupRefusedError:
    return BackupRefusedError(
        f"refused to restore {archive}: {why}. Nothing was changed; use an intact archive "
        "written by `python -m recsys_core registry backup`"
    )


@contextmanager
def _compressed_reader(archive: Path) -> Iterator[IO[bytes]]:
    from recsys_core.security.encryption import STREAM_MAGIC, decrypting_stream

    with archive.open("rb") as raw:
        source: Any = raw
        if raw.read(len(STREAM_MAGIC)) == STREAM_MAGIC:  # an encrypted backup (h11)
            raw.seek(0)
            source = decrypting_stream(raw, archive.name)
            magic = source.peek(4)[:4]
        else:
            raw.seek(0)
            magic = raw.read(4)
            raw.seek(0)
        if magic == _ZSTD_MAGIC:
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(source, closefd=False) as zfh:
                yield zfh  # type: ignore[misc]
        elif magic[:2] == _GZIP_MAGIC:
            import gzip

            with gzip.GzipFile(fileobj=source, mode="rb") as gfh:
                yield gfh  # type: ignore[misc]
        else:
            raise _refuse(archive, "it is neither a tar+zstd nor a tar.gz file")


def _member_ok(name: str) -> bool:
    if name == BACKUP_MANIFEST:
        return True
    parts = name.split("/")
    return (
        len(parts) >= 4
        and parts[0] == "models"
        and bool(DATASET_PATTERN.match(parts[1]))
        and bool(VERSION_PATTERN.match(parts[2]))
        and all(p and p not in (".", "..") and "\\" not in p for p in parts[3:])
    )


def _unpack_verified(archive: Path, staging: Path) -> dict[str, Any]:
    """Unpack ``archive`` into ``staging`` and check every member; the manifest or a refusal."""
    manifest: dict[str, Any] | None = None
    seen: dict[str, dict[str, Any]] = {}
    try:
        with _compressed_reader(archive) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if not member.isfile() or not _member_ok(member.name):
                    raise _refuse(archive, f"it holds an unexpected entry {member.name!r}")
                if member.name in seen or (manifest is None) != (member.name == BACKUP_MANIFEST):
                    raise _refuse(archive, "it is not a backup of this lab (no backup manifest)")
                source = tar.extractfile(member)
                assert source is not None
                if member.name == BACKUP_MANIFEST:
                    try:
                        manifest = json.loads(source.read(64 << 20))
                    except ValueError as exc:
                        raise _refuse(archive, f"its manifest is not valid JSON ({exc})") from exc
                    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
                        raise _refuse(archive, "it is not a backup of this lab")
                    _check_free_space(archive, manifest, staging)
                    seen[member.name] = {}
                    continue
                listed_size = _listed_size(archive, manifest, member)
                target = staging / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                size = 0
                with target.open("wb") as out:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        if size > listed_size:  # checked as it streams, not afterwards
                            raise _refuse(archive, f"{member.name} is larger than listed")
                        out.write(chunk)
                seen[member.name] = {"sha256": digest.hexdigest(), "size": size}
    except (BackupRefusedError, DiskFullError):
        raise
    except Exception as exc:  # truncated or corrupted compression / tar stream
        raise_if_disk_full(exc, "the restored files", staging)
        raise _refuse(archive, f"it is truncated or damaged ({type(exc).__name__}: {exc})") from exc
    if manifest is None:
        raise _refuse(archive, "it is empty or not a backup of this lab")
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise _refuse(archive, "its manifest lists no files")
    for name, entry in listed.items():
        got = seen.get(name)
        if got is None:
            raise _refuse(archive, f"{name} is listed but missing (a truncated archive?)")
        if got != {"sha256": entry.get("sha256"), "size": entry.get("size")}:
            raise _refuse(archive, f"{name} does not match its checksum (the archive was changed)")
    extra = set(seen) - set(listed) - {BACKUP_MANIFEST}
    if extra:
        raise _refuse(archive, f"{sorted(extra)[0]} is not listed in the archive's manifest")
    for entry in manifest.get("versions", []):
        ds, _, version = str(entry).partition("/")
        if not (DATASET_PATTERN.match(ds) and VERSION_PATTERN.match(version)):
            raise _refuse(archive, f"its version list holds {entry!r}")
        folder = staging / "models" / ds / version
        check = verify_version(folder)
        if not folder.is_dir() or check.state == "damaged":
            raise _refuse(archive, f"version {entry} in it does not verify ({check.problems})")
    for ds, version in (manifest.get("active") or {}).items():
        if f"{ds}/{version}" not in manifest.get("versions", []):
            raise _refuse(archive, f"its active version {ds}/{version} is not in it")
    return manifest


def _listed_size(archive: Path, manifest: dict[str, Any] | None, member: tarfile.TarInfo) -> int:
    """The size the manifest lists for ``member``; a refusal when it is not listed or its tar
    header claims another size (checked before a byte of it is written)."""
    listed = (manifest or {}).get("files")
    entry = listed.get(member.name) if isinstance(listed, dict) else None
    size = entry.get("size") if isinstance(entry, dict) else None
    if not isinstance(size, int) or size < 0:
        raise _refuse(archive, f"{member.name} is not listed in the archive's manifest")
    if member.size != size:
        raise _refuse(archive, f"{member.name} claims {member.size:,} bytes, its manifest {size:,}")
    return size


def _check_free_space(archive: Path, manifest: dict[str, Any], staging: Path) -> None:
    """Refuse, as a full disk, an archive whose listed files do not fit on the disk."""
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        return
    need = sum(int(e.get("size") or 0) for e in listed.values() if isinstance(e, dict))
    free = shutil.disk_usage(staging).free
    if need + _RESTORE_MARGIN > free:
        raise DiskFullError(
            f"the disk is full: restoring {archive.name} needs {need / 2**20:,.1f} MB under "
            f"{staging.parent}, {free / 2**20:,.1f} MB are free. Nothing was changed; free "
            "some space (e.g. `python -m recsys_core registry prune --keep 3`) and run it again"
        )


def restore(archive: Path, home: Path | None = None) -> RestoreResult:
    """Restore the versions and ACTIVE pointers of a backup, verified before anything changes.

    Missing versions are added, damaged ones replaced (healed in place), intact ones kept;
    newer local versions are kept too. The archive's active versions become active again
    (recorded in the activation history as ``restore``).

    Raises
    ------
    BackupRefusedError
        A truncated, foreign or tampered archive; nothing under ``$RECSYS_HOME`` changed.
    """
    start = time.perf_counter()
    if not archive.is_file():
        raise ArtifactError(f"{archive} does not exist or is not a file")
    home = home or recsys_home()
    root = models_root(home)
    clean_leftovers(home)
    staging = home / f".restore-{os.getpid()}-{time.time_ns()}"
    staging.mkdir(parents=True)
    try:
        manifest = _unpack_verified(archive, staging)
        root.mkdir(parents=True, exist_ok=True)
        added, healed, unchanged = [], [], []
        for entry in manifest.get("versions", []):
            ds, _, version = entry.partition("/")
            source = staging / "models" / ds / version
            target = root / ds / version
            if target.is_dir():
                if _same_files(source, target):
                    unchanged.append(entry)
                    continue
                trash = target.with_name(f".{version}.replaced-{time.time_ns()}")
                target.rename(trash)
                source.rename(target)
                shutil.rmtree(trash, ignore_errors=True)
                healed.append(entry)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                source.rename(target)
                added.append(entry)
        activated: dict[str, str] = {}
        repaired: list[str] = []
        last_damaged = last_pointer_state(home)[1] is not None  # activating rewrites LAST
        for ds, version in (manifest.get("active") or {}).items():
            before, damaged = active_pointer(ds, home)
            if damaged:
                repaired.append(f"{ds}/ACTIVE")
            if before != version:
                activate_version(ds, version, home, why="restore", note=f"from {archive.name}")
                activated[ds] = version
            elif f"{ds}/{version}" in healed:
                record_activation(
                    ds, before, version, "restore", note=f"healed from {archive.name}", home=home
                )
        problems = _repair_last(home, manifest, activated, repaired)
        if last_damaged and "LAST" not in repaired and last_pointer_state(home)[1] is None:
            repaired.append("LAST")  # rewritten by an activation above
    except BaseException as exc:
        raise_if_disk_full(exc, "the restored versions", root)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RestoreResult(
        added, healed, unchanged, activated, time.perf_counter() - start, problems, repaired
    )


def _repair_last(
    home: Path, manifest: dict[str, Any], activated: dict[str, str], repaired: list[str]
) -> list[str]:
    """Point ``models/LAST`` at a version that exists when it is missing, damaged or names a
    missing version: the archive's last, else a version it activated, else any active one.
    Returns what could not be repaired."""
    root = models_root(home)
    last, damaged = last_pointer_state(home)
    if last is not None and (root / last[0] / last[1]).is_dir():
        return []
    candidates = [manifest.get("last")] + [f"{d}/{v}" for d, v in activated.items()]
    candidates += [f"{d}/{v}" for d in datasets(home) if (v := active_version(d, home))]
    for entry in candidates:
        if not isinstance(entry, str):
            continue
        ds, _, version = entry.partition("/")
        valid = DATASET_PATTERN.match(ds) and VERSION_PATTERN.match(version)
        if valid and (root / ds / version).is_dir():
            atomic_write_text(root / "LAST", f"{ds}/{version}\n")
            if damaged or last is not None:
                repaired.append("LAST")
            return []
    if damaged or last is not None:
        what = damaged or f"models/LAST names {'/'.join(last or ())}, which does not exist"
        return [f"{what}; no restored version could replace it"]
    return []


def _same_files(source: Path, target: Path) -> bool:
    """Whether ``target`` verifies and holds exactly the checksummed files of ``source``."""
    try:
        wanted = json.loads((source / CHECKSUMS).read_text())["files"]
        have = json.loads((target / CHECKSUMS).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False
    return wanted == have and verify_version(target).ok
