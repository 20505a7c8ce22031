"""Small file helpers: atomic writes, so a failed run never leaves a half-written file, and
a full disk reported as a full disk."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from recsys_core.errors import ArtifactError

#: Mode of files written by :func:`atomic_write_bytes` unless told otherwise (owner
#: read/write, everyone else read). Set explicitly: reading the umask means setting it, and
#: that changes it for every thread of the process for a moment (folders made meanwhile by
#: other threads came out 0777).
DEFAULT_FILE_MODE = 0o644


class DiskFullError(ArtifactError):
    """The disk (or the user's quota) is full: nothing half-written was left behind."""


def raise_if_disk_full(exc: BaseException, what: str, where: str | Path) -> None:
    """Raise :class:`DiskFullError` naming ``what`` and ``where`` when ``exc`` is ENOSPC/EDQUOT.

    Call it in an ``except`` block before re-raising anything else.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DiskFullError(
            f"the disk is full: {what} could not be written to {where} ({exc.strerror}). "
            "Nothing half-written was kept; free some space (e.g. `python -m recsys_core "
            "registry prune --keep 3`, or delete old backups) and run it again"
        ) from exc


def atomic_write_bytes(path: str | Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    The file gets ``mode`` (default :data:`DEFAULT_FILE_MODE`, 0644); pass ``0o600`` for
    secrets. The process umask is never read or changed.

    Raises
    ------
    DiskFullError
        The disk is full (the temporary file is removed, ``path`` is unchanged).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, DEFAULT_FILE_MODE if mode is None else mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        raise_if_disk_full(exc, path.name, path.parent)
        raise


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode(encoding))
