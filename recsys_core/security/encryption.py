"""Encryption at rest with Fernet (AES-128-CBC + HMAC-SHA256), keys rotated with MultiFernet.

Keys: ``$RECSYS_ENCRYPTION_KEYS`` (comma-separated Fernet keys, newest first) when set, else
``$RECSYS_HOME/keys/fernet.keys`` (one key per line, newest first; made on first use, 0600).
The newest key encrypts; every listed key decrypts. :func:`rotate` puts a new key first,
re-encrypts every file given under the new key, and then drops the old keys.

A file changed on disk or encrypted under a key that is not listed is refused with
:class:`~recsys_core.errors.EncryptionError`, never read as garbage.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from recsys_core.errors import ConfigError, EncryptionError
from recsys_core.io_utils import atomic_write_bytes
from recsys_core.security.keys import key_file, read_or_create, write_key

ENV_KEYS = "RECSYS_ENCRYPTION_KEYS"
KEY_FILE = "fernet.keys"
#: Suffix of every encrypted file the lab writes.
SUFFIX = ".enc"


def _keys(home: Path | None = None) -> list[bytes]:
    if os.environ.get(ENV_KEYS, "").strip():
        raw = os.environ[ENV_KEYS].replace("\n", ",").encode("ascii")
    else:
        raw = read_or_create(KEY_FILE, Fernet.generate_key(), home=home)
    keys = [k.strip() for k in raw.replace(b"\n", b",").split(b",") if k.strip()]
    if not keys:
        raise ConfigError(f"no encryption key in ${ENV_KEYS} or {key_file(KEY_FILE, home)}")
    return keys


def cipher(home: Path | None = None) -> MultiFernet:
    """The MultiFernet of the configured keys (the first encrypts)."""
    try:
        return MultiFernet([Fernet(k) for k in _keys(home)])
    except ValueError as exc:
        raise ConfigError(
            f"an encryption key is not a valid Fernet key ({exc}); keys are 32 url-safe "
            "base64-encoded bytes as made by `Fernet.generate_key()`"
        ) from exc


def encrypt_bytes(data: bytes, home: Path | None = None) -> bytes:
    """``data`` encrypted under the newest key."""
    return cipher(home).encrypt(data)


def decrypt_bytes(token: bytes, what: str = "the file", home: Path | None = None) -> bytes:
    """The plaintext of ``token``.

    Raises
    ------
    EncryptionError
        ``token`` was changed or was encrypted under a key that is not configured.
    """
    try:
        return cipher(home).decrypt(token)
    except InvalidToken:
        raise EncryptionError(
            f"{what} cannot be decrypted: it was changed on disk or encrypted with a key this "
            f"lab does not have (${ENV_KEYS} or $RECSYS_HOME/keys/{KEY_FILE}). Restore it from "
            "a backup, or set the key it was written with."
        ) from None


def write_encrypted(path: Path, data: bytes, home: Path | None = None) -> None:
    """Encrypt ``data`` into ``path`` (atomically, 0600)."""
    atomic_write_bytes(path, encrypt_bytes(data, home), mode=0o600)


def read_encrypted(path: Path, home: Path | None = None) -> bytes:
    """Decrypt the file at ``path`` (see :func:`decrypt_bytes`)."""
    return decrypt_bytes(path.read_bytes(), str(path.name), home)


def rotate(files: Iterable[Path], home: Path | None = None) -> int:
    """Make a new key, re-encrypt ``files`` under it, then keep only the new key.

    Only for keys kept in the key file (keys from the environment are rotated by whoever
    sets them). Returns the number of files re-encrypted. A file that cannot be decrypted
    stops the rotation before any key is dropped.
    """
    if os.environ.get(ENV_KEYS, "").strip():
        raise ConfigError(
            f"the keys come from ${ENV_KEYS}: put a new key first there, then re-run to re-encrypt"
        )
    old = _keys(home)
    new = Fernet.generate_key()
    write_key(KEY_FILE, b"\n".join([new, *old]), home)
    both = cipher(home)
    count = 0
    for path in files:
        try:
            token = both.rotate(path.read_bytes())
        except InvalidToken:
            raise EncryptionError(
                f"{path} cannot be decrypted with the current keys; rotation stopped (the old "
                "keys are kept, the new key is already first)"
            ) from None
        atomic_write_bytes(path, token, mode=0o600)
        count += 1
    write_key(KEY_FILE, new, home)
    return count
