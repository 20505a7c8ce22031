"""A service that follows the registry: reloads when the served version changes on disk.

:class:`LiveService` holds one :class:`~recsys_core.serving.service.RecommendationService`
for the active version of a dataset and swaps it for a fresh one, without a restart, when

* the ``ACTIVE`` pointer changes (train, rollback, restore, activate), or
* a file of the served version changes (damage, or a restore that healed it): the version
  is reloaded with every file checked against its checksum, so damaged models are left out
  and answers fall back (``"degraded": true`` with a ``reason``), and a restore brings them
  back.

Changes are noticed by comparing a fingerprint (the pointer and each file's size, mtime and
inode) at most every ``check_interval`` seconds. By default the request that notices a change
reloads; with ``background=True`` (the REST API) the check and the load run in a background
thread and the old version keeps answering until the new one is loaded and swapped in whole
(one assignment), so a reload never stalls the event loop.

A service serves the dataset it started with (the one named, else the one ``models/LAST``
named at start): training another dataset moves ``LAST`` but never the served dataset. A
damaged pointer file keeps the loaded version answering, each answer marked degraded with the
reason (:attr:`LiveService.problem`) until ``registry rollback`` or ``restore`` repairs it.

With ``auto_rollback`` (``$RECSYS_AUTO_ROLLBACK=1``; off by
default) a reloaded version with broken parts is replaced by the newest older version that
verifies, recorded in the activation history as ``automatic``.

It also keeps the recent answers (latency, degraded or not, errors) that
:func:`recsys_core.monitoring.health` reports. One object serves the CLI, the app and the
REST API; it is thread-safe.
"""

from __future__ import annotations

import contextlib
import gc
import math
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from recsys_core.errors import ArtifactError, RecsysError
from recsys_core.policy import PolicyChoice
from recsys_core.serving import registry
from recsys_core.serving.lab import load_lab
from recsys_core.serving.service import RecommendationService
from recsys_core.settings import lab_settings

#: Answers kept for the health window.
WINDOW = 1000


def auto_rollback_setting() -> bool:
    """Whether ``$RECSYS_AUTO_ROLLBACK`` allows automatic rollback (off by default)."""
    return lab_settings().auto_rollback


