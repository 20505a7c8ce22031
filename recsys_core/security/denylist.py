"""The deny-list of forgotten shoppers: who the lab must never serve again.

``forget --user ID`` adds the shopper here *before* it touches any stored log, so from the
moment it returns every service (the REST API, the CLI, the app) refuses that shopper with
:class:`ForgottenShopperError` -- also while model versions trained on their events still
exist (they are marked for retraining). The file is ``$RECSYS_HOME/forgotten.json``; it holds
no raw ids: each entry is the HMAC-SHA256 of the id under the pseudonym key (and the
pseudonym, for people reading the file), so the list of forgotten shoppers is not itself a
list of their ids.

:func:`is_forgotten` is cheap enough for every request: the file is read again only when its
size, inode or modification time changed, and a missing file costs one ``stat``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recsys_core.errors import UnknownUserError
from recsys_core.io_utils import atomic_write_bytes
from recsys_core.paths import recsys_home
from recsys_core.security.pseudonyms import pseudonym, pseudonym_key
from recsys_core.settings import lab_settings

DENYLIST_FILE = "forgotten.json"


class ForgottenShopperError(UnknownUserError):
    """The shopper asked to be forgotten: nothing is served for them (no personal list, no
    explanation, no probability)."""


def denylist_path(home: Path | None = None) -> Path:
    """``$RECSYS_HOME/forgotten.json``."""
    return (home or recsys_home()) / DENYLIST_FILE


def _current_path(home: Path | None) -> str:
    """:func:`denylist_path` without creating the home folder (what each request pays: the
    path is worked out again only when the settings changed)."""
    if home is not None:
        return os.path.join(home, DENYLIST_FILE)
    global _home_path
    settings = lab_settings()  # the same object while no variable changed
    known = _home_path
    if known is not None and known[0] is settings:
        return known[1]
    path = os.path.join(settings.home.expanduser(), DENYLIST_FILE)
    _home_path = (settings, path)
    return path


#: The settings the default deny-list path was worked out from, and that path.
_home_path: tuple[object, str] | None = None


def _digest(key: bytes, user_id: object) -> str:
    return hmac.new(key, str(user_id).encode("utf-8"), hashlib.sha256).hexdigest()


def _entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        payload = json.loads(path.read_text())
        return [dict(e) for e in payload["entries"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        from recsys_core.errors import ConfigError

        raise ConfigError(
            f"the deny-list of forgotten shoppers {path} cannot be read ({exc}); restore it "
            "from a backup or re-run `forget` for each shopper -- nothing is served until then"
        ) from exc


_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, int, int], bytes, frozenset[str]]] = {}


def forget_shopper(user_id: object, home: Path | None = None) -> bool:
    """Add ``user_id`` to the deny-list (written and fsynced before returning); False if it
    was there already."""
    path = denylist_path(home)
    key = pseudonym_key(home)
    digest = _digest(key, user_id)
    with _lock:
        entries = _entries(path)
        if any(e.get("digest") == digest for e in entries):
            return False
        entries.append(
            {
                "digest": digest,
                "pseudonym": pseudonym(user_id, key),
                "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
        )
        payload = {"algorithm": "hmac-sha256 under the pseudonym key", "entries": entries}
        atomic_write_bytes(path, (json.dumps(payload, indent=1) + "\n").encode(), mode=0o600)
        _cache.clear()
    return True


def forgotten_digests(home: Path | None = None) -> tuple[bytes, frozenset[str]]:
    """The pseudonym key and the deny-listed digests (re-read only when the file changed)."""
    where = _current_path(home)
    try:
        st = os.stat(where)
    except FileNotFoundError:
        return b"", frozenset()
    signature = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _cache.get(where)
    if cached is not None and cached[0] == signature:
        return cached[1], cached[2]
    digests = frozenset(str(e.get("digest")) for e in _entries(Path(where)))
    key = pseudonym_key(home)
    _cache[where] = (signature, key, digests)
    return key, digests


def is_forgotten(user_id: object, home: Path | None = None) -> bool:
    """Whether ``user_id`` asked to be forgotten."""
    key, digests = forgotten_digests(home)
    return bool(digests) and _digest(key, user_id) in digests


def forgotten_among(user_ids: Iterable[object], home: Path | None = None) -> set[str]:
    """The ids among ``user_ids`` that asked to be forgotten (one file read for all)."""
    key, digests = forgotten_digests(home)
    if not digests:
        return set()
    return {str(u) for u in user_ids if _digest(key, u) in digests}


def refuse_forgotten(user_id: object, home: Path | None = None) -> None:
    """Raise :class:`ForgottenShopperError` for a forgotten shopper (what a service calls
    before answering about a shopper)."""
    if is_forgotten(user_id, home):
        raise ForgottenShopperError(
            f"shopper {pseudonym(user_id)} asked to be forgotten: the lab serves nothing for "
            "them (see `python -m recsys_core forget`)"
        )
