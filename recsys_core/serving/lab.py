"""A trained lab: every model fitted on one dataset, saved as one versioned folder.

Layout under ``$RECSYS_HOME``::

    models/<dataset>/<version>/manifest.json         what was trained, when, on which data
    models/<dataset>/<version>/catalog.parquet       titles for the answers
    models/<dataset>/<version>/drift_reference.json  reference bins for drift monitoring
    models/<dataset>/<version>/<model>/              each model's own save() folder
    models/<dataset>/<version>/checksums.json        SHA-256 of every other file, written last
    models/<dataset>/ACTIVE                          the version the CLI and app serve
    models/LAST                                      "<dataset>/<version>" last activated

Nothing is pickled. A folder is written under a temporary name and renamed when complete,
so a crash never leaves a half-written version behind, and the previous version stays active
until the new one is complete. Pointers, checksums, history, backup and restore belong to
:mod:`recsys_core.serving.registry`.

Loading is per model (:func:`load_lab` with ``tolerant=True``): a model whose files fail
their checksum or fail to load is left out and listed in :attr:`TrainedLab.broken` with the
reason, so the service can serve the others.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recsys_core.data.schema import Dataset
from recsys_core.errors import ArtifactError, ConfigError, RecsysError
from recsys_core.evaluation import (
    ProgressCallback,
    data_checksum,
    library_versions,
    no_progress,
)
from recsys_core.interactions import EventWeights, InteractionMatrix
from recsys_core.io_utils import atomic_write_text, raise_if_disk_full
from recsys_core.models import (
    MODEL_NAMES,
    MODEL_REGISTRY,
    MatrixRecommender,
    create_model,
    load_model,
    model_class,
)
from recsys_core.models.registry import (
    ALS,
    ALS_SPARK,
    POPULARITY,
    cold_start_model,
    purchase_model,
    trained_by_default,
)
from recsys_core.presets import Preset
from recsys_core.serving.registry import (
    MANIFEST,
    activate_version,
    keep_versions_setting,
    list_versions,
    models_root,
    prune,
    resolve_version,
    safe_name,
    update_checksums,
    verify_version,
    write_checksums,
)

__all__ = [
    "DEFAULT_MODELS",
    "MANIFEST",
    "StoredPopularity",
    "TrainConfig",
    "TrainedLab",
    "activate_version",
    "headline_metrics",
    "list_versions",
    "load_lab",
    "models_root",
    "record_metrics",
    "resolve_version",
    "save_lab",
    "train_lab",
]

#: The drift reference bins stored with every version (recsys_core.monitoring).
DRIFT_REFERENCE = "drift_reference.json"
#: Folder of the shopper-level order model inside a version folder.
ORDER_MODEL_DIR = "order_model"
#: The training log's bought pairs (only for logs where they differ from the seen pairs).
BOUGHT_PAIRS = "bought.parquet"
FORMAT_VERSION = 1
#: Models a lab trains by default (the ranker brings its own ALS and item-kNN).
DEFAULT_MODELS: tuple[str, ...] = trained_by_default()


class TrainConfig(BaseModel):
    """What :func:`train_lab` fits."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MODELS),
        description="Models to train; 'ranker' needs timestamps and is skipped without them.",
    )
    weights: EventWeights | None = Field(
        None,
        description="Event weights (default: the settings that apply to the dataset, "
        "recsys_core.tuning.settings_for).",
    )
    model_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-model settings, e.g. {'als': {'factors': 128}}; they override the "
        "dataset's preset.",
    )
    seed: int = Field(42, description="Seed of every model.")
    settings: Preset | None = Field(
        None,
        description="Settings to start from instead of those that apply to the dataset "
        "(recsys_core.tuning.settings_for); Preset() means the models' own defaults.",
    )
    headline_metrics: bool = Field(
        True,
        description="Record headline metrics at training time: the single-stage models are "
        "refitted on the log minus its last 30 days and scored on those days (the ranker is "
        "not, it is costly; the Model lab can record it).",
    )
    engine: Literal["implicit", "spark"] = Field(
        "implicit",
        description="Who trains the served 'als' model: implicit on this machine, or Spark "
        "MLlib (the 'als-spark' model, saved in the same format). With 'spark' the ranker's "
        "Narwhals feature groups run on Spark too; its own stage-one ALS stays on implicit.",
    )
    spark_master: str | None = Field(
        None, description="Spark master URL with engine='spark' (default local[*])."
    )


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
    #: Models that could not be loaded, with the reason (checksum mismatch, unreadable file).
    broken: dict[str, str] = field(default_factory=dict)
    #: Drift reference bins of the training log (:func:`recsys_core.monitoring.reference_profile`).
    reference: dict[str, Any] | None = None
    #: The shopper-level order model (recsys_core.ranking.order_model), when trained.
    order_model: Any | None = None
    #: Distinct (user_id, item_id) purchase pairs of the training log, kept only when they
    #: differ from the pairs the models have seen (a log with views); the service leaves them
    #: out of lists under the already-bought rule (``manifest["repeats"]``).
    bought: pd.DataFrame | None = None

    @property
    def ranker(self) -> Any | None:
        """The two-stage purchase model, if trained."""
        return self.models.get(purchase_model())

    @property
    def model_names(self) -> list[str]:
        """Names of the trained models."""
        return list(self.models)

    def model(self, name: str) -> Any:
        """A trained model by name, or a clear error listing the trained ones."""
        try:
            return self.models[name]
        except KeyError:
            if name in self.broken:
                raise ArtifactError(
                    f"model {name!r} of version {self.version} is broken: {self.broken[name]}"
                ) from None
            raise ConfigError(
                f"model {name!r} is not trained in version {self.version}; trained: "
                f"{', '.join(self.models)}"
            ) from None


