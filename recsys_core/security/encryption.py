"""Encryption at rest with Fernet (AES-128-CBC + HMAC-SHA256), keys rotated with MultiFernet.

Keys: ``$RECSYS_ENCRYPTION_KEYS`` (comma-separated Fernet keys, newest first) when set, else
``$RECSYS_HOME/keys/fernet.keys`` (one key per line, newest first; made on first use, 0600).
The newest key encrypts; every listed key decrypts. :func:`rotate` puts a new key first,
re-encrypts every file given under the new key, and then drops the old keys.

A file changed on disk or encrypted under a key that is not listed is refused with
:class:`~recsys_core.errors.EncryptionError`, never read as garbage.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from recsys_core.errors import ConfigError, EncryptionError
from recsys_core.io_utils import atomic_write_bytes
from recsys_core.security.keys import key_file, read_or_create, write_key
from recsys_core.settings import lab_settings

ENV_KEYS = "RECSYS_ENCRYPTION_KEYS"
KEY_FILE = "fernet.keys"
#: Suffix of every encrypted file the lab writes.
SUFFIX = ".enc"


def _keys(home: Path | None = None) -> list[bytes]:
    if (lab_settings().secret(ENV_KEYS) or "").strip():
        raw = str(lab_settings().secret(ENV_KEYS)).replace("\n", ",").encode("ascii")
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


# ------------------------------------------------------------------ large files, as a stream

#: First bytes of a file encrypted in chunks by :func:`encrypt_file`.
STREAM_MAGIC = b"RECSYS-ENC1\n"
#: Plaintext bytes per chunk (each chunk is one Fernet token).
CHUNK = 1 << 20
_HEADER = struct.Struct(">QB")  # chunk index, 1 on the last chunk
_LENGTH = struct.Struct(">I")


def is_stream_encrypted(path: Path) -> bool:
    """Whether ``path`` was written by :func:`encrypt_file`."""
    with open(path, "rb") as fh:
        return fh.read(len(STREAM_MAGIC)) == STREAM_MAGIC


def _encrypt_chunks(src: BinaryIO, dst: BinaryIO, fernet: MultiFernet) -> None:
    dst.write(STREAM_MAGIC)
    index = 0
    chunk = src.read(CHUNK)
    while True:
        following = src.read(CHUNK) if chunk else b""
        last = 1 if not following else 0
        token = fernet.encrypt(_HEADER.pack(index, last) + chunk)
        dst.write(_LENGTH.pack(len(token)) + token)
        if last:
            return
        chunk, index = following, index + 1


def _decrypt_chunks(src: BinaryIO, dst: BinaryIO, fernet: MultiFernet, what: str) -> None:
    def broken(why: str) -> EncryptionError:
        return EncryptionError(
            f"{what} cannot be decrypted: {why}. It was changed on disk, cut short, or "
            f"encrypted with a key this lab does not have (${ENV_KEYS} or "
            f"$RECSYS_HOME/keys/{KEY_FILE})."
        )

    if src.read(len(STREAM_MAGIC)) != STREAM_MAGIC:
        raise broken("it is not a file encrypted by the lab")
    expected = 0
    while True:
        size_bytes = src.read(_LENGTH.size)
        if len(size_bytes) < _LENGTH.size:
            raise broken(f"it ends after chunk {expected} without its last chunk")
        token = src.read(_LENGTH.unpack(size_bytes)[0])
        try:
            plain = fernet.decrypt(token)
        except InvalidToken:
            raise broken(f"chunk {expected} does not decrypt") from None
        index, last = _HEADER.unpack_from(plain)
        if index != expected:
            raise broken(f"chunk {expected} is out of order")
        dst.write(plain[_HEADER.size :])
        if last:
            if src.read(1):
                raise broken("it has data after its last chunk")
            return
        expected += 1


def encrypt_file(src: Path, dst: Path, home: Path | None = None) -> None:
    """Encrypt a file of any size into ``dst`` (0600) in 1 MiB Fernet chunks, each numbered,
    the last one flagged, so a changed, reordered or cut-short file is refused whole.

    The hook for backups and registry artifacts (``RECSYS_ENCRYPT_ARTIFACTS``).
    """
    fernet = cipher(home)
    tmp = dst.with_name(f".{dst.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            _encrypt_chunks(fin, fout, fernet)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def decrypt_file(src: Path, dst: Path, home: Path | None = None) -> None:
    """Decrypt a file written by :func:`encrypt_file` into ``dst`` (nothing is left at ``dst``
    when it is refused)."""
    fernet = cipher(home)
    tmp = dst.with_name(f".{dst.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            _decrypt_chunks(fin, fout, fernet, src.name)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def rotate(files: Iterable[Path], home: Path | None = None) -> int:
    """Make a new key, re-encrypt ``files`` under it, then keep only the new key.

    Only for keys kept in the key file (keys from the environment are rotated by whoever
    sets them). Returns the number of files re-encrypted. A file that cannot be decrypted
    stops the rotation before any key is dropped.
    """
    if (lab_settings().secret(ENV_KEYS) or "").strip():
        raise ConfigError(
            f"the keys come from ${ENV_KEYS}: put a new key first there, then re-run to re-encrypt"
        )
    old = _keys(home)
    new = Fernet.generate_key()
    write_key(KEY_FILE, b"\n".join([new, *old]), home)
    both = cipher(home)
    count = 0
    for path in files:
        if is_stream_encrypted(path):
            _rotate_stream(path, both)
            count += 1
            continue
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


def _rotate_stream(path: Path, fernet: MultiFernet) -> None:
    """Re-encrypt a chunked file under the first key (chunk by chunk, via a temporary file)."""
    plain = path.with_name(f".{path.name}.plain")
    fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(path, "rb") as fin, os.fdopen(fd, "wb") as fout:
            _decrypt_chunks(fin, fout, fernet, path.name)
        tmp = path.with_name(f".{path.name}.partial")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(plain, "rb") as fin, os.fdopen(out, "wb") as fout:
            _encrypt_chunks(fin, fout, fernet)
        os.replace(tmp, path)
    finally:
        plain.unlink(missing_ok=True)


class EncryptingWriter:
    """A write-only file object that encrypts into ``raw`` in numbered chunks as it goes (the
    :func:`encrypt_file` format), so an archive can be compressed and encrypted in one pass
    without a plaintext copy on disk. Call :meth:`finish` after the last write."""

    def __init__(self, raw: BinaryIO, home: Path | None = None) -> None:
        self._raw = raw
        self._fernet = cipher(home)
        self._buffer = bytearray()
        self._index = 0
        self._done = False
        raw.write(STREAM_MAGIC)

    def _emit(self, chunk: bytes, last: int) -> None:
        token = self._fernet.encrypt(_HEADER.pack(self._index, last) + chunk)
        self._raw.write(_LENGTH.pack(len(token)) + token)
        self._index += 1

    def write(self, data: bytes) -> int:
        """Buffer ``data``; full chunks are encrypted and written (never the last one)."""
        self._buffer += data
        while len(self._buffer) > CHUNK:
            self._emit(bytes(self._buffer[:CHUNK]), 0)
            del self._buffer[:CHUNK]
        return len(data)

    def flush(self) -> None:
        """Flush the underlying file (a partial chunk stays buffered)."""
        self._raw.flush()

    def writable(self) -> bool:
        return True

    def finish(self) -> None:
        """Write the last chunk (flagged as last)."""
        if not self._done:
            self._emit(bytes(self._buffer), 1)
            self._buffer.clear()
            self._done = True
            self._raw.flush()


class DecryptingReader(io.RawIOBase):
    """A read-only stream of the plaintext of an :func:`encrypt_file` file; raises
    :class:`EncryptionError` as soon as a chunk is changed, out of order or missing."""

    def __init__(self, raw: BinaryIO, what: str = "the file", home: Path | None = None) -> None:
        self._raw = raw
        self._what = what
        self._fernet = cipher(home)
        self._plain = b""
        self._pos = 0
        self._expected = 0
        self._ended = False
        if raw.read(len(STREAM_MAGIC)) != STREAM_MAGIC:
            raise self._broken("it is not a file encrypted by the lab")

    def _broken(self, why: str) -> EncryptionError:
        return EncryptionError(
            f"{self._what} cannot be decrypted: {why}. It was changed on disk, cut short, or "
            f"encrypted with a key this lab does not have"
        )

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> None:
        size_bytes = self._raw.read(_LENGTH.size)
        if len(size_bytes) < _LENGTH.size:
            raise self._broken(f"it ends after chunk {self._expected} without its last chunk")
        try:
            plain = self._fernet.decrypt(self._raw.read(_LENGTH.unpack(size_bytes)[0]))
        except InvalidToken:
            raise self._broken(f"chunk {self._expected} does not decrypt") from None
        index, last = _HEADER.unpack_from(plain)
        if index != self._expected:
            raise self._broken(f"chunk {self._expected} is out of order")
        self._expected += 1
        self._plain, self._pos = plain[_HEADER.size :], 0
        if last:
            if self._raw.read(1):
                raise self._broken("it has data after its last chunk")
            self._ended = True

    def readinto(self, buffer: Any) -> int:
        while self._pos >= len(self._plain):
            if self._ended:
                return 0
            self._next_chunk()
        n = min(len(buffer), len(self._plain) - self._pos)
        buffer[:n] = self._plain[self._pos : self._pos + n]
        self._pos += n
        return n


def decrypting_stream(raw: BinaryIO, what: str, home: Path | None = None) -> io.BufferedReader:
    """A buffered (peekable) plaintext stream over an encrypted file object."""
    return io.BufferedReader(DecryptingReader(raw, what, home), CHUNK)


# ------------------------------------------------------------------ saved model versions


def encrypt_tree(root: Path, parts: Iterable[str], home: Path | None = None) -> None:
    """Encrypt, in place and under the same names, every file of ``root/part`` for each part
    (a file or a folder, recursively): how a saved model version is kept encrypted at rest
    (``RECSYS_ENCRYPT_ARTIFACTS=1``)."""
    for part in parts:
        target = root / part
        files = [target] if target.is_file() else sorted(p for p in target.rglob("*"))
        for path in (p for p in files if p.is_file()):
            encrypt_file(path, path.with_name(path.name + ".tmp-enc"), home)
            os.replace(path.with_name(path.name + ".tmp-enc"), path)


def decrypt_tree(root: Path, part: str, into: Path, home: Path | None = None) -> Path:
    """Decrypt ``root/part`` (a file or a folder) into ``into/part``; the decrypted path.

    Raises
    ------
    EncryptionError
        A file of the part was changed or is under a key this lab does not have.
    """
    source = root / part
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in files:
        dst = into / path.relative_to(root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        decrypt_file(path, dst, home)
    return into / part
