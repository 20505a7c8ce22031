"""Training in a child process, so a long-lived server keeps its memory for answering.

The app trains the purchase model (the ranker), the order model and BPR in the background on a
first start. Done in a thread, that training and the evaluation that records the ranker's
headline metrics set the Streamlit server's peak memory (about 3 GB on Online Retail, issue
24); in a child process their memory goes back to the system when they end, and the server
only loads the saved version.

:class:`TrainingJob` is what the pages read (plain attributes written by one reader thread);
:func:`start_training_job` starts the child (``python -m recsys_core.training_job FOLDER``:
a fresh interpreter, neither a fork of a threaded server nor a re-run of the app's script,
which ``multiprocessing``'s spawn would import) and the thread that reads its progress. The
child (:func:`_child`) runs :func:`train_version`, which the app's quick first training also
calls in-process, and then :func:`record_ranker_metrics`.

Messages from the child (JSON lines on its stdout), in order:
``("progress", text, fraction)`` any number of times,
``("saved", folder, ranker_error)`` once the version is saved (pages switch to it),
``("metrics", None, None)`` once the ranker's headline metrics are recorded in the saved
manifest (or could not be: a note says why), or ``("error", text, None)``. A child that dies
without saying so (killed, out of memory) is reported as an error with its exit code.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core.data.schema import Dataset
from recsys_core.errors import RecsysError
from recsys_core.models import MODEL_NAMES
from recsys_core.models.registry import POPULARITY, RANKER
from recsys_core.provenance import data_checksum
from recsys_core.security import audit
from recsys_core.serving import TrainedLab, save_lab
from recsys_core.serving.lab import MANIFEST, record_metrics
from recsys_core.training import TrainConfig, headline_metrics, train_lab

__all__ = [
    "RANKER_FAILED",
    "TrainingJob",
    "record_ranker_metrics",
    "start_training_job",
    "train_version",
]

#: Start of the manifest note written when the ranker could not be trained on the data.
RANKER_FAILED = "the purchase model (ranker) could not be trained on this log"


@dataclass
class TrainingJob:
    """A background training: written by its reader thread, read by the pages."""

    dataset: str
    message: str = "waiting to start"
    fraction: float = 0.0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    #: The saved version's folder (set when the child has saved it).
    folder: str | None = None
    #: Why the job failed (nothing saved), or why the ranker was left out of a saved version.
    error: str | None = None
    #: Set once the ranker's headline metrics are recorded in the saved manifest (or could not
    #: be); the job has ended then.
    metrics_recorded: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen[str] | None = None
    thread: threading.Thread | None = None
    #: Manifests of loaded copies of the saved version, refreshed when the metrics arrive.
    _manifests: list[dict[str, Any]] = field(default_factory=list)
    _recorded: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def running(self) -> bool:
        """Whether the training is still going on (the version is not saved yet)."""
        return self.finished is None

    @property
    def seconds(self) -> float:
        """Seconds since the start (until the end once finished)."""
        return (self.finished or time.monotonic()) - self.started

    def follow(self, lab: TrainedLab) -> None:
        """Keep ``lab.manifest`` (a loaded copy of the saved version) up to date: the
        ranker's metrics are recorded in the saved manifest after the switch."""
        with self._lock:
            self._manifests.append(lab.manifest)
            recorded = self._recorded
        if recorded:  # else the reader thread refreshes it when the metrics arrive
            self._refresh()

    def _metrics_arrived(self) -> None:
        with self._lock:
            self._recorded = True
        self._refresh()
        self.metrics_recorded.set()

    def _refresh(self) -> None:
        if self.folder is None:
            return
        try:
            saved = json.loads((Path(self.folder) / MANIFEST).read_text())
        except (OSError, ValueError):
            return
        with self._lock:
            for manifest in self._manifests:
                manifest.update(saved)