def train_lab(
    dataset: Dataset,
    config: TrainConfig | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> TrainedLab:
    """Fit the configured models on every event of ``dataset``.

    The ranker is fitted for "now" (one second after the last event). Every model is its own
    fit: the served ``als`` and ``itemknn`` are not the ranker's stage-one models (those are
    sized for candidate generation), and each list is explained by the model that served it
    (:mod:`recsys_core.explain`).
    """
    from recsys_core.tuning import ResolvedSettings, settings_for

    config = config or TrainConfig()
    checksum = data_checksum(dataset.events)
    settings = (
        settings_for(dataset, checksum=checksum)
        if config.settings is None
        else ResolvedSettings(config.settings, "given", "given settings")
    )
    preset = settings.preset
    params_by_model = {name: dict(p) for name, p in preset.model_params.items()}
    for name, own in config.model_params.items():
        params_by_model.setdefault(name, {}).update(own)
    weights = config.weights or preset.weights
    config = config.model_copy(update={"weights": weights, "model_params": params_by_model})
    model_weights = dict(preset.model_weights)
    progress = progress or no_progress
    names = list(dict.fromkeys(config.models))
    unknown = [n for n in names if n not in MODEL_NAMES]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; choose from {list(MODEL_NAMES)}")
    notes: list[str] = [*settings.notes, settings.line()]
    for name in list(names):
        why_not = model_class(name).cannot_train_on(dataset.events)
        if why_not is not None:
            names.remove(name)
            notes.append(why_not)
    models: dict[str, Any] = {}
    timings: dict[str, float] = {}
    steps = len(names) + 1
    progress("building the interaction matrix", 0.0)
    matrix = InteractionMatrix.from_events(dataset.events, weights)
    for i, name in enumerate(names):
        progress(f"training {name}", (i + 1) / steps)
        params = dict(config.model_params.get(name, {}))
        if (
            config.engine == "spark"
            and "feature_engine" in model_class(name).config_class.model_fields
        ):
            params.update(feature_engine="spark", spark_master=config.spark_master)
        start = time.perf_counter()
        if name == ALS and config.engine == "spark":
            models[ALS] = _fit_spark_als(config, params_by_model, fit_on=matrix)
            notes.append(
                "the served ALS was trained by Spark MLlib (model 'als-spark', master "
                f"{models[ALS].config.spark_master or 'default'}); the purchase model's "
                "candidates come from its own implicit ALS"
            )
            timings[name] = round(time.perf_counter() - start, 3)
            continue
        if "seed" in model_class(name).config_class.model_fields:
            params.setdefault("seed", config.seed)
        fit_on = matrix
        if name in model_weights:
            fit_on = InteractionMatrix.from_events(dataset.events, model_weights[name])

        def fit_progress(message: str, fraction: float, step: int = i + 1, of: str = name) -> None:
            progress(f"{of}: {message}", (step + fraction) / steps)

        model = create_model(name, **params).fit_log(
            dataset.events, dataset.catalog, matrix=fit_on, progress=fit_progress
        )
        models[name] = model
        timings[name] = round(time.perf_counter() - start, 3)
    # the shopper-level order model completes a model scoring conditional purchase chances
    needs_order_model = any(model_class(n).scores_are_probabilities for n in names)
    order_model = (
        _train_order_model(dataset, config.seed, notes, timings) if needs_order_model else None
    )
    metrics: dict[str, Any] = {}
    if config.headline_metrics:
        progress("recording headline metrics (last 30 days held out)", len(names) / steps)
        metrics = _training_metrics(dataset, config, names, notes)
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
        "settings": {
            "origin": settings.origin,
            "label": settings.label,
            "filter_seen": preset.filter_seen,
            "model_weights": {n: w.model_dump() for n, w in model_weights.items()},
        },
        "data": {**dataset.summary(), "sha256": checksum},
        "library_versions": library_versions(),
        "notes": notes,
        "metrics": metrics,
        "order_model": order_model is not None,
    }
    from recsys_core.monitoring import reference_profile

    bought = _repeat_rule(dataset, manifest)
    return TrainedLab(
        dataset=dataset.name,
        version=version,
        created=str(manifest["created"]),
        catalog=dataset.catalog,
        models=ordered,
        manifest=manifest,
        reference=reference_profile(dataset.events),
        order_model=order_model,
        bought=bought,
    )


