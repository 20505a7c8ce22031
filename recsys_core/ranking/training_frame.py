"""Labelled training rows of the ranker: stage one and features per time window.

See :mod:`recsys_core.ranking.ranker` for the windows: for window ``w`` stage one and the
features see only events before ``c_w``; the label is a purchase in ``[c_w, c_w + horizon)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import id_values
from recsys_core.errors import ArtifactError, DataValidationError, EngineUnavailableError
from recsys_core.ranking.candidates import CandidateGenerator
from recsys_core.ranking.config import LABEL, WINDOW_CUTOFF, RankerConfig
from recsys_core.ranking.features import (
    BEHAVIOUR_FEATURES,
    STAGE_ONE_FEATURES,
    BehaviourSnapshot,
    events_before,
)
from recsys_core.ranking.fit_memory import stack_frames
from recsys_core.ranking.window_cache import (
    EventDigests,
    active_window_cache,
    sample_digest,
    stage_settings,
)

#: Shoppers whose training candidates are built at once.
TRAINING_CHUNK: Final = 5_000

__all__ = [
    "build_training_frame",
    "candidate_features",
    "cold_start_rates",
    "fitted_stage",
    "load_cold_start",
    "make_generator",
    "purchases_between",
    "save_cold_start",
    "StageOneFits",
    "training_rows_summary",
    "training_sample",
]


def make_generator(config: RankerConfig) -> CandidateGenerator:
    """An unfitted stage one with the ranker's settings."""
    return CandidateGenerator(
        als=config.als,
        itemknn=config.itemknn,
        event_weights=config.event_weights,
        n_als=config.n_als,
        n_itemknn=config.n_itemknn,
        n_history=config.n_history,
    )


def candidate_features(
    generator: CandidateGenerator, snapshot: BehaviourSnapshot, user_ids: Sequence[str]
) -> pd.DataFrame:
    """Candidates of ``user_ids`` with every feature of :data:`FEATURE_NAMES`."""
    candidates = generator.candidates(user_ids)
    u = snapshot.users.to_internal(candidates[Columns.USER])
    i = snapshot.items.to_internal(candidates[Columns.ITEM])
    keep = (u >= 0) & (i >= 0)  # stage one and features come from the same events
    candidates = candidates[keep].reset_index(drop=True)
    behaviour = pd.DataFrame(snapshot.features(u[keep], i[keep]), columns=list(BEHAVIOUR_FEATURES))
    frame = pd.concat([candidates[[Columns.USER, Columns.ITEM]], behaviour], axis=1)
    for name in STAGE_ONE_FEATURES:
        frame[name] = candidates[name].to_numpy(dtype=np.float64)
    return frame


def training_sample(past: pd.DataFrame, size: int | None, seed: int) -> pd.Index | None:
    """A seeded uniform sample of ``size`` shoppers of ``past`` (None: every shopper).

    Drawn from the sorted distinct shopper ids, so the same log, size and seed give the
    same sample whatever the row order.
    """
    if size is None:
        return None
    shoppers = np.sort(np.asarray(past[Columns.USER].unique(), dtype=object))
    if size >= len(shoppers):
        return None
    rng = np.random.default_rng(seed)
    return pd.Index(shoppers[np.sort(rng.choice(len(shoppers), size=size, replace=False))])


def _chunked_candidate_features(
    generator: CandidateGenerator, snapshot: BehaviourSnapshot, user_ids: list[str]
) -> pd.DataFrame:
    """:func:`candidate_features` built :data:`TRAINING_CHUNK` shoppers at a time (the same
    rows in the same order; the intermediate frames stay the size of a chunk)."""
    if len(user_ids) <= TRAINING_CHUNK:
        return candidate_features(generator, snapshot, user_ids)
    parts = [
        candidate_features(generator, snapshot, user_ids[i : i + TRAINING_CHUNK])
        for i in range(0, len(user_ids), TRAINING_CHUNK)
    ]
    return pd.concat(parts, ignore_index=True)


