"""Cached resources: datasets, their checksums, trained labs and recommendation services.

How a page gets its models (:func:`service`):

1. the active dataset is loaded (cached per key) and its event log checksummed
   (:func:`recsys_core.evaluation.data_checksum`, cached per key);
2. a saved version under ``$RECSYS_HOME`` trained on the same data (the manifest's
   ``data.sha256``) with every model this install can train is reused — the active version
   first, then the newest — and loaded once per process (``st.cache_resource``, keyed by
   its folder);
3. only when there is none, the **instant models** (popularity, item-kNN: about a second on
   Online Retail) are trained with a visible progress bar and saved as a *quick* version, so
   every page works at once; ALS (4.6 s of a 14.6 s first page on a quiet machine, issue
   24), BPR, the two-stage purchase model (the ranker, a minute or more) and the order model
   then train in a **child process**
   (:class:`~recsys_core.training_job.TrainingJob`, one per dataset and server process,
   so the training's memory is not the server's) with their own progress in the sidebar
   (training windows, classifier folds). When it has saved the complete version, every
   session switches to it on its next rerun (the sidebar's poll triggers one), and later
   starts load it directly.

Cached objects are shared by all sessions and never mutated, except by
:func:`recsys_core.serving.lab.record_metrics` (which updates the manifest it also saves).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from recsys_core.data.builtin import load_dataset
from recsys_core.data.loaders import load_event_file
from recsys_core.data.schema import Dataset
from recsys_core.errors import ConfigError, RecsysError
from recsys_core.models.registry import ALS, spec
from recsys_core.provenance import data_checksum
from recsys_core.serving import RecommendationService, TrainedLab, list_versions, load_lab
from recsys_core.serving.lab import DEFAULT_MODELS
from recsys_core.training_job import (
    RANKER_FAILED,
    TrainingJob,
    start_training_job,
    train_version,
)
from ui import auth, state

#: Session-state name of the (dataset key, checksum) -> version folder memo.
_FOLDERS = "lab_folders"


@dataclass(frozen=True)
class ActiveData:
    """The active dataset with its key and checksum (what cached frames are keyed by)."""

    key: str
    dataset: Dataset
    checksum: str

    @property
    def label(self) -> str:
        """A short human name of the dataset."""
        return state.dataset_label(self.key)


# ---------------------------------------------------------------------------------- datasets


@st.cache_resource(show_spinner="Loading the event log ...", max_entries=4)
def _shared_dataset(key: str) -> Dataset:
    """A built-in dataset or the ``$RECSYS_APP_DATA`` file, loaded once per process."""
    if key.startswith(state.FILE_PREFIX):
        return load_event_file(key[len(state.FILE_PREFIX) :])
    return load_dataset(key)


@st.cache_resource(show_spinner=False, max_entries=8)
def _shared_checksum(key: str, _dataset: Dataset) -> str:
    return data_checksum(_dataset.events)


def dataset_for(key: str) -> Dataset:
    """The dataset behind a key (uploads come from this session's store).

    Raises
    ------
    RecsysError
        An unknown name, an unreadable ``$RECSYS_APP_DATA`` file, or an upload that is no
        longer in this session.
    """
    if key.startswith(state.UPLOAD_PREFIX):
        uploads = st.session_state.setdefault(state.UPLOADS, {})
        if key not in uploads:  # a new session: read it back from the user's workspace
            from recsys_core.security.uploads import find_upload, load_upload
            from ui.auth import owner

            uploads[key] = load_upload(find_upload(key[len(state.UPLOAD_PREFIX) :], owner()))
        return uploads[key]
    return _shared_dataset(key)


def active_data() -> ActiveData:
    """The active dataset of this session (see :mod:`ui.state`)."""
    state.ensure_session()
    key = state.active_key()
    dataset = dataset_for(key)
    if key.startswith(state.UPLOAD_PREFIX):
        checksum = key[len(state.UPLOAD_PREFIX) :]
    else:
        checksum = _shared_checksum(key, dataset)
    return ActiveData(key, dataset, checksum)


# ---------------------------------------------------------------------------------- models


def model_available(name: str) -> bool:
    """Whether ``name`` is a model this lab knows. Its class is not imported here (the
    ranker's imports LightGBM and scikit-learn, a CPU second the first page does not need,
    issue 24): every model's code is a required part of the install, and one that fails to
    import raises where the model is trained or loaded (the background training shows it)."""
    try:
        spec(name)
    except ConfigError:
        return False
    return True


def can_train(name: str, dataset: Dataset) -> bool:
    """Whether model ``name`` is installed and can be trained on ``dataset`` (a model that
    requires timestamps cannot on a log without them)."""
    return model_available(name) and spec(name).can_train_on(dataset.events.columns)


def wanted_models(dataset: Dataset) -> list[str]:
    """The models a lab for ``dataset`` should have: all, minus those impossible on it."""
    return [m for m in DEFAULT_MODELS if can_train(m, dataset)]


def _ranker_failed(folder: Path) -> bool:
    """Whether the version in ``folder`` was trained without the ranker because it failed."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return any(str(note).startswith(RANKER_FAILED) for note in manifest.get("notes", []))


def saved_versions(dataset_name: str, checksum: str, models: list[str]) -> list[Path]:
    """Saved version folders trained on exactly this data with at least ``models``.

    A version without the ranker also counts when the ranker could not be trained on this
    data (so a log too short for the purchase model is not retrained on every start). The
    active version comes first, then the others newest first.
    """
    wanted = set(models)
    matching = []
    for v in list_versions(dataset_name):
        if v.get("data_sha256") != checksum:
            continue
        have = set(v.get("models", []))
        if wanted <= have or (wanted - {"ranker"} <= have and _ranker_failed(Path(v["path"]))):
            matching.append(v)
    matching.sort(key=lambda v: not v["active"])  # stable: newest first otherwise
    return [Path(v["path"]) for v in matching]


@st.cache_resource(show_spinner="Loading the trained models ...", max_entries=4)
def _lab_at(folder: str, _trained: TrainedLab | None = None) -> TrainedLab:
    """The lab saved in ``folder`` (a version folder never changes, so it keys the cache)."""
    if _trained is not None:
        return _trained
    return load_lab(Path(folder), tolerant=True)  # damaged models: left out, answers fall back


@st.cache_resource(show_spinner=False)
def _training_lock() -> threading.Lock:
    """One training at a time per process (two sessions starting together train once)."""
    return threading.Lock()


def _train_with_progress(
    dataset: Dataset, models: list[str], *, activate: bool = True, checksum: str | None = None
) -> TrainedLab:
    """Train and save ``models``, showing progress; retry without the ranker if it fails.

    ``activate=False`` (uploads) saves the version without making it the one the CLI serves
    (no ``models/LAST``); an admin activates it from Operations if wanted. Quick versions
    (without the ranker) record no headline metrics: the complete version does.
    """
    quick = "ranker" not in models
    label = (
        f"First start on {dataset.name}: training the quick models (a second or two); ALS "
        "and the purchase model then train in the background ..."
        if quick
        else f"First start on {dataset.name}: training the models (this happens once) ..."
    )
    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0, text="starting")

        def report(message: str, fraction: float) -> None:
            bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

        lab, ranker_error = train_version(
            dataset,
            models,
            activate=activate,
            actor=auth.actor(),
            progress=report,
            headline=not quick,
            notes=(QUICK_NOTE,) if quick else (),
            background=False,
            checksum=checksum,
        )
        if ranker_error is not None:
            st.warning(
                f"The purchase model could not be trained: {ranker_error}. Trained the others."
            )
        folder = lab.path
        status.update(
            label=f"Trained and saved version {lab.version} ({folder})",
            state="complete",
            expanded=False,
        )
    return lab


