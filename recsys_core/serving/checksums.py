"""Checksums of saved versions: ``checksums.json`` (SHA-256 and size of every file of a
version folder, written last) and verification of a folder against it.

Used by the registry (listing, rollback, backup, restore) and by loading (a model whose files
fail the check is left out). :mod:`recsys_core.serving.registry` re-exports these names.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from recsys_core.io_utils import atomic_write_text

#: Per-version checksum manifest (every file of the version except itself), written last.
CHECKSUMS = "checksums.json"
VerificationState = Literal["ok", "damaged", "unverified"]

_CHUNK = 1 << 20


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
