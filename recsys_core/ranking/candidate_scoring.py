"""A ranker's scored candidates, one chunk of shoppers at a time.

Every candidate of a shopper carries ~50 float64 features (about 450 bytes a row, a few
hundred rows per shopper), so whatever scores many shoppers builds the features of one
chunk, scores them and keeps only what it needs: the top-``k`` rows
(:func:`~recsys_core.ranking.batch_scoring.score_all_shoppers`) or a compact frame without
the features (:func:`compact_scored_candidates`, what the evaluation scores once and ranks
several times).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, Protocol

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.ranking.candidates import CandidateGenerator
from recsys_core.ranking.config import PURCHASE_PROBABILITY, RAW_SCORE
from recsys_core.ranking.features import (
    BEHAVIOUR_FEATURES,
    FEATURE_NAMES,
    SEEN_FEATURES,
    STAGE_ONE_FEATURES,
    BehaviourSnapshot,
)
from recsys_core.ranking.scoring import probability_frame
from recsys_core.ranking.training_frame import candidate_features

if TYPE_CHECKING:  # LightGBM and scikit-learn: imported where a purchase model is used
    from recsys_core.ranking.features.sequence import SequenceScores
    from recsys_core.ranking.purchase_model import PurchaseModel

__all__ = [
    "COMPACT_COLUMNS",
    "DEFAULT_SCORING_CHUNK",
    "SEEN",
    "ChunkScorer",
    "FittedParts",
    "compact_candidates",
    "compact_scored_candidates",
    "scored_candidates",
    "seen_mask",
]


class FittedParts(Protocol):
    """What scoring reads of a fitted :class:`~recsys_core.ranking.ranker.TwoStageRanker`."""

    generator_: CandidateGenerator
    snapshot_: BehaviourSnapshot
    purchase_model_: PurchaseModel
    #: The optional ``sequence`` group's model at the cutoff (``None``: the group is off).
    sequence_: SequenceScores | None

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The classifier's columns, in order."""
        ...


#: Shoppers per chunk: ~2,000 shoppers x ~300 candidates x ~50 features is ~240 MB of
#: float64 features per worker at most (the demo store's shoppers have fewer candidates).
DEFAULT_SCORING_CHUNK: Final = 2_000

#: ``(feature matrix) -> classifier margins``, e.g. the serving layer's compiled trees.
MarginFunction = Callable[[np.ndarray], np.ndarray]

#: Column of a compact candidate frame: the shopper interacted with the item before the
#: cutoff (what the seen filter removes; the sum of :data:`SEEN_FEATURES` is positive).
SEEN: Final = "seen"

#: Columns a compact candidate frame keeps (no features: ~33 bytes a row instead of ~450).
COMPACT_COLUMNS: Final = (Columns.USER, Columns.ITEM, SEEN, RAW_SCORE, PURCHASE_PROBABILITY)


def scored_candidates(
    ranker: FittedParts, user_ids: Sequence[str], margins: MarginFunction | None = None
) -> pd.DataFrame:
    """Candidates of shoppers with history, their features, margin and probability.

    One chunk's worth: the frame holds every feature of every candidate (about 450 bytes a
    row), so callers with many shoppers call it chunk by chunk.
    """
    frame = candidate_features(ranker.generator_, ranker.snapshot_, list(user_ids))
    if ranker.sequence_ is not None:  # the optional group, from the shoppers' cached states
        frame = frame.assign(
            **ranker.sequence_.pair_values(frame[Columns.USER], frame[Columns.ITEM])
        )
    model = ranker.purchase_model_
    margin = (margins or model.decision_function)(
        frame[list(ranker.feature_names)].to_numpy(dtype=np.float64)
    )
    frame[RAW_SCORE] = margin
    frame[PURCHASE_PROBABILITY] = model.calibrator_.predict(margin)
    return frame


def seen_mask(frame: pd.DataFrame) -> np.ndarray:
    """Whether each candidate was interacted with before the cutoff (full or compact frame)."""
    if SEEN in frame:
        return frame[SEEN].to_numpy(dtype=bool)
    return (frame[list(SEEN_FEATURES)].sum(axis=1) > 0).to_numpy()


