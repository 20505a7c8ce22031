"""The right to be forgotten: never serve the shopper again, remove their events from every
stored (uploaded) log, and mark the model versions that hold them for retraining.

:func:`forget_user` first puts the shopper on the deny-list
(:mod:`~recsys_core.security.denylist`), so every service refuses them from the moment it
returns, before any retraining. Then it rewrites each stored upload that holds the shopper
without their events (re-encrypted, under the new data's checksum; the old files are deleted)
and marks every saved model version trained on one of those logs, or whose files name the
shopper, as needing retraining, in ``$RECSYS_HOME/retrain.json`` (what the Operations page
shows; :func:`needs_retraining`). Encrypted version files (``RECSYS_ENCRYPT_ARTIFACTS``) are
decrypted in memory to be searched; a file that cannot be read is not taken as evidence of
absence: its version is marked too, and the report names the file. The shipped built-in
datasets are never changed.

This module is part of the ``security`` leaf: it reads version folders as plain files and
never imports the registry; the caller (the CLI) says which versions exist.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recsys_core.columns import Columns
from recsys_core.io_utils import atomic_write_text
from recsys_core.paths import recsys_home
from recsys_core.provenance import data_checksum
from recsys_core.security.denylist import forget_shopper
from recsys_core.security.encryption import decrypting_stream, encrypted_format, read_encrypted
from recsys_core.security.uploads import (
    list_uploads,
    load_upload,
    remove_upload,
    store_upload,
)

RETRAIN_FILE = "retrain.json"
#: Version files that describe the version, not its data: never searched.
_NOT_DATA = frozenset({"manifest.json", "checksums.json"})


@dataclass(frozen=True)
class SavedVersion:
    """A saved model version as :func:`forget_user` needs it: its dataset, name and folder."""

    dataset: str
    version: str
    folder: Path


@dataclass
class ForgetReport:
    """What :func:`forget_user` changed."""

    events_removed: int = 0
    uploads_changed: list[str] = field(default_factory=list)
    uploads_removed: list[str] = field(default_factory=list)
    versions_marked: list[str] = field(default_factory=list)
    #: Files that could not be searched ("dataset/version/file": why); their versions are marked.
    unreadable: dict[str, str] = field(default_factory=dict)
    #: Whether this call added the shopper to the deny-list (False: already on it).
    newly_denied: bool = True


def retrain_path(home: Path | None = None) -> Path:
    """``$RECSYS_HOME/retrain.json``."""
    return (home or recsys_home()) / RETRAIN_FILE


def needs_retraining(home: Path | None = None) -> list[dict[str, Any]]:
    """Versions marked for retraining: ``[{"dataset", "version", "reason", "since"}]``."""
    path = retrain_path(home)
    if not path.exists():
        return []
    try:
        return list(json.loads(path.read_text()))
    except ValueError:
        return []


def mark_for_retraining(
    versions: list[tuple[str, str]], reason: str, home: Path | None = None
) -> None:
    """Add ``(dataset, version)`` pairs to the retraining list (once each)."""
    marked = needs_retraining(home)
    have = {(m["dataset"], m["version"]) for m in marked}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for dataset, version in versions:
        if (dataset, version) not in have:
            marked.append({"dataset": dataset, "version": version, "reason": reason, "since": now})
            have.add((dataset, version))
    atomic_write_text(retrain_path(home), json.dumps(marked, indent=2) + "\n")


def _plain_bytes(path: Path, home: Path | None) -> bytes:
    """The file's content, decrypted when the lab encrypted it (by its header)."""
    kind = encrypted_format(path)
    if kind == "stream":
        with path.open("rb") as raw:
            return decrypting_stream(raw, path.name, home).read()
    if kind == "token":
        return read_encrypted(path, home)
    return path.read_bytes()


def _mentions(data: bytes, suffix: str, user_id: str) -> bool:
    """Whether one version file's plaintext lists ``user_id`` (JSON, Parquet or NumPy)."""
    if suffix == ".json":
        return json.dumps(user_id) in data.decode("utf-8", errors="replace")
    if suffix == ".parquet":
        import pandas as pd

        frame = pd.read_parquet(io.BytesIO(data))
        return any(  # a saved artifact, every column: compare as text (the boundary)
            (frame[c].astype(str) == user_id).any()
            for c in frame.columns
            if not pd.api.types.is_numeric_dtype(frame[c]) or user_id.lstrip("-").isdigit()
        )
    if suffix in (".npy", ".npz"):
        import numpy as np

        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        arrays = [loaded] if suffix == ".npy" else [loaded[k] for k in loaded.files]
        # saved arrays of bytes or unicode: compare as text (the artifact boundary)
        return any(a.dtype.kind in "US" and bool((a.astype(str) == user_id).any()) for a in arrays)
    return False


def folder_mentions(
    folder: Path, user_id: str, home: Path | None = None
) -> tuple[bool, dict[str, str]]:
    """Whether a saved version's files list ``user_id``, and the files that could not be read
    (relative name: why). Encrypted files are decrypted in memory; errors are returned, never
    taken as "not there"."""
    unreadable: dict[str, str] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name in _NOT_DATA or path.suffix not in (".json", ".parquet", ".npy", ".npz"):
            continue
        try:
            if _mentions(_plain_bytes(path, home), path.suffix, user_id):
                return True, unreadable
        except Exception as exc:  # noqa: BLE001 - any reader error is reported, not skipped
            unreadable[path.relative_to(folder).as_posix()] = f"{type(exc).__name__}: {exc}"
    return False, unreadable


def forget_user(
    user_id: str, versions: Iterable[SavedVersion] = (), home: Path | None = None
) -> ForgetReport:
    """Deny-list ``user_id`` at once, remove their events from every stored upload, and mark
    the ``versions`` trained on those uploads or holding the shopper for retraining."""
    user_id = str(user_id)
    report = ForgetReport(newly_denied=forget_shopper(user_id, home))
    affected: set[str] = set()
    for upload in list_uploads(None, home):
        dataset = load_upload(upload, home)
        mine = (dataset.events[Columns.USER] == user_id).to_numpy()  # a Dataset: canonical
        n = int(mine.sum())
        if n == 0:
            continue
        affected.add(upload.name)
        report.events_removed += n
        kept = dataset.events[~mine].reset_index(drop=True)
        for col in (Columns.USER, Columns.ITEM):
            if hasattr(kept[col], "cat"):
                kept[col] = kept[col].cat.remove_unused_categories()
        remove_upload(upload)
        if len(kept) == 0:
            report.uploads_removed.append(upload.name)
            continue
        items = set(kept[Columns.ITEM])
        catalog = dataset.catalog[dataset.catalog[Columns.ITEM].isin(items)]
        smaller = replace(dataset, events=kept, catalog=catalog.reset_index(drop=True))
        stored = store_upload(
            smaller, upload.owner, upload.file_name, data_checksum(kept), home=home
        )
        report.uploads_changed.append(stored.name)
    marked: list[tuple[str, str]] = []
    for v in versions:
        if v.dataset in affected:
            marked.append((v.dataset, v.version))
            continue
        found, unreadable = folder_mentions(v.folder, user_id, home)
        for name, why in unreadable.items():
            report.unreadable[f"{v.dataset}/{v.version}/{name}"] = why
        if found or unreadable:  # an unreadable file is no proof she is not in it
            marked.append((v.dataset, v.version))
    if marked:
        mark_for_retraining(marked, "trained on a shopper who asked to be forgotten", home)
    report.versions_marked = [f"{d}/{v}" for d, v in marked]
    return report
