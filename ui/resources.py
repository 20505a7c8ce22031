"""Cached resources: datasets, their checksums, trained labs and recommendation services.

How a page gets its models (:func:`service`):

1. the active dataset is loaded (cached per key) and its event log checksummed
   (:func:`recsys_core.evaluation.data_checksum`, cached per key);
2. a saved version under ``$RECSYS_HOME`` trained on the same data (the manifest's
   ``data.sha256``) with every model this install can train is reused — the active version
   first, then the newest — and loaded once per process (``st.cache_resource``, keyed by
   its folder);
3. only when there is none, every model is trained (:func:`recsys_core.serving.train_lab`)
   with a visible progress bar, saved (:func:`recsys_core.serving.save_lab`) and reused by
   later starts.

Cached objects are shared by all sessions and never mutated, except by
:func:`recsys_core.serving.lab.record_metrics` (which updates the manifest it also saves).
"""

from __future__ import annotations

import importlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from recsys_core.data.builtin import load_dataset
from recsys_core.data.loaders import load_event_file
from recsys_core.data.schema import Dataset
from recsys_core.errors import RecsysError
from recsys_core.evaluation import data_checksum
from recsys_core.serving import (
    RecommendationService,
    TrainConfig,
    TrainedLab,
    list_versions,
    load_lab,
    save_lab,
    train_lab,
)
from recsys_core.serving.lab import DEFAULT_MODELS
from ui import auth, state

#: Session-state name of the (dataset key, checksum) -> version folder memo.
_FOLDERS = "lab_folders"
#: Start of the manifest note written when the ranker could not be trained on the data.
RANKER_FAILED = "the purchase model (ranker) could not be trained on this log"


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


def ranker_available() -> bool:
    """Whether this install provides the two-stage purchase model (``recsys_core.ranking``)."""
    try:
        ranking = importlib.import_module("recsys_core.ranking")
    except ImportError:
        return False
    return hasattr(ranking, "TwoStageRanker")


def wanted_models(dataset: Dataset) -> list[str]:
    """The models a lab for ``dataset`` should have: all, minus the ranker when impossible."""
    models = list(DEFAULT_MODELS)
    if not (ranker_available() and dataset.has_timestamps):
        models.remove("ranker")
    return models


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
    dataset: Dataset, models: list[str], *, activate: bool = True
) -> TrainedLab:
    """Train and save every model, showing progress; retry without the ranker if it fails.

    ``activate=False`` (uploads) saves the version without making it the one the CLI serves
    (no ``models/LAST``); an admin activates it from Operations if wanted.
    """
    with st.status(
        f"First start on {dataset.name}: training the models (this happens once) ...",
        expanded=True,
    ) as status:
        bar = st.progress(0.0, text="starting")

        def report(message: str, fraction: float) -> None:
            bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

        try:
            lab = train_lab(dataset, TrainConfig(models=models), progress=report)
        except RecsysError as exc:
            if "ranker" not in models:
                raise
            st.warning(f"The purchase model could not be trained: {exc}. Training the others.")
            models = [m for m in models if m != "ranker"]
            lab = train_lab(dataset, TrainConfig(models=models), progress=report)
            lab.manifest.setdefault("notes", []).append(f"{RANKER_FAILED}: {exc}")
        bar.progress(1.0, text="saving")
        folder = save_lab(lab, activate=activate)
        auth.record("train", {"dataset": dataset.name, "version": lab.version})
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


def lab_for(data: ActiveData) -> TrainedLab:
    """The trained lab of the active data: a matching saved version, or train one now."""
    memo: dict[tuple[str, str], str] = st.session_state.setdefault(_FOLDERS, {})
    folder = memo.get((data.key, data.checksum))
    if folder is not None:
        return _lab_at(folder)
    models = wanted_models(data.dataset)
    lab = _load_saved(data, models)
    if lab is None:
        lock = _training_lock()
        if not lock.acquire(blocking=False):
            with st.spinner("Another session is training models; waiting for it ..."):
                lock.acquire()
        try:
            lab = _load_saved(data, models)  # another session may have trained it meanwhile
            if lab is None:
                trained = _train_with_progress(
                    data.dataset, models, activate=not data.key.startswith(state.UPLOAD_PREFIX)
                )
                lab = _lab_at(str(trained.path), trained)
        finally:
            lock.release()
    memo[(data.key, data.checksum)] = str(lab.path)
    return lab


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
