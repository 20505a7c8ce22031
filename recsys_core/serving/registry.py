"""The model registry: the one module that owns saved versions, their checksums and pointers.

Layout under ``$RECSYS_HOME``::

    models/<dataset>/<version>/...                a saved lab (see recsys_core.serving.lab)
    models/<dataset>/<version>/checksums.json     SHA-256 and size of every other file, written last
    models/<dataset>/ACTIVE                       the version served for the dataset
    models/LAST                                   "<dataset>/<version>" last activated (the default)
    models/history.jsonl                          every change of an active version (who, when, why)

What it does: list versions with their verification state, verify them file by file,
activate / roll back (recorded in the activation history), prune old versions, and remove
what killed runs left behind (:func:`clean_leftovers`). Backup and restore live in
:mod:`recsys_core.serving.backup`.

Pointer files (``ACTIVE``, ``LAST``) are read as strict text: a damaged one (binary bytes, a
name of the wrong shape) is reported as damaged with how to repair it (``registry rollback``
or ``registry restore`` rewrite it), never taken for "nothing trained" and never a crash.

Names that come from a command line or a URL (dataset, version) are checked against a
strict pattern and the registry's folders, so no name can point outside ``$RECSYS_HOME``.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from recsys_core.errors import ArtifactError, ConfigError, ModelNotTrainedError
from recsys_core.io_utils import atomic_write_text
from recsys_core.paths import recsys_home
from recsys_core.serving.checksums import CHECKSUMS as CHECKSUMS  # re-exported
from recsys_core.serving.checksums import Verification as Verification
from recsys_core.serving.checksums import VerificationState as VerificationState
from recsys_core.serving.checksums import _version_files as _version_files
from recsys_core.serving.checksums import sha256_file as sha256_file
from recsys_core.serving.checksums import update_checksums as update_checksums
from recsys_core.serving.checksums import verify_version as verify_version
from recsys_core.serving.checksums import write_checksums as write_checksums
from recsys_core.settings import lab_settings

#: The lab's own description of a version (see recsys_core.serving.lab).
MANIFEST = "manifest.json"
#: Append-only activation history, one JSON object per line.
HISTORY = "history.jsonl"
#: Versions kept per dataset by training when $RECSYS_KEEP_VERSIONS is not set.
DEFAULT_KEEP_VERSIONS = 10

# \A and \Z: ``$`` would also accept a name followed by a newline
VERSION_PATTERN = re.compile(r"\A[0-9]{8}-[0-9]{6}(?:-[0-9]{1,4})?\Z")
DATASET_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,120}\Z")
#: Folders and files killed runs leave behind: a training's ``.<version>.partial``, a
#: prune's ``.<version>.deleting``, a restore's ``.<version>.replaced-<ns>`` (all in a
#: dataset folder), a restore's ``.restore-<pid>-<ns>`` staging folder (in the home folder).
LEFTOVER_PATTERN = re.compile(
    r"\A\.(?:[0-9]{8}-[0-9]{6}(?:-[0-9]{1,4})?\.(?:partial|deleting|replaced-[0-9]+)"
    r"|restore-[0-9]+-[0-9]+)\Z"
)
#: A leftover untouched for this long belongs to no running process (a save or a restore
#: writes into its folder all the time); younger ones are only removed when their process
#: is gone (``.restore-<pid>-...``).
LEFTOVER_AGE_SECONDS = 600.0
Why = Literal["train", "rollback", "restore", "automatic", "activate"]


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


# ---------------------------------------------------------------------------------- pointers


class PointerDamagedError(ArtifactError):
    """A pointer file (``ACTIVE`` or ``LAST``) holds something other than a version name."""


def _read_pointer(path: Path) -> tuple[str | None, str | None]:
    """``(text, problem)`` of a pointer file: ``(None, None)`` when it does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"{path} cannot be read ({exc.strerror or exc})"
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None, f"{path} is damaged (it holds binary bytes, not a version name)"
    return text, None


def _repair_hint(dataset: str | None) -> str:
    where = f" --dataset {dataset}" if dataset else " --dataset NAME"
    return (
        f"repair it with `python -m recsys_core registry rollback{where}` (activates the newest "
        "verified version) or `registry restore ARCHIVE`"
    )


def active_pointer(dataset: str, home: Path | None = None) -> tuple[str | None, str | None]:
    """``(active version, problem)`` of ``dataset``: a problem when ``ACTIVE`` is damaged."""
    folder = dataset_folder(dataset, home, must_exist=False)
    text, problem = _read_pointer(folder / "ACTIVE")
    if text is not None and not VERSION_PATTERN.match(text):
        problem, text = f"{folder / 'ACTIVE'} is damaged (it holds {text[:40]!r})", None
    if problem:
        return None, f"{problem}: {_repair_hint(folder.name)}"
    return text, None


