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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core.data.dataset import canonical_event_frame
from recsys_core.errors import ArtifactError, ConfigError, RecsysError
from recsys_core.io_utils import atomic_write_text, raise_if_disk_full
from recsys_core.models import (
    MatrixRecommender,
    load_model,
)
from recsys_core.models.registry import (
    POPULARITY,
    cold_start_model,
    purchase_model,
    trained_by_default,
)
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
    "TrainedLab",
    "activate_version",
    "list_versions",
    "load_lab",
    "models_root",
    "record_metrics",
    "resolve_version",
    "save_lab",
]

#: The drift reference bins stored with every version (recsys_core.monitoring).
DRIFT_REFERENCE = "drift_reference.json"
#: Folder of the shopper-level order model inside a version folder.
ORDER_MODEL_DIR = "order_model"
#: The training log's bought pairs (only for logs where they differ from the seen pairs).
BOUGHT_PAIRS = "bought.parquet"
#: When each shopper last bought each item (the list policy's "bought in the last N days").
LAST_PURCHASES = "last_purchases.parquet"
FORMAT_VERSION = 1
#: Models a lab trains by default (the ranker brings its own ALS and item-kNN).
DEFAULT_MODELS: tuple[str, ...] = trained_by_default()


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
    #: When each shopper last bought each item (``user_id, item_id, timestamp``;
    #: :func:`recsys_core.repeats.last_purchases`); ``None`` for a log without timestamps
    #: and for versions saved before it was kept (the filter then asks to retrain).
    last_purchases: pd.DataFrame | None = None

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
        if lab.last_purchases is not None:
            lab.last_purchases.to_parquet(tmp / LAST_PURCHASES, index=False)
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
    found = manifest.get("format_version") if isinstance(manifest, dict) else None
    if found != FORMAT_VERSION:
        # a folder written by another release of the lab (or not a lab): refuse clearly
        # rather than misread it; every model part also checks its own format version
        raise ArtifactError(
            f"{folder / MANIFEST} has lab format version {found!r}; this release of the lab "
            f"reads version {FORMAT_VERSION}: retrain (`python -m recsys_core train ...`) or "
            "restore a backup made by this release"
        )
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
    for part in (BOUGHT_PAIRS, LAST_PURCHASES):  # so do the bought pairs and their times
        if (tmp / part).exists():
            parts.append(part)
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
        catalog = canonical_event_frame(catalog, ["item_id"])  # a file read: the id boundary
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
    read = _optional_frame_reader(folder, bad_parts, broken, plain_root, tolerant)
    bought = read(BOUGHT_PAIRS, "bought", "the bought pairs")
    last = read(LAST_PURCHASES, "last_purchases", "the purchase times")
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
        last_purchases=last,
    )


def _optional_frame_reader(
    folder: Path,
    bad_parts: dict[str, str],
    broken: dict[str, str],
    plain_root: Path,
    tolerant: bool,
) -> Callable[[str, str, str], pd.DataFrame | None]:
    """A reader of the version's optional Parquet parts (bought pairs, purchase times):
    ``None`` when the part is absent; a damaged one raises, or with ``tolerant`` is listed
    in ``broken[key]`` as "cannot read <what>" and read as absent."""

    def read(part: str, key: str, what: str) -> pd.DataFrame | None:
        if not (folder / part).exists():
            return None
        try:
            if part in bad_parts:
                raise ArtifactError(f"checksum check failed: {bad_parts[part]}")
            return canonical_event_frame(pd.read_parquet(_readable(folder, part, plain_root)))
        except Exception as exc:  # pyarrow raises several types for broken files
            if not tolerant:
                raise ArtifactError(f"cannot read {folder / part}: {exc}") from exc
            broken[key] = f"cannot read {what}: {exc}"
            return None

    return read


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
