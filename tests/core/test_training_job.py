"""The app's background training runs in a child process (its memory is not the server's):
the saved version, its recorded metrics and the audit row arrive through the job; a child
that dies says so instead of leaving the page waiting."""

from __future__ import annotations

import json
from pathlib import Path

from recsys_core.security import audit
from recsys_core.serving import load_lab
from recsys_core.training_job import start_training_job


def test_a_child_trains_saves_and_records_metrics(small_store: object) -> None:
    job = start_training_job(
        small_store,  # type: ignore[arg-type]
        ["popularity", "als"],
        activate=True,
        actor="app:alice",
    )
    assert job.process is not None and job.process.pid != 0
    assert job.thread is not None
    job.thread.join()
    assert job.error is None and job.folder is not None and not job.running
    assert job.metrics_recorded.is_set() and job.process.returncode == 0
    lab = load_lab(Path(job.folder))
    assert set(lab.model_names) == {"popularity", "als"}
    manifest = json.loads((Path(job.folder) / "manifest.json").read_text())
    assert manifest["data"]["sha256"] == lab.manifest["data"]["sha256"]
    rows = audit.read(action="train", contains='"background": true')
    assert [r["actor"] for r in rows] == ["app:alice"]


def test_a_child_that_dies_is_reported_not_awaited(small_store: object) -> None:
    job = start_training_job(
        small_store,  # type: ignore[arg-type]
        ["popularity", "als", "ranker"],
        activate=True,
        actor="app:alice",
    )
    assert job.process is not None and job.thread is not None
    job.process.kill()
    job.thread.join()
    assert job.folder is None and not job.running
    assert job.error is not None and "ended without a result" in job.error
    assert job.metrics_recorded.is_set()
