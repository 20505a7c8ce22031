"""Memory a model needs to train: the growth of the process's resident set while it fits.

The resident set size (RSS) counts what Python, NumPy, LightGBM and implicit allocate
alike (tracemalloc would miss the native libraries). A background thread samples it every
``interval`` seconds while the block runs; the figure is the peak minus the RSS at the
start, in MB. It is an estimate: memory freed and reused inside the block is not counted
twice, memory the allocator keeps from an earlier model lowers it, and samples can miss a
peak shorter than the interval. Where ``/proc/self/statm`` does not exist (macOS, Windows)
the figure is NaN.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Final, Self

_STATM: Final = Path("/proc/self/statm")


def resident_bytes() -> int | None:
    """The process's resident set size in bytes (``None`` where it cannot be read)."""
    try:
        pages = int(_STATM.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Context manager: ``with PeakMemory() as m: fit(); m.mb`` -> RSS growth at its peak.

    Parameters
    ----------
    interval:
        Seconds between samples.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.mb = float("nan")
        self._start: int | None = None
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        now = resident_bytes()
        if now is not None and now > self._peak:
            self._peak = now

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Self:
        self._start = resident_bytes()
        if self._start is not None:
            self._peak = self._start
            self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is None or self._start is None:
            return
        self._stop.set()
        self._thread.join()
        self._sample()
        self.mb = max(self._peak - self._start, 0) / 1e6
