"""The optional ``sequence`` group: the ``sasrec`` model's score and rank of a candidate.

Like the stage-one group (ALS and item-kNN score and rank), its values come from a model
fitted on the events before a cutoff, not from a :class:`PastEvents` table, so the group is
declared at the ``stage_one`` level (no build function) and filled by
:class:`SequenceScores`. It is **not** in :data:`~recsys_core.ranking.features.REGISTRY`
(hence not in ``FEATURE_NAMES``): the ranker works, and its saved models load, exactly as
without it. :data:`~recsys_core.ranking.features.names.OPTIONAL_REGISTRY` holds it, for its
names and value labels.

It is off by default because the validation window asked for it to be: no gain beyond the
paired interval (docs/sequence-model.md, "As a ranker feature", with the commands; re-measure
with ``bench/tune_ranker.py --validation --variants '[{}, {"sequence": {}}]'``). The ranker's
setting ``RankerConfig(sequence={...})`` turns it on (:func:`ranker_feature_names`): the
training rows get :func:`sequence_columns`, the ranker keeps a :class:`SequenceScores`
fitted at its cutoff (saved in its folder, loaded without torch) and every answer computes
the two columns from the shopper's cached encoded state.

No leakage: :func:`sequence_columns` fits one model per window cutoff on the events strictly
before it (as stage one is refitted per window), so the model behind a training row never
saw an event at or after that row's cutoff; each fit records its cutoff and the last event
it saw (:attr:`SequenceScores.last_event_`). Fitting at the earliest cutoff and only
encoding later sequences would be cheaper, but the item table and the repeat weights would
then be up to ``training_windows`` periods older at the serving cutoff than at the first
window, so training rows and served rows would not describe the same thing. The cheap
settings of :data:`SEQUENCE_DEFAULTS` keep a fit at a few CPU seconds on Online Retail.

Needs PyTorch (``requirements-seq.txt``) to fit; :func:`sequence_unavailable_reason` says
why not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_ids, id_values
from recsys_core.errors import ArtifactError, EngineUnavailableError, ModelNotTrainedError
from recsys_core.io_utils import atomic_write_text
from recsys_core.ranking.features.labels import _missing, _ordinal, _score
from recsys_core.ranking.features.past import events_before
from recsys_core.ranking.features.registry import Feature, FeatureGroup, ValueLabel

if TYPE_CHECKING:
    from recsys_core.models.sasrec import SASRecRecommender

__all__ = [
    "SEQUENCE_DEFAULTS",
    "SEQUENCE_FEATURES",
    "SEQUENCE_GROUP",
    "SequenceScores",
    "fitted_at",
    "load_sequence_scores",
    "ranker_feature_names",
    "sequence_columns",
    "sequence_unavailable_reason",
]

#: ``sasrec`` settings of the feature (``SASRecConfig`` keys): small, few epochs, no
#: validation split and no refit, so one fit per training window stays cheap (a few CPU
#: seconds on Online Retail's 10 months before the validation window, where 4 epochs
#: scored NDCG@10 0.2736 as a recommender against 0.2666 for 2); override any per call.
SEQUENCE_DEFAULTS: Final[Mapping[str, Any]] = {
    "dim": 32,
    "blocks": 1,
    "heads": 2,
    "max_epochs": 4,
    "validation_days": 0.0,
    "refit": False,
    "threads": 1,
    "device": "cpu",
}


def _label(*, rank_first: bool) -> ValueLabel:
    def label(value: float, row: Mapping[str, float]) -> str:
        if rank_first:
            return (
                "not scored by the sequence model"
                if _missing(value)
                else f"the sequence model ranks it {_ordinal(int(value))}"
            )
        if _missing(value):
            return "the sequence model has no score for it"
        return f"sequence model score {_score(value)}"

    return label


#: The group's declaration (a ``stage_one``-level group: :class:`SequenceScores` fills it).
SEQUENCE_GROUP: Final = FeatureGroup(
    "sequence",
    "stage_one",
    (
        Feature(
            "sasrec_score",
            "sequence model (sasrec) score",
            _label(rank_first=False),
            no_history=float("nan"),
        ),
        Feature(
            "sasrec_rank",
            "rank in the sequence model (sasrec)",
            _label(rank_first=True),
            no_history=float("nan"),
        ),
    ),
)
#: The group's columns, in order.
SEQUENCE_FEATURES: Final[tuple[str, ...]] = SEQUENCE_GROUP.names


def sequence_unavailable_reason() -> str | None:
    """Why the group cannot be computed here (``None`` when PyTorch imports)."""
    from recsys_core.models.sequence import torch_unavailable_reason

    return torch_unavailable_reason()


class SequenceScores:
    """A ``sasrec`` model fitted on the events before one cutoff; score and rank of pairs.

    Parameters
    ----------
    settings:
        ``SASRecConfig`` keys over :data:`SEQUENCE_DEFAULTS` (e.g. ``{"max_epochs": 3}``).

    Attributes
    ----------
    cutoff_ : pandas.Timestamp
        Only events strictly before it were used.
    last_event_ : pandas.Timestamp
        The latest event the model saw (``< cutoff_``).
    model_ : SASRecRecommender
        The fitted model.
    fit_cpu_seconds_ : float
        CPU time of the fit (every thread of this process).
    """

    cutoff_: pd.Timestamp
    last_event_: pd.Timestamp
    model_: SASRecRecommender
    fit_cpu_seconds_: float

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = {**SEQUENCE_DEFAULTS, **(settings or {})}

    def fit(self, events: pd.DataFrame, cutoff: pd.Timestamp | str) -> Self:
        """Fit on the events strictly before ``cutoff``.

        Raises
        ------
        EngineUnavailableError
            PyTorch is not installed (the message says how to install it).
        DataValidationError
            No timestamps, or no positive event before the cutoff.
        """
        import time

        reason = sequence_unavailable_reason()
        if reason is not None:
            raise EngineUnavailableError(f"the ranker's 'sequence' feature group: {reason}")
        from recsys_core.models.sasrec import SASRecRecommender

        cutoff = pd.Timestamp(cutoff)
        past = events_before(events, cutoff)
        cpu = time.process_time()
        self.model_ = SASRecRecommender(**self.settings).fit_log(past)
        self.fit_cpu_seconds_ = time.process_time() - cpu
        self.cutoff_ = cutoff
        self.last_event_ = pd.Timestamp(past[Columns.TIMESTAMP].max())
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ModelNotTrainedError("the sequence scores are not fitted: call fit() first")

    def pair_values(
        self, user_ids: Sequence[str] | np.ndarray, item_ids: Sequence[str] | np.ndarray
    ) -> dict[str, np.ndarray]:
        """:data:`SEQUENCE_FEATURES` of each (user, item) pair.

        ``sasrec_score`` is the model's score (:meth:`SASRecRecommender.score_items`),
        ``sasrec_rank`` its 1-based rank among every item the model knows for that shopper
        (ties by item index); both NaN where the shopper or the item has no event before
        the cutoff.
        """
        self._check_fitted()
        # canonical text ids without a Python loop (an answer's candidates are a few hundred)
        users = np.asarray(canonical_ids(user_ids), dtype=object)
        items = self.model_.items_.to_internal(canonical_ids(item_ids))
        if len(users) != len(items):
            raise ValueError(f"got {len(users)} users and {len(items)} items; pass one per pair")
        score = np.full(len(users), np.nan)
        rank = np.full(len(users), np.nan)
        distinct, inverse = np.unique(users, return_inverse=True)
        step = max(1, 2_000_000 // max(1, self.model_.n_items))
        for start in range(0, len(distinct), step):
            known, scores = self.model_.item_scores(list(distinct[start : start + step]))
            ranks = _ranks(scores)
            sel = np.flatnonzero((inverse >= start) & (inverse < start + len(known)))
            row = inverse[sel] - start
            ok = known[row] & (items[sel] >= 0)
            sel, row = sel[ok], row[ok]
            score[sel] = scores[row, items[sel]]
            rank[sel] = ranks[row, items[sel]]
        return {"sasrec_score": score, "sasrec_rank": rank}

    def pair_matrix(
        self, user_ids: Sequence[str] | np.ndarray, item_ids: Sequence[str] | np.ndarray
    ) -> np.ndarray:
        """:meth:`pair_values` as a ``(n_pairs, 2)`` float64 matrix, :data:`SEQUENCE_FEATURES`
        order (the ranker appends it to its feature matrix)."""
        values = self.pair_values(user_ids, item_ids)
        return np.column_stack([values[name] for name in SEQUENCE_FEATURES]).astype(np.float64)

    def save(self, folder: Path | str) -> None:
        """Save to ``folder``: the fitted model (``model/``, no pickle) and ``scores.json``
        (cutoff, last event, fit CPU seconds; written last)."""
        self._check_fitted()
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        (path / "scores.json").unlink(missing_ok=True)
        self.model_.save(path / "model")
        meta = {
            "cutoff": self.cutoff_.isoformat(),
            "last_event": self.last_event_.isoformat(),
            "fit_cpu_seconds": self.fit_cpu_seconds_,
            "settings": dict(self.settings),
        }
        atomic_write_text(path / "scores.json", json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path | str) -> SequenceScores:
        """Load what :meth:`save` wrote (no torch needed: the model serves from its cached
        shopper states).

        Raises
        ------
        ArtifactError
            A missing or unreadable part.
        """
        from recsys_core.models.sasrec import SASRecRecommender

        path = Path(folder)
        try:
            meta = json.loads((path / "scores.json").read_text(encoding="utf-8"))
            scores = cls(meta["settings"])
            scores.cutoff_ = pd.Timestamp(meta["cutoff"])
            scores.last_event_ = pd.Timestamp(meta["last_event"])
            scores.fit_cpu_seconds_ = float(meta["fit_cpu_seconds"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(
                f"cannot read the ranker's sequence feature model in {path}: {exc}; retrain "
                "the ranker"
            ) from exc
        scores.model_ = SASRecRecommender.load(path / "model")
        return scores

    def top_items(self, user_ids: Sequence[str], n: int) -> pd.DataFrame:
        """Each known shopper's ``n`` best items (seen items included), as candidates.

        Returns
        -------
        pandas.DataFrame
            ``user_id``, ``item_id`` and :data:`SEQUENCE_FEATURES`.
        """
        self._check_fitted()
        users = np.asarray([str(u) for u in user_ids], dtype=object)
        known = list(users[self.model_.users_.to_internal(users) >= 0])
        if not known or n <= 0:
            return pd.DataFrame({c: [] for c in (Columns.USER, Columns.ITEM, *SEQUENCE_FEATURES)})
        reco = self.model_.recommend(known, n, filter_seen=False)
        return pd.DataFrame(
            {
                Columns.USER: id_values(reco[Columns.USER]).to_numpy(dtype=object),
                Columns.ITEM: id_values(reco[Columns.ITEM]).to_numpy(dtype=object),
                "sasrec_score": reco[Columns.SCORE].to_numpy(dtype=np.float64),
                "sasrec_rank": reco[Columns.RANK].to_numpy(dtype=np.float64),
            }
        )


def sequence_columns(
    events: pd.DataFrame,
    frame: pd.DataFrame,
    cutoff_column: str,
    settings: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, list[SequenceScores]]:
    """:data:`SEQUENCE_FEATURES` for the rows of ``frame``, one model per distinct cutoff.

    Parameters
    ----------
    events:
        The event log (each model reads only the events before its cutoff).
    frame:
        ``user_id``, ``item_id`` and ``cutoff_column`` (the instant each row's features
        describe: a training row's window cutoff, or the serving cutoff).
    settings:
        ``SASRecConfig`` keys over :data:`SEQUENCE_DEFAULTS`.

    Returns
    -------
    tuple[pandas.DataFrame, list[SequenceScores]]
        The columns (indexed like ``frame``) and the fitted models, by cutoff.
    """
    out = pd.DataFrame(np.nan, index=frame.index, columns=list(SEQUENCE_FEATURES))
    models: list[SequenceScores] = []
    cutoffs = pd.to_datetime(frame[cutoff_column])
    for cutoff in sorted(cutoffs.unique()):
        rows = (cutoffs == cutoff).to_numpy()
        scorer = SequenceScores(settings).fit(events, pd.Timestamp(cutoff))
        values = scorer.pair_values(
            frame.loc[rows, Columns.USER].to_numpy(), frame.loc[rows, Columns.ITEM].to_numpy()
        )
        for name in SEQUENCE_FEATURES:
            out.loc[rows, name] = values[name]
        models.append(scorer)
    return out, models


def ranker_feature_names(
    base: Sequence[str], sequence: Mapping[str, Any] | None
) -> tuple[str, ...]:
    """The ranker's classifier columns: ``base`` (its ``FEATURE_NAMES``), then
    :data:`SEQUENCE_FEATURES` when the ranker's ``sequence`` setting is on (not ``None``)."""
    return (*base, *SEQUENCE_FEATURES) if sequence is not None else tuple(base)


def fitted_at(
    events: pd.DataFrame, cutoff: pd.Timestamp, sequence: Mapping[str, Any] | None
) -> SequenceScores | None:
    """A ranker's :class:`SequenceScores` at its cutoff (``None`` when its setting is off)."""
    return None if sequence is None else SequenceScores(sequence).fit(events, cutoff)


def load_sequence_scores(folder: Path, sequence: Mapping[str, Any] | None) -> SequenceScores | None:
    """A saved ranker's :class:`SequenceScores` from its ``sequence/`` subfolder (``None``
    when its setting is off).

    Raises
    ------
    ArtifactError
        The setting is on but the folder holds no sequence model.
    """
    if sequence is None:
        return None
    folder = folder / "sequence"
    if not (folder / "scores.json").is_file():
        raise ArtifactError(
            f"the ranker's 'sequence' feature group is on but {folder} holds no sequence "
            "model: retrain the ranker"
        )
    return SequenceScores.load(folder)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every cell within its row, highest first (ties by column)."""
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), axis=1, kind="stable")
    ranks = np.empty(scores.shape, dtype=np.float64)
    np.put_along_axis(
        ranks, order, np.broadcast_to(np.arange(1, scores.shape[1] + 1.0), scores.shape), axis=1
    )
    return ranks
