"""The app's background training runs in a child process (its memory is not the server's):
the saved version, its recorded metrics and the audit row arrive through the job; a child
that dies says so instead of leaving the page waiting."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from recsys_core.security import audit
from recsys_core.serving import load_lab
from recsys_core.training_job import TrainingJob, _follow, _message, _say, start_training_job


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


def test_messages_said_from_several_threads_stay_one_a_line(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # the ranker's fold models report progress side by side in the child: print() wrote the
    # text and its newline apart, so two messages could share a line and stop the reader
    def say_many(thread: int) -> None:
        for i in range(300):
            _say("progress", f"classifier: fold {thread} tree {i}", i / 300)

    threads = [threading.Thread(target=say_many, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    lines = capfd.readouterr().out.splitlines()
    assert len(lines) == 1_200
    assert all(_message(line) is not None for line in lines)


def test_the_reader_passes_a_garbled_line_through_and_keeps_reading(tmp_path: Path) -> None:
    # a real child that says one garbled message, some library output without a newline
    # before a message, and then that it saved: the job must finish, not hang "running"
    mark = "@@recsys-training-job "
    joined = mark + '["progress", "a", 0.1]' + mark + '["progress"]\n'
    script = (
        "import json, sys\n"
        f"sys.stdout.write({joined!r})\n"
        "sys.stdout.write('a library says hello')\n"
        f"print({mark!r} + json.dumps(['saved', 'somewhere', None]), flush=True)\n"
    )
    job = TrainingJob(dataset="garbled")
    job.process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, encoding="utf-8"
    )
    folder = tmp_path / "job"
    folder.mkdir()

    _follow(job, folder)

    assert job.folder == "somewhere" and job.error is None and not job.running
    assert job.metrics_recorded.is_set() and not folder.exists()
