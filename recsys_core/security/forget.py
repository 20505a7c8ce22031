"""The right to be forgotten: remove one shopper's events from every stored (uploaded) log.

:func:`forget_user` rewrites each stored upload that holds the shopper without their events
(re-encrypted, under the new data's checksum; the old files are deleted), and marks every
saved model version trained on one of those logs as needing retraining, in
``$RECSYS_HOME/retrain.json`` (what the Operations page shows; :func:`needs_retraining`).
The shipped built-in datasets are never changed: versions trained on them that contain the
shopper are marked too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recsys_core.columns import Columns
from recsys_core.io_utils import atomic_write_text
from recsys_core.paths import recsys_home
from recsys_core.security.uploads import (
    list_uploads,
    load_upload,
    remove_upload,
    store_upload,
)

RETRAIN_FILE = "retrain.json"


@dataclass
class ForgetReport:
    """What :func:`forget_user` changed."""

    events_removed: int = 0
    uploads_changed: list[str] = field(default_factory=list)
    uploads_removed: list[str] = field(default_factory=list)
    versions_marked: list[str] = field(default_factory=list)


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


def _versions_holding(user_id: str, datasets: set[str], home: Path | None) -> list[tuple[str, str]]:
    from recsys_core.serving.lab import list_versions, models_root

    found = []
    root = models_root(home)
    for v in list_versions(home=home):
        if v["dataset"] in datasets:
            found.append((str(v["dataset"]), str(v["version"])))
            continue
        # other versions (built-ins): marked when their saved user ids hold the shopper
        folder = Path(v["path"])
        if folder.is_relative_to(root) and _folder_mentions(folder, user_id):
            found.append((str(v["dataset"]), str(v["version"])))
    return found


def _folder_mentions(folder: Path, user_id: str) -> bool:
    """Whether a saved version's user-id files list ``user_id`` (JSON or Parquet id maps)."""
    import pandas as pd

    for path in folder.rglob("*"):
        if not path.is_file() or "user" not in path.name.lower():
            continue
        try:
            if path.suffix == ".json":
                if f'"{user_id}"' in path.read_text(errors="ignore"):
                    return True
            elif path.suffix == ".parquet":
                frame = pd.read_parquet(path)
                if any((frame[c].astype(str) == user_id).any() for c in frame.columns):
                    return True
            elif path.suffix == ".npy":
                import numpy as np

                arr = np.load(path, allow_pickle=False)
                if arr.dtype.kind in "US" and (arr.astype(str) == user_id).any():
                    return True
            elif path.suffix == ".npz":
                import numpy as np

                with np.load(path, allow_pickle=False) as npz:
                    for key in npz.files:
                        arr = npz[key]
                        if arr.dtype.kind in "US" and (arr.astype(str) == user_id).any():
                            return True
        except Exception:  # an unreadable file is not evidence either way
            continue
    return False


def forget_user(user_id: str, home: Path | None = None) -> ForgetReport:
    """Remove ``user_id``'s events from every stored upload; mark affected versions."""
    from recsys_core.evaluation import data_checksum

    report = ForgetReport()
    affected: set[str] = set()
    for upload in list_uploads(None, home):
        dataset = load_upload(upload, home)
        mine = dataset.events[Columns.USER].astype(str) == str(user_id)
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
        items = set(kept[Columns.ITEM].astype(str))
        catalog = dataset.catalog[dataset.catalog[Columns.ITEM].astype(str).isin(items)]
        from dataclasses import replace

        smaller = replace(dataset, events=kept, catalog=catalog.reset_index(drop=True))
        stored = store_upload(
            smaller, upload.owner, upload.file_name, data_checksum(kept), home=home
        )
        report.uploads_changed.append(stored.name)
    versions = _versions_holding(str(user_id), affected, home)
    if versions:
        mark_for_retraining(versions, "trained on a shopper who asked to be forgotten", home)
    report.versions_marked = [f"{d}/{v}" for d, v in versions]
    return report
