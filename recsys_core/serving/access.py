"""Who may ask the REST API what: the one access check, kept off the event loop.

Rules (issue 23):

* **Loopback without users** (a laptop, the tests): everyone on the same machine may ask;
  nothing is audited. ``serve`` refuses to bind anything but a loopback address then.
* **Off loopback, authentication is required always.** A request whose client or server
  address is not a loopback address needs a valid ``X-API-Key``, for every path (the answers,
  ``/health``, ``/metrics``, ``/docs`` and ``/openapi.json``). When the lab has no users (the
  last one was removed, or ``security.db`` was lost) such requests are refused (``401``),
  never let through.
* **Once the lab has users** every answer needs a key of a user whose role includes
  ``viewer`` (``401``/``403`` otherwise) and is audited as ``api:<user>`` through the
  batched :class:`~recsys_core.security.audit_writer.AuditWriter` (one group commit every
  0.2 s; a request is refused with ``503`` rather than answered unaudited when the log
  cannot keep up).
* **Failed keys are audited and throttled**: every wrong key is an ``api-key-failed`` audit
  event (client address, path, the key's public id if it has one); after
  :data:`MAX_FAILURES` failures from one address within :data:`FAILURE_WINDOW` seconds that
  address gets ``429`` (with ``Retry-After``) until the window has passed, valid key or not.
  The throttle is per client address, so it cannot lock anyone else out.

Keys and the "has users" flag are looked up in a worker thread (SQLite never runs on the
event loop) and kept for :data:`CACHE_SECONDS`, but never past a change of credentials made
through the lab (`api-key revoke`, `users add/remove/role`): those replace a stamp file
(:func:`recsys_core.security.db.credentials_changed`) that every request checks with one
``stat``, so a revoked key, a removed user or a changed role takes effect on the next
request. A change made behind the lab's back (editing ``security.db`` directly) takes
effect within :data:`CACHE_SECONDS`.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import time
import weakref
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request

from recsys_core.security.audit_writer import AuditUnavailableError, AuditWriter
from recsys_core.security.db import credentials_stamp, credentials_stamp_path
from recsys_core.security.pseudonyms import looks_like_pseudonym

#: Seconds a key lookup and the "lab has users" flag are reused.
CACHE_SECONDS = 1.0
#: Wrong keys from one client address within :data:`FAILURE_WINDOW` before it gets ``429``.
MAX_FAILURES = 10
FAILURE_WINDOW = 60.0
#: Keys remembered at most (valid ones only: wrong keys are never cached); also the most
#: client addresses whose loopback check is remembered.
_MAX_CACHED_KEYS = 10_000
#: Shoppers whose pseudonym one :class:`Access` remembers at most (~150 bytes each).
_MAX_CACHED_PSEUDONYMS = 50_000


@dataclass(frozen=True)
class Caller:
    """The user behind a request's API key, with their role at the time of the request."""

    username: str
    role: str

    @property
    def sees_pseudonyms_only(self) -> bool:
        """Viewers send and receive shopper pseudonyms, never raw ids (as in the app)."""
        return self.role == "viewer"


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an address from the ASGI scope) is a loopback address."""
    if not host:
        return False
    known = _LOOPBACK.get(host)
    if known is None:  # parsing an address costs ~10 us: each address is parsed once
        if len(_LOOPBACK) >= _MAX_CACHED_KEYS:
            _LOOPBACK.clear()
        known = _LOOPBACK[host] = _parse_loopback(host)
    return known


def _parse_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


#: Addresses seen and whether each is a loopback address.
_LOOPBACK: dict[str, bool] = {}


def _key_id(token: str) -> str | None:
    """The public id of a key of our shape (``rk_<id>_...``), for the audit log."""
    parts = token.split("_", 2)
    if len(parts) == 3 and parts[0] == "rk" and parts[1].isalnum() and len(parts[1]) <= 16:
        return parts[1]
    return None


class Access:
    """The API's access check (one per application; thread-safe enough for one event loop).

    Parameters
    ----------
    home:
        ``$RECSYS_HOME`` (default: the environment's).
    writer:
        The audit writer (default: one made on first use).
    """

    def __init__(self, home: Path | None = None, writer: AuditWriter | None = None) -> None:
        self.home = home
        self._writer = writer
        self._users: tuple[float, bool] = (-1e9, False)
        self._keys: dict[str, tuple[float, Caller | None]] = {}
        self._failures: dict[str, deque[float]] = {}
        self._pseudonym_key: bytes | None = None
        self._pseudonyms: dict[str, str] = {}  # shopper -> pseudonym (an HMAC and base32 each)
        self._stamp_path = str(credentials_stamp_path(home))  # a str: no Path per stat
        self._stamp = credentials_stamp(self._stamp_path)
        self._viewer_maps: weakref.WeakKeyDictionary[Any, dict[str, str]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def writer(self) -> AuditWriter:
        """The batched audit writer (started on first use)."""
        if self._writer is None:
            self._writer = AuditWriter(self.home)
        return self._writer

    def close(self) -> None:
        """Write the queued audit events and stop the writer."""
        if self._writer is not None:
            self._writer.close()

    # ------------------------------------------------------------------ lookups (threads)

    async def has_users(self) -> bool:
        """Whether the users database has a user (looked up in a thread, cached)."""
        at, value = self._users
        if time.monotonic() - at < CACHE_SECONDS:
            return value
        from starlette.concurrency import run_in_threadpool

        from recsys_core.security.users import any_users

        try:
            value = bool(await run_in_threadpool(any_users, self.home))
        except Exception:  # noqa: BLE001 - an unreadable database: fail closed, keys needed
            value = True  # (and no key can be checked, so requests are refused)
        self._users = (time.monotonic(), value)
        return value

    async def caller_of(self, token: str) -> Caller | None:
        """The user a key belongs to (looked up in a thread; valid keys cached)."""
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        cached = self._keys.get(digest)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        from starlette.concurrency import run_in_threadpool

        caller = await run_in_threadpool(self._lookup, token)
        if caller is not None:
            if len(self._keys) >= _MAX_CACHED_KEYS:
                self._keys.clear()
            self._keys[digest] = (time.monotonic(), caller)
        else:
            self._keys.pop(digest, None)
        return caller

    def _lookup(self, token: str) -> Caller | None:
        from recsys_core.serving.api_keys import user_for_key

        user = user_for_key(token, self.home)
        return Caller(user.username, user.role) if user is not None else None

    # ------------------------------------------------------------------ the check

    def _throttled(self, client: str) -> float:
        """Seconds until ``client`` may try again (0 when it may now)."""
        failures = self._failures.get(client)
        if not failures:
            return 0.0
        now = time.monotonic()
        while failures and now - failures[0] > FAILURE_WINDOW:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return 0.0
        if len(failures) >= MAX_FAILURES:
            return FAILURE_WINDOW - (now - failures[0])
        return 0.0

    def _failed(self, client: str, request: Request, token: str | None, why: str) -> None:
        if len(self._failures) > _MAX_CACHED_KEYS:  # many addresses: forget the oldest
            self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(client, deque()).append(time.monotonic())
        detail: dict[str, Any] = {"client": client, "endpoint": request.scope["path"], "why": why}
        if token:
            detail["key_id"] = _key_id(token)
        with contextlib.suppress(AuditUnavailableError):  # refused anyway
            self.writer.submit("api:anonymous", "api-key-failed", detail)

    async def check(self, request: Request, token: str | None, *, answer: bool) -> Caller | None:
        """The caller of ``request`` or ``None`` (local mode), else an ``HTTPException``.

        ``answer`` is true for the answer endpoints (audited, need a key once users exist);
        false for ``/health``, ``/metrics`` and the docs (a key only off loopback).
        """
        client = request.client.host if request.client else ""
        server = request.scope.get("server") or ("", 0)
        local = is_loopback(client) and is_loopback(str(server[0]))
        wait = self._throttled(client)
        if wait > 0:
            raise HTTPException(
                429,
                f"too many wrong API keys from {client}: try again in {wait:.0f} s",
                headers={"Retry-After": str(max(1, int(wait + 0.999)))},
            )
        stamp = credentials_stamp(self._stamp_path)
        if stamp != self._stamp:  # credentials changed: forget every cached lookup
            self._stamp = stamp
            self._keys.clear()
            self._users = (-1e9, False)
        users = await self.has_users()
        if not users:
            if local:
                return None
            self._failed(client, request, token, "no users")
            raise HTTPException(
                401,
                "this API is reachable off loopback but the lab has no users, so no key can "
                "be valid: requests are refused. An admin adds a user (`python -m recsys_core "
                "users add`) and a key (`api-key create --user NAME`), or serve on 127.0.0.1",
            )
        if not answer and local:
            return None
        caller = await self.caller_of(token) if token else None
        if caller is None:
            self._failed(client, request, token, "missing key" if not token else "wrong key")
            raise HTTPException(
                401,
                "this lab has users: send a valid API key in the X-API-Key header (an admin "
                "creates one with `python -m recsys_core api-key create --user NAME`)",
            )
        from recsys_core.security.users import role_allows

        if not role_allows(caller.role, "viewer"):
            raise HTTPException(
                403, f"{caller.username}'s role {caller.role!r} may not use the API"
            )
        if answer:
            detail: dict[str, Any] = {"endpoint": request.scope["path"]}
            shopper = request.query_params.get("user_id")
            if shopper:  # the log holds pseudonyms only, also of a viewer's raw id attempt
                detail["shopper"] = (
                    shopper
                    if caller.sees_pseudonyms_only and looks_like_pseudonym(shopper)
                    else self.pseudonym(shopper)
                )
            try:
                self.writer.submit(f"api:{caller.username}", "api-request", detail)
            except AuditUnavailableError as exc:
                raise HTTPException(503, str(exc)) from exc
        return caller

    def pseudonym(self, shopper: str) -> str:
        """A shopper's pseudonym (the key read once; the last shoppers' pseudonyms kept: an
        HMAC and a base32 encoding cost ~20 us, and the audit needs one per request)."""
        known = self._pseudonyms.get(shopper)
        if known is not None:
            return known
        from recsys_core.security.pseudonyms import pseudonym, pseudonym_key

        if self._pseudonym_key is None:
            self._pseudonym_key = pseudonym_key(self.home)
        if len(self._pseudonyms) >= _MAX_CACHED_PSEUDONYMS:
            self._pseudonyms.clear()
        value = self._pseudonyms[shopper] = pseudonym(shopper, self._pseudonym_key)
        return value

    # ------------------------------------------------------------------ viewers' shoppers

    async def shopper_in(self, caller: Caller | None, user_id: str, service: Any) -> str:
        """The shopper id to answer for: a viewer's pseudonym turned into the id it stands
        for (an unknown pseudonym stays as it is: a cold start); others' ids unchanged.

        Raises
        ------
        HTTPException
            ``400`` when a viewer sends something that is not a pseudonym.
        """
        if caller is None or not caller.sees_pseudonyms_only:
            return user_id
        if not looks_like_pseudonym(user_id):
            raise HTTPException(
                400,
                f"user_id: {caller.username} has a viewer key, which sends and receives shopper "
                "pseudonyms (S- and 10 letters, as the app shows them), never shopper ids",
            )
        wanted = user_id.strip().upper()
        mapping = self._viewer_maps.get(service)
        if mapping is None:
            from starlette.concurrency import run_in_threadpool

            mapping = await run_in_threadpool(self._reverse_map, service)
            self._viewer_maps[service] = mapping
        return mapping.get(wanted, wanted)

    def shopper_out(
        self, caller: Caller | None, answer: dict[str, Any], sent: str | None, used: str | None
    ) -> dict[str, Any]:
        """The answer a viewer gets: the pseudonym they sent wherever the id appeared."""
        if caller is None or not caller.sees_pseudonyms_only or not sent or used is None:
            return answer
        out = dict(answer)  # never change a cached answer
        if out.get("user_id") is not None:
            out["user_id"] = sent
        if isinstance(out.get("reason"), str) and used != sent:
            out["reason"] = out["reason"].replace(used, sent)
        return out

    def _reverse_map(self, service: Any) -> dict[str, str]:
        from recsys_core.security.pseudonyms import reverse_lookup

        known: set[str] = set()
        for model in service.lab.models.values():
            users = getattr(model, "known_users", None)
            found = users() if callable(users) else None
            known.update(str(u) for u in found or ())
        self.pseudonym("")  # the key, read once
        return reverse_lookup(sorted(known), self._pseudonym_key)