def train_version(
    dataset: Dataset,
    models: list[str],
    *,
    activate: bool,
    actor: str,
    progress: Callable[[str, float], None] | None = None,
    headline: bool = True,
    notes: tuple[str, ...] = (),
    background: bool = True,
    checksum: str | None = None,
) -> tuple[TrainedLab, str | None]:
    """Train ``models`` and save them as a version; ``(lab, why the ranker is missing)``.

    When the ranker cannot be trained on this data, the other models are still worth a
    complete version: it is saved without the ranker and with a note saying why. ``headline``
    records the single-stage models' headline metrics; ``notes`` go into the manifest. The
    training is audited as ``actor`` (the user who started it; ``background`` says where).
    ``checksum``: the events' data checksum if the caller has it (not hashed again).
    """
    ranker_error: str | None = None
    try:
        lab = train_lab(
            dataset,
            TrainConfig(models=models, headline_metrics=headline),
            progress=progress,
            checksum=checksum,
        )
    except RecsysError as exc:
        if RANKER not in models:
            raise
        ranker_error = str(exc)
        others = [m for m in models if m != RANKER]
        lab = train_lab(dataset, TrainConfig(models=others), progress=progress, checksum=checksum)
        lab.manifest.setdefault("notes", []).append(f"{RANKER_FAILED}: {exc}")
    lab.manifest.setdefault("notes", []).extend(notes)
    if progress is not None:
        progress("saving", 1.0)
    save_lab(lab, activate=activate)
    detail: dict[str, Any] = {"dataset": dataset.name, "version": lab.version}
    if background:
        detail["background"] = True
    audit.record(actor, "train", detail)
    return lab, ranker_error


def record_ranker_metrics(dataset: Dataset, lab: TrainedLab) -> None:
    """Evaluate the purchase model the way training evaluates the single-stage models (the
    last 30 days held out, the version's own settings) and add it to the version's recorded
    headline metrics, so Overview and Decision show its figures without a visit to the
    Model lab (issue 24). The manifest of ``lab`` is updated in place and on disk."""
    # the evaluation package imports the purchase model's LightGBM and scikit-learn: here,
    # not when the app imports this module for its first page (issue 24)
    from recsys_core.evaluation import EvaluationConfig, evaluate

    metrics = dict(lab.manifest.get("metrics") or {})
    recorded = dict(metrics.get("models") or {})
    if RANKER in recorded:
        return
    config = lab.manifest.get("config") or {}
    names = [RANKER] + ([] if POPULARITY in recorded else [POPULARITY])
    eval_config = EvaluationConfig(
        models=names,
        weights=config.get("weights"),
        model_params={
            n: p for n, p in (config.get("model_params") or {}).items() if n in MODEL_NAMES
        },
        seed=int(config.get("seed", 42)),
        new_items_variant=False,
    )
    result = headline_metrics(evaluate(dataset, eval_config))
    recorded.update(result["models"])
    merged = {**result, **metrics, "models": recorded}
    if not merged.get("classifier"):
        merged["classifier"] = result.get("classifier")
    merged["recorded_by"] = "train (every model, last 30 days held out)"
    record_metrics(lab, merged)


#: How much lower the child's CPU priority is than the server's (``os.nice``).
NICENESS = 10
#: Start of the child's message lines on its stdout (other output is passed through).
_MARK = "@@recsys-training-job "


#: The child's progress is reported from several threads (the ranker's fold models train
#: side by side): one message, one write, one at a time.
_SAYING = threading.Lock()


def _say(kind: str, value: Any = None, extra: Any = None) -> None:
    """One message of the child to its parent: a whole line on stdout in one write (``print``
    writes the text and its newline separately, so two threads could join two messages on
    one line)."""
    line = _MARK + json.dumps([kind, value, extra]) + "\n"
    with _SAYING:
        sys.stdout.write(line)
        sys.stdout.flush()


def _message(line: str) -> tuple[str, Any, Any] | None:
    """The message of one of the child's lines (a library's output without its own newline
    may come first); ``None`` for other output or a garbled message, which the reader passes
    through instead of stopping on it (a reader that stops leaves the page waiting for a job
    that has finished)."""
    at = line.find(_MARK)
    if at < 0:
        return None
    try:
        kind, value, extra = json.loads(line[at + len(_MARK) :])
    except (ValueError, TypeError):  # not JSON, or not three fields
        return None
    return str(kind), value, extra


