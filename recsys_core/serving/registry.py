"""The model registry: the one module that owns saved versions, their checksums and pointers.

Layout under ``$RECSYS_HOME``::

    models/<dataset>/<version>/...                a saved lab (see recsys_core.serving.lab)
    models/<dataset>/<version>/checksums.json     SHA-256 and size of every other file, written last
    models/<dataset>/ACTIVE                       the version served for the dataset
    models/LAST                                   "<dataset>/<version>" last activated (the default)
    models/history.jsonl                          every change of an active version (who, when, why)

What it does: list versions with their verification state, verify them file by file,
activate / roll back (recorded in the activation history), prune old versions, and back the
registry up to one ``tar`` + zstd (or gzip) archive with its own checksum manifest, restored
only after the whole archive has been verified.

Names that come from a command line or a URL (dataset, version) are checked against a
strict pattern and the registry's folders, so no name can point outside ``$RECSYS_HOME``.
"""

from __future__ import annotations

import getpass
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
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Literal

from recsys_core.errors import ArtifactError, ConfigError, ModelNotTrainedError
from recsys_core.io_utils import atomic_write_text
from recsys_core.paths import recsys_home
from recsys_core.settings import lab_settings

#: Per-version checksum manifest (every file of the version except itself), written last.
CHECKSUMS = "checksums.json"
#: The lab's own description of a version (see recsys_core.serving.lab).
MANIFEST = "manifest.json"
#: Append-only activation history, one JSON object per line.
HISTORY = "history.jsonl"
#: The checksum manifest inside a backup archive (its first member).
BACKUP_MANIFEST = "recsys-backup.json"
BACKUP_FORMAT = "recsys-lab-backup"
BACKUP_FORMAT_VERSION = 1
#: Versions kept per dataset by training when $RECSYS_KEEP_VERSIONS is not set.
DEFAULT_KEEP_VERSIONS = 10

VERSION_PATTERN = re.compile(r"^[0-9]{8}-[0-9]{6}(?:-[0-9]{1,4})?$")
DATASET_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")
Why = Literal["train", "rollback", "restore", "automatic", "activate"]
VerificationState = Literal["ok", "damaged", "unverified"]

_CHUNK = 1 << 20
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"


# ---------------------------------------------------------------------------------- names


