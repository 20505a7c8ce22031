"""A trained lab: every model fitted on one dataset, saved as one versioned folder.

Layout under ``$RECSYS_HOME``::

    models/<dataset>/<version>/manifest.json      what was trained, when, on which data
    models/<dataset>/<version>/catalog.parquet    titles for the answers
    models/<dataset>/<version>/<model>/           each model's own save() folder
    models/<dataset>/ACTIVE                       the version the CLI and app serve
    models/LAST                                   "<dataset>/<version>" of the last training

Nothing is pickled. A folder is written under a temporary name and renamed when complete,
so a crash never leaves a half-written version behind, and the previous version stays active
until the new one is complete.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recsys_core.data.schema import Dataset
from recsys_core.errors import ArtifactError, ConfigError, ModelNotTrainedError, RecsysError
from recsys_core.evaluation import (
    ProgressCallback,
    data_checksum,
    library_versions,
    no_progress,
)
from recsys_core.interactions import EventWeights, InteractionMatrix
from recsys_core.io_utils import atomic_write_text
from recsys_core.models import Recommender, create_model, load_model
from recsys_core.paths import recsys_home
from recsys_core.presets import preset_for

MANIFEST = "manifest.json"
#: Folder of the shopper-level order model inside a version folder.
ORDER_MODEL_DIR = "order_model"
FORMAT_VERSION = 1
#: Models a lab trains by default (the ranker brings its own ALS and item-kNN).
DEFAULT_MODELS: tuple[str, ...] = ("popularity", "itemknn", "bpr", "als", "ranker")


class TrainConfig(BaseModel):
    """What :func:`train_lab` fits."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MODELS),
        description="Models to train; 'ranker' needs timestamps and is skipped without them.",
    )
    weights: EventWeights | None = Field(
        None, description="Event weights (default: the dataset's preset, recsys_core.presets)."
    )
    model_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-model settings, e.g. {'als': {'factors': 128}}; they override the "
        "dataset's preset.",
    )
    seed: int = Field(42, description="Seed of every model.")


@dataclass
class TrainedLab:
    """Fitted models of one dataset plus what the answers need (titles, provenance)."""

    dataset: str
    version: str
    created: str
    catalog: pd.DataFrame
    models: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    #: The shopper-level order model (recsys_core.ranking.order_model), when trained.
    order_model: Any | None = None

    @property
    def ranker(self) -> Any | None:
        """The two-stage purchase model, if trained."""
        return self.models.get("ranker")

    @property
    def model_names(self) -> list[str]:
        """Names of the trained models."""
        return list(self.models)

    def model(self, name: str) -> Any:
        """A trained model by name, or a clear error listing the trained ones."""
        try:
            return self.models[name]
        except KeyError:
            raise ConfigError(
                f"model {name!r} is not trained in version {self.version}; trained: "
                f"{', '.join(self.models)}"
            ) from None


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"


def models_root(home: Path | None = None) -> Path:
    """``$RECSYS_HOME/models``."""
    return (home or recsys_home()) / "models"


