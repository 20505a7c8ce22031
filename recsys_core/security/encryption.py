"""Encryption at rest with Fernet (AES-128-CBC + HMAC-SHA256), keys rotated with MultiFernet.

Keys: ``$RECSYS_ENCRYPTION_KEYS`` (comma-separated Fernet keys, newest first) when set, else
``$RECSYS_HOME/keys/fernet.keys`` (one key per line, newest first, ``#`` lines are comments;
made on first use, 0600). The newest key encrypts; every listed key decrypts.

:func:`rotate` puts a new key first and re-encrypts every file given under it. The older keys
stay in the file as *retired* keys: they never encrypt again, but they still decrypt, because
files the lab cannot rewrite may need them -- a backup copied elsewhere, or the encrypted model
parts *inside* a backup, which keep the key they were written with. Dropping a key that a file
still needs would destroy that file, so :func:`drop_retired` drops retired keys only after it
checked that every file it is shown (backups included, down to the parts inside them) reads
under the newest key alone.

Encrypted files are found by their first bytes (:func:`encrypted_format`), never by name:
uploads end in ``.enc``, backups in ``.tar.zst`` and encrypted model parts keep their names.

A file changed on disk or encrypted under a key that is not listed is refused with
:class:`~recsys_core.errors.EncryptionError`, never read as garbage.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
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
    lines = [line for line in raw.splitlines() if not line.strip().startswith(b"#")]
    keys = [k.strip() for k in b",".join(lines).split(b",") if k.strip()]
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


#: The first bytes of a single Fernet token (version 0x80 and a timestamp below 2**32).
TOKEN_MAGIC = b"gAAAAA"
_KEY_FILE_NOTE = (
    b"# Fernet keys of this lab, newest first: the first encrypts, every key decrypts.\n"
    b"# Keys after the first are retired by `keys rotate`: kept because backups and the model\n"
    b"# parts inside them may still need them. `keys drop-retired` removes them once nothing\n"
    b"# it can see needs them.\n"
)


def encrypted_format(path: Path) -> str | None:
    """``"stream"`` (:func:`encrypt_file`), ``"token"`` (:func:`write_encrypted`) or ``None``,
    from the file's first bytes (never from its name)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(STREAM_MAGIC))
    except OSError:
        return None
    if head == STREAM_MAGIC:
        return "stream"
    if head.startswith(TOKEN_MAGIC):
        return "token"
    return None


def find_encrypted(roots: Iterable[Path], home: Path | None = None) -> list[Path]:
    """Every file under ``roots`` (files or folders) that the lab encrypted, by header.

    Left out: the key folder, the security database, and names starting with ``.`` (partial
    writes, restore staging, decrypted temporaries), which the lab cleans up itself.
    """
    from recsys_core.paths import recsys_home

    keys = (home or recsys_home()) / "keys"
    found: set[Path] = set()
    for root in roots:
        candidates = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in candidates:
            rel = path.relative_to(root) if path != root else Path(path.name)
            if any(part.startswith(".") for part in rel.parts):
                continue
            if path.is_relative_to(keys) or path.name.startswith("security.db"):
                continue
            if path.is_file() and not path.is_symlink() and encrypted_format(path):
                found.add(path)
    return sorted(found)


def key_counts(home: Path | None = None) -> tuple[int, int]:
    """``(1, retired)``: the key that encrypts and how many retired keys still decrypt."""
    return 1, len(_keys(home)) - 1


@dataclass
class Rotation:
    """What :func:`rotate` did: files re-encrypted under the newest key, files it could not
    read (left as they were: every key they may need is still kept), retired keys kept."""

    re_encrypted: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)
    retired_keys: int = 0
    new_key: bool = True


def rotate(files: Iterable[Path], home: Path | None = None) -> Rotation:
    """Put a new key first and re-encrypt ``files`` under it; the older keys are kept, retired
    (they decrypt, they never encrypt again).

    With keys from ``$RECSYS_ENCRYPTION_KEYS`` no key is made: whoever sets the variable puts
    the new key first there, and this re-encrypts the files under it. A file that cannot be
    read is reported in :attr:`Rotation.failed` and left as it is; the others go on.
    """
    from_env = bool((lab_settings().secret(ENV_KEYS) or "").strip())
    old = _keys(home)
    result = Rotation(new_key=not from_env)
    if not from_env:
        write_key(KEY_FILE, _KEY_FILE_NOTE + b"\n".join([Fernet.generate_key(), *old]), home)
    result.retired_keys = len(_keys(home)) - 1
    fernet = cipher(home)
    for path in files:
        kind = encrypted_format(path)
        try:
            if kind == "stream":
                _rotate_stream(path, fernet)
            elif kind == "token":
                try:
                    token = fernet.rotate(path.read_bytes())
                except InvalidToken:
                    raise EncryptionError(
                        f"{path.name} cannot be decrypted with the lab's keys"
                    ) from None
                atomic_write_bytes(path, token, mode=0o600)
            else:
                result.failed[path] = "it is not a file encrypted by the lab"
                continue
        except (EncryptionError, OSError) as exc:
            result.failed[path] = str(exc)
            continue
        result.re_encrypted.append(path)
    return result