def safe_name(name: str) -> str:
    """A dataset name as a folder name (anything outside ``[A-Za-z0-9._-]`` becomes ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"


def models_root(home: Path | None = None) -> Path:
    """``$RECSYS_HOME/models``."""
    return (home or recsys_home()) / "models"


def check_version_name(version: str) -> str:
    """``version`` if it has the shape of a version name (``YYYYMMDD-HHMMSS[-N]``).

    Raises
    ------
    ConfigError
        Any other text (a path, ``..``, an empty string).
    """
    if not isinstance(version, str) or not VERSION_PATTERN.match(version):
        raise ConfigError(
            f"{version!r} is not a model version name (they look like 20240601-120000); "
            "see `python -m recsys_core registry list`"
        )
    return version


def dataset_folder(dataset: str, home: Path | None = None, *, must_exist: bool = True) -> Path:
    """The registry folder of ``dataset`` (checked to stay inside the registry)."""
    root = models_root(home)
    folder = root / safe_name(str(dataset))
    if not DATASET_PATTERN.match(folder.name) or folder.resolve().parent != root.resolve():
        raise ConfigError(f"{dataset!r} is not a usable dataset name")
    if must_exist and not folder.is_dir():
        known = ", ".join(datasets(home)) or "none yet"
        raise ModelNotTrainedError(
            f"no trained model for dataset {dataset!r} (trained datasets: {known}): run "
            f"`python -m recsys_core train --dataset {dataset}` or --data PATH first"
        )
    return folder


def version_folder(dataset: str, version: str, home: Path | None = None) -> Path:
    """The folder of an existing version, with both names checked against the registry.

    Raises
    ------
    ConfigError
        A malformed version name.
    ArtifactError
        No such version of this dataset.
    """
    check_version_name(version)
    folder = dataset_folder(dataset, home) / version
    if not folder.is_dir():
        versions = ", ".join(version_names(dataset, home)[:5]) or "none"
        raise ArtifactError(
            f"there is no version {version!r} of dataset {dataset!r} (newest: {versions}); "
            "see `python -m recsys_core registry list`"
        )
    return folder


def datasets(home: Path | None = None) -> list[str]:
    """Folder names of the datasets that have a registry folder."""
    root = models_root(home)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and DATASET_PATTERN.match(p.name))


def version_names(dataset: str, home: Path | None = None) -> list[str]:
    """Saved, complete version names of ``dataset``, newest first."""
    folder = dataset_folder(dataset, home, must_exist=False)
    if not folder.is_dir():
        return []
    names = [
        p.name
        for p in folder.iterdir()
        if p.is_dir() and VERSION_PATTERN.match(p.name) and (p / MANIFEST).exists()
    ]
    return sorted(names, key=_version_key, reverse=True)


def _version_key(name: str) -> tuple[str, int]:
    stamp, _, suffix = name[:15], name[15:16], name[16:]
    return stamp, int(suffix) if suffix.isdigit() else 0


# ---------------------------------------------------------------------------------- checksums


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _version_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).as_posix() != CHECKSUMS
    )


def write_checksums(folder: Path) -> dict[str, dict[str, Any]]:
    """Write ``checksums.json`` (SHA-256 and size of every other file) into ``folder``."""
    files = {
        p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size}
        for p in _version_files(folder)
    }
    payload = {"algorithm": "sha256", "written": _now(), "files": files}
    atomic_write_text(folder / CHECKSUMS, json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return files


def update_checksums(folder: Path, names: list[str]) -> None:
    """Refresh the checksum entries of ``names`` only (after a deliberate rewrite of them).

    Other entries are left as they are, so a file damaged earlier still fails verification.
    A version without ``checksums.json`` is left unverified.
    """
    path = folder / CHECKSUMS
    if not path.exists():
        return
    payload = json.loads(path.read_text())
    for name in names:
        file = folder / name
        payload["files"][name] = {"sha256": sha256_file(file), "size": file.stat().st_size}
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")


@dataclass
class Verification:
    """The result of checking one version's files against its ``checksums.json``.

    ``problems`` maps a file (relative to the version folder) to what is wrong with it.
    """

    folder: Path
    state: VerificationState
    problems: dict[str, str] = field(default_factory=dict)
    size: int = 0
    files: int = 0

    @property
    def ok(self) -> bool:
        """Every file is present and matches its checksum."""
        return self.state == "ok"

    def broken_parts(self) -> dict[str, str]:
        """Top-level parts (a model folder or a file) with the first problem found in each."""
        parts: dict[str, str] = {}
        for name, problem in self.problems.items():
            part = name.split("/", 1)[0]
            parts.setdefault(part, f"{name}: {problem}")
        return parts


def verify_version(folder: Path, *, deep: bool = True) -> Verification:
    """Check every file listed in ``folder/checksums.json`` (SHA-256 unless ``deep=False``).

    ``state`` is ``ok``, ``damaged`` (a problem per bad or missing file) or ``unverified``
    (no checksum manifest: a version saved before checksums existed).
    """
    try:
        listed = json.loads((folder / CHECKSUMS).read_text())["files"]
    except FileNotFoundError:
        if not folder.is_dir():
            return Verification(folder, "damaged", {".": "the version folder is missing"})
        files = _version_files(folder)
        return Verification(
            folder, "unverified", size=sum(p.stat().st_size for p in files), files=len(files)
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Verification(folder, "damaged", {CHECKSUMS: f"unreadable ({exc})"})
    problems: dict[str, str] = {}
    size = 0
    for name, entry in sorted(listed.items()):
        path = folder / name
        if not path.is_file():
            problems[name] = "missing"
            continue
        actual_size = path.stat().st_size
        size += actual_size
        if actual_size != entry.get("size"):
            problems[name] = f"size {actual_size:,} bytes, expected {entry.get('size'):,}"
        elif deep and sha256_file(path) != entry.get("sha256"):
            problems[name] = "checksum mismatch (the file was changed)"
    return Verification(folder, "damaged" if problems else "ok", problems, size, len(listed))


# ---------------------------------------------------------------------------------- pointers


def active_version(dataset: str, home: Path | None = None) -> str | None:
    """The active version name of ``dataset`` (``None`` when none is active)."""
    pointer = dataset_folder(dataset, home, must_exist=False) / "ACTIVE"
    try:
        text = pointer.read_text().strip()
    except OSError:
        return None
    return text if VERSION_PATTERN.match(text) else None


def last_pointer(home: Path | None = None) -> tuple[str, str] | None:
    """``(dataset folder, version)`` of ``models/LAST`` (the default for the CLI)."""
    try:
        text = (models_root(home) / "LAST").read_text().strip()
    except OSError:
        return None
    ds, _, version = text.partition("/")
    if not DATASET_PATTERN.match(ds) or not VERSION_PATTERN.match(version):
        return None
    return ds, version


def activate_version(
    dataset: str,
    version: str,
    home: Path | None = None,
    *,
    why: Why = "activate",
    note: str | None = None,
) -> None:
    """Make ``version`` the one served for ``dataset`` (and the CLI's default).

    The change is appended to the activation history (nothing is appended when the version
    was already active).
    """
    folder = version_folder(dataset, version, home)
    if not (folder / MANIFEST).exists():
        raise ArtifactError(f"version {version!r} of dataset {dataset!r} has no manifest")
    ds_folder = folder.parent
    before = active_version(ds_folder.name, home)
    atomic_write_text(ds_folder / "ACTIVE", version + "\n")
    atomic_write_text(models_root(home) / "LAST", f"{ds_folder.name}/{version}\n")
    if before != version:
        record_activation(ds_folder.name, before, version, why, note=note, home=home)


def record_activation(
    dataset: str,
    before: str | None,
    after: str | None,
    why: Why,
    *,
    note: str | None = None,
    home: Path | None = None,
) -> dict[str, Any]:
    """Append one line to the activation history and return it."""
    entry = {
        "time": _now(),
        "user": _os_user(),
        "dataset": dataset,
        "from": before,
        "to": after,
        "why": why,
        "note": note,
    }
    path = models_root(home) / HISTORY
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return entry


def activation_history(
    dataset: str | None = None, home: Path | None = None
) -> list[dict[str, Any]]:
    """Every recorded activation (newest first), optionally of one dataset."""
    path = models_root(home) / HISTORY
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a torn last line after a crash
        if dataset is None or entry.get("dataset") == safe_name(dataset):
            entries.append(entry)
    return entries[::-1]


def resolve_version(
    dataset: str | None = None, version: str | None = None, home: Path | None = None
) -> Path:
    """Folder of the requested, active, or last activated version.

    Raises
    ------
    ModelNotTrainedError
        Nothing trained yet (the message says how to train).
    ConfigError
        A malformed dataset or version name.
    ArtifactError
        The version does not exist.
    """
    if dataset is None:
        last = last_pointer(home)
        if last is None:
            raise ModelNotTrainedError(
                "no trained model yet: run `python -m recsys_core train --dataset online-retail` "
                "(or --data PATH) first"
            )
        dataset, last_version = last
        version = version or last_version
    if version is None:
        version = active_version(dataset, home)
        if version is None:
            raise ModelNotTrainedError(
                f"no trained model for dataset {dataset!r}: run `python -m recsys_core train "
                f"--dataset {dataset}` first"
            )
    return version_folder(dataset, version, home)


# ---------------------------------------------------------------------------------- listing


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        payload = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}


def headline(metrics: dict[str, Any]) -> dict[str, float]:
    """``{"als": ndcg@k, ...}``: one headline figure per model from recorded metrics."""
    k = metrics.get("k", 10)
    out = {}
    for name, values in (metrics.get("models") or {}).items():
        value = values.get(f"ndcg@{k}") if isinstance(values, dict) else None
        if isinstance(value, (int, float)):
            out[name] = round(float(value), 4)
    return out


def list_versions(
    dataset: str | None = None, home: Path | None = None, *, verify: bool = False
) -> list[dict[str, Any]]:
    """Saved versions (newest first) with their manifest facts and whether each is active.

    With ``verify=True`` every file is checked against its checksum (``verification`` is
    ``ok``, ``damaged`` or ``unverified``, and ``problems`` names the bad files); otherwise
    only presence and sizes are checked.
    """
    names = [safe_name(dataset)] if dataset else datasets(home)
    out = []
    for ds in names:
        active = active_version(ds, home)
        for version in version_names(ds, home):
            folder = models_root(home) / ds / version
            manifest = _read_manifest(folder)
            check = verify_version(folder, deep=verify)
            out.append(
                {
                    "dataset": manifest.get("dataset", ds),
                    "version": version,
                    "created": manifest.get("created"),
                    "active": version == active,
                    "path": str(folder),
                    "models": manifest.get("models", []),
                    "metrics": manifest.get("metrics", {}),
                    "headline": headline(manifest.get("metrics") or {}),
                    "data_sha256": manifest.get("data", {}).get("sha256"),
                    "events": manifest.get("data", {}).get("events"),
                    "size_bytes": check.size,
                    "verification": check.state if verify or not check.ok else "ok (sizes)",
                    "problems": check.problems,
                    "registry_dataset": ds,
                }
            )
    return out


# ---------------------------------------------------------------------------------- rollback, prune


def rollback(
    dataset: str | None = None,
    version: str | None = None,
    home: Path | None = None,
    *,
    why: Why = "rollback",
    note: str | None = None,
) -> tuple[str | None, str]:
    """Activate ``version`` or, by default, the newest verified version older than the active.

    Returns ``(previous active, new active)``.

    Raises
    ------
    ArtifactError
        The named version fails verification, or no older verified version exists.
    """
    if dataset is None:
        last = last_pointer(home)
        if last is None:
            raise ModelNotTrainedError("no trained model yet: nothing to roll back")
        dataset = last[0]
    ds = dataset_folder(dataset, home).name
    current = active_version(ds, home)
    if version is not None:
        folder = version_folder(ds, version, home)
        check = verify_version(folder)
        if check.state == "damaged":
            bad = "; ".join(f"{k}: {v}" for k, v in list(check.problems.items())[:3])
            raise ArtifactError(f"version {version} of {ds} fails verification ({bad})")
        target = version
    else:
        names = version_names(ds, home)
        older = names[names.index(current) + 1 :] if current in names else names
        target = next((v for v in older if verify_version(models_root(home) / ds / v).ok), "")
        if not target:
            raise ArtifactError(
                f"no verified version of {ds} older than {current} to roll back to; "
                "restore a backup (`registry restore ARCHIVE`) or train again"
            )
    activate_version(ds, target, home, why=why, note=note)
    return current, target


def keep_versions_setting() -> int:
    """Versions kept per dataset by training: ``$RECSYS_KEEP_VERSIONS`` (default 10)."""
    return lab_settings().keep_versions


def prune(dataset: str, keep: int, home: Path | None = None) -> list[str]:
    """Delete all but the ``keep`` newest versions of ``dataset``; never the active one.

    Returns the deleted version names.
    """
    if keep < 1:
        raise ConfigError("--keep must be at least 1")
    ds = dataset_folder(dataset, home).name
    active = active_version(ds, home)
    names = version_names(ds, home)
    doomed = [v for v in names[keep:] if v != active]
    for version in doomed:
        folder = models_root(home) / ds / version
        trash = folder.with_name(f".{version}.deleting")
        folder.rename(trash)  # the version disappears at once, then is deleted
        shutil.rmtree(trash, ignore_errors=True)
    return doomed


# ---------------------------------------------------------------------------------- backup


@dataclass
class BackupResult:
    """What :func:`backup` wrote."""

    path: Path
    size: int
    files: int
    versions: list[str]
    skipped: dict[str, str]
    seconds: float


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
    tmp = path.with_name(f".{path.name}.partial")
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
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BackupResult(
        path, path.stat().st_size, len(files), versions, skipped, time.perf_counter() - start
    )


# ---------------------------------------------------------------------------------- restore


@dataclass
class RestoreResult:
    """What :func:`restore` changed."""

    added: list[str]
    healed: list[str]
    unchanged: list[str]
    activated: dict[str, str]
    seconds: float


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
                    seen[member.name] = {}
                    continue
                target = staging / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                size = 0
                with target.open("wb") as out:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                seen[member.name] = {"sha256": digest.hexdigest(), "size": size}
    except BackupRefusedError:
        raise
    except Exception as exc:  # truncated or corrupted compression / tar stream
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
        for ds, version in (manifest.get("active") or {}).items():
            before = active_version(ds, home)
            if before != version:
                activate_version(ds, version, home, why="restore", note=f"from {archive.name}")
                activated[ds] = version
            elif f"{ds}/{version}" in healed:
                record_activation(
                    ds, before, version, "restore", note=f"healed from {archive.name}", home=home
                )
        last = manifest.get("last")
        if isinstance(last, str) and last_pointer(home) is None:
            ds, _, version = last.partition("/")
            if (root / ds / version).is_dir():
                atomic_write_text(root / "LAST", f"{ds}/{version}\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RestoreResult(added, healed, unchanged, activated, time.perf_counter() - start)


def _same_files(source: Path, target: Path) -> bool:
    """Whether ``target`` verifies and holds exactly the checksummed files of ``source``."""
    try:
        wanted = json.loads((source / CHECKSUMS).read_text())["files"]
        have = json.loads((target / CHECKSUMS).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False
    return wanted == have and verify_version(target).ok


# ---------------------------------------------------------------------------------- helpers


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a container without passwd entry
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"
