"""Training the sequence network: batches, the multi-label softmax loss, early stopping.

The loss of a position with target set ``S`` (the items bought in the horizon after it) is
``-1/|S| sum_{i in S} log softmax(logits)_i``: a full softmax over the catalog, or, above
``full_softmax_max_items`` items, over the batch's targets and history items plus
``negatives`` items drawn uniformly (shared by the batch; no logQ correction).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from recsys_core.models.sequence.network import SequenceNetwork
from recsys_core.models.sequence.steps import (
    Ragged,
    StepLog,
    horizon_targets,
    last_windows,
    repeat_signals,
    training_windows,
)


@dataclass(frozen=True)
class TrainSettings:
    """What the training loop needs (a view of ``SASRecConfig``)."""

    dim: int
    max_len: int
    blocks: int
    heads: int
    dropout: float
    learning_rate: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int
    max_history: int
    horizon_days: float
    full_softmax_max_items: int
    negatives: int
    seed: int
    threads: int
    device: str


@dataclass
class TrainReport:
    """What happened during training (kept in the saved config's metadata)."""

    epochs: int
    best_epoch: int
    validation_ndcg: list[float]
    seconds: float
    device: str
    full_softmax: bool


def resolve_device(device: str) -> torch.device:
    """``auto``: CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` intra-op threads, then restore the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class StepTensors:
    """A step log's inputs as tensors on the training device (padding row at the end)."""

    items: Tensor
    events: Tensor
    gaps: Tensor

    @classmethod
    def of(cls, log: StepLog, device: torch.device) -> StepTensors:
        width = log.step_items.shape[1]
        pad = np.zeros((1, width), dtype=np.int64)
        return cls(
            torch.from_numpy(np.vstack([log.step_items, pad])).to(device),
            torch.from_numpy(np.vstack([log.step_events, pad])).to(device),
            torch.from_numpy(np.append(log.step_gap, 0)).to(device),
        )

    def window_batch(self, windows: np.ndarray, length: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(b, length, s)`` items/events and ``(b, length)`` gaps, padded on the right."""
        index = windows[:, :1] + np.arange(length)[None, :]
        index = np.where(index < windows[:, 1:2], index, -1)  # -1: the padding row
        idx = torch.from_numpy(index).to(self.items.device)
        return self.items[idx], self.events[idx], self.gaps[idx]


def encode_last(
    net: SequenceNetwork,
    tensors: StepTensors,
    windows: np.ndarray,
    length: int,
    batch_size: int = 128,
) -> np.ndarray:
    """Hidden state after each window's last step, ``(n, d)`` float32 (eval mode)."""
    net.eval()
    out = np.zeros((len(windows), net.item.weight.shape[1]), dtype=np.float32)
    sizes = windows[:, 1] - windows[:, 0]
    order = np.argsort(sizes, kind="stable")  # similar lengths share a batch: less padding
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            chosen = order[b : b + batch_size]
            win = windows[chosen]
            width = int(min(length, max(1, sizes[chosen].max())))
            items, events, gaps = tensors.window_batch(win, width)
            hidden = net(items, events, gaps)
            last = torch.from_numpy(np.maximum(win[:, 1] - win[:, 0] - 1, 0)).to(hidden.device)
            picked = hidden[torch.arange(len(win), device=hidden.device), last]
            out[chosen] = picked.float().cpu().numpy()
    return out


def repeat_values(net: SequenceNetwork, hidden: np.ndarray, repeats: Ragged) -> np.ndarray:
    """Repeat logit of each history entry of ``repeats`` (one row per hidden state)."""
    row = np.repeat(np.arange(len(repeats.offsets) - 1), np.diff(repeats.offsets))
    with torch.no_grad():
        device = net.item.weight.device
        h = torch.from_numpy(hidden[row]).to(device)
        counts = torch.from_numpy(repeats.extra[0]).to(device)
        recency = torch.from_numpy(repeats.extra[1]).to(device)
        values = net.repeat_logits(h, counts, recency)
    return values.float().cpu().numpy().astype(np.float32)


def top_k_scores(
    net: SequenceNetwork, hidden: np.ndarray, repeats: Ragged, values: np.ndarray, k: int
) -> np.ndarray:
    """Top-``k`` item indices per hidden state, repeat logits added (no filtering)."""
    with torch.no_grad():
        item_vectors = net.item_vectors().float().cpu().numpy()
        bias = net.item_bias.float().cpu().numpy()
    scores = hidden @ item_vectors.T + bias
    row = np.repeat(np.arange(len(hidden)), np.diff(repeats.offsets))
    np.add.at(scores, (row, repeats.values), values)
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def ndcg_at_k(top: np.ndarray, relevant: list[np.ndarray], k: int = 10) -> float:
    """Mean NDCG@k with binary gains over each shopper's distinct relevant items."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    total = 0.0
    for row, rel in zip(top, relevant, strict=True):
        hits = np.isin(row[:k], rel)
        total += float(discount[: len(hits)][hits].sum() / discount[: min(len(rel), k)].sum())
    return total / max(len(relevant), 1)


@dataclass(frozen=True)
class Validation:
    """Shoppers with history before the validation cut and purchases after it."""

    users: np.ndarray
    relevant: list[np.ndarray]


def train_network(
    log: StepLog,
    n_items: int,
    settings: TrainSettings,
    validation: tuple[StepLog, Validation] | None = None,
    epochs: int | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> tuple[SequenceNetwork, TrainReport]:
    """Train on ``log``; early stopping on ``validation`` or exactly ``epochs`` epochs.

    With ``validation`` (the log seen at the validation cut and the shoppers' purchases
    after it) the network is scored after every epoch (NDCG@10 of the last state) and the
    best epoch's weights are kept; training stops after ``patience`` epochs without gain.
    """
    started = time.perf_counter()
    device = resolve_device(settings.device)
    rng = np.random.default_rng(settings.seed)
    with torch.random.fork_rng(devices=[]), torch_threads(settings.threads):
        torch.manual_seed(settings.seed)
        net = SequenceNetwork(
            n_items,
            settings.dim,
            settings.max_len,
            settings.blocks,
            settings.heads,
            settings.dropout,
        ).to(device)
        optimiser = torch.optim.AdamW(
            net.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
        )
        targets = horizon_targets(log, settings.horizon_days)
        has_target = np.diff(targets.offsets) > 0
        windows = training_windows(log, settings.max_len, has_target)
        target_steps = np.flatnonzero(has_target)
        repeats = repeat_signals(log, target_steps, settings.max_history)
        repeat_row = np.full(log.n_steps, -1, dtype=np.int64)
        repeat_row[target_steps] = np.arange(len(target_steps))
        tensors = StepTensors.of(log, device)
        full = n_items <= settings.full_softmax_max_items
        val_tensors = StepTensors.of(validation[0], device) if validation else None
        val_windows = (
            last_windows(validation[0], validation[1].users, settings.max_len)
            if validation
            else None
        )
        val_repeats = (
            repeat_signals(validation[0], val_windows[:, 1] - 1, settings.max_history)
            if validation and val_windows is not None
            else None
        )
        n_epochs = epochs if epochs is not None else settings.max_epochs
        scores: list[float] = []
        best_state: dict[str, Tensor] | None = None
        best_epoch, best_score, since_best = 0, -math.inf, 0
        for epoch in range(1, n_epochs + 1):
            net.train()
            for batch in _length_batches(windows, settings.batch_size, rng):
                win = windows[batch]
                loss = _batch_loss(
                    net, tensors, win, settings, targets, repeats, repeat_row, full, rng
                )
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            if validation is None or val_windows is None or val_tensors is None:
                best_epoch = epoch
                if progress:
                    progress(f"epoch {epoch}/{n_epochs}", epoch / n_epochs)
                continue
            assert val_repeats is not None
            hidden = encode_last(net, val_tensors, val_windows, settings.max_len)
            values = repeat_values(net, hidden, val_repeats)
            top = top_k_scores(net, hidden, val_repeats, values, 10)
            score = ndcg_at_k(top, validation[1].relevant)
            scores.append(score)
            if progress:
                progress(f"epoch {epoch}: validation NDCG@10 {score:.4f}", epoch / n_epochs)
            if score > best_score:
                best_epoch, best_score, since_best = epoch, score, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                since_best += 1
                if since_best >= settings.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
    report = TrainReport(
        epochs=epoch if n_epochs else 0,
        best_epoch=best_epoch,
        validation_ndcg=scores,
        seconds=time.perf_counter() - started,
        device=str(device),
        full_softmax=full,
    )
    return net, report


def _length_batches(
    windows: np.ndarray, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Shuffled batches of windows of similar length (less padding, same epoch).

    Windows are shuffled, cut into chunks of 32 batches, sorted by length inside a chunk and
    batched; the batches are shuffled again.
    """
    order = rng.permutation(len(windows))
    sizes = windows[:, 1] - windows[:, 0]
    batches: list[np.ndarray] = []
    chunk = 32 * batch_size
    for c in range(0, len(order), chunk):
        part = order[c : c + chunk]
        part = part[np.argsort(sizes[part], kind="stable")]
        batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def _batch_loss(
    net: SequenceNetwork,
    tensors: StepTensors,
    win: np.ndarray,
    settings: TrainSettings,
    targets: Ragged,
    repeats: Ragged,
    repeat_row: np.ndarray,
    full: bool,
    rng: np.random.Generator,
) -> Tensor:
    """Multi-label softmax loss of one batch of windows."""
    length = int((win[:, 1] - win[:, 0]).max())  # pad to the batch's longest window only
    device = tensors.items.device
    items, events, gaps = tensors.window_batch(win, length)
    hidden = net(items, events, gaps).reshape(-1, net.item.weight.shape[1])
    # the positions with a target, as (row in batch * length + offset) and global step
    step = win[:, :1] + np.arange(length)[None, :]
    real = step < win[:, 1:2]
    step = np.where(real, step, 0)
    sizes = np.where(real, targets.offsets[step + 1] - targets.offsets[step], 0)
    flat = np.flatnonzero(sizes.ravel() > 0)
    steps = step.ravel()[flat]
    h = hidden[torch.from_numpy(flat).to(device)]
    n_pos = len(flat)
    t_sizes = sizes.ravel()[flat]
    t_row = np.repeat(np.arange(n_pos), t_sizes)
    t_item = np.concatenate([targets.row(int(s)) for s in steps])
    t_weight = np.repeat(1.0 / t_sizes, t_sizes)
    r_rows = repeat_row[steps]
    r_sizes = repeats.offsets[r_rows + 1] - repeats.offsets[r_rows]
    r_row = np.repeat(np.arange(n_pos), r_sizes)
    r_idx = np.concatenate([np.arange(repeats.offsets[r], repeats.offsets[r + 1]) for r in r_rows])
    r_item = repeats.values[r_idx]
    rep = net.repeat_logits(
        h[torch.from_numpy(r_row).to(device)],
        torch.from_numpy(repeats.extra[0][r_idx]).to(device),
        torch.from_numpy(repeats.extra[1][r_idx]).to(device),
    )
    if full:
        logits = net.item_logits(h)
        r_col, t_col = r_item, t_item
    else:
        sampled = rng.integers(0, net.n_items, size=settings.negatives)
        columns = np.unique(np.concatenate([t_item, r_item, sampled]))
        logits = net.item_logits(h, torch.from_numpy(columns).to(device))
        r_col = np.searchsorted(columns, r_item)
        t_col = np.searchsorted(columns, t_item)
    logits = logits.index_put(
        (torch.from_numpy(r_row).to(device), torch.from_numpy(r_col).to(device)),
        rep,
        accumulate=True,
    )
    log_p = F.log_softmax(logits, dim=-1)
    picked = log_p[torch.from_numpy(t_row).to(device), torch.from_numpy(t_col).to(device)]
    weight = torch.from_numpy(t_weight).to(device=device, dtype=picked.dtype)
    return -(picked * weight).sum() / n_pos
