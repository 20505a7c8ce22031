"""Load the app's first dataset while the rest of the app is imported.

Before a server's first page paints, one thread does, in turn: import the lab's modules
(about 2 s of CPU: pandas, SciPy, scikit-learn, LightGBM, numba, ... pulled in by the
service and training), convert the shipped Online Retail file into the canonical event log
(about 1.9 s of CPU) and checksum it (0.2 s), then train the instant models. The imports
and the load are independent, so :func:`start` (called by ``app.py`` before its heavy
imports) has the load done beside them, and :mod:`ui.resources` takes the result with
:func:`take` (waiting for it when the load is not done) instead of loading again.

A built-in dataset is converted in a **child process** (Python threads share one
interpreter lock, and the conversion is mostly Python-level pandas work that holds it): the
child loads it with the page's own call (:func:`recsys_core.data.builtin.load_dataset`),
writes the canonical frames as Parquet, reads them back and checks they are equal to what
it loaded (values, dtypes and columns: :func:`recsys_core.provenance.data_checksum` hashes
them, so the checksum it hands over is the copy's), and only then hands them over; the
server reads them in a few hundredths of a second. Anything else (a ``$RECSYS_APP_DATA``
file), or a child that fails, is loaded in a thread of the server with the same call. The
same dataset and checksum either way: the figures do not change.

Once per server process, for the dataset a new session opens with
(:func:`ui.state.initial_dataset_key`). A load that fails is not reported here: the page
loads again and shows its error.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path

import pandas as pd

# what the thread runs, imported here by the caller's thread: two threads importing the same
# modules at once can trip over each other's import locks
import pyarrow.compute  # noqa: F401 - used by the loaders
import pyarrow.parquet  # noqa: F401 - used by the loaders

from recsys_core.data.builtin import BUILTIN_DATASETS, load_dataset
from recsys_core.data.loaders import load_event_file
from recsys_core.data.schema import Dataset
from recsys_core.paths import PROJECT_ROOT
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


#: The fields a Dataset is made of (a new field: the child cannot hand it over, load here).
_FIELDS = ("name", "events", "catalog", "source", "notes")
#: Seconds the child may take before the server loads the dataset itself.
CHILD_TIMEOUT = 300

#: The child: load a built-in dataset, write it, check the copy, print its checksum.
_CHILD = """
import json, sys
from pathlib import Path
import pandas as pd
from recsys_core.data.builtin import load_dataset
from recsys_core.provenance import data_checksum
name, folder = sys.argv[1], Path(sys.argv[2])
dataset = load_dataset(name)
dataset.events.to_parquet(folder / "events.parquet")
dataset.catalog.to_parquet(folder / "catalog.parquet")
events = pd.read_parquet(folder / "events.parquet")
catalog = pd.read_parquet(folder / "catalog.parquet")
checksum = data_checksum(dataset.events)
same = (
    events.equals(dataset.events) and catalog.equals(dataset.catalog)
    and events.dtypes.equals(dataset.events.dtypes)
    and catalog.dtypes.equals(dataset.catalog.dtypes)
    and list(events.columns) == list(dataset.events.columns)
)  # equal values and dtypes: equal checksums (data_checksum hashes the values)
if not same:
    sys.exit("the Parquet copy differs from the loaded dataset")
meta = {"name": dataset.name, "source": dataset.source, "notes": list(dataset.notes),
        "checksum": checksum}
(folder / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
"""


def _load(key: str, future: Future[tuple[Dataset, str]]) -> None:
    try:
        ready = _load_in_child(key) if key in BUILTIN_DATASETS else None
        if ready is None:
            path = key[len(FILE_PREFIX) :] if key.startswith(FILE_PREFIX) else None
            dataset = load_event_file(path) if path is not None else load_dataset(key)
            ready = dataset, data_checksum(dataset.events)
        future.set_result(ready)
    except BaseException as exc:  # noqa: BLE001 - handed to take(), which loads again
        future.set_exception(exc)


def _load_in_child(name: str) -> tuple[Dataset, str] | None:
    """The built-in dataset ``name`` converted by a child process (``None`` if it failed)."""
    if tuple(f.name for f in dataclasses.fields(Dataset)) != _FIELDS:
        return None
    folder = Path(tempfile.mkdtemp(prefix="recsys-first-dataset-"))
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, name, str(folder)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            return None
        meta = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
        dataset = Dataset(
            meta["name"],
            pd.read_parquet(folder / "events.parquet"),
            pd.read_parquet(folder / "catalog.parquet"),
            source=meta["source"],
            notes=tuple(meta["notes"]),
        )
        return dataset, str(meta["checksum"])
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