def _load_saved(data: ActiveData, models: list[str]) -> TrainedLab | None:
    """The first saved version of this data that loads (a damaged one is skipped, with a note)."""
    for folder in saved_versions(data.dataset.name, data.checksum, models):
        try:
            return _lab_at(str(folder))
        except RecsysError as exc:
            st.warning(f"Saved version {folder.name} cannot be loaded ({exc}); skipping it.")
    return None


# ---------------------------------------------------------------------------------- background


#: Models the first page does not wait for although they are not ``slow_to_train``: ALS's
#: iterations took 4.6 s of the 14.6 s first useful page on a quiet machine (issue 24).
BACKGROUND_ON_FIRST_START: frozenset[str] = frozenset({ALS})


def slow_models(models: list[str]) -> list[str]:
    """Models left to the background training on a first start: those declaring
    ``slow_to_train`` (BPR: ~10 s more on Online Retail for the least accurate model; the
    ranker: a minute or more) and :data:`BACKGROUND_ON_FIRST_START` (ALS: seconds)."""
    return [m for m in models if spec(m).slow_to_train or m in BACKGROUND_ON_FIRST_START]


#: Manifest note of a version holding only the instant models (the first start's).
QUICK_NOTE = (
    "quick start: popularity and item-kNN only; ALS and the purchase model train in the background"
)


#: The background training of one dataset (see :mod:`recsys_core.training_job`).
RankerJob = TrainingJob


@st.cache_resource(show_spinner=False)
def _jobs() -> dict[tuple[str, str], RankerJob]:
    """Background jobs of this process by (dataset key, checksum)."""
    return {}


def ranker_job(data: ActiveData) -> RankerJob | None:
    """The background training of the active data, if one was started in this process."""
    return _jobs().get((data.key, data.checksum))