def needs_retired_key(path: Path, home: Path | None = None) -> str | None:
    """Why ``path`` still needs a retired key, or ``None`` when the newest key alone reads it.

    A backup archive is read through: the model parts encrypted inside it are checked too.
    """
    newest = MultiFernet([Fernet(_keys(home)[0])])
    kind = encrypted_format(path)
    try:
        if kind == "token":
            newest.decrypt(path.read_bytes())
            return None
        if kind != "stream":
            return "it is not a file encrypted by the lab"
        with open(path, "rb") as raw:
            stream = io.BufferedReader(_NewestOnlyReader(raw, path.name, newest), CHUNK)
            return _archive_needs_retired(stream, path.name, newest)
    except (InvalidToken, EncryptionError):
        return "it is encrypted under a retired key (or changed on disk)"
    except OSError as exc:
        return f"it cannot be read ({exc})"


def _archive_needs_retired(stream: Any, name: str, newest: MultiFernet) -> str | None:
    """Read a decrypted stream to its end; when it is a tar (zstd or gzip) archive, check every
    encrypted member with ``newest`` too."""
    import tarfile

    magic = stream.peek(4)[:4]
    if magic == b"\x28\xb5\x2f\xfd":
        import zstandard

        source: Any = zstandard.ZstdDecompressor().stream_reader(stream, closefd=False)
    elif magic[:2] == b"\x1f\x8b":
        import gzip

        source = gzip.GzipFile(fileobj=stream, mode="rb")
    else:
        while stream.read(CHUNK):  # a plain encrypted file: every chunk must decrypt
            pass
        return None
    try:
        with tarfile.open(fileobj=source, mode="r|") as tar:
            for member in tar:
                data = tar.extractfile(member) if member.isfile() else None
                if data is None:
                    continue
                if data.read(len(STREAM_MAGIC)) != STREAM_MAGIC:
                    while data.read(CHUNK):
                        pass
                    continue
                inner = io.BufferedReader(
                    _NewestOnlyReader(
                        _Prefixed(STREAM_MAGIC, data), f"{name}:{member.name}", newest
                    ),
                    CHUNK,
                )
                try:
                    while inner.read(CHUNK):
                        pass
                except EncryptionError:
                    return f"{member.name} inside it is encrypted under a retired key"
    except tarfile.TarError:
        while stream.read(CHUNK):
            pass
    return None


class _Prefixed(io.RawIOBase):
    """``prefix`` followed by the rest of ``raw`` (to re-read bytes already consumed)."""

    def __init__(self, prefix: bytes, raw: Any) -> None:
        self._prefix, self._raw = prefix, raw

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            n = len(self._prefix) if size < 0 else min(size, len(self._prefix))
            out, self._prefix = self._prefix[:n], self._prefix[n:]
            return out
        return bytes(self._raw.read(size))


def drop_retired(files: Iterable[Path], home: Path | None = None) -> dict[Path, str]:
    """Drop the retired keys when every one of ``files`` reads under the newest key alone.

    Returns the files that still need a retired key (why, per file); when there is any,
    no key is dropped.
    """
    if (lab_settings().secret(ENV_KEYS) or "").strip():
        raise ConfigError(f"the keys come from ${ENV_KEYS}: remove retired keys there")
    keys = _keys(home)
    blocked = {p: why for p in files if (why := needs_retired_key(p, home)) is not None}
    if not blocked and len(keys) > 1:
        write_key(KEY_FILE, _KEY_FILE_NOTE + keys[0], home)
    return blocked


def _rotate_stream(path: Path, fernet: MultiFernet) -> None:
    """Re-encrypt a chunked file under the first key, chunk by chunk in memory (no plaintext
    copy on disk), into a temporary file that replaces it only when complete."""
    tmp = path.with_name(f".{path.name}.partial")
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(path, "rb") as raw, os.fdopen(out, "wb") as fout:
            plain = io.BufferedReader(_NewestOnlyReader(raw, path.name, fernet), CHUNK)
            _encrypt_chunks(plain, fout, fernet)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


class _NewestOnlyReader(DecryptingReader):
    """A :class:`DecryptingReader` that uses the given Fernet (e.g. the newest key alone)."""

    def __init__(self, raw: Any, what: str, fernet: MultiFernet) -> None:
        self._raw = raw
        self._what = what
        self._fernet = fernet
        self._plain = b""
        self._pos = 0
        self._expected = 0
        self._ended = False
        if raw.read(len(STREAM_MAGIC)) != STREAM_MAGIC:
            raise self._broken("it is not a file encrypted by the lab")


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
