"""One batched writer of audit rows per process: a queue, a writer thread, group commit.

Auditing every REST API request with :func:`recsys_core.security.audit.record` in the request
costs a connection, the database's write lock and an fsync per request, on the event loop
(781 -> 54 requests/s, and a locked database froze every answer). :class:`AuditWriter`
takes the request's event in microseconds instead (:meth:`AuditWriter.submit`: a timestamp
and a deque append) and one thread writes what has queued up (with the times as ISO 8601),
every ``interval`` seconds:

* **group commit**: the events of one flush are written as one chained audit row per actor
  and action, through the public :func:`~recsys_core.security.audit.record` (so the hash
  chain, its head and its triggers stay the audit module's business). The row's detail is
  ``{"count": n, "first": ts, "last": ts, "events": [{"ts", ...detail}, ...]}``: every
  request is in the log with its own time, endpoint and shopper pseudonym.
* **durability**: the security database runs in SQLite's WAL mode
  (:func:`recsys_core.security.db.connect`); a row is on disk when ``record`` returns.
* **loss window**: a ``kill -9`` (or a power cut) loses at most the events submitted in the
  last ``interval`` seconds (0.2 s by default) plus those of a flush in progress; a normal
  stop (:meth:`AuditWriter.close`, also run at interpreter exit) writes everything queued.
* **fail closed**: the queue is bounded (``max_queue`` events). When the database cannot be
  written for so long that it fills, :meth:`submit` raises :class:`AuditUnavailableError`
  and the API refuses the request (``503``) rather than answer it unaudited.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recsys_core.errors import RecsysError

#: Seconds between group commits (the documented loss window on a crash).
DEFAULT_INTERVAL = 0.2
#: Events queued at most before :meth:`AuditWriter.submit` refuses (fail closed).
DEFAULT_MAX_QUEUE = 100_000
#: Events written in one audit row at most (a very busy interval is split).
MAX_EVENTS_PER_ROW = 2_000

_Event = tuple[str, str, dict[str, Any]]  # actor, action, detail (with its "ts")
_Queued = tuple[float, str, str, Mapping[str, Any] | None]  # time.time(), actor, action, detail
_live_writers: weakref.WeakSet[AuditWriter] = weakref.WeakSet()


class AuditUnavailableError(RecsysError):
    """The audit log cannot keep up (its queue is full): the action is refused, not run
    unaudited."""


class AuditWriter:
    """A queue of audit events written by one thread in groups (see the module docstring).

    Parameters
    ----------
    home:
        ``$RECSYS_HOME`` (default: the environment's, resolved by the audit module).
    interval:
        Seconds between group commits: the most a crash can lose.
    max_queue:
        Events waiting at most; beyond it :meth:`submit` raises :class:`AuditUnavailableError`.
    """

    def __init__(
        self,
        home: Path | None = None,
        *,
        interval: float = DEFAULT_INTERVAL,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        self.home = home
        self.interval = interval
        self.max_queue = max_queue
        # a deque, not a queue.Queue: submit is one append (atomic in CPython) on the request
        # path, where a Queue takes a lock and notifies a condition per event
        self._queue: deque[_Queued] = deque()
        self._wake = threading.Event()  # set when events wait and the thread may be asleep
        self._stopped = threading.Event()
        self._idle = threading.Condition()  # guards the two counts below
        self._taken = 0  # events taken off the queue by the thread
        self._done = 0  # events written (or given up at a stop)
        self.rows_written = 0
        self.events_written = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="recsys-audit", daemon=True)
        self._thread.start()
        _live_writers.add(self)

    # ------------------------------------------------------------------ callers

    def submit(self, actor: str, action: str, detail: Mapping[str, Any] | None = None) -> None:
        """Queue one event (never blocks; its time is taken now, written as ISO 8601 by the
        writer thread).

        Raises
        ------
        AuditUnavailableError
            The writer is stopped or its queue is full (the database has been unwritable for
            a long time): refuse the action.
        """
        if self._stopped.is_set():
            raise AuditUnavailableError("the audit writer is stopped: the action is refused")
        if len(self._queue) >= self.max_queue:
            raise AuditUnavailableError(
                f"the audit log is not being written ({self.last_error or 'database busy'}) "
                f"and {self.max_queue:,} events are waiting: the request is refused "
                "rather than served unaudited; check $RECSYS_HOME/security.db"
            )
        self._queue.append((time.time(), actor, action, dict(detail) if detail else None))
        if not self._wake.is_set():
            self._wake.set()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every event submitted so far is written; whether it was in time."""
        deadline = time.monotonic() + timeout
        with self._idle:
            target = self._taken + len(self._queue)
            while self._done < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._idle.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued and stop the thread."""
        if self._stopped.is_set():
            return
        self.flush(timeout)
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if not self._queue:
                if self._stopped.is_set():
                    return
                self._wake.clear()
                if self._queue:  # an event arrived between the check and the clear
                    self._wake.set()
                continue
            if not self._stopped.is_set():
                self._stopped.wait(self.interval)  # let the group gather: one commit for all
            with self._idle:
                taken = [self._queue.popleft() for _ in range(len(self._queue))]
                self._taken += len(taken)
            batch: list[_Event] = []
            for at, actor, action, detail in taken:
                event = {"ts": _iso(at)}
                event.update(detail or {})
                batch.append((actor, action, event))
            self._write(batch)
            with self._idle:
                self._done += len(batch)
                self._idle.notify_all()

    def _write(self, batch: list[_Event]) -> None:
        from recsys_core.security import audit

        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for actor, action, event in batch:
            groups.setdefault((actor, action), []).append(event)
        for (actor, action), events in groups.items():
            for start in range(0, len(events), MAX_EVENTS_PER_ROW):
                part = events[start : start + MAX_EVENTS_PER_ROW]
                detail = {
                    "count": len(part),
                    "first": part[0]["ts"],
                    "last": part[-1]["ts"],
                    "events": part,
                }
                while True:
                    try:
                        audit.record(actor, action, detail, home=self.home)
                        self.last_error = None
                        break
                    except Exception as exc:  # noqa: BLE001 - retried: never drop a row
                        self.last_error = f"{type(exc).__name__}: {exc}"
                        if self._stopped.is_set():
                            return
                        time.sleep(0.5)
                self.rows_written += 1
                self.events_written += len(part)


def _iso(at: float) -> str:
    """``time.time()`` as the audit log writes times (ISO 8601, UTC, microseconds)."""
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="microseconds")


@atexit.register
def _close_all() -> None:  # pragma: no cover - interpreter exit
    for writer in list(_live_writers):
        writer.close(timeout=10.0)