def start_ranker_job(data: ActiveData, models: list[str], *, activate: bool = True) -> RankerJob:
    """Train ``models`` in a child process and save them as a version (without the ranker,
    and a note saying why, when the ranker cannot be trained on this data). The server only
    loads the saved version: the training's memory is the child's."""
    jobs = _jobs()
    with _training_lock():
        job = jobs.get((data.key, data.checksum))
        if job is not None and (job.running or job.folder is not None):
            return job
        # the child has no session: audit as the user who started it
        job = start_training_job(
            data.dataset, models, activate=activate, actor=auth.actor(), checksum=data.checksum
        )
        jobs[(data.key, data.checksum)] = job
    return job


def _ready_lab(job: RankerJob) -> TrainedLab:
    """The complete lab a finished job saved (loaded once per process; its manifest follows
    the metrics the job records after the switch)."""
    assert job.folder is not None
    lab = _lab_at(job.folder)
    job.follow(lab)
    return lab


def lab_for(data: ActiveData) -> TrainedLab:
    """The trained lab of the active data.

    A saved complete version if there is one; else the complete version a background job
    has just finished; else the quick version (loaded, or trained now in seconds) while
    the purchase model trains in the background.
    """
    memo: dict[tuple[str, str], str] = st.session_state.setdefault(_FOLDERS, {})
    memo_key = (data.key, data.checksum)
    job = ranker_job(data)
    folder = memo.get(memo_key)
    if folder is not None:
        if job is not None and job.folder is not None and folder != job.folder:
            lab = _ready_lab(job)  # the purchase model is ready: switch to it
            memo[memo_key] = str(lab.path)
            return lab
        return _lab_at(folder)
    models = wanted_models(data.dataset)
    lab = _load_saved(data, models)
    if lab is None and job is not None and job.folder is not None:
        lab = _ready_lab(job)
    if lab is None:
        activate = not data.key.startswith(state.UPLOAD_PREFIX)  # uploads: not what the CLI serves
        slow = slow_models(models)
        quick_models = [m for m in models if m not in slow]
        lock = _training_lock()
        if not lock.acquire(blocking=False):
            with st.spinner("Another session is training models; waiting for it ..."):
                lock.acquire()
        try:
            lab = _load_saved(data, quick_models)
            if lab is None:
                trained = _train_with_progress(
                    data.dataset, quick_models, activate=activate, checksum=data.checksum
                )
                lab = _lab_at(str(trained.path), trained)
        finally:
            lock.release()
        if set(models) - set(lab.model_names):
            start_ranker_job(data, models, activate=activate)
    memo[memo_key] = str(lab.path)
    return lab


@st.fragment(run_every=2)
def _poll_ranker_job(key: tuple[str, str], folder: str) -> None:
    """Progress of the background training; a full rerun once it is ready (to switch)."""
    job = _jobs().get(key)
    if job is None:
        return
    if job.running:
        st.progress(
            job.fraction,
            text=f"Purchase model training in the background ({job.seconds:.0f} s): {job.message}",
        )
        st.caption("The pages use the single-stage models until it is ready.")
    elif job.error is not None:
        st.warning(f"The purchase model could not be trained: {job.error}")
    elif job.folder is not None and job.folder != folder:
        st.rerun(scope="app")  # lab_for switches this session to the complete version


def ranker_status() -> None:
    """In the sidebar: the background training's progress while it runs, and the switch."""
    try:
        data = active_data()
    except RecsysError:
        return
    job = ranker_job(data)
    memo: dict[tuple[str, str], str] = st.session_state.get(_FOLDERS, {})
    folder = memo.get((data.key, data.checksum))
    if job is None or folder is None:
        return
    if job.running or (job.folder is not None and job.folder != folder):
        _poll_ranker_job((data.key, data.checksum), folder)
    elif job.error is not None:
        st.caption(f"Purchase model not trained: {job.error}")


@st.cache_resource(show_spinner=False, max_entries=4)
def _service_for(key: str, checksum: str, folder: str, _lab: TrainedLab) -> RecommendationService:
    """One service per (dataset key, data checksum, version folder)."""
    return RecommendationService(_lab)


def service(data: ActiveData | None = None) -> RecommendationService:
    """The recommendation service of the active dataset (trains on the very first start)."""
    data = data or active_data()
    lab = lab_for(data)
    return _service_for(data.key, data.checksum, str(lab.path), lab)


def has_ranker(svc: RecommendationService) -> bool:
    """Whether the served lab has the purchase model."""
    return svc.lab.ranker is not None


def explainer_for(svc: RecommendationService) -> Any:
    """The SHAP explainer of the purchase model (built once per service and cached)."""
    return _explainer(str(svc.lab.path), svc)


@st.cache_resource(show_spinner="Preparing the SHAP explainer ...", max_entries=4)
def _explainer(folder: str, _svc: RecommendationService) -> Any:
    return _svc.explainer()