def compact_candidates(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without its features: :data:`COMPACT_COLUMNS` (the rows and scores stay)."""
    out = frame[[Columns.USER, Columns.ITEM, RAW_SCORE, PURCHASE_PROBABILITY]].copy()
    out.insert(2, SEEN, seen_mask(frame))
    return out


def compact_scored_candidates(
    ranker: FittedParts,
    user_ids: Sequence[str] | np.ndarray,
    chunk_size: int = DEFAULT_SCORING_CHUNK,
) -> pd.DataFrame:
    """:func:`compact_candidates` of :func:`scored_candidates` of shoppers with history,
    ``chunk_size`` shoppers at a time (only one chunk's features are held at once)."""
    users = list(user_ids)
    parts = [
        compact_candidates(scored_candidates(ranker, users[i : i + chunk_size]))
        for i in range(0, len(users), chunk_size)
    ] or [compact_candidates(scored_candidates(ranker, []))]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def compiled_margins(model: PurchaseModel) -> MarginFunction | None:
    """``model.decision_function`` with each fold model's trees compiled
    (:class:`~recsys_core.serving.compiled_trees.CompiledTrees`: the same margins to the
    bit, no OpenMP, the GIL released); ``None`` where a booster cannot be compiled.

    The function it returns sets the values of a C-ordered float64 matrix that LightGBM
    reads as zero (``|x| <= 1e-35``) to zero in place instead of copying the matrix."""
    from recsys_core.serving.compiled_trees import CompiledTrees, prepare_rows

    compiled = [CompiledTrees.from_booster(b) for b in model.boosters_]
    trees = [c for c in compiled if c is not None]
    if len(trees) != len(compiled) or not trees:
        return None

    def margins(matrix: np.ndarray) -> np.ndarray:
        # decision_function: the fold models' margins summed in order, then divided
        prepared = prepare_rows(matrix, trees[0].n_features, copy=False)
        total = np.zeros(len(matrix))
        for tree in trees:
            total += tree.raw_score_prepared(prepared)
        return total / len(trees)

    return margins


class ChunkScorer:
    """The top-``k`` rows of a chunk of shoppers with history, by indices end to end.

    Answers what ``ranker.recommend(chunk, k, filter_seen=...)`` answers for shoppers with
    history (the same rows, numbers and order; tested), without the candidate frame of
    string ids: stage one's candidate cells
    (:meth:`~recsys_core.ranking.candidates.CandidateGenerator.candidate_cells`), the
    behaviour features gathered by index, one float64 matrix for the classifier, and ids
    only for the ``k`` rows kept per shopper.

    Parameters
    ----------
    ranker:
        A fitted ranker (its stage one, snapshot and purchase model).
    margins:
        The classifier's margins of a feature matrix (default :func:`compiled_margins`,
        else LightGBM's predict).

    Attributes
    ----------
    fork_safe:
        Whether a forked worker process may score with it: the margins are the compiled
        trees (LightGBM's predict runs OpenMP, whose thread pool does not survive a fork:
        a forked worker calling it can hang).
    """

    def __init__(self, ranker: FittedParts, margins: MarginFunction | None = None) -> None:
        if tuple(FEATURE_NAMES) != (*BEHAVIOUR_FEATURES, *STAGE_ONE_FEATURES):
            raise ValueError("the ranker's features are not behaviour + stage one")
        if getattr(ranker, "sequence_", None) is not None:  # the optional sequence group
            raise ValueError("the ranker has the sequence group: score it with recommend")
        self.generator = ranker.generator_
        self.snapshot = ranker.snapshot_
        self.model = ranker.purchase_model_
        compiled = None if margins is not None else compiled_margins(self.model)
        self.margins = margins or compiled or self.model.decision_function
        self.fork_safe = compiled is not None
        self.item_ids = self.generator.items_.external_ids
        #: stage-one item index -> snapshot item index (-1: not in the snapshot)
        self.snapshot_item = self.snapshot.items.to_internal(self.item_ids)
        self.seen_columns = [BEHAVIOUR_FEATURES.index(f) for f in SEEN_FEATURES]

    def top_k(self, users: np.ndarray, k: int, *, filter_seen: bool) -> pd.DataFrame:
        """Top-``k`` of distinct shoppers ``users`` (str ids, all with history): a
        :func:`~recsys_core.ranking.scoring.probability_frame`, shoppers in the given
        order, each by rank (ranked by probability, ties by margin, then item)."""
        users = np.asarray(users, dtype=object)
        position, item, stage_one = self.generator.candidate_cells(
            self.generator.users_.to_internal(users)
        )
        snapshot_item = self.snapshot_item[item]
        keep = snapshot_item >= 0  # stage one and features come from the same events
        position, item, stage_one = position[keep], item[keep], stage_one[keep]
        snapshot_user = self.snapshot.users.to_internal(users)
        behaviour = self.snapshot.features(snapshot_user[position], snapshot_item[keep])
        matrix = np.empty((len(behaviour), behaviour.shape[1] + stage_one.shape[1]))
        matrix[:, : behaviour.shape[1]] = behaviour
        matrix[:, behaviour.shape[1] :] = stage_one
        margin = np.asarray(self.margins(matrix), dtype=np.float64)
        probability = np.asarray(self.model.calibrator_.predict(margin), dtype=np.float64)
        if filter_seen:
            unseen = ~(np.nansum(behaviour[:, self.seen_columns], axis=1) > 0)
            position, item = position[unseen], item[unseen]
            margin, probability = margin[unseen], probability[unseen]
        if len(position) == 0:
            return probability_frame([], [], [], [], cold_start=False)
        # by shopper, then probability, ties (isotonic steps) by margin, then by item
        order = np.lexsort((-margin, -probability, position))
        position = position[order]
        first = np.r_[True, position[1:] != position[:-1]]
        start = np.maximum.accumulate(np.where(first, np.arange(len(position)), 0))
        rank = np.arange(len(position)) - start + 1
        top = order[rank <= k]
        return probability_frame(
            users[position[rank <= k]],
            self.item_ids[item[top]],
            probability[top],
            rank[rank <= k],
            cold_start=False,
        )
