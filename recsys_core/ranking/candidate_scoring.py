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
from recsys_core.ranking.features import SEEN_FEATURES, BehaviourSnapshot
from recsys_core.ranking.purchase_model import PurchaseModel
from recsys_core.ranking.training_frame import candidate_features

if TYPE_CHECKING:
    from recsys_core.ranking.features.sequence import SequenceScores

__all__ = [
    "COMPACT_COLUMNS",
    "DEFAULT_SCORING_CHUNK",
    "SEEN",
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