def active_version(dataset: str, home: Path | None = None) -> str | None:
    """The active version name of ``dataset`` (``None`` when none is active or the pointer
    is damaged: :func:`active_pointer` tells the two apart)."""
    return active_pointer(dataset, home)[0]


def last_pointer_state(home: Path | None = None) -> tuple[tuple[str, str] | None, str | None]:
    """``((dataset folder, version) or None, problem)`` of ``models/LAST``."""
    path = models_root(home) / "LAST"
    text, problem = _read_pointer(path)
    if text is not None:
        ds, _, version = text.partition("/")
        if DATASET_PATTERN.match(ds) and VERSION_PATTERN.match(version):
            return (ds, version), None
        problem = f"{path} is damaged (it holds {text[:40]!r})"
    if problem:
        return None, f"{problem}: {_repair_hint(None)}"
    return None, None


def last_pointer(home: Path | None = None) -> tuple[str, str] | None:
    """``(dataset folder, version)`` of ``models/LAST`` (the default for the CLI); ``None``
    when missing or damaged (:func:`last_pointer_state` says which)."""
    return last_pointer_state(home)[0]


def pointer_problems(home: Path | None = None) -> dict[str, str]:
    """Every damaged pointer file (``LAST`` and each dataset's ``ACTIVE``) with its problem."""
    problems: dict[str, str] = {}
    _, last_problem = last_pointer_state(home)
    if last_problem:
        problems["LAST"] = last_problem
    for ds in datasets(home):
        _, problem = active_pointer(ds, home)
        if problem:
            problems[f"{ds}/ACTIVE"] = problem
    return problems


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
        The version does not exist, or a pointer file is damaged
        (:class:`PointerDamagedError`, with how to repair it).
    """
    if dataset is None:
        last, problem = last_pointer_state(home)
        if problem:
            raise PointerDamagedError(problem)
        if last is None:
            raise ModelNotTrainedError(
                "no trained model yet: run `python -m recsys_core train --dataset online-retail` "
                "(or --data PATH) first"
            )
        dataset, last_version = last
        version = version or last_version
    if version is None:
        version, problem = active_pointer(dataset, home)
        if problem:
            raise PointerDamagedError(problem)
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
        last, problem = last_pointer_state(home)
        if problem:
            raise PointerDamagedError(f"{problem.split(': repair')[0]}: pass --dataset NAME")
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
        if not target and current and last_pointer_state(home)[1]:
            target = current  # nothing older, but re-activating repairs a damaged LAST
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
    clean_leftovers(home)
    active = active_version(ds, home)
    names = version_names(ds, home)
    doomed = [v for v in names[keep:] if v != active]
    for version in doomed:
        folder = models_root(home) / ds / version
        trash = folder.with_name(f".{version}.deleting")
        folder.rename(trash)  # the version disappears at once, then is deleted
        shutil.rmtree(trash, ignore_errors=True)
    return doomed


# ---------------------------------------------------------------------------------- leftovers


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    for child in path.rglob("*"):
        try:
            newest = max(newest, child.lstat().st_mtime)
        except OSError:
            continue
    return newest


def clean_leftovers(
    home: Path | None = None, *, max_age: float = LEFTOVER_AGE_SECONDS
) -> list[Path]:
    """Remove what killed trainings, prunes and restores left behind; the removed paths.

    A leftover is removed when its process is gone (the pid in a restore's staging name) or
    when nothing in it changed for ``max_age`` seconds, so a run still in progress in
    another process keeps its folder. Called at the start of training's prune, backup,
    restore and ``serve`` (and by ``registry list``).
    """
    home = home or recsys_home()
    candidates = [p for p in home.glob(".restore-*")] if home.is_dir() else []
    for ds in datasets(home):
        candidates += [p for p in (models_root(home) / ds).glob(".*")]
    removed = []
    now = time.time()
    for path in candidates:
        if not LEFTOVER_PATTERN.match(path.name) or not path.is_dir():
            continue
        try:
            stale = now - _newest_mtime(path) > max_age
        except OSError:
            continue
        if path.name.startswith(".restore-"):
            stale = stale or not _pid_alive(int(path.name.split("-")[1]))
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


# ---------------------------------------------------------------------------------- helpers


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a container without passwd entry
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"
