"""The two-stage ranker: candidates, behaviour features and a calibrated purchase model.

:class:`TwoStageRanker` (model name ``ranker``) answers "how likely is this shopper to buy
this item in the next ``horizon_days``?" and ranks items by it.

Time windows
------------
``cutoff`` is the instant the recommendations are for (default: one second after the last
event, i.e. "now"). With ``H = horizon_days`` (30), ``S = window_step_days`` (default ``H``)
and ``W = training_windows``:

* **training rows** — for each window ``w = 1..W`` the *window cutoff* is
  ``c_w = cutoff - H - (w - 1) * S`` (back-to-back windows when ``S = H``, overlapping
  ones when ``S < H``). Stage one (ALS, item-kNN) is fitted on events ``< c_w`` only,
  behaviour features use events ``< c_w`` only, and the label is "bought the item in
  ``[c_w, c_w + H)``". Nothing a training row sees happened at or after its own ``c_w``.
* **classifier and calibration** — a seeded ``classifier.calibration_fraction`` of the
  training shoppers is held out; the others are split into ``classifier.cross_fit_folds``
  (2) seeded folds, one LightGBM model per fold learning from the other folds. The served
  margin is the mean of the fold models' margins; the calibrator (isotonic or Platt, see
  :mod:`recsys_core.ranking.purchase_model`) learns from it on the held-out shoppers (their
  top ``calibration_top_k`` rows of each window). ``cross_fit_folds=0``: one LightGBM model.
* **scoring** — stage one is refitted on every event ``< cutoff`` and features are taken
  at ``cutoff``; the classifier trained on the earlier windows scores them.

Whom the probability is about
-----------------------------
With ``training_users="buyers"`` (default) the training shoppers of a window are those
with history before ``c_w`` *who buy something* in ``[c_w, c_w + H)``. The probability is
then "buys this item in the next period, given that they place an order in it" — the
population of the offline protocol, whose test users are exactly the shoppers who buy in
the test period, and what a "their next order" screen needs. With ``"all"`` every shopper
with history is a training row and the probability is unconditional (lower for everyone,
and under-estimated for shoppers who do come back).

Cold start
----------
Shoppers without events before the cutoff get the items with the highest *base rate* (the
share of the shoppers who ordered in ``[cutoff - H, cutoff)`` who bought the item), with
``cold_start=True`` and ``score == purchase_probability ==`` that rate.

Saved folder (no pickle): ``stage_one/`` (``als/``, ``itemknn/``, ``history.npz``),
``behaviour/`` (feature tables), ``purchase_model/`` (LightGBM text model and calibrator
JSON), ``cold_start.npz``, ``sequence/`` (with ``config.sequence``), ``config.json`` (last).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel

from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_ids
from recsys_core.errors import (
    ArtifactError,
    DataValidationError,
    UnknownItemError,
    UnknownUserError,
)
from recsys_core.interactions import InteractionMatrix
from recsys_core.io_utils import atomic_write_text
from recsys_core.models.interface import Progress, Recommender, check_k, check_pairs
from recsys_core.models.persistence import check_format_version, model_from_config
from recsys_core.ranking.candidate_scoring import (
    DEFAULT_SCORING_CHUNK,
    compact_scored_candidates,
    scored_candidates,
    seen_mask,
)
from recsys_core.ranking.candidates import CandidateGenerator
from recsys_core.ranking.config import (
    LABEL,
    PURCHASE_PROBABILITY,
    RAW_SCORE,
    WINDOW_CUTOFF,
    PurchaseModelConfig,
    RankerConfig,
)
from recsys_core.ranking.features import (
    FEATURE_NAMES,
    BehaviourSnapshot,
    events_before,
    require_timestamps,
)
from recsys_core.ranking.features import sequence as sequence_group
from recsys_core.ranking.objectives import window_ages
from recsys_core.ranking.purchase_model import PurchaseModel
from recsys_core.ranking.scoring import cold_start_frame, probability_frame
from recsys_core.ranking.training_frame import (
    StageOneFits,
    build_training_frame,
    cold_start_rates,
    fitted_stage,
    load_cold_start,
    make_generator,
    save_cold_start,
    training_rows_summary,
)
from recsys_core.ranking.window_cache import window_digests

__all__ = [
    "LABEL",
    "PURCHASE_PROBABILITY",
    "RAW_SCORE",
    "WINDOW_CUTOFF",
    "PurchaseModelConfig",
    "RankerConfig",
    "TwoStageRanker",
    "build_training_frame",
]

RANKER_FORMAT_VERSION: Final = 3  # 3: fold models kept apart, past-only prices


class TwoStageRanker(Recommender):
    """Candidate generation + calibrated LightGBM purchase probabilities (``ranker``).

    A :class:`~recsys_core.models.interface.Recommender` like the single-stage models (it
    passes the same contract tests), with its capabilities declared: it needs timestamps,
    its scores are calibrated probabilities, it is built on the ``als`` and ``itemknn``
    stage-one models and it is slow to train. ``similar_items`` are its stage-one ALS's.

    Parameters
    ----------
    config:
        A :class:`RankerConfig` or a mapping of its settings.
    **overrides:
        Settings replacing those in ``config`` (e.g. ``n_als=50``).

    Raises
    ------
    ConfigError
        Unknown or invalid settings.

    Attributes
    ----------
    cutoff_ : pandas.Timestamp
        The instant the recommendations are for (events before it were used).
    generator_ : CandidateGenerator
        Stage one, fitted on every event before ``cutoff_``.
    snapshot_ : BehaviourSnapshot
        Behaviour feature tables at ``cutoff_``.
    purchase_model_ : PurchaseModel
        The calibrated classifier, trained on the windows before ``cutoff_``.
    cold_start_items_, cold_start_rates_ : numpy.ndarray
        Items by decreasing base rate and those rates (the cold-start list).
    training_summary_ : dict
        Rows, positives, windows, calibration choice and fit time.
    sequence_ : SequenceScores or None
        The optional ``sequence`` group's ``sasrec`` at ``cutoff_`` (``config.sequence``).
    """

    name: ClassVar[str] = "ranker"
    config_class: ClassVar[type[BaseModel]] = RankerConfig
    requires_timestamps: ClassVar[bool] = True
    scores_are_probabilities: ClassVar[bool] = True
    stage_one_models: ClassVar[tuple[str, ...]] = ("als", "itemknn")
    slow_to_train: ClassVar[bool] = True

    config: RankerConfig
    cutoff_: pd.Timestamp
    generator_: CandidateGenerator
    snapshot_: BehaviourSnapshot
    purchase_model_: PurchaseModel
    cold_start_items_: np.ndarray
    cold_start_rates_: np.ndarray
    training_summary_: dict[str, Any]
    sequence_: sequence_group.SequenceScores | None = None

    def __repr__(self) -> str:
        return f"TwoStageRanker({self.config!r})"

    # ------------------------------------------------------------------ fitting

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The classifier's columns: ``FEATURE_NAMES`` (+ the ``sequence`` group when on)."""
        return sequence_group.ranker_feature_names(FEATURE_NAMES, self.config.sequence)

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` or :meth:`load` has run."""
        return hasattr(self, "purchase_model_")

    @classmethod
    def cannot_train_on(cls, events: pd.DataFrame) -> str | None:
        """The ranker needs timestamps: its features and labels are time windows."""
        if Columns.TIMESTAMP not in events.columns:
            return (
                "the two-stage ranker needs timestamps (its features and labels are time "
                "windows); this log has none"
            )
        return None

    def _purchase_model(self) -> PurchaseModel:
        cfg = self.config.classifier
        return PurchaseModel(**cfg.model_dump(), random_state=self.config.seed)

    def fit(
        self,
        events: pd.DataFrame,
        catalog: pd.DataFrame | None = None,
        *,
        cutoff: pd.Timestamp | str | None = None,
        progress: Callable[[str, float], None] | None = None,
    ) -> Self:
        """Train on the windows before ``cutoff`` and get ready to score at ``cutoff``.

        Parameters
        ----------
        events:
            Canonical event log with timestamps. Events at or after ``cutoff`` are ignored.
        catalog:
            Optional catalog (category, brand and price give affinity features).
        cutoff:
            The instant the recommendations are for; default one second after the last
            event.
        progress:
            Called with a message and the fraction done (training windows, classifier
            folds, stage one at the cutoff), for progress bars.

        Returns
        -------
        Self

        Raises
        ------
        DataValidationError
            No timestamps, or too short a log for a training window.
        """
        started = time.perf_counter()
        require_timestamps(events)
        if events.empty:
            raise DataValidationError("cannot train the ranker on an empty event log")
        cut = (
            events[Columns.TIMESTAMP].max() + pd.Timedelta(seconds=1)
            if cutoff is None
            else pd.Timestamp(cutoff)
        )
        past = events_before(events, cut)

        def report(message: str, fraction: float, low: float, high: float) -> None:
            if progress is not None:
                progress(message, low + (high - low) * fraction)

        digests = window_digests(past, catalog)  # None outside an evaluation's window cache
        # stage one of the windows and the cutoff: fitted ahead on a 2nd thread (same models)
        with StageOneFits(past, self.config) as stage_one:
            windows = lambda m, f: report(m, f, 0.0, 0.55)  # noqa: E731
            train = build_training_frame(
                past, catalog, cut, self.config, windows, digests=digests, stage_one=stage_one
            )
            report("classifier: fitting", 0.0, 0.55, 0.9)
            summary, features = training_rows_summary(train), train[list(self.feature_names)]
            label, groups = train[LABEL].to_numpy(), train[Columns.USER].to_numpy()
            by_list = train.groupby([Columns.USER, WINDOW_CUTOFF], sort=False, observed=True)
            lists = by_list.ngroup().to_numpy()  # a list: one shopper in one window
            ages = window_ages(train[WINDOW_CUTOFF].to_numpy())  # 0: the newest window
            del train, by_list  # the ids and labels are copied out: hold only what the fit needs
            folds = lambda m, f: report(f"classifier: {m}", f, 0.55, 0.9)  # noqa: E731
            model = self._purchase_model().fit(
                features, label, groups=groups, lists=lists, window_age=ages, progress=folds
            )
            del features
            report("stage one and features at the cutoff", 0.0, 0.9, 1.0)
            # the next fold's newest training window is this cutoff: kept for it in a cache
            self.generator_, self.snapshot_ = fitted_stage(
                past, catalog, cut, self.config, digests=digests, keep=True, stage_one=stage_one
            )
        horizon = pd.Timedelta(days=self.config.horizon_days)  # cold start: base rates
        self.cold_start_items_, self.cold_start_rates_ = cold_start_rates(past, cut, horizon)
        self.sequence_ = sequence_group.fitted_at(past, cut, self.config.sequence)
        self.cutoff_ = cut
        self.purchase_model_ = model
        self.training_summary_ = {
            "cutoff": str(cut),
            **summary,
            "calibration": model.calibrator_.method,
            "calibration_rows": model.calibration_rows_,
            "fold_models": len(model.boosters_),
            "calibration_log_loss": dict(model.calibration_log_loss_),
            "fit_seconds": round(time.perf_counter() - started, 3),
        }
        return self

    def fit_log(
        self,
        events: pd.DataFrame,
        catalog: pd.DataFrame | None = None,
        *,
        cutoff: pd.Timestamp | str | None = None,
        matrix: InteractionMatrix | None = None,
        progress: Progress | None = None,
    ) -> Self:
        """:meth:`fit` (``matrix`` is not used: stage one builds its own with
        ``config.event_weights`` for every training window)."""
        return self.fit(events, catalog, cutoff=cutoff, progress=progress)

    def stage_one_model(self, name: str) -> Recommender:
        """The stage-one ``als`` or ``itemknn`` model fitted on every event before the cutoff."""
        self._check_fitted()
        if name == "als":
            return self.generator_.als_
        if name == "itemknn":
            return self.generator_.itemknn_
        return super().stage_one_model(name)

    def known_users(self) -> list[str]:
        """Shoppers with events before the cutoff (known to stage one and the features)."""
        self._check_fitted()
        known = np.intersect1d(
            self.generator_.users_.external_ids, self.snapshot_.users.external_ids
        )
        return [str(u) for u in known]

    # ------------------------------------------------------------------ features and scores

    def _warm_users(self, user_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Distinct users as strings and whether each has history before the cutoff."""
        if isinstance(user_ids, str):
            raise TypeError("pass a sequence of user ids, e.g. ['u1'], not a single string")
        users = np.asarray(pd.unique(canonical_ids(list(user_ids))), dtype=object)
        warm = (self.snapshot_.users.to_internal(users) >= 0) & (
            self.generator_.users_.to_internal(users) >= 0
        )
        return users.astype(object), warm

    def _unknown_user(self, users: np.ndarray) -> UnknownUserError:
        shown = ", ".join(repr(str(u)) for u in users[:5])
        return UnknownUserError(
            f"unknown user id {shown}: the ranker has no events of this shopper before "
            f"{self.cutoff_}; recommend() gives them the cold-start list, probabilities need "
            "a shopper with history"
        )

    def features(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> pd.DataFrame:
        """Classifier features of arbitrary (user, item) pairs.

        Parameters
        ----------
        user_ids, item_ids:
            Same-length sequences; pair ``j`` is ``(user_ids[j], item_ids[j])``.

        Returns
        -------
        pandas.DataFrame
            :data:`FEATURE_NAMES` columns, one row per pair.

        Raises
        ------
        UnknownUserError, UnknownItemError
            A user without history before the cutoff, or an item neither in the log nor in
            the catalog.
        """
        return pd.DataFrame(self._feature_matrix(user_ids, item_ids), columns=[*self.feature_names])

    def _feature_matrix(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        users = np.asarray([str(u) for u in user_ids], dtype=object)
        items = np.asarray([str(i) for i in item_ids], dtype=object)
        if len(users) != len(items):
            raise ValueError(f"got {len(users)} users and {len(items)} items; pass one per pair")
        u = self.snapshot_.users.to_internal(users)
        i = self.snapshot_.items.to_internal(items)
        if (u < 0).any():
            raise self._unknown_user(np.unique(users[u < 0]))
        if (i < 0).any():
            shown = ", ".join(repr(str(x)) for x in np.unique(items[i < 0])[:5])
            raise UnknownItemError(
                f"unknown item id {shown}: it is neither in the event log before "
                f"{self.cutoff_} nor in the catalog the ranker was trained with"
            )
        parts = [self.snapshot_.features(u, i), self.generator_.score_pairs(users, items)]
        if self.sequence_ is not None:  # from the shopper's cached encoded state
            parts.append(self.sequence_.pair_matrix(users, items))
        return np.hstack(parts)

    def purchase_probability(self, user_id: str, item_ids: Sequence[str]) -> np.ndarray:
        """Calibrated probability that ``user_id`` buys each item in the next period.

        Works for any item of the log or catalog, not only candidates.

        Raises
        ------
        UnknownUserError
            The shopper has no events before the cutoff.
        UnknownItemError
            An item neither in the log nor in the catalog.
        """
        items = [str(i) for i in item_ids]
        matrix = self._feature_matrix([str(user_id)] * len(items), items)
        return self.purchase_model_.purchase_probability(matrix)

    def score_items(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """Calibrated purchase probability of each (user, item) pair (:meth:`recommend`'s
        scale); NaN for a shopper without history before the cutoff or an unknown item."""
        self._check_fitted()
        users = np.asarray([str(u) for u in user_ids], dtype=object)
        items = np.asarray([str(i) for i in item_ids], dtype=object)
        check_pairs(len(users), len(items))
        out = np.full(len(users), np.nan, dtype=np.float64)
        known = (
            (self.snapshot_.users.to_internal(users) >= 0)
            & (self.generator_.users_.to_internal(users) >= 0)
            & (self.snapshot_.items.to_internal(items) >= 0)
        )
        if known.any():
            matrix = self._feature_matrix(list(users[known]), list(items[known]))
            out[known] = self.purchase_model_.purchase_probability(matrix)
        return out

    def similar_items(self, item_ids: Sequence[str], k: int = 10) -> pd.DataFrame:
        """Similar items by the stage-one ALS (the factors that generate the candidates).

        Raises
        ------
        UnknownItemError
            An item stage one was not trained on.
        """
        self._check_fitted()
        return self.generator_.als_.similar_items(item_ids, k)

    def candidate_frame(self, user_ids: Sequence[str]) -> pd.DataFrame:
        """Every candidate of the users with features, raw score and probability.

        Returns
        -------
        pandas.DataFrame
            ``user_id``, ``item_id``, :data:`FEATURE_NAMES`, ``raw_score`` (classifier
            margin) and ``purchase_probability`` (calibrated).

        Raises
        ------
        UnknownUserError
            A user without events before the cutoff.
        """
        self._check_fitted()
        users, warm = self._warm_users(user_ids)
        if (~warm).any():
            raise self._unknown_user(users[~warm])
        return scored_candidates(self, list(users))

    # ------------------------------------------------------------------ recommending

    def warm_candidate_frame(self, user_ids: Sequence[str]) -> pd.DataFrame:
        """Every scored candidate of the shoppers with history (others are left out), without
        the features: ``user_id``, ``item_id``, ``seen``, ``raw_score`` and
        ``purchase_probability`` (:func:`~recsys_core.ranking.batch_scoring.compact_candidates`).

        Built :data:`~recsys_core.ranking.batch_scoring.DEFAULT_SCORING_CHUNK` shoppers at a
        time, so only one chunk's features are held at once. Pass it to :meth:`recommend` as
        ``candidates`` to rank the same shoppers several times (e.g. with and without
        already-bought items) without scoring them again.
        """
        self._check_fitted()
        users, warm = self._warm_users(user_ids)
        return compact_scored_candidates(self, users[warm], DEFAULT_SCORING_CHUNK)

    def recommend(
        self,
        user_ids: Sequence[str],
        k: int = 10,
        *,
        filter_seen: bool,
        candidates: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Top-``k`` items per shopper by purchase probability.

        Parameters
        ----------
        user_ids:
            Shoppers; duplicates answered once, unknown ones get the cold-start list.
        k:
            Items per shopper (fewer if fewer candidates).
        filter_seen:
            Leave out items the shopper interacted with before the cutoff (required: the
            caller's list policy decides, :mod:`recsys_core.policy`).
        candidates:
            Scored candidates from :meth:`warm_candidate_frame` holding every warm shopper
            of ``user_ids`` (saves scoring them again); computed when omitted.

        Returns
        -------
        pandas.DataFrame
            ``user_id``, ``item_id``, ``score`` (= ``purchase_probability``), ``rank``
            (1..k), ``purchase_probability`` and ``cold_start``; sorted by user and rank.
            Ranked by probability; ties (steps of an isotonic calibration) keep the
            classifier's margin order.
        """
        self._check_fitted()
        k = check_k(k)
        users, warm = self._warm_users(user_ids)
        parts = []
        if warm.any():
            parts.append(self._recommend_warm(users[warm], int(k), filter_seen, candidates))
        if (~warm).any():
            parts.append(self._recommend_cold(users[~warm], int(k)))
        if not parts:
            return probability_frame([], [], [], [], cold_start=False)
        reco = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        return reco.sort_values([Columns.USER, Columns.RANK], kind="stable", ignore_index=True)

    def _recommend_warm(
        self, users: np.ndarray, k: int, filter_seen: bool, candidates: pd.DataFrame | None
    ) -> pd.DataFrame:
        if candidates is None:
            # scored a chunk at a time: only one chunk's features are held at once
            step = DEFAULT_SCORING_CHUNK
            parts = [
                self._recommend_warm(
                    users[i : i + step],
                    k,
                    filter_seen,
                    compact_scored_candidates(self, users[i : i + step], step),
                )
                for i in range(0, len(users), step)
            ]
            return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        frame = candidates[candidates[Columns.USER].isin(users)]
        if filter_seen:
            frame = frame[~seen_mask(frame)]
        codes = pd.Categorical(frame[Columns.USER], categories=users).codes
        # by probability, ties (isotonic steps) by the classifier's margin
        order = np.lexsort(
            (-frame[RAW_SCORE].to_numpy(), -frame[PURCHASE_PROBABILITY].to_numpy(), codes)
        )
        frame = frame.iloc[order]
        rank = frame.groupby(Columns.USER, sort=False).cumcount().to_numpy() + 1
        top = rank <= k
        frame = frame[top]
        return probability_frame(
            frame[Columns.USER].to_numpy(),
            frame[Columns.ITEM].to_numpy(),
            frame[PURCHASE_PROBABILITY].to_numpy(),
            rank[top],
            cold_start=False,
        )

    def _recommend_cold(self, users: np.ndarray, k: int) -> pd.DataFrame:
        return cold_start_frame(users, self.cold_start_items_[:k], self.cold_start_rates_[:k])

    # ------------------------------------------------------------------ persistence

    def save(self, path: Path | str) -> None:
        """Save to folder ``path`` (created if needed; no pickle; ``config.json`` last)."""
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").unlink(missing_ok=True)
        self.generator_.save(folder / "stage_one")
        self.snapshot_.save(folder / "behaviour")
        self.purchase_model_.save(folder / "purchase_model")
        if self.sequence_ is not None:
            self.sequence_.save(folder / "sequence")
        unicode = self.cold_start_items_.astype(str)  # fixed-width: loads without pickle
        save_cold_start(folder / "cold_start.npz", unicode, self.cold_start_rates_)
        metadata = {
            "model": self.name,
            "format_version": RANKER_FORMAT_VERSION,
            "config": self.config.model_dump(mode="json"),
            "cutoff": self.cutoff_.isoformat(),
            "feature_names": list(self.feature_names),
            "training": self.training_summary_,
        }
        atomic_write_text(folder / "config.json", json.dumps(metadata, indent=2) + "\n")

    @classmethod
    def _load_folder(cls, folder: Path, metadata: Mapping[str, Any]) -> Self:
        """Rebuild a ranker saved by :meth:`save` (called by :meth:`load`).

        Raises
        ------
        ArtifactError
            Another format version, other features, or missing or corrupted parts.
        """
        check_format_version(folder, metadata, RANKER_FORMAT_VERSION, noun="ranker")
        ranker = model_from_config(cls, folder, metadata)
        if metadata.get("feature_names") != list(ranker.feature_names):
            raise ArtifactError(
                f"{folder} was saved with other features than this version of the lab uses: "
                "retrain the ranker"
            )
        cutoff, (cold_items, cold_rates) = load_cold_start(folder, metadata)
        ranker.generator_ = make_generator(ranker.config).load(folder / "stage_one")
        ranker.snapshot_ = BehaviourSnapshot.load(folder / "behaviour")
        ranker.purchase_model_ = PurchaseModel.load(folder / "purchase_model")
        ranker.sequence_ = sequence_group.load_sequence_scores(folder, ranker.config.sequence)
        if list(ranker.purchase_model_.feature_names_in_) != list(ranker.feature_names):
            raise ArtifactError(f"the purchase model in {folder} uses other features")
        ranker.cutoff_ = cutoff
        ranker.cold_start_items_, ranker.cold_start_rates_ = cold_items, cold_rates
        ranker.training_summary_ = dict(metadata.get("training") or {})
        return ranker
