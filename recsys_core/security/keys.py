"""Secret keys kept in files under ``$RECSYS_HOME/keys`` with 0600 permissions.

A key comes from an environment variable when it is set, else from its key file, which is
generated on first use. Keys are never printed or logged.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from recsys_core.errors import ConfigError
from recsys_core.io_utils import atomic_write_bytes
from recsys_core.paths import recsys_home
from recsys_core.settings import lab_settings


def keys_dir(home: Path | None = None) -> Path:
    """``$RECSYS_HOME/keys`` (created with 0700)."""
    folder = (home or recsys_home()) / "keys"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    return folder


def key_file(name: str, home: Path | None = None) -> Path:
    """The path of the key file ``name``."""
    return keys_dir(home) / name


def read_or_create(
    name: str, make: bytes | None = None, *, env: str | None = None, home: Path | None = None
) -> bytes:
    """The key from ``$env`` if set, else from the key file (made from ``make`` or 32 random
    bytes, hex-encoded, on first use).

    Raises
    ------
    ConfigError
        The key file is readable by others (it must be 0600) or empty.
    """
    if env and (lab_settings().secret(env) or "").strip():
        return str(lab_settings().secret(env)).strip().encode("utf-8")
    path = key_file(name, home)
    if not path.exists():
        value = make if make is not None else secrets.token_hex(32).encode("ascii")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(value + b"\n")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"the key file {path} can be read by other users (mode {mode:o}); "
            f"run `chmod 600 {path}`"
        )
    value = path.read_bytes().strip()
    if not value:
        raise ConfigError(f"the key file {path} is empty; delete it to make a new key")
    return value


def write_key(name: str, value: bytes, home: Path | None = None) -> Path:
    """Replace the key file ``name`` (0600)."""
    path = key_file(name, home)
    atomic_write_bytes(path, value + b"\n", mode=0o600)
    return path
