"""Keyed shopper pseudonyms: HMAC-SHA256 of the id, shown as ``S-`` and 10 readable letters.

The same key always gives the same pseudonym, so links, reports and logs stay consistent
across restarts; without the key a pseudonym cannot be turned back into the id, and a
different key gives different pseudonyms. The key is ``$RECSYS_PSEUDONYM_KEY`` when set, else
``$RECSYS_HOME/keys/pseudonym.key`` (made on first use, 0600).

Finding a shopper by pseudonym is a lookup over the dataset's own ids
(:func:`reverse_lookup`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from pathlib import Path

from recsys_core.security.keys import read_or_create

ENV_KEY = "RECSYS_PSEUDONYM_KEY"
KEY_FILE = "pseudonym.key"
PREFIX = "S-"
#: 10 base32 letters = 50 bits: no collision expected below millions of shoppers.
LENGTH = 10


def pseudonym_key(home: Path | None = None) -> bytes:
    """The pseudonymisation key (from the environment or the key file)."""
    return read_or_create(KEY_FILE, env=ENV_KEY, home=home)


def pseudonym(user_id: object, key: bytes | None = None) -> str:
    """The pseudonym of a shopper id, e.g. ``S-K7Q2M9XABC`` (stable for one key)."""
    secret = key if key is not None else pseudonym_key()
    digest = hmac.new(secret, str(user_id).encode("utf-8"), hashlib.sha256).digest()
    return PREFIX + base64.b32encode(digest).decode("ascii")[:LENGTH]


def looks_like_pseudonym(text: str) -> bool:
    """Whether ``text`` has the shape of a pseudonym (``S-`` and 10 base32 letters)."""
    t = text.strip().upper()
    body = t[len(PREFIX) :]
    return (
        t.startswith(PREFIX)
        and len(body) == LENGTH
        and all(c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for c in body)
    )


def reverse_lookup(user_ids: Iterable[object], key: bytes | None = None) -> dict[str, str]:
    """Pseudonym -> real id over ``user_ids`` (how a search by pseudonym finds a shopper)."""
    secret = key if key is not None else pseudonym_key()
    return {pseudonym(u, secret): str(u) for u in user_ids}


def find_by_pseudonym(
    text: str, user_ids: Iterable[object], key: bytes | None = None
) -> str | None:
    """The real id among ``user_ids`` whose pseudonym is ``text`` (case-insensitive), or None."""
    if not looks_like_pseudonym(text):
        return None
    return reverse_lookup(user_ids, key).get(text.strip().upper())