def _repeat_rule(dataset: Dataset, manifest: dict[str, Any]) -> pd.DataFrame | None:
    """Store the training log's repeat profile (:func:`recsys_core.repeats.repeat_profile`,
    the rule evaluation applies) in ``manifest["repeats"]``; return the bought pairs when
    they are not simply every pair the models saw (else ``None``: their own filter is it)."""
    from recsys_core.columns import Columns
    from recsys_core.repeats import bought_pairs, repeat_profile

    bought = bought_pairs(dataset.events)
    seen = dataset.events[[Columns.USER, Columns.ITEM]].astype(str).drop_duplicates()
    same_as_seen = len(bought) == len(seen)
    profile = repeat_profile(dataset.events).to_dict()
    manifest["repeats"] = {**profile, "bought_is_seen": same_as_seen}
    return None if same_as_seen else bought


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


def _fit_spark_als(
    config: TrainConfig, params_by_model: dict[str, dict[str, Any]], fit_on: InteractionMatrix
) -> MatrixRecommender:
    """The lab's 'als' model trained on Spark, with the dataset's Spark preset."""
    params = dict(params_by_model.get(ALS_SPARK, {}))
    params.setdefault("seed", config.seed)
    if config.spark_master is not None:
        params["spark_master"] = config.spark_master
    return MODEL_REGISTRY[ALS_SPARK](**params).fit(fit_on)