def purchases_between(events: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Distinct (user_id, item_id) purchased in ``[start, end)`` (as strings)."""
    ts = events[Columns.TIMESTAMP]
    window = ((ts >= start) & (ts < end) & (events[Columns.EVENT] == "purchase")).to_numpy()
    chosen = events[window]
    pairs = pd.DataFrame({c: id_values(chosen[c]).to_numpy() for c in (Columns.USER, Columns.ITEM)})
    return pairs.drop_duplicates().reset_index(drop=True)


class StageOneFits:
    """Stage one (:class:`CandidateGenerator`) fitted on one background thread, ahead of use.

    A stage's generator (ALS and item-kNN; implicit releases the GIL while it fits) does
    not depend on its behaviour snapshot or on anything the fit builds from it, so while
    the calling thread builds a window's snapshot, candidate rows or the classifier, this
    thread fits the generator of the same or the next cutoff: the fit's second core,
    which was idle outside the classifier's fold models. The generators are exactly those
    fitted in line (same events, settings and seed; implicit's results do not depend on
    the thread). One worker, so at most one generator is being fitted at a time and the
    queue holds the next cutoffs only (a generator is small beside a snapshot).

    Use as a context manager: leaving it waits for a fit in progress and drops the rest.
    """

    def __init__(self, events: pd.DataFrame, config: RankerConfig) -> None:
        self._events, self._config = events, config
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-one")
        self._fits: dict[pd.Timestamp, Future[CandidateGenerator]] = {}

    def start(self, cutoff: pd.Timestamp) -> None:
        """Queue the generator of ``cutoff`` (nothing when already queued)."""
        cutoff = pd.Timestamp(cutoff)
        if cutoff not in self._fits:
            generator = make_generator(self._config)
            self._fits[cutoff] = self._pool.submit(generator.fit, self._events, cutoff)

    def take(self, cutoff: pd.Timestamp) -> Future[CandidateGenerator]:
        """The generator of ``cutoff`` (queued now when it was not), forgotten here."""
        self.start(cutoff)
        return self._fits.pop(pd.Timestamp(cutoff))

    def close(self) -> None:
        """Drop queued fits and wait for the one in progress."""
        for future in self._fits.values():
            future.cancel()
        self._fits.clear()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> StageOneFits:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def fitted_stage(
    events: pd.DataFrame,
    catalog: pd.DataFrame | None,
    cutoff: pd.Timestamp,
    config: RankerConfig,
    *,
    digests: EventDigests | None = None,
    keep: bool = False,
    stage_one: StageOneFits | None = None,
) -> tuple[CandidateGenerator, BehaviourSnapshot]:
    """Stage one and the behaviour features fitted on the events before ``cutoff``.

    Inside :func:`~recsys_core.ranking.window_cache.using_window_cache` a stage cached for
    the same events, catalog, settings and cutoff is reused, and with ``keep`` a freshly
    fitted one is kept for a later fold (pass ``digests`` of ``events`` to avoid hashing
    them again). The generator is fitted on a background thread while this one builds the
    snapshot (``stage_one``: the fits of the caller, which may have started it already;
    they must be of ``events`` and ``config``); the result is the same as in line.
    """
    cache = active_window_cache()
    key: tuple[object, ...] | None = None
    if cache is not None:
        digests = digests or EventDigests(events, catalog)
        key = ("stage", pd.Timestamp(cutoff), digests.before(cutoff), stage_settings(config))
        hit = cache.take_stage(key)
        if hit is not None:
            return hit
    fits = StageOneFits(events, config) if stage_one is None else stage_one
    try:
        fitting = fits.take(cutoff)
        snapshot = BehaviourSnapshot.from_events(
            events,
            cutoff,
            catalog,
            engine=config.feature_engine,
            spark_master=config.spark_master,
        )
        generator = fitting.result()
    finally:
        if stage_one is None:
            fits.close()
    if cache is not None and key is not None:
        cache.keep_stage(key, cutoff, generator, snapshot, keep=keep)
    return generator, snapshot


def build_training_frame(
    events: pd.DataFrame,
    catalog: pd.DataFrame | None,
    cutoff: pd.Timestamp,
    config: RankerConfig | None = None,
    progress: Callable[[str, float], None] | None = None,
    *,
    digests: EventDigests | None = None,
    stage_one: StageOneFits | None = None,
) -> pd.DataFrame:
    """Labelled candidate rows of the training windows before ``cutoff``.

    For window ``w`` (``c_w = cutoff - horizon - (w - 1) * step``) stage one and the
    features see only events ``< c_w``; the label is a purchase in ``[c_w, c_w + horizon)``.
    Events at or after ``cutoff`` are never read. Inside
    :func:`~recsys_core.ranking.window_cache.using_window_cache` a window already built on
    the same events, catalog, settings, cutoff and sample is reused (``digests``: the
    events' :class:`~recsys_core.ranking.window_cache.EventDigests`, computed when omitted).

    With ``config.sequence`` set, the optional ``sequence`` group's columns follow the
    features (one ``sasrec`` per window, fitted on the events before its cutoff, as
    :func:`~recsys_core.ranking.features.sequence.sequence_columns` does).

    Outside a window cache, each window's stage one (:class:`StageOneFits`) is fitted on a
    background thread one window ahead, while this thread builds the previous window's
    snapshot and rows; given the caller's ``stage_one`` (fits of the events before
    ``cutoff``, with ``config``), the stage one at ``cutoff`` itself is queued after the
    last window (what :meth:`~recsys_core.ranking.ranker.TwoStageRanker.fit` needs next).
    The rows are the same either way.

    Returns
    -------
    pandas.DataFrame
        ``user_id``, ``item_id``, ``window_cutoff``, :data:`FEATURE_NAMES` (then the
        sequence group's columns when it is on) and ``label``.

    Raises
    ------
    DataValidationError
        The log is too short for one training window before the cutoff.
    """
    config = config or RankerConfig()
    if config.sequence is not None:  # refuse before hours of work, with the install hint
        from recsys_core.ranking.features.sequence import sequence_unavailable_reason

        reason = sequence_unavailable_reason()
        if reason is not None:
            raise EngineUnavailableError(
                f"the ranker's 'sequence' feature group (RankerConfig.sequence): {reason}"
            )
    cutoff = pd.Timestamp(cutoff)
    horizon = pd.Timedelta(days=config.horizon_days)
    step = pd.Timedelta(days=config.window_step_days or config.horizon_days)
    past = events_before(events, cutoff)
    start = past[Columns.TIMESTAMP].min() if len(past) else cutoff
    sample = training_sample(past, config.training_shoppers, config.seed)
    cache = active_window_cache()
    if cache is not None:
        digests = digests or EventDigests(past, catalog)
        settings, drawn = stage_settings(config), sample_digest(sample)
    cutoffs = [cutoff - horizon - (w - 1) * step for w in range(1, config.training_windows + 1)]
    cutoffs = list(itertools.takewhile(lambda c: c > start, cutoffs))
    # one window ahead, and the ranker's cutoff after the last (a cached window or stage is
    # taken from the cache instead: fitted in line then, nothing fitted for nothing)
    ahead = [*cutoffs[1:], *([cutoff] if stage_one is not None else [])] if cache is None else []
    fits = StageOneFits(past, config) if stage_one is None else stage_one
    frames: list[pd.DataFrame] = []
    earliest = cutoff
    try:
        for w, window_cutoff in enumerate(cutoffs, start=1):
            earliest = window_cutoff
            if progress is not None:
                progress(
                    f"training window {w} of {config.training_windows}: stage one and features",
                    (w - 1) / config.training_windows,
                )
            key: tuple[object, ...] = ()
            if cache is not None and digests is not None:
                # the rows read the events before the end of the label window
                key = (
                    "frame",
                    window_cutoff,
                    digests.before(window_cutoff + horizon),
                    settings,
                    drawn,
                )
                hit = cache.frame(key)
                if hit is not None:
                    frames.append(hit)
                    continue
            if w <= len(ahead):  # this window's stage one first, then the next one
                fits.start(window_cutoff)
                fits.start(ahead[w - 1])
            frame = _window_frame(
                past, catalog, window_cutoff, horizon, config, sample, digests, fits
            )
            if frame is None:
                continue
            if cache is not None:
                cache.keep_frame(key, window_cutoff, frame)
            frames.append(frame)
    finally:
        if stage_one is None:
            fits.close()
    if cache is not None:
        cache.drop_before(earliest)  # folds move forward: no later fold reads older windows
    if not frames:
        raise DataValidationError(
            f"the log has no purchases in a {config.horizon_days:g}-day window before {cutoff} "
            "by shoppers with earlier history: the purchase model needs a longer log (at "
            "least two periods) or a shorter horizon_days"
        )
    # one copy of the features (each window released once copied), one block
    return stack_frames(frames)


def _window_frame(
    past: pd.DataFrame,
    catalog: pd.DataFrame | None,
    window_cutoff: pd.Timestamp,
    horizon: pd.Timedelta,
    config: RankerConfig,
    sample: pd.Index | None,
    digests: EventDigests | None,
    stage_one: StageOneFits,
) -> pd.DataFrame | None:
    """The labelled rows of one training window (``None``: no buyer to train on)."""
    labels = purchases_between(past, window_cutoff, window_cutoff + horizon)
    if labels.empty:
        return None
    generator, snapshot = fitted_stage(
        past, catalog, window_cutoff, config, digests=digests, stage_one=stage_one
    )
    users = pd.Index(snapshot.users.external_ids).intersection(
        pd.Index(generator.users_.external_ids)
    )
    if config.training_users == "buyers":
        users = users.intersection(pd.Index(labels[Columns.USER].unique()))
    if sample is not None:
        users = users.intersection(sample)
    if users.empty:
        return None
    frame = _chunked_candidate_features(generator, snapshot, list(users))
    if config.sequence is not None:  # the optional group: a sasrec fitted before this window
        from recsys_core.ranking.features.sequence import SequenceScores

        scores = SequenceScores(config.sequence).fit(past, window_cutoff)
        # float64 columns next to the others: stack_frames keeps all features one block
        frame = frame.assign(**scores.pair_values(frame[Columns.USER], frame[Columns.ITEM]))
    bought = pd.MultiIndex.from_frame(labels[[Columns.USER, Columns.ITEM]])
    pairs = pd.MultiIndex.from_frame(frame[[Columns.USER, Columns.ITEM]])
    frame[LABEL] = pairs.isin(bought).astype(np.int64)
    frame.insert(2, WINDOW_CUTOFF, window_cutoff)
    return frame


def training_rows_summary(train: pd.DataFrame) -> dict[str, object]:
    """Windows, rows, positives and shoppers of training rows (the ranker's summary)."""
    return {
        "window_cutoffs": sorted(str(c) for c in train[WINDOW_CUTOFF].unique()),
        "rows": int(len(train)),
        "positives": int(train[LABEL].sum()),
        "shoppers": int(train[Columns.USER].nunique()),
    }


def cold_start_rates(
    past: pd.DataFrame, cutoff: pd.Timestamp, horizon: pd.Timedelta
) -> tuple[np.ndarray, np.ndarray]:
    """Items by decreasing base rate and those rates: the share of the shoppers who ordered in
    ``[cutoff - horizon, cutoff)`` who bought the item (all-time buyers when nobody ordered
    in that period; ties by item id)."""
    bought = purchases_between(past, cutoff - horizon, cutoff)
    if bought.empty:  # no recent orders: all-time buyers instead
        bought = purchases_between(past, past[Columns.TIMESTAMP].min(), cutoff)
    if bought.empty:
        return np.array([], dtype=object), np.array([], dtype=np.float64)
    rates = bought.groupby(Columns.ITEM).size() / bought[Columns.USER].nunique()
    order = np.lexsort((rates.index.to_numpy(dtype=str), -rates.to_numpy()))
    return rates.index.to_numpy(dtype=object)[order], rates.to_numpy(dtype=np.float64)[order]


def save_cold_start(path: Path, items: np.ndarray, rates: np.ndarray) -> None:
    """Write a ranker's cold-start list (``cold_start.npz``; ``items`` as fixed-width
    unicode, so the archive loads without pickle)."""
    np.savez(path, items=items, rates=rates)


def load_cold_start(
    folder: Path, metadata: Mapping[str, Any]
) -> tuple[pd.Timestamp, tuple[np.ndarray, np.ndarray]]:
    """A saved ranker's cutoff (from ``metadata``) and cold-start items and rates.

    Raises
    ------
    ArtifactError
        A missing key, a bad date, or a bad or missing archive.
    """
    try:
        cutoff = pd.Timestamp(metadata["cutoff"])
        with np.load(folder / "cold_start.npz", allow_pickle=False) as data:
            return cutoff, (data["items"].astype(object), data["rates"].astype(np.float64))
    except Exception as exc:  # missing key, bad date, bad or missing archive
        raise ArtifactError(f"cannot read the ranker in {folder}: {exc}") from exc