def train_lab(
    dataset: Dataset,
    config: TrainConfig | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> TrainedLab:
    """Fit the configured models on every event of ``dataset``.

    The ranker is fitted for "now" (one second after the last event); its stage-one ALS and
    item-kNN are served as the ``als`` and ``itemknn`` models so the same factors explain
    and generate candidates.
    """
    from recsys_core.models import MODEL_REGISTRY

    config = config or TrainConfig()
    preset = preset_for(dataset.name)
    params_by_model = {name: dict(p) for name, p in preset.model_params.items()}
    for name, own in config.model_params.items():
        params_by_model.setdefault(name, {}).update(own)
    weights = config.weights or preset.weights
    config = config.model_copy(update={"weights": weights, "model_params": params_by_model})
    model_weights = dict(preset.model_weights)
    progress = progress or no_progress
    names = list(dict.fromkeys(config.models))
    unknown = [n for n in names if n not in (*MODEL_REGISTRY, "ranker")]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; choose from {[*MODEL_REGISTRY, 'ranker']}")
    notes: list[str] = []
    if "ranker" in names and not dataset.has_timestamps:
        names.remove("ranker")
        notes.append("the purchase model (ranker) needs timestamps; this log has none")
    models: dict[str, Any] = {}
    timings: dict[str, float] = {}
    steps = len(names) + 1
    progress("building the interaction matrix", 0.0)
    matrix = InteractionMatrix.from_events(dataset.events, weights)
    order = ["ranker", *[n for n in names if n != "ranker"]] if "ranker" in names else names
    for i, name in enumerate(order):
        progress(f"training {name}", (i + 1) / steps)
        params = dict(config.model_params.get(name, {}))
        start = time.perf_counter()
        if name == "ranker":
            from recsys_core.ranking import TwoStageRanker

            params.setdefault("seed", config.seed)

            def ranker_progress(message: str, fraction: float, step: int = i + 1) -> None:
                progress(f"ranker: {message}", (step + fraction) / steps)

            ranker = TwoStageRanker(**params).fit(
                dataset.events, dataset.catalog, progress=ranker_progress
            )
            models["ranker"] = ranker
            # Serve the ranker's own stage-one models: one set of factors everywhere.
            if "als" in names and "als" not in config.model_params:
                models["als"] = ranker.generator_.als_
            if "itemknn" in names and "itemknn" not in config.model_params:
                models["itemknn"] = ranker.generator_.itemknn_
        elif name in models:  # served from the ranker's stage one: trained with it
            continue
        else:
            if "seed" in MODEL_REGISTRY[name].config_class.model_fields:
                params.setdefault("seed", config.seed)
            fit_on = matrix
            if name in model_weights:
                fit_on = InteractionMatrix.from_events(dataset.events, model_weights[name])
            models[name] = create_model(name, **params).fit(fit_on)
        timings[name] = round(time.perf_counter() - start, 3)
    order_model = (
        _train_order_model(dataset, config.seed, notes, timings) if "ranker" in names else None
    )
    progress("done", 1.0)
    created = datetime.now(timezone.utc)
    version = created.strftime("%Y%m%d-%H%M%S")
    ordered = {n: models[n] for n in DEFAULT_MODELS if n in models}
    ordered.update({n: m for n, m in models.items() if n not in ordered})
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "dataset": dataset.name,
        "version": version,
        "created": created.isoformat(timespec="seconds"),
        "models": list(ordered),
        "fit_seconds": timings,
        "config": config.model_dump(mode="json"),
        "data": {**dataset.summary(), "sha256": data_checksum(dataset.events)},
        "library_versions": library_versions(),
        "notes": notes,
        "metrics": {},
        "order_model": order_model is not None,
    }
    return TrainedLab(
        dataset=dataset.name,
        version=version,
        created=str(manifest["created"]),
        catalog=dataset.catalog,
        models=ordered,
        manifest=manifest,
        order_model=order_model,
    )


def _train_order_model(
    dataset: Dataset, seed: int, notes: list[str], timings: dict[str, float]
) -> Any | None:
    """The shopper-level order model, or ``None`` with a note when the log is too short."""
    from recsys_core.ranking.order_model import OrderModel

    start = time.perf_counter()
    try:
        model = OrderModel(seed=seed).fit(dataset.events)
    except RecsysError as exc:
        notes.append(f"the order model could not be trained: {exc}")
        return None
    timings["order"] = round(time.perf_counter() - start, 3)
    return model


def save_lab(lab: TrainedLab, home: Path | None = None, *, activate: bool = True) -> Path:
    """Write ``lab`` as a new version folder and (by default) make it the active one."""
    root = models_root(home) / _safe_name(lab.dataset)
    final = root / lab.version
    suffix = 1
    while final.exists():  # two trainings in the same second
        final = root / f"{lab.version}-{suffix}"
        suffix += 1
    lab.version = final.name
    lab.manifest["version"] = final.name
    tmp = root / f".{final.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name, model in lab.models.items():
            model.save(tmp / name)
        if lab.order_model is not None:
            lab.order_model.save(tmp / ORDER_MODEL_DIR)
        lab.catalog.to_parquet(tmp / "catalog.parquet", index=False)
        atomic_write_text(tmp / MANIFEST, json.dumps(lab.manifest, indent=2, default=str))
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    lab.path = final
    if activate:
        activate_version(lab.dataset, final.name, home)
    return final


def activate_version(dataset: str, version: str, home: Path | None = None) -> None:
    """Make ``version`` the one served for ``dataset`` (and the last trained overall)."""
    root = models_root(home)
    folder = root / _safe_name(dataset) / version
    if not (folder / MANIFEST).exists():
        raise ArtifactError(f"no trained version {version!r} of dataset {dataset!r} in {root}")
    atomic_write_text(root / _safe_name(dataset) / "ACTIVE", version + "\n")
    atomic_write_text(root / "LAST", f"{_safe_name(dataset)}/{version}\n")