def _training_metrics(
    dataset: Dataset, config: TrainConfig, names: list[str], notes: list[str]
) -> dict[str, Any]:
    """Headline metrics of the single-stage models on the log's last 30 days (cheap)."""
    from recsys_core.evaluation import EvaluationConfig, evaluate

    single_stage = [n for n in names if not model_class(n).stage_one_models]
    two_stage = [n for n in names if n not in single_stage]
    # two-stage models are costly to evaluate: their stage-one models stand in for them
    wanted = single_stage + [
        stage
        for n in two_stage
        for stage in model_class(n).stage_one_models
        if stage not in single_stage
    ]
    wanted = list(dict.fromkeys(wanted))
    if not wanted:
        return {}
    eval_config = EvaluationConfig(
        models=wanted,
        weights=config.weights,
        model_params={n: p for n, p in config.model_params.items() if n in wanted},
        seed=config.seed,
        new_items_variant=False,
    )
    try:
        result = evaluate(dataset, eval_config)
    except RecsysError as exc:
        notes.append(f"no headline metrics recorded at training: {exc}")
        return {}
    metrics = headline_metrics(result)
    metrics["recorded_by"] = "train (single-stage models, last 30 days held out)"
    return metrics


def headline_metrics(result: Any) -> dict[str, Any]:
    """What :func:`record_metrics` stores: the core of an evaluation's JSON."""
    payload = result.to_json()
    models = {
        name: {k: v for k, v in entry.items() if k not in ("params", "new_items_only")}
        for name, entry in payload["models"].items()
    }
    return {
        "k": payload["k"],
        "evaluated": payload["provenance"].get("created"),
        "split": payload["split"],
        "models": models,
        "classifier": payload.get("classifier"),
    }