class LiveService:
    """The service of a dataset's active (or one pinned) version, reloaded on change.

    Parameters
    ----------
    dataset:
        Dataset to serve (default: the one last activated when the service starts; it
        stays that one).
    version:
        Pin one version (files are still watched); default: follow ``ACTIVE``.
    home:
        ``$RECSYS_HOME`` (default: the environment's).
    check_interval:
        Seconds between fingerprint checks (0 checks on every request).
    auto_rollback:
        Roll a broken active version back automatically (default: the environment setting).
    background:
        Check and reload in a background thread while the loaded version keeps answering
        (the first load is still done by the first caller).
    """

    def __init__(
        self,
        dataset: str | None = None,
        version: str | None = None,
        home: Path | None = None,
        *,
        check_interval: float = 1.0,
        auto_rollback: bool | None = None,
        background: bool = False,
    ) -> None:
        if dataset is None:  # the dataset announced at start, never a later LAST
            last = registry.last_pointer(home)
            dataset = last[0] if last is not None else None
        self.dataset = dataset
        self.pinned = version
        self.background = background
        #: Why answers are degraded although a version is loaded (a damaged pointer, a
        #: version that cannot be reloaded); ``None`` when the last check was clean.
        self.problem: str | None = None
        self._reloader: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.home = home
        self.check_interval = check_interval
        self.auto_rollback = auto_rollback_setting() if auto_rollback is None else auto_rollback
        self._lock = threading.RLock()
        self._service: RecommendationService | None = None
        self._fingerprint: tuple[Any, ...] | None = None
        self._checked = 0.0
        self.reloads = 0
        self.events: deque[dict[str, Any]] = deque(maxlen=50)
        self._answers: deque[tuple[float, float, bool, bool]] = deque(maxlen=WINDOW)
        self._errors: deque[dict[str, Any]] = deque(maxlen=20)

    # ------------------------------------------------------------------ loading

    def _folder(self) -> Path:
        return registry.resolve_version(self.dataset, self.pinned, self.home)

    def _fingerprint_of(self, folder: Path) -> tuple[Any, ...]:
        entries: list[Any] = [str(folder)]
        try:
            for path in sorted(folder.rglob("*")):
                st = path.stat()
                entries.append((path.name, st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            entries.append("unreadable")
        return tuple(entries)

    def service(self) -> RecommendationService:
        """The current service, reloaded first if the registry changed.

        Raises
        ------
        RecsysError
            Nothing trained, or the version cannot be loaded and none was loaded before.
        """
        current = self._service
        now = time.monotonic()
        if current is not None and now - self._checked < self.check_interval:
            return current
        if current is not None and self.background:
            self._checked = now
            self._check_in_background()
            return current  # the old version answers while the new one loads
        return self._check()

    def _check_in_background(self) -> None:
        with self._start_lock:
            if self._reloader is not None and self._reloader.is_alive():
                return
            self._reloader = threading.Thread(
                target=self._check_quietly, name="recsys-reload", daemon=True
            )
            self._reloader.start()

    def _check_quietly(self) -> None:
        try:
            self._check()
        except Exception as exc:  # noqa: BLE001 - recorded; the loaded version answers
            self._error("reload", exc)

    def _check(self) -> RecommendationService:
        """Compare the fingerprint and reload on a change (in the calling thread)."""
        with self._lock:
            self._checked = time.monotonic()
            try:
                folder = self._folder()
                fingerprint = self._fingerprint_of(folder)
                if self._service is None or fingerprint != self._fingerprint:
                    self._load(folder, fingerprint)
                    self._checked = time.monotonic()
                self.problem = None
            except Exception as exc:
                if not isinstance(exc, RecsysError | OSError | ValueError):
                    raise
                self._error("reload", exc)
                if self._service is None:
                    if isinstance(exc, RecsysError):
                        raise
                    raise ArtifactError(f"the model files cannot be read: {exc}") from exc
                self.problem = (
                    f"{exc} (still answering with {self._service.lab.dataset} "
                    f"{self._service.lab.version}, loaded before)"
                )
            assert self._service is not None
            return self._service

    def _load(self, folder: Path, fingerprint: tuple[Any, ...]) -> None:
        lab = load_lab(folder, tolerant=True)
        broken = dict(lab.broken)
        if broken and self.auto_rollback and self.pinned is None:
            try:
                before, after = registry.rollback(
                    folder.parent.name,
                    home=self.home,
                    why="automatic",
                    note=f"{folder.name} is broken: {', '.join(sorted(broken))}",
                )
            except RecsysError as exc:
                self._note(f"automatic rollback of {folder.name} impossible: {exc}")
            else:
                self._note(f"rolled back automatically from {before} to {after}")
                _audit_rollback(folder.parent.name, before, after, broken)
                folder = self._folder()
                fingerprint = self._fingerprint_of(folder)
                lab = load_lab(folder, tolerant=True)
        service = RecommendationService(lab)
        if self.background:
            with contextlib.suppress(RecsysError):
                service.warm_up()  # ready before it is swapped in
        self._service = service  # one assignment: requests see the old or the new, whole
        if self.background:  # the new lab's objects out of the collector's reach (see api.py)
            gc.collect()
            gc.freeze()
        self.dataset = self.dataset or folder.parent.name
        self._fingerprint = fingerprint
        self.reloads += 1
        state = "broken: " + ", ".join(sorted(lab.broken)) if lab.broken else "healthy"
        self._note(f"loaded {folder.parent.name}/{folder.name} ({state})")

    def refresh(self) -> RecommendationService:
        """Check for a change now, in this thread (ignoring ``check_interval``); reload only
        if changed."""
        return self._check()

    def reload(self) -> RecommendationService:
        """Reload now, in this thread, whatever the fingerprint says."""
        with self._lock:
            self._fingerprint = None
        return self._check()

    def wait_for_reload(self, timeout: float = 60.0) -> None:
        """Wait until a background check or reload in progress has finished (tests, tools)."""
        reloader = self._reloader
        if reloader is not None:
            reloader.join(timeout)

    def lab_broken(self) -> dict[str, str]:
        """Broken parts of the loaded version (empty when all loaded)."""
        return dict(self._service.lab.broken) if self._service is not None else {}

    # ------------------------------------------------------------------ answers

    def recommend(self, user_id: str, k: int, model: str, *, policy: PolicyChoice) -> Any:
        """:meth:`RecommendationService.recommend` on the current version, measured."""
        start = time.perf_counter()
        try:
            answer = self.service().recommend(user_id, k, model, policy=policy)
        except Exception as exc:
            self._answers.append((time.time(), time.perf_counter() - start, False, True))
            self._error("recommend", exc)
            raise
        self._answers.append(
            (time.time(), time.perf_counter() - start, bool(answer.get("degraded")), False)
        )
        return answer

    def record(self, seconds: float, degraded: bool, error: Exception | None = None) -> None:
        """Record an answer made elsewhere (e.g. by the REST API) for the health window."""
        self._answers.append((time.time(), seconds, degraded, error is not None))
        if error is not None:
            self._error("answer", error)

    def stats(self) -> dict[str, Any]:
        """Recent answers: count, degraded share, error share, latency percentiles (ms)."""
        answers = list(self._answers)
        latencies = [a[1] * 1000 for a in answers]
        n = len(answers)
        return {
            "answers": n,
            "degraded_share": round(sum(a[2] for a in answers) / n, 4) if n else None,
            "error_share": round(sum(a[3] for a in answers) / n, 4) if n else None,
            "latency_ms": {
                f"p{q}": None if (v := percentile(latencies, q)) is None else round(v, 3)
                for q in (50, 95, 99)
            },
            "last_errors": list(self._errors)[-5:],
            "reloads": self.reloads,
            "events": list(self.events)[-10:],
        }

    def _error(self, where: str, exc: Exception) -> None:
        self._errors.append({"time": _now(), "where": where, "error": str(exc)})

    def _note(self, message: str) -> None:
        self.events.append({"time": _now(), "event": message})


def _audit_rollback(dataset: str, before: str | None, after: str, broken: dict[str, str]) -> None:
    """Record an automatic rollback in the audit log (never fails the request)."""
    try:
        from recsys_core.security import audit

        detail = {"dataset": dataset, "from": before, "to": after, "broken": sorted(broken)}
        audit.record("system:auto-rollback", "rollback", detail)
    except Exception:  # noqa: BLE001 - the activation history has it anyway
        pass


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values`` or ``None`` when empty."""
    if not values:
        return None
    value = float(np.percentile(np.asarray(values, dtype=float), q))
    return None if math.isnan(value) else value