def _child(folder: Path) -> int:  # pragma: no cover - runs in the child process (app tests)
    """The child process: train and save, say so, then record the ranker's metrics. It runs
    at a lower CPU priority: the server's pages come first on a machine with few cores."""
    with contextlib.suppress(OSError):  # nice is a Unix call
        os.nice(NICENESS)
    try:
        job = json.loads((folder / "job.json").read_text())
        dataset = Dataset(
            job["name"],
            pd.read_parquet(folder / "events.parquet"),
            pd.read_parquet(folder / "catalog.parquet"),
            source=job["source"],
            notes=tuple(job["notes"]),
        )
        if data_checksum(dataset.events) != job["checksum"]:
            raise RecsysError("the log changed on its way to the training process")
        lab, ranker_error = train_version(
            dataset,
            list(job["models"]),
            activate=bool(job["activate"]),
            actor=str(job["actor"]),
            progress=lambda text, fraction: _say("progress", text, fraction),
            checksum=str(job["checksum"]),
        )
        _say("saved", str(lab.path), ranker_error)
    except Exception as exc:  # noqa: BLE001 - the parent must hear why, not a dead child
        _say("error", f"{type(exc).__name__}: {exc}")
        return 1
    try:
        if lab.ranker is not None:
            record_ranker_metrics(dataset, lab)
    except Exception as exc:  # noqa: BLE001 - the version stays usable without them
        lab.manifest.setdefault("notes", []).append(
            f"the purchase model's headline metrics could not be recorded: {exc}"
        )
        record_metrics(lab, dict(lab.manifest.get("metrics") or {}))
    _say("metrics")
    return 0


def start_training_job(
    dataset: Dataset,
    models: list[str],
    *,
    activate: bool,
    actor: str,
    checksum: str | None = None,
) -> TrainingJob:
    """Train ``models`` on ``dataset`` in a child process and save them as a version.

    Returns at once; the job's attributes follow the child (see the module docstring). The
    log goes to the child as Parquet files in a private temporary folder (removed when the
    job ends); the child checks it arrived unchanged (the data checksum: ``checksum`` if
    the caller has it, else hashed here).
    """
    folder = Path(tempfile.mkdtemp(prefix="recsys-training-job-"))
    dataset.events.to_parquet(folder / "events.parquet", index=False)
    dataset.catalog.to_parquet(folder / "catalog.parquet", index=False)
    job_file = {
        "name": dataset.name,
        "source": dataset.source,
        "notes": list(dataset.notes),
        "checksum": checksum or data_checksum(dataset.events),
        "models": list(models),
        "activate": activate,
        "actor": actor,
    }
    (folder / "job.json").write_text(json.dumps(job_file), encoding="utf-8")
    job = TrainingJob(dataset=dataset.name)
    job.process = subprocess.Popen(
        [sys.executable, "-m", "recsys_core.training_job", str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    job.thread = threading.Thread(
        target=_follow, args=(job, folder), name=f"train-{dataset.name}-reader", daemon=True
    )
    job.thread.start()
    return job


def _follow(job: TrainingJob, folder: Path) -> None:
    """Read the child's messages into ``job`` until it has said everything or ended."""
    process = job.process
    assert process is not None and process.stdout is not None
    try:
        for line in process.stdout:
            message = _message(line)
            if message is None:
                sys.stdout.write(line)  # a library's own output: pass it through
                continue
            kind, value, extra = message
            if kind == "progress":
                job.message, job.fraction = str(value), min(max(float(extra), 0.0), 1.0)
            elif kind == "saved":
                job.error = extra
                job.fraction = 1.0
                job.folder = str(value)
                job.finished = time.monotonic()
            elif kind == "metrics":
                job._metrics_arrived()
            elif kind == "error":  # nothing was saved
                job.error = str(value)
                job.finished = time.monotonic()
        code = process.wait()
        if job.finished is None:  # it ended without a word: killed, or out of memory
            job.error = (
                f"the training process ended without a result (exit code {code}; out of "
                "memory or killed?)"
            )
            job.finished = time.monotonic()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        job.metrics_recorded.set()


if __name__ == "__main__":  # pragma: no cover - the child process
    sys.exit(_child(Path(sys.argv[1])))
