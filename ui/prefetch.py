"""Load the app's first dataset while the rest of the app is imported.

Before a server's first page paints, one thread does, in turn: import the lab's modules
(about 2 s of CPU: pandas, SciPy, scikit-learn, LightGBM, numba, ... pulled in by the
service and training), convert the shipped Online Retail file into the canonical event log
(about 1.9 s of CPU) and checksum it (0.2 s), then train the instant models. The import and
the load are independent, so :func:`start` (called by ``app.py`` before its heavy imports)
runs the load and the checksum in a thread beside them: on a 2-core machine the load's
Arrow and pandas work overlaps the imports. :mod:`ui.resources` then takes the result with
:func:`take` (waiting for it when the load is not done) instead of loading again.

Once per server process, for the dataset a new session opens with
(:func:`ui.state.initial_dataset_key`); the load is the page's own call
(:func:`recsys_core.data.builtin.load_dataset` or :func:`recsys_core.data.loaders.
load_event_file`) and :func:`recsys_core.provenance.data_checksum`: the same dataset and
figures. A load that fails is not reported here: the page loads again and shows its error.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

# what the thread runs, imported here by the caller's thread: two threads importing the same
# modules at once can trip over each other's import locks
import pyarrow.compute  # noqa: F401 - used by the loaders
import pyarrow.parquet  # noqa: F401 - used by the loaders

from recsys_core.data.builtin import load_dataset
from recsys_core.data.loaders import load_event_file
from recsys_core.data.schema import Dataset
from recsys_core.provenance import data_checksum
from ui.state import FILE_PREFIX, initial_dataset_key

__all__ = ["checksum_of", "start", "take"]

_lock = threading.Lock()
_started = False
#: The prefetched dataset key and its load (one per process, taken once).
_loads: dict[str, Future[tuple[Dataset, str]]] = {}
#: The checksum of the dataset handed out by :func:`take`, by key.
_checksums: dict[str, tuple[Dataset, str]] = {}


def start() -> None:
    """Start loading the first dataset in a thread (once per process; no-op afterwards)."""
    global _started  # noqa: PLW0603 - once per server process, not per session
    with _lock:
        if _started:
            return
        _started = True
    try:
        key, _ = initial_dataset_key()
    except Exception:  # noqa: BLE001 - a bad setting: the page says what is wrong
        return
    future: Future[tuple[Dataset, str]] = Future()
    _loads[key] = future
    threading.Thread(
        target=_load, args=(key, future), name="recsys-first-dataset", daemon=True
    ).start()


def _load(key: str, future: Future[tuple[Dataset, str]]) -> None:
    try:
        path = key[len(FILE_PREFIX) :] if key.startswith(FILE_PREFIX) else None
        dataset = load_event_file(path) if path is not None else load_dataset(key)
        future.set_result((dataset, data_checksum(dataset.events)))
    except BaseException as exc:  # noqa: BLE001 - handed to take(), which loads again
        future.set_exception(exc)


def take(key: str) -> tuple[Dataset, str] | None:
    """The prefetched dataset of ``key`` and its checksum (waiting for the load), or ``None``
    when none was started for it or it failed. Each load is handed out once."""
    with _lock:
        future = _loads.pop(key, None)
        _loads.clear()  # another key was asked first: the prefetch missed, free it
    if future is None:
        return None
    try:
        dataset, checksum = future.result()
    except Exception:  # noqa: BLE001 - the caller loads again and shows the error
        return None
    _checksums[key] = (dataset, checksum)
    return dataset, checksum


def checksum_of(key: str, dataset: Dataset) -> str | None:
    """The checksum computed with ``dataset`` when :func:`take` handed it out, else ``None``."""
    known = _checksums.get(key)
    return known[1] if known is not None and known[0] is dataset else None
