"""``sasrec``: a causal transformer over each shopper's sequence of baskets (optional extra).

SASRec (Kang & McAuley 2018) trained with a softmax cross-entropy (Klenitskiy & Vasilev,
RecSys 2023), adapted to repurchase-heavy shop logs as the first measurement on Online
Retail suggested (docs/sequence-model.md):

* a step is a basket (events of a shopper less than ``step_minutes`` apart), embedded as
  the mean of its item + event-type embeddings plus a time-gap embedding;
* the target of a step is the *set* of items bought in the next ``horizon_days``
  (multi-label softmax over the whole catalog; sampled softmax above
  ``full_softmax_max_items`` items);
* the shopper's repeat signals (how often and how recently each history item was bought)
  add a learnt logit to those items, so buy-again behaviour is part of the model.

Early stopping on a validation window carved from the training data (the last
``validation_days``), then, with ``refit``, a refit on all of it for the chosen number of
epochs (on Online Retail: NDCG@10 0.3207 instead of 0.3067). Training needs PyTorch
(``requirements-seq.txt``); a saved model loads and serves without it, because fitting
caches every shopper's encoded state (``user_state_``) and repeat logits (``repeat_``): an
answer is one dot product per item. The network weights are
saved in ``arrays.npz`` (``weight__<name>``) and rebuilt by :meth:`network` for export,
quantisation and incremental updates (:mod:`recsys_core.models.sequence.serving`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field, model_validator

from recsys_core.columns import EVENT_TYPES, Columns
from recsys_core.errors import ConfigError, DataValidationError, EngineUnavailableError
from recsys_core.interactions import InteractionMatrix
from recsys_core.models.interface import Progress, RecommenderConfig
from recsys_core.models.matrix import MatrixRecommender
from recsys_core.models.sequence import INSTALL_HINT, torch_unavailable_reason
from recsys_core.models.sequence.steps import StepLog, build_steps, last_windows, repeat_signals

if TYPE_CHECKING:
    from recsys_core.models.sequence.network import SequenceNetwork
    from recsys_core.models.sequence.training import TrainSettings, Validation

WEIGHT_PREFIX = "weight__"
_NS_PER_DAY = 86_400 * 10**9


class SASRecConfig(RecommenderConfig):
    """Settings of the sequence transformer (sizes chosen for <= 10 min on 2 CPU cores)."""

    dim: int = Field(64, ge=4, le=1024, description="Embedding and hidden size.")
    max_len: int = Field(50, ge=2, le=1024, description="Steps (baskets) the model attends to.")
    blocks: int = Field(2, ge=1, le=12, description="Transformer blocks.")
    heads: int = Field(2, ge=1, le=16, description="Attention heads (must divide dim).")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="Dropout in training.")
    learning_rate: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    batch_size: int = Field(64, ge=1, description="Windows per optimiser step.")
    max_epochs: int = Field(8, ge=1, description="Most epochs (early stopping may stop sooner).")
    patience: int = Field(2, ge=1, description="Epochs without validation gain before stopping.")
    max_basket: int = Field(32, ge=1, description="Items of one step the network reads.")
    max_history: int = Field(
        64, ge=1, description="History items with a repeat logit (most bought, then recent)."
    )
    step_minutes: float = Field(
        1.0, ge=0, description="Events less than this many minutes apart share a step."
    )
    horizon_days: float = Field(
        30.0, gt=0, description="A step's target: the items bought in the next N days."
    )
    validation_days: float = Field(
        30.0, ge=0, description="Last N days of training data for early stopping (0: none)."
    )
    refit: bool = Field(
        True,
        description="After early stopping, refit on all data for the chosen epochs (about "
        "1.6x the training time; off: the best epoch's weights are kept).",
    )
    full_softmax_max_items: int = Field(
        50_000, ge=1, description="Above this catalog size the loss uses sampled softmax."
    )
    negatives: int = Field(2048, ge=1, description="Sampled negatives per batch (large catalogs).")
    target_events: tuple[str, ...] = Field(
        ("purchase",), min_length=1, description="Events that count as buying (the targets)."
    )
    threads: int = Field(2, ge=1, le=256, description="Torch intra-op CPU threads.")
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto: CUDA when present."
    )

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> SASRecConfig:
        if self.dim % self.heads:
            raise ValueError(f"heads={self.heads} must divide dim={self.dim}")
        return self


class SASRecRecommender(MatrixRecommender):
    """Causal transformer over baskets with horizon targets and repeat logits.

    Scores: ``user_state_[u] . item_vectors_[i] + item_bias_[i] + repeat_[u, i]``.
    ``filter_seen`` defaults to True like every single-stage model; pass False to let
    repurchases through (the repeat logits then matter most).

    Attributes
    ----------
    user_state_ : numpy.ndarray
        ``(n_users, dim)`` float32, each shopper's encoded sequence after the last step.
    item_vectors_, item_bias_ : numpy.ndarray
        Output item embeddings (tied to the inputs) and biases.
    repeat_ : scipy.sparse.csr_matrix
        Repeat logits of each shopper's history items.
    weights_ : dict[str, numpy.ndarray]
        The network's state dict as arrays.
    steps_ : StepLog
        Each shopper's last ``max_len`` steps (the input of incremental serving).
    validation_ndcg_ : numpy.ndarray
        Validation NDCG@10 after each epoch (empty without validation).
    """

    name: ClassVar[str] = "sasrec"
    config_class = SASRecConfig
    requires_timestamps: ClassVar[bool] = True
    slow_to_train: ClassVar[bool] = True

    config: SASRecConfig
    user_state_: np.ndarray
    item_vectors_: np.ndarray
    item_bias_: np.ndarray
    repeat_: sp.csr_matrix
    weights_: dict[str, np.ndarray]
    steps_: StepLog
    validation_ndcg_: np.ndarray
    epochs_: int

    # ------------------------------------------------------------------ fitting

    def fit(self, interactions: InteractionMatrix) -> Self:
        """Not available: the sequence model learns from an ordered event log."""
        raise ConfigError(
            "the 'sasrec' model learns from the event log's order and times, not from an "
            "interaction matrix: call fit_log(events)"
        )

    def _fit_model(self, matrix: sp.csr_matrix) -> None:
        raise ConfigError("the 'sasrec' model is trained with fit_log(events)")

    def fit_log(
        self,
        events: pd.DataFrame,
        catalog: pd.DataFrame | None = None,
        *,
        cutoff: pd.Timestamp | str | None = None,
        matrix: InteractionMatrix | None = None,
        progress: Progress | None = None,
    ) -> Self:
        """Train on the events before ``cutoff`` (see the module docstring).

        Raises
        ------
        EngineUnavailableError
            PyTorch is not installed (the message says how to install it).
        DataValidationError
            The log has no timestamps or no events.
        """
        reason = torch_unavailable_reason()
        if reason is not None:
            raise EngineUnavailableError(reason)
        if Columns.TIMESTAMP not in events.columns:
            raise DataValidationError(
                "the 'sasrec' model needs event timestamps to order each shopper's "
                "events; this log has none: add a timestamp column or choose another model"
            )
        if cutoff is not None:
            events = events[events[Columns.TIMESTAMP] < pd.Timestamp(cutoff)]
        if matrix is None:
            matrix = InteractionMatrix.from_events(events)
        cleaned = sp.csr_matrix(matrix.matrix, dtype=np.float32, copy=True)
        cleaned.sum_duplicates()
        cleaned.eliminate_zeros()
        cleaned.sort_indices()
        if not (cleaned.data > 0).any():
            raise DataValidationError(
                "cannot train 'sasrec' on a log without positive interactions"
            )
        cfg = self.config
        users = matrix.users.to_internal(events[Columns.USER])
        items = matrix.items.to_internal(events[Columns.ITEM])
        keep = (users >= 0) & (items >= 0)
        frame = events[keep]
        users, items = users[keep], items[keep]
        codes = {name: k for k, name in enumerate(EVENT_TYPES)}
        event_names = pd.Series(frame[Columns.EVENT].to_numpy(dtype=object))
        event_code = event_names.map(codes).fillna(len(EVENT_TYPES)).to_numpy(np.int64)
        is_target = event_names.isin(cfg.target_events).to_numpy()
        if not is_target.any():  # a log without purchases: every event is a target
            is_target = np.ones(len(frame), dtype=bool)
        stamps = pd.to_datetime(frame[Columns.TIMESTAMP]).to_numpy("datetime64[ns]")
        days = stamps.astype(np.int64) / _NS_PER_DAY
        n_users, n_items = len(matrix.users), len(matrix.items)

        def steps_before(limit: float) -> StepLog:
            m = days < limit
            return build_steps(
                users[m],
                items[m],
                event_code[m],
                days[m],
                is_target[m],
                n_users=n_users,
                max_basket=cfg.max_basket,
                step_minutes=cfg.step_minutes,
            )

        full_log = steps_before(np.inf)
        settings = self._settings()
        validation = None
        if cfg.validation_days > 0 and len(days):
            validation = self._validation(steps_before, users, items, days, is_target)
        from recsys_core.models.sequence.training import train_network

        if validation is not None:
            net, report = train_network(
                validation[0], n_items, settings, validation=validation, progress=progress
            )
            if cfg.refit:
                net, _ = train_network(
                    full_log, n_items, settings, epochs=report.best_epoch, progress=progress
                )
        else:
            net, report = train_network(full_log, n_items, settings, progress=progress)
        self.weights_ = {k: v.detach().float().cpu().numpy() for k, v in net.state_dict().items()}
        self.validation_ndcg_ = np.asarray(report.validation_ndcg, dtype=np.float64)
        self.epochs_ = report.best_epoch
        self._encode_users(net, full_log)
        self._set_training_data(matrix.users, matrix.items, cleaned)
        return self

    def _settings(self) -> TrainSettings:
        from recsys_core.models.sequence.training import TrainSettings

        cfg = self.config
        return TrainSettings(
            dim=cfg.dim,
            max_len=cfg.max_len,
            blocks=cfg.blocks,
            heads=cfg.heads,
            dropout=cfg.dropout,
            learning_rate=cfg.learning_rate,
            weight_decay=cfg.weight_decay,
            batch_size=cfg.batch_size,
            max_epochs=cfg.max_epochs,
            patience=cfg.patience,
            max_history=cfg.max_history,
            horizon_days=cfg.horizon_days,
            full_softmax_max_items=cfg.full_softmax_max_items,
            negatives=cfg.negatives,
            seed=cfg.seed,
            threads=cfg.threads,
            device=cfg.device,
        )

    def _validation(
        self,
        steps_before: Any,
        users: np.ndarray,
        items: np.ndarray,
        days: np.ndarray,
        is_target: np.ndarray,
    ) -> tuple[StepLog, Validation] | None:
        """The log before the validation cut and the shoppers' purchases after it."""
        from recsys_core.models.sequence.training import Validation

        cut = float(days.max()) - self.config.validation_days
        before = steps_before(cut)
        after = (days >= cut) & is_target
        has_history = np.diff(before.user_offsets) > 0
        pairs = pd.DataFrame({"u": users[after], "i": items[after]}).drop_duplicates()
        pairs = pairs[has_history[pairs["u"].to_numpy()]]
        if pairs.empty or before.n_steps == 0:
            return None
        grouped = pairs.groupby("u", sort=True)["i"]
        val_users = np.asarray(list(grouped.groups), dtype=np.int64)
        relevant = [np.sort(g.to_numpy(np.int64)) for _, g in grouped]
        return before, Validation(val_users, relevant)

    def _encode_users(self, net: SequenceNetwork, log: StepLog) -> None:
        """Cache every shopper's encoded state and repeat logits (and last steps)."""
        from recsys_core.models.sequence.training import (
            StepTensors,
            encode_last,
            repeat_values,
            torch_threads,
        )

        cfg = self.config
        n_users = log.n_users
        n_items = net.n_items
        with torch_threads(cfg.threads):
            windows = last_windows(log, np.arange(n_users), cfg.max_len)
            active = np.flatnonzero(windows[:, 1] > windows[:, 0])
            tensors = StepTensors.of(log, net.item.weight.device)
            state = np.zeros((n_users, cfg.dim), dtype=np.float32)
            state[active] = encode_last(net, tensors, windows[active], cfg.max_len)
            repeats = repeat_signals(log, windows[active, 1] - 1, cfg.max_history)
            values = repeat_values(net, state[active], repeats)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        indptr[active + 1] = np.diff(repeats.offsets)
        self.repeat_ = sp.csr_matrix(
            (values, repeats.values, np.cumsum(indptr)), shape=(n_users, n_items)
        )
        self.user_state_ = state
        self.item_vectors_ = self.weights_["item.weight"][1:].astype(np.float32)
        self.item_bias_ = self.weights_["item_bias"].astype(np.float32)
        self.steps_ = _last_steps(log, windows)

    # ------------------------------------------------------------------ scoring

    def item_scores(self, user_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every item's score for each shopper (what :meth:`recommend` ranks by).

        Returns
        -------
        tuple[numpy.ndarray, numpy.ndarray]
            ``known`` (bool, one per user: the shopper has events before the training
            cutoff) and ``(len(user_ids), n_items)`` float64 scores in the item order of
            ``items_`` (rows of unknown shoppers are NaN).
        """
        self._check_fitted()
        rows = self.users_.to_internal(list(user_ids))
        known = rows >= 0
        scores = np.full((len(rows), self.n_items), np.nan)
        if known.any():
            scores[known] = self._scores(rows[known])
        return known, scores

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        """Dense float64 scores of user indices ``rows`` over every item."""
        scores = self.user_state_[rows].astype(np.float64) @ self.item_vectors_.T.astype(np.float64)
        scores += self.item_bias_.astype(np.float64)
        scores += self.repeat_[rows].toarray()
        return scores

    def _recommend_rows(
        self, rows: np.ndarray, n: int, filter_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        ids_out, scores_out = [], []
        for b in range(0, len(rows), 1024):
            chunk = rows[b : b + 1024]
            scores = self._scores(chunk)
            if filter_seen:
                seen = self.user_items_[chunk]
                scores[seen.nonzero()] = -np.inf
            top = np.argpartition(-scores, n - 1, axis=1)[:, :n]
            top_scores = np.take_along_axis(scores, top, axis=1)
            order = np.lexsort((top, -top_scores), axis=1)
            ids_out.append(np.take_along_axis(top, order, axis=1))
            scores_out.append(np.take_along_axis(top_scores, order, axis=1))
        return np.vstack(ids_out), np.vstack(scores_out)

    def _similar_rows(self, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        vectors = self.item_vectors_.astype(np.float64)
        norms = np.linalg.norm(vectors, axis=1)
        unit = vectors / np.maximum(norms, 1e-12)[:, None]
        scores = unit[rows] @ unit.T
        top = np.argpartition(-scores, n - 1, axis=1)[:, :n]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.lexsort((top, -top_scores), axis=1)
        return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_scores, order, 1)

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        dots = np.einsum(
            "ij,ij->i",
            self.user_state_[users].astype(np.float64),
            self.item_vectors_[items].astype(np.float64),
        )
        repeat = np.asarray(self.repeat_[users, items]).ravel()
        return dots + self.item_bias_[items].astype(np.float64) + repeat

    # ------------------------------------------------------------------ network

    def network(self) -> SequenceNetwork:
        """The trained network rebuilt from the saved weights (needs PyTorch; eval mode)."""
        self._check_fitted()
        reason = torch_unavailable_reason()
        if reason is not None:
            raise EngineUnavailableError(reason)
        import torch

        from recsys_core.models.sequence.network import SequenceNetwork

        cfg = self.config
        net = SequenceNetwork(self.n_items, cfg.dim, cfg.max_len, cfg.blocks, cfg.heads, 0.0)
        net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.weights_.items()})
        return net.eval()

    # ------------------------------------------------------------------ persistence

    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "user_state": self.user_state_,
            "repeat_data": self.repeat_.data,
            "repeat_indices": self.repeat_.indices,
            "repeat_indptr": self.repeat_.indptr,
            "validation_ndcg": self.validation_ndcg_,
            "epochs": np.asarray([self.epochs_], dtype=np.int64),
        }
        for field in StepLog.__dataclass_fields__:
            arrays[f"steps__{field}"] = getattr(self.steps_, field)
        arrays.update({WEIGHT_PREFIX + k: v for k, v in self.weights_.items()})
        return arrays

    def _restore_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        n_users, n_items = self.user_items_.shape
        self.weights_ = {
            k[len(WEIGHT_PREFIX) :]: v for k, v in arrays.items() if k.startswith(WEIGHT_PREFIX)
        }
        state = arrays["user_state"]
        if state.shape != (n_users, self.config.dim):
            raise ValueError(f"user_state has shape {state.shape}, expected ({n_users}, dim)")
        self.user_state_ = state.astype(np.float32)
        self.item_vectors_ = self.weights_["item.weight"][1:].astype(np.float32)
        self.item_bias_ = self.weights_["item_bias"].astype(np.float32)
        if self.item_vectors_.shape[0] != n_items:
            raise ValueError(f"{self.item_vectors_.shape[0]} item vectors for {n_items} items")
        self.repeat_ = sp.csr_matrix(
            (arrays["repeat_data"], arrays["repeat_indices"], arrays["repeat_indptr"]),
            shape=(n_users, n_items),
        )
        self.validation_ndcg_ = arrays["validation_ndcg"]
        self.epochs_ = int(arrays["epochs"][0])
        self.steps_ = StepLog(**{f: arrays[f"steps__{f}"] for f in StepLog.__dataclass_fields__})


def _last_steps(log: StepLog, windows: np.ndarray) -> StepLog:
    """The sub-log of each shopper's window of steps (``windows``: one row per shopper)."""
    parts = [np.arange(a, b, dtype=np.int64) for a, b in windows]
    index = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    sizes = windows[:, 1] - windows[:, 0]
    entry_sizes = log.entry_offsets[index + 1] - log.entry_offsets[index]
    entries = (
        np.concatenate([np.arange(log.entry_offsets[s], log.entry_offsets[s + 1]) for s in index])
        if len(index)
        else np.zeros(0, dtype=np.int64)
    )
    return StepLog(
        user_offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        step_time=log.step_time[index],
        step_gap=log.step_gap[index],
        step_items=log.step_items[index],
        step_events=log.step_events[index],
        entry_offsets=np.concatenate([[0], np.cumsum(entry_sizes)]).astype(np.int64),
        entry_items=log.entry_items[entries.astype(np.int64)],
        entry_is_target=log.entry_is_target[entries.astype(np.int64)],
    )


__all__ = ["INSTALL_HINT", "SASRecConfig", "SASRecRecommender"]