def save_lab(
    lab: TrainedLab,
    home: Path | None = None,
    *,
    activate: bool = True,
    keep: int | None = None,
) -> Path:
    """Write ``lab`` as a new version folder and (by default) make it the active one.

    The checksum manifest is written last, then the folder is renamed into place; a crash
    before that leaves the previous version active and intact. After activation, older
    versions beyond ``keep`` (default ``$RECSYS_KEEP_VERSIONS`` or 10) are pruned.
    """
    root = models_root(home) / safe_name(lab.dataset)
    base = "-".join(lab.version.split("-")[:2])  # without a "-N" of an earlier save
    final = root / base
    suffix = 1
    while final.exists():  # two trainings in the same second
        final = root / f"{base}-{suffix}"
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
        if lab.reference is not None:
            atomic_write_text(tmp / DRIFT_REFERENCE, json.dumps(lab.reference, default=str))
        if lab.bought is not None:
            lab.bought.to_parquet(tmp / BOUGHT_PAIRS, index=False)
        _encrypt_if_asked(lab, tmp)  # h11: RECSYS_ENCRYPT_ARTIFACTS
        atomic_write_text(tmp / MANIFEST, json.dumps(lab.manifest, indent=2, default=str))
        write_checksums(tmp)
        tmp.rename(final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise_if_disk_full(exc, f"version {final.name}", root)  # issue 23: not a traceback
        raise
    lab.path = final
    if activate:
        activate_version(lab.dataset, final.name, home, why="train")
        prune(lab.dataset, keep if keep is not None else keep_versions_setting(), home)
    return final


def load_lab(folder: Path, *, tolerant: bool = False) -> TrainedLab:
    """Load a saved version folder, each model on its own.

    With ``tolerant=True`` every file is first checked against ``checksums.json``; a model
    whose files fail the check or fail to load is left out and listed in
    :attr:`TrainedLab.broken` with the reason, and the popularity model is rebuilt from the
    stored training counts when its own files are broken. A damaged catalog leaves titles
    empty (answers show item ids). Only an unreadable manifest is fatal.

    Raises
    ------
    ArtifactError
        An unreadable manifest; without ``tolerant``, also any damaged catalog or model
        (the message names it).
    """
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read {folder / MANIFEST}: {exc}") from exc
    bad_parts = verify_version(folder).broken_parts() if tolerant else {}
    broken: dict[str, str] = {}
    encrypted = bool(manifest.get("encrypted"))
    plain_root = Path(tempfile.mkdtemp(prefix="recsys-decrypted-")) if encrypted else folder
    try:
        return _load_parts(folder, manifest, bad_parts, broken, plain_root, tolerant)
    finally:
        if encrypted:
            shutil.rmtree(plain_root, ignore_errors=True)


def _readable(folder: Path, part: str, plain_root: Path) -> Path:
    """``folder/part`` as a readable path: decrypted into ``plain_root`` when encrypted."""
    if plain_root == folder:
        return folder / part
    from recsys_core.security.encryption import decrypt_tree

    return decrypt_tree(folder, part, plain_root)


def _encrypt_if_asked(lab: TrainedLab, tmp: Path) -> None:
    """Encrypt every part of a version being saved (models, order model, catalog, drift
    reference) when the setting asks; only the manifest and checksums stay readable."""
    from recsys_core.security.settings import get_settings

    if not get_settings().encrypt_artifacts:
        return
    from recsys_core.security.encryption import encrypt_tree

    parts = [*lab.models, "catalog.parquet"]
    if (tmp / ORDER_MODEL_DIR).exists():
        parts.append(ORDER_MODEL_DIR)
    if (tmp / DRIFT_REFERENCE).exists():  # it lists the training shoppers' ids
        parts.append(DRIFT_REFERENCE)
    if (tmp / BOUGHT_PAIRS).exists():  # so do the bought pairs
        parts.append(BOUGHT_PAIRS)
    encrypt_tree(tmp, parts)
    lab.manifest["encrypted"] = True


def _load_parts(
    folder: Path,
    manifest: dict[str, Any],
    bad_parts: dict[str, str],
    broken: dict[str, str],
    plain_root: Path,
    tolerant: bool,
) -> TrainedLab:
    """The body of :func:`load_lab` (models and catalog read from ``plain_root``)."""
    try:
        if "catalog.parquet" in bad_parts:
            raise ArtifactError(bad_parts["catalog.parquet"])
        catalog = pd.read_parquet(_readable(folder, "catalog.parquet", plain_root))
    except Exception as exc:  # pyarrow raises several types for broken files
        if not tolerant:
            raise ArtifactError(f"cannot read the catalog of {folder}: {exc}") from exc
        broken["catalog"] = f"cannot read the catalog: {exc}"
        catalog = pd.DataFrame({"item_id": pd.Series(dtype=str), "title": pd.Series(dtype=str)})
    reference = _read_reference(folder) if DRIFT_REFERENCE not in bad_parts else None
    models: dict[str, Any] = {}
    for name in manifest.get("models", []):
        path = folder / name
        try:
            if name in bad_parts:
                raise ArtifactError(f"checksum check failed: {bad_parts[name]}")
            path = _readable(folder, name, plain_root)
            models[name] = load_model(path)
        except Exception as exc:
            if not tolerant:
                if isinstance(exc, RecsysError):
                    raise
                raise ArtifactError(f"cannot load model {name!r} from {path}: {exc}") from exc
            broken[name] = str(exc) if isinstance(exc, RecsysError) else f"cannot load: {exc}"
    if tolerant and cold_start_model() not in models and reference is not None:
        models[cold_start_model()] = StoredPopularity.from_reference(reference)
    order_model = None
    if manifest.get("order_model"):
        from recsys_core.ranking.order_model import OrderModel

        try:
            if ORDER_MODEL_DIR in bad_parts:
                raise ArtifactError(f"checksum check failed: {bad_parts[ORDER_MODEL_DIR]}")
            order_model = OrderModel.load(_readable(folder, ORDER_MODEL_DIR, plain_root))
        except RecsysError as exc:
            if not tolerant:
                raise
            broken["order"] = str(exc)
    bought = None
    if (folder / BOUGHT_PAIRS).exists():
        try:
            if BOUGHT_PAIRS in bad_parts:
                raise ArtifactError(f"checksum check failed: {bad_parts[BOUGHT_PAIRS]}")
            bought = pd.read_parquet(_readable(folder, BOUGHT_PAIRS, plain_root))
        except Exception as exc:  # pyarrow raises several types for broken files
            if not tolerant:
                raise ArtifactError(f"cannot read {folder / BOUGHT_PAIRS}: {exc}") from exc
            broken["bought"] = f"cannot read the bought pairs: {exc}"
    return TrainedLab(
        dataset=manifest["dataset"],
        version=folder.name,
        created=manifest.get("created", ""),
        catalog=catalog,
        models=models,
        manifest=manifest,
        path=folder,
        broken=broken,
        reference=reference,
        order_model=order_model,
        bought=bought,
    )


def _read_reference(folder: Path) -> dict[str, Any] | None:
    try:
        path = folder / DRIFT_REFERENCE
        from recsys_core.security.encryption import decrypting_stream, is_stream_encrypted

        if is_stream_encrypted(path):  # RECSYS_ENCRYPT_ARTIFACTS (h11)
            with path.open("rb") as raw:
                payload = json.loads(decrypting_stream(raw, path.name).read())
        else:
            payload = json.loads(path.read_text())
    except (OSError, ValueError, RecsysError):
        return None
    return payload if isinstance(payload, dict) else None


class StoredPopularity:
    """The last-resort answer: items by how many training shoppers touched them.

    Rebuilt from the counts stored with every version (``drift_reference.json``), so a
    version whose model files are all damaged can still answer. It does not know shoppers'
    histories, so ``filter_seen`` cannot remove anything.
    """

    name = POPULARITY
    # the capabilities every served model declares (recsys_core.models.interface)
    requires_timestamps = False
    scores_are_probabilities = False
    stage_one_models: tuple[str, ...] = ()
    slow_to_train = False

    def __init__(self, items: list[str], counts: list[float]) -> None:
        order = sorted(range(len(items)), key=lambda i: (-counts[i], items[i]))
        self.items_ = [str(items[i]) for i in order]
        self.counts_ = [float(counts[i]) for i in order]
        self.users_: tuple[str, ...] = ()

    @classmethod
    def from_reference(cls, reference: dict[str, Any]) -> StoredPopularity:
        """Build from a drift reference's ``item_shoppers`` counts."""
        popularity = reference.get("item_shoppers") or {}
        return cls(list(popularity), [float(v) for v in popularity.values()])

    def recommend(self, user_ids: list[str], k: int = 10, *, filter_seen: bool) -> pd.DataFrame:
        """The ``k`` most popular items for each shopper (``cold_start`` is False)."""
        rows = []
        for user in dict.fromkeys(str(u) for u in user_ids):
            top = zip(self.items_[:k], self.counts_[:k], strict=True)
            rows += [(user, item, count, rank, False) for rank, (item, count) in enumerate(top, 1)]
        return pd.DataFrame(rows, columns=["user_id", "item_id", "score", "rank", "cold_start"])

    def known_users(self) -> list[str]:
        """None: the stored counts do not know shoppers."""
        return []

    def similar_items(self, item_ids: list[str], k: int = 10) -> pd.DataFrame:
        """Not available: the stored counts say nothing about co-occurrence."""
        raise ArtifactError(
            "similar items need a trained model; the popularity model was rebuilt from counts"
        )


def record_metrics(lab: TrainedLab, metrics: dict[str, Any]) -> None:
    """Store headline evaluation metrics in the saved manifest (shown by the app and CLI).

    The manifest's checksum entry is refreshed; other files keep theirs.
    """
    lab.manifest["metrics"] = metrics
    if lab.path is not None:
        atomic_write_text(lab.path / MANIFEST, json.dumps(lab.manifest, indent=2, default=str))
        update_checksums(lab.path, [MANIFEST])


def is_recommender(model: Any) -> bool:
    """Whether ``model`` is a single-stage recommender (not a two-stage model)."""
    return isinstance(model, MatrixRecommender)
