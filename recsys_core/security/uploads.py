"""Uploaded logs, stored encrypted in the uploader's workspace.

``$RECSYS_HOME/uploads/<owner folder>/<checksum>/`` holds ``events.parquet.enc`` and
``catalog.parquet.enc`` (the validated log, Fernet-encrypted) and ``meta.json`` (name,
owner, original file name, counts, notes -- no shopper data). The owner folder is a
reversible encoding of the user name (``u-`` and its UTF-8 bytes in hex), so two users never
share one (``carol.smith`` and ``carol_smith`` did when names were cut down to safe
characters), and every read checks the owner stored in ``meta.json`` as well.

An upload gets a dataset name of its own, ``upload-<owner>-<file stem>-<checksum[:8]>``: it
can never be a built-in's name, so training it never adds to or replaces a built-in's
versions. ``<owner>`` is the user name when it is made of letters, digits and ``_`` only;
otherwise it is the name cut down to those, a dot and 6 hex digits of its SHA-256
(``carol_smith.1a2b3c`` for ``carol.smith``), so two owners never share a dataset name.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core.data.schema import Dataset
from recsys_core.errors import AuthError, UnknownDatasetError
from recsys_core.io_utils import atomic_write_text
from recsys_core.paths import recsys_home
from recsys_core.security.encryption import read_encrypted, write_encrypted

PREFIX = "upload-"
EVENTS = "events.parquet.enc"
CATALOG = "catalog.parquet.enc"
META = "meta.json"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_-")[:40] or "log"


_PLAIN_OWNER = re.compile(r"^[A-Za-z0-9_]{1,40}$")
_OWNER_FOLDER = "u-"


def uploads_root(home: Path | None = None) -> Path:
    """``$RECSYS_HOME/uploads``."""
    return (home or recsys_home()) / "uploads"


def owner_folder(owner: str, home: Path | None = None) -> Path:
    """The workspace folder of ``owner``: ``u-`` + the name's UTF-8 bytes in hex (reversible,
    so no two names share a folder, on case-insensitive file systems too)."""
    return uploads_root(home) / (_OWNER_FOLDER + owner.encode("utf-8").hex())


def folder_owner(folder: Path) -> str | None:
    """The owner a workspace folder name encodes (``None`` for an older, lossy folder name)."""
    name = folder.name
    if not name.startswith(_OWNER_FOLDER):
        return None
    try:
        return bytes.fromhex(name[len(_OWNER_FOLDER) :]).decode("utf-8")
    except ValueError:
        return None


def _owner_tag(owner: str) -> str:
    if _PLAIN_OWNER.match(owner):
        return owner
    digest = hashlib.sha256(owner.encode("utf-8")).hexdigest()[:6]
    return f"{_safe(owner)[:33]}.{digest}"


def upload_dataset_name(owner: str, file_name: str, checksum: str) -> str:
    """The dataset name an upload is trained under (never a built-in's, never another
    owner's)."""
    stem = Path(file_name).name.split(".")[0]
    return f"{PREFIX}{_owner_tag(owner)}-{_safe(stem)}-{checksum[:8]}"


@dataclass(frozen=True)
class StoredUpload:
    """One stored upload (its metadata; the data stays encrypted until :func:`load_upload`)."""

    owner: str
    checksum: str
    name: str
    file_name: str
    created: str
    events: int
    path: Path


def _frame_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def store_upload(
    dataset: Dataset, owner: str, file_name: str, checksum: str, home: Path | None = None
) -> StoredUpload:
    """Write a validated upload, encrypted, into ``owner``'s workspace (idempotent)."""
    folder = owner_folder(owner, home) / checksum
    name = upload_dataset_name(owner, file_name, checksum)
    folder.mkdir(parents=True, exist_ok=True)
    folder.parent.chmod(0o700)
    folder.chmod(0o700)
    write_encrypted(folder / EVENTS, _frame_bytes(dataset.events), home)
    write_encrypted(folder / CATALOG, _frame_bytes(dataset.catalog), home)
    meta: dict[str, Any] = {
        "name": name,
        "owner": owner,
        "file_name": Path(file_name).name,
        "checksum": checksum,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "events": int(len(dataset.events)),
        "notes": list(dataset.notes),
    }
    atomic_write_text(folder / META, json.dumps(meta, indent=2))
    return _stored(folder, meta)


def _stored(folder: Path, meta: dict[str, Any]) -> StoredUpload:
    return StoredUpload(
        owner=str(meta["owner"]),
        checksum=str(meta["checksum"]),
        name=str(meta["name"]),
        file_name=str(meta["file_name"]),
        created=str(meta["created"]),
        events=int(meta["events"]),
        path=folder,
    )


def list_uploads(owner: str | None = None, home: Path | None = None) -> list[StoredUpload]:
    """Stored uploads (of ``owner``, or everyone's), newest first.

    An upload counts as ``owner``'s only when the owner stored in its ``meta.json`` is
    exactly ``owner`` *and* its folder is not another user's workspace (folders written
    before workspaces were keyed by the full name are read by their stored owner).
    """
    root = uploads_root(home)
    found = []
    for folder in sorted(root.glob("*")):
        encoded = folder_owner(folder)
        if owner is not None and encoded is not None and encoded != owner:
            continue
        for meta_path in folder.glob(f"*/{META}"):
            try:
                stored = _stored(meta_path.parent, json.loads(meta_path.read_text()))
            except (OSError, ValueError, KeyError):
                continue
            if encoded is not None and stored.owner != encoded:
                continue  # a meta.json that names someone else than its folder: not trusted
            if owner is None or stored.owner == owner:
                found.append(stored)
    return sorted(found, key=lambda u: u.created, reverse=True)


def find_upload(checksum: str, owner: str | None, home: Path | None = None) -> StoredUpload:
    """The stored upload with ``checksum`` in ``owner``'s workspace (anyone's when None)."""
    for upload in list_uploads(owner, home):
        if upload.checksum == checksum:
            return upload
    raise UnknownDatasetError(
        "the uploaded log is not stored in your workspace: upload it again on the Data page"
    )


def load_upload(
    upload: StoredUpload, home: Path | None = None, *, owner: str | None = None
) -> Dataset:
    """Decrypt and read a stored upload (refused when changed or under an unknown key).

    With ``owner``, the owner stored in the upload's ``meta.json`` must be ``owner``
    (checked again here, at the read, not only when the upload was found).

    Raises
    ------
    AuthError
        ``owner`` is given and the upload belongs to someone else.
    """
    meta = json.loads((upload.path / META).read_text())
    if owner is not None and (meta.get("owner") != owner or upload.owner != owner):
        raise AuthError(
            "this uploaded log belongs to another user's workspace; upload your own copy on "
            "the Data page"
        )
    events = pd.read_parquet(io.BytesIO(read_encrypted(upload.path / EVENTS, home)))
    catalog = pd.read_parquet(io.BytesIO(read_encrypted(upload.path / CATALOG, home)))
    return Dataset(
        upload.name,
        events,
        catalog,
        source=f"uploaded file {upload.file_name}",
        notes=tuple(meta.get("notes", [])),
    )


def remove_upload(upload: StoredUpload) -> None:
    """Delete a stored upload."""
    shutil.rmtree(upload.path, ignore_errors=True)


def encrypted_files(home: Path | None = None) -> list[Path]:
    """Every encrypted file under the uploads folder."""
    return sorted(uploads_root(home).glob("*/*/*.enc"))