def list_versions(dataset: str | None = None, home: Path | None = None) -> list[dict[str, Any]]:
    """Saved versions (newest first) with their manifest and whether each is active."""
    root = models_root(home)
    if not root.exists():
        return []
    out = []
    folders = [root / _safe_name(dataset)] if dataset else [p for p in root.iterdir() if p.is_dir()]
    for ds_folder in folders:
        active_file = ds_folder / "ACTIVE"
        active = active_file.read_text().strip() if active_file.exists() else None
        for vfolder in sorted(ds_folder.glob("[0-9]*"), reverse=True):
            try:
                manifest = json.loads((vfolder / MANIFEST).read_text())
            except (OSError, ValueError):
                continue
            out.append(
                {
                    "dataset": manifest.get("dataset", ds_folder.name),
                    "version": vfolder.name,
                    "created": manifest.get("created"),
                    "active": vfolder.name == active,
                    "path": str(vfolder),
                    "models": manifest.get("models", []),
                    "metrics": manifest.get("metrics", {}),
                    "data_sha256": manifest.get("data", {}).get("sha256"),
                }
            )
    return out


def resolve_version(
    dataset: str | None = None, version: str | None = None, home: Path | None = None
) -> Path:
    """Folder of the requested, active, or last trained version.

    Raises
    ------
    ModelNotTrainedError
        Nothing trained yet (the message says how to train).
    """
    root = models_root(home)
    if dataset is None:
        last = root / "LAST"
        if not last.exists():
            raise ModelNotTrainedError(
                "no trained model yet: run `python -m recsys_core train --dataset online-retail` "
                "(or --data PATH) first"
            )
        ds_name, _, last_version = last.read_text().strip().partition("/")
        dataset, version = ds_name, version or last_version
    ds_folder = root / _safe_name(dataset)
    if version is None:
        active = ds_folder / "ACTIVE"
        if not active.exists():
            raise ModelNotTrainedError(
                f"no trained model for dataset {dataset!r}: run `python -m recsys_core train "
                f"--dataset {dataset}` first"
            )
        version = active.read_text().strip()
    folder = ds_folder / version
    if not folder.exists():
        raise ArtifactError(f"trained version {version!r} of {dataset!r} is missing ({folder})")
    return folder


def load_lab(folder: Path) -> TrainedLab:
    """Load a saved version folder.

    Raises
    ------
    ArtifactError
        A missing or damaged manifest, catalog or model folder (the message names it).
    """
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read {folder / MANIFEST}: {exc}") from exc
    try:
        catalog = pd.read_parquet(folder / "catalog.parquet")
    except Exception as exc:  # pyarrow raises several types for broken files
        raise ArtifactError(f"cannot read the catalog of {folder}: {exc}") from exc
    models: dict[str, Any] = {}
    for name in manifest.get("models", []):
        path = folder / name
        try:
            if name == "ranker":
                from recsys_core.ranking import TwoStageRanker

                models[name] = TwoStageRanker.load(path)
            else:
                models[name] = load_model(path)
        except RecsysError:
            raise
        except Exception as exc:
            raise ArtifactError(f"cannot load model {name!r} from {path}: {exc}") from exc
    order_model = None
    if manifest.get("order_model"):
        from recsys_core.ranking.order_model import OrderModel

        order_model = OrderModel.load(folder / ORDER_MODEL_DIR)
    return TrainedLab(
        dataset=manifest["dataset"],
        version=folder.name,
        created=manifest.get("created", ""),
        catalog=catalog,
        models=models,
        manifest=manifest,
        path=folder,
        order_model=order_model,
    )


def record_metrics(lab: TrainedLab, metrics: dict[str, Any]) -> None:
    """Store headline evaluation metrics in the saved manifest (shown by the app and CLI)."""
    lab.manifest["metrics"] = metrics
    if lab.path is not None:
        atomic_write_text(lab.path / MANIFEST, json.dumps(lab.manifest, indent=2, default=str))


def is_recommender(model: Any) -> bool:
    """Whether ``model`` is a single-stage recommender (not the ranker)."""
    return isinstance(model, Recommender)
