"""Batch scoring: every shopper's top-k at once, to Parquet, and serving from that table.

:func:`score_batch` scores every shopper:

* single-stage models (``als``, ``bpr``, ``itemknn``, ``popularity``) with the model's own
  batch scoring, one call for up to 65,536 shoppers on the model's threads (what a bare
  implicit batch call does), ids kept as categorical codes (:func:`_matrix_batch`);
* the ``ranker`` in chunks on forked worker processes
  (:func:`~recsys_core.ranking.batch_scoring.map_chunks`; ``RECSYS_SCORING_WORKERS``,
  default the number of cores), through its batch candidate path
  (:class:`~recsys_core.ranking.candidate_scoring.ChunkScorer`) with the service's
  compiled trees.

:func:`write_batch` writes ``user_id, item_id, score, rank, cold_start`` (plus
``purchase_probability`` for the ranker) and records in the Parquet metadata which model and
version computed it and when. :class:`BatchTable` reads it back; a
:class:`~recsys_core.serving.service.RecommendationService` with a table attached answers
covered questions from it and says so (``"source": "batch"`` and ``computed_at``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_ids
from recsys_core.errors import ArtifactError, ConfigError, DataValidationError
from recsys_core.models.interface import PADDING_SCORE
from recsys_core.models.matrix import MatrixRecommender
from recsys_core.policy import (
    ListContext,
    ListPolicy,
    recommend_with_policy,
    uses_model_seen_filter,
)
from recsys_core.security.denylist import forgotten_among
from recsys_core.segments import segments_from_features, shopper_countries
from recsys_core.serving.hot_path import check_k
from recsys_core.serving.lab import TrainedLab

#: Parquet metadata key of the batch description.
METADATA_KEY = b"recsys_batch"
#: Shoppers per chunk (the ranker's, scored on worker processes).
DEFAULT_CHUNK = 512
#: Shoppers per call of a single-stage model's batch scoring: one call is what a bare batch
#: call does (and what ``recommend`` of every shopper computes, to the bit: smaller blocks
#: change the BLAS blocking and so the last bits of a score); bounded for huge shop logs.
DEFAULT_MATRIX_CHUNK = 65_536

Progress = Callable[[str, float], None]


@dataclass
class BatchResult:
    """Scored lists of many shoppers and how they were computed."""

    frame: pd.DataFrame
    model: str
    model_version: str
    dataset: str
    k: int
    computed_at: str
    seconds: float
    users: int
    policy: ListPolicy
    extra: dict[str, Any] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        """What :func:`write_batch` stores next to the rows."""
        return {
            "model": self.model,
            "model_version": self.model_version,
            "dataset": self.dataset,
            "k": self.k,
            "computed_at": self.computed_at,
            "seconds": round(self.seconds, 3),
            "users": self.users,
            "list_policy": self.policy.to_dict(),
            **self.extra,
        }


def read_user_ids(path: Path) -> list[str]:
    """Shopper ids from a text file (one per line), or a CSV/Parquet with a ``user_id`` column.

    Raises
    ------
    DataValidationError
        Unreadable file, no ``user_id`` column, or no ids.
    """
    try:
        if path.suffix.lower() == ".parquet":
            ids = pd.read_parquet(path, columns=[Columns.USER])[Columns.USER]
        elif path.suffix.lower() == ".csv":
            table = pd.read_csv(path, dtype=str)
            if Columns.USER not in table.columns:
                raise DataValidationError(
                    f"{path} has no {Columns.USER!r} column: give a CSV with one, or a text "
                    "file with one shopper id per line"
                )
            ids = table[Columns.USER]
        else:
            ids = pd.Series(path.read_text(encoding="utf-8").splitlines())
    except (OSError, ValueError, KeyError) as exc:
        raise DataValidationError(f"cannot read shopper ids from {path}: {exc}") from exc
    users = [str(u).strip() for u in ids.dropna() if str(u).strip()]
    if not users:
        raise DataValidationError(f"{path} holds no shopper ids")
    return list(dict.fromkeys(users))


def all_users(lab: TrainedLab, model: str) -> list[str]:
    """Every shopper the model can personalise for."""
    return list(lab.model(model).known_users())


def lab_context(lab: TrainedLab) -> ListContext:
    """The :class:`~recsys_core.policy.ListContext` of a lab (its bought pairs, catalog, when
    each pair was last bought, shopper segments and seen items, for merchandising rules): the
    one the service uses too."""
    return ListContext(
        bought=getattr(lab, "bought", None),
        catalog=lab.catalog,
        # when each pair was last bought: "hide items bought in the last N days"
        purchases=getattr(lab, "last_purchases", None),
        segments=lambda: lab_segments(lab),
        seen=_seen_items_of(lab),
    )


def lab_segments(lab: TrainedLab) -> pd.DataFrame | None:
    """The lab's shopper segments at the training cutoff (:mod:`recsys_core.segments`), from
    its order model's shopper features; ``None`` without an order model (a rule limited to a
    segment then applies to nobody)."""
    features = getattr(getattr(lab, "order_model", None), "features_", None)
    if features is None:
        return None
    return segments_from_features(features, countries=shopper_countries(lab.dataset))


def _seen_items_of(lab: TrainedLab) -> Callable[[str], list[str]] | None:
    """Items a shopper interacted with in training (the first single-stage model's matrix;
    they all train on the same interactions), for pins under ``leave-out-seen``."""
    for model in lab.models.values():
        if isinstance(model, MatrixRecommender):
            return model.seen_items
    return None


class _Lists:
    """A ``recommend(users, k, filter_seen=...)`` over one of the batch paths, so that
    :func:`recommend_with_policy` applies the policy to it."""

    def __init__(self, fetch: Callable[[list[str], int, bool], pd.DataFrame]) -> None:
        self._fetch = fetch

    def recommend(self, users: Sequence[str], k: int, *, filter_seen: bool) -> pd.DataFrame:
        return self._fetch([str(u) for u in users], int(k), filter_seen)


def score_batch(
    lab: TrainedLab,
    model: str,
    k: int,
    users: Sequence[str] | None = None,
    *,
    policy: ListPolicy,
    chunk_size: int | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> BatchResult:
    """Top-``k`` of ``model`` for every shopper (or ``users``) under ``policy``, in
    parallel chunks (the same lists the service answers one shopper at a time).

    Raises
    ------
    ConfigError
        Unknown or untrained model, bad ``k`` or chunk size.
    """
    k = check_k(k)
    if chunk_size is not None and chunk_size < 1:
        raise ConfigError("the chunk size must be at least 1")
    engine = lab.model(model)  # ConfigError for an untrained or unknown model
    # the given shoppers once each, else every training shopper in the model's id-map order
    ids = list(dict.fromkeys(str(u) for u in users)) if users is not None else all_users(lab, model)
    forgotten = forgotten_among(ids)  # `forget`: a forgotten shopper is never scored again
    if forgotten:
        ids = [u for u in ids if u not in forgotten]
    context = lab_context(lab)
    native = uses_model_seen_filter(policy, context)
    if isinstance(engine, MatrixRecommender) and not engine.stage_one_models:
        # ALS, BPR, item-kNN, popularity: the model's own batch scoring, one call per block
        started = time.perf_counter()
        computed_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        block = chunk_size or DEFAULT_MATRIX_CHUNK
        matrix_engine: MatrixRecommender = engine

        def fetch(chunk: list[str], depth: int, filter_seen: bool) -> pd.DataFrame:
            rows = matrix_engine.users_.to_internal(chunk)
            return _matrix_batch(matrix_engine, chunk, rows, depth, filter_seen, block, progress)

        frame = recommend_with_policy(_Lists(fetch), ids, k, policy, context)
        if not isinstance(frame[Columns.USER].dtype, pd.CategoricalDtype):
            frame = _categorical_ids(frame)
        return BatchResult(
            frame=frame,
            model=model,
            model_version=lab.version,
            dataset=lab.dataset,
            k=k,
            computed_at=computed_at,
            seconds=time.perf_counter() - started,
            users=len(ids),
            policy=policy,
            extra={"filter_seen": native, "workers": "model threads", "chunk_size": block},
        )
    # the ranking package (the candidates' numba kernels, LightGBM): only for the models
    # below, not with the serving package (a lab of single-stage models, the app's first page)
    from recsys_core.ranking.batch_scoring import map_chunks, score_all_shoppers, scoring_workers
    from recsys_core.ranking.candidate_scoring import ChunkScorer

    chunk_size = chunk_size or DEFAULT_CHUNK
    chunks = [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]
    workers = scoring_workers(workers)
    processes = False
    if engine.stage_one_models:  # a two-stage model: its batch path with compiled trees
        scorer: ChunkScorer | None = None
        try:
            scorer = ChunkScorer(engine)
        except ValueError:  # the optional sequence group: the ranker's own path, on threads
            scorer = None
        ranker, processes = engine, scorer is not None and scorer.fork_safe

        def ranker_lists(chunk: list[str], depth: int, seen: bool) -> pd.DataFrame:
            # the ranker's chunked batch path, one chunk per worker
            return score_all_shoppers(
                ranker, chunk, depth, filter_seen=seen, chunk_size=len(chunk) or 1,
                workers=1, scorer=scorer,
            )  # fmt: skip

        lists = _Lists(ranker_lists)
    else:
        lists = _Lists(lambda chunk, depth, seen: engine.recommend(chunk, depth, filter_seen=seen))

    def run(chunk: list[str]) -> pd.DataFrame:
        reco = recommend_with_policy(lists, chunk, k, policy, context)
        columns = [Columns.USER, Columns.ITEM, Columns.SCORE, Columns.RANK, "cold_start"]
        if "purchase_probability" in reco.columns:
            columns.append("purchase_probability")
        return reco[[c for c in columns if c in reco.columns]]

    started = time.perf_counter()
    computed_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    parts: list[pd.DataFrame] = []
    done = 0
    if processes and workers > 1 and len(chunks) > 1:  # compiled here, before the forks
        run(chunks[0][:1])
    # the ranker's chunks in forked worker processes (each its own core and interpreter
    # lock); other models (and a ranker LightGBM must score) on threads
    with ThreadPoolExecutor(max_workers=1 if processes else workers) as pool:
        scored = map_chunks(run, chunks, workers) if processes else pool.map(run, chunks)
        for part, chunk in zip(scored, chunks, strict=True):
            parts.append(part)
            done += len(chunk)
            if progress is not None:
                progress(f"scored {done:,} of {len(ids):,} shoppers", done / max(len(ids), 1))
    frame = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=[Columns.USER, Columns.ITEM, Columns.SCORE, Columns.RANK])
    )
    frame[Columns.RANK] = frame[Columns.RANK].astype(np.int32)
    return BatchResult(
        frame=frame,
        model=model,
        model_version=lab.version,
        dataset=lab.dataset,
        k=k,
        computed_at=computed_at,
        seconds=time.perf_counter() - started,
        users=len(ids),
        policy=policy,
        extra={"filter_seen": native, "workers": workers, "chunk_size": chunk_size},
    )


def _categorical_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """Shopper and item ids as categorical columns (dictionary-encoded in Parquet)."""
    return frame.assign(
        **{
            # models answer in str ids; canonical_ids only types an empty frame's columns
            Columns.USER: canonical_ids(frame[Columns.USER]).astype("category"),
            Columns.ITEM: canonical_ids(frame[Columns.ITEM]).astype("category"),
        }
    )


def _matrix_batch(
    engine: MatrixRecommender,
    ids: list[str],
    rows: np.ndarray,
    k: int,
    filter_seen: bool,
    chunk_size: int,
    progress: Progress | None,
) -> pd.DataFrame:
    """A single-stage model's lists for ``ids`` (model rows ``rows``, -1 unknown): what
    ``engine.recommend(ids, k)`` answers, computed the way a bare batch call is.

    The model's own batch scoring (``_recommend_rows``: implicit's batch ``recommend`` on
    the model's threads, every core by default) runs once per ``chunk_size`` shoppers, in
    turn; the same validity, seen-item and cold-start rules as ``recommend`` apply. Ids are
    not built as one string per row: ``user_id`` and ``item_id`` are categorical columns
    (codes into the shoppers asked and the model's items; Parquet stores them
    dictionary-encoded). Rows are in the order of ``ids``, each shopper's by rank.
    """
    users = pd.Index(ids, dtype=object)
    history = np.diff(engine.user_items_.indptr)
    warm = rows >= 0
    warm[warm] = history[rows[warm]] > 0
    n = min(k, engine.n_items)
    positions: list[np.ndarray] = []
    items: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    ranks: list[np.ndarray] = []
    cold_flags: list[np.ndarray] = []
    warm_at = np.flatnonzero(warm)
    for start in range(0, len(warm_at), chunk_size):
        chunk = warm_at[start : start + chunk_size]
        top, score = engine._recommend_rows(rows[chunk], n, filter_seen)
        top = np.asarray(top, dtype=np.int64).reshape(len(chunk), -1)
        score = np.asarray(score, dtype=np.float64).reshape(len(chunk), -1)
        valid = (top >= 0) & np.isfinite(score) & (score > PADDING_SCORE)
        valid &= engine._valid_scores(score)
        if filter_seen:
            valid &= ~engine._seen_mask(rows[chunk], top)
        ranks_so_far = np.cumsum(valid, axis=1)
        keep = valid & (ranks_so_far <= k)
        positions.append(np.broadcast_to(chunk[:, None], top.shape)[keep])
        items.append(top[keep])
        scores.append(score[keep])
        ranks.append(ranks_so_far[keep])
        cold_flags.append(np.zeros(int(keep.sum()), dtype=bool))
        if progress is not None:
            done = min(start + chunk_size, len(warm_at))
            progress(f"scored {done:,} of {len(ids):,} shoppers", done / max(len(ids), 1))
    cold_at = np.flatnonzero(~warm)
    if len(cold_at):  # the popular items, as recommend's cold start
        popular = engine._popular_order[:k]
        popular = popular[engine.item_popularity_[popular] > 0]
        positions.append(np.repeat(cold_at, len(popular)))
        items.append(np.tile(popular, len(cold_at)))
        scores.append(np.tile(engine.item_popularity_[popular].astype(np.float64), len(cold_at)))
        ranks.append(np.tile(np.arange(1, len(popular) + 1), len(cold_at)))
        cold_flags.append(np.ones(len(cold_at) * len(popular), dtype=bool))
    if progress is not None:
        progress(f"scored {len(ids):,} of {len(ids):,} shoppers", 1.0)
    position = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
    rank = np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)
    order = np.lexsort((rank, position)) if len(cold_at) else slice(None)
    item_ids = pd.Index(engine.items_.external_ids, dtype=object)
    return pd.DataFrame(
        {
            Columns.USER: pd.Categorical.from_codes(position[order], categories=users),
            Columns.ITEM: pd.Categorical.from_codes(
                (np.concatenate(items) if items else np.zeros(0, dtype=np.int64))[order],
                categories=item_ids,
            ),
            Columns.SCORE: (np.concatenate(scores) if scores else np.zeros(0))[order],
            Columns.RANK: rank[order].astype(np.int32),
            "cold_start": (np.concatenate(cold_flags) if cold_flags else np.zeros(0, dtype=bool))[
                order
            ],
        }
    )


def write_batch(result: BatchResult, path: Path) -> Path:
    """Write the rows to Parquet with the batch description in its metadata (atomically)."""
    table = pa.Table.from_pandas(result.frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(result.metadata()).encode()
    table = table.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


class BatchTable:
    """A batch table read back for serving: one shopper's rows by dictionary lookup."""

    def __init__(self, frame: pd.DataFrame, metadata: dict[str, Any]) -> None:
        self.metadata = metadata
        self.model = str(metadata["model"])
        self.model_version = str(metadata["model_version"])
        self.k = int(metadata["k"])
        self.computed_at = str(metadata["computed_at"])
        described = metadata.get("list_policy")
        if described is not None:
            self.policy = ListPolicy.from_dict(described)
        else:  # an older table: the models' own seen filter, or nothing
            seen = bool(metadata.get("filter_seen", False))
            self.policy = ListPolicy("leave-out-seen" if seen else "keep")
        frame = frame[~frame["cold_start"].to_numpy(dtype=bool)] if "cold_start" in frame else frame
        frame = frame.sort_values([Columns.USER, Columns.RANK], kind="stable")
        # a table read back from Parquet (dictionary-encoded): the artifact boundary
        users = canonical_ids(frame[Columns.USER]).to_numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.zeros(0)
        ends = np.r_[starts[1:], len(users)] if len(users) else np.zeros(0)
        self._rows = {str(users[s]): (int(s), int(e)) for s, e in zip(starts, ends, strict=True)}
        self.items = canonical_ids(frame[Columns.ITEM]).to_numpy(dtype=object)
        self.scores = frame[Columns.SCORE].to_numpy(dtype=np.float64)
        self.probabilities = (
            frame["purchase_probability"].to_numpy(dtype=np.float64)
            if "purchase_probability" in frame
            else None
        )

    @classmethod
    def read(cls, path: Path) -> BatchTable:
        """Read a table written by :func:`write_batch`.

        Raises
        ------
        ArtifactError
            Missing or unreadable file, or not a batch table.
        """
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise ArtifactError(f"cannot read the batch table {path}: {exc}") from exc
        raw = (table.schema.metadata or {}).get(METADATA_KEY)
        if raw is None:
            raise ArtifactError(
                f"{path} is not a batch table (no {METADATA_KEY.decode()} metadata): write it "
                "with `python -m recsys_core batch`"
            )
        return cls(table.to_pandas(), json.loads(raw))

    def __len__(self) -> int:
        return len(self._rows)

    def lookup(self, user_id: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The shopper's first ``k`` rows ``(items, scores, probabilities)``.

        Raises ``KeyError`` for a shopper the table does not hold.
        """
        start, end = self._rows[user_id]
        end = min(end, start + k)
        probabilities = None if self.probabilities is None else self.probabilities[start:end]
        return self.items[start:end], self.scores[start:end], probabilities

    def covers(self, user_id: str, k: int, model: str, policy: ListPolicy, version: str) -> bool:
        """Whether this table answers the question exactly as a live request would (the
        same model, version and list policy, at least ``k`` deep)."""
        return (
            model == self.model
            and version == self.model_version
            and k <= self.k
            and policy.same_lists(self.policy)
            and user_id in self._rows
        )
