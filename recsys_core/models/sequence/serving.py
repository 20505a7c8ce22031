"""Serving the sequence network: TorchScript export, int8 quantisation, incremental cache.

* :func:`export_encoder` builds an :class:`InferenceEncoder` (steps -> item scores of the
  last step and its repeat gate) and compiles it with TorchScript. ``quantize=True``
  applies ``torch.ao.quantization.quantize_dynamic`` (int8 weights, int8 matmuls with
  activations quantised on the fly) to every ``nn.Linear`` and stores the item table (the
  largest tensor: input embedding and output scores, tied) as int8 with one scale per row
  (weight-only; dequantised inside ``forward``).
* :class:`SequenceCache` keeps each shopper's keys and values per block, so a new step costs
  one position of attention instead of a pass over the whole sequence.

The saved model itself (``arrays.npz``) stays fp32 and loadable without torch; the exported
``.pt`` files are serving artifacts read with ``torch.jit.load`` (TorchScript's own archive
reader, not Python's pickle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from recsys_core.models.sequence.network import CausalBlock, KVCache, SequenceNetwork


class InferenceEncoder(nn.Module):
    """Steps ``(b, t, s)`` -> scores of every item after each sequence's last step."""

    if TYPE_CHECKING:  # buffers (TorchScript reads no class annotations here)
        item_q: Tensor
        item_scale: Tensor
        item_fp: Tensor
        item_bias: Tensor

    def __init__(self, net: SequenceNetwork, int8_items: bool = False) -> None:
        super().__init__()
        weight = net.item.weight.detach().clone()
        self.int8_items = int8_items
        if int8_items:
            scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
            self.register_buffer("item_q", torch.round(weight / scale[:, None]).to(torch.int8))
            self.register_buffer("item_scale", scale)
            self.register_buffer("item_fp", torch.zeros(0, weight.shape[1]))
        else:
            self.register_buffer("item_q", torch.zeros(0, weight.shape[1], dtype=torch.int8))
            self.register_buffer("item_scale", torch.zeros(0))
            self.register_buffer("item_fp", weight)
        self.register_buffer("item_bias", net.item_bias.detach().clone())
        self.event = net.event
        self.gap = net.gap
        self.position = net.position
        self.blocks = net.blocks
        self.norm = net.norm
        self.repeat_gate = net.repeat_gate

    def item_table(self) -> Tensor:
        """The ``(n_items + 1, d)`` fp32 item table (dequantised when stored as int8)."""
        if self.int8_items:
            return self.item_q.to(torch.float32) * self.item_scale[:, None]
        return self.item_fp

    def forward(
        self, items: Tensor, events: Tensor, gaps: Tensor, last: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Item scores ``(b, n_items)`` (without repeat logits) and the repeat gate ``(b,)``."""
        table = self.item_table()
        b, t, s = items.shape
        flat = items.reshape(b * t, s)
        summed = F.embedding_bag(flat, table, mode="sum", padding_idx=0)
        summed = summed + F.embedding_bag(
            events.reshape(b * t, s), self.event.weight, mode="sum", padding_idx=0
        )
        count = (flat > 0).sum(1, keepdim=True).clamp(min=1).to(summed.dtype)
        positions = torch.arange(t, device=items.device)
        x = (summed / count).reshape(b, t, -1) + self.gap(gaps) + self.position(positions)[None]
        for block in self.blocks:
            x = block(x)[0]
        hidden = self.norm(x)[torch.arange(b, device=items.device), last]
        scores = hidden @ table[1:].T + self.item_bias
        return scores, self.repeat_gate(hidden).squeeze(-1)


def export_encoder(net: SequenceNetwork, *, quantize: bool) -> torch.jit.ScriptModule:
    """TorchScript encoder of ``net`` in eval mode, fp32 or int8 (see the module docstring)."""
    encoder = InferenceEncoder(net, int8_items=quantize).eval()
    if quantize:
        encoder = torch.ao.quantization.quantize_dynamic(encoder, {nn.Linear}, dtype=torch.qint8)
    with torch.no_grad():
        scripted = torch.jit.script(encoder)
    return torch.jit.freeze(scripted) if not quantize else scripted


def save_encoder(encoder: torch.jit.ScriptModule, path: Path) -> int:
    """Write a TorchScript encoder; returns its size in bytes."""
    torch.jit.save(encoder, str(path))
    return path.stat().st_size


@dataclass
class SequenceCache:
    """Per-shopper keys/values of every block: appending a step costs one position.

    A shopper's cache holds at most ``net.max_len`` positions; a step beyond that starts a
    fresh window of the last ``max_len // 2`` steps (one full pass, then cheap steps again).
    """

    net: SequenceNetwork
    states: dict[str, KVCache] = field(default_factory=dict)
    windows: dict[str, list[tuple[Tensor, Tensor, Tensor]]] = field(default_factory=dict)

    def start(self, user: str, items: Tensor, events: Tensor, gaps: Tensor) -> Tensor:
        """Encode a shopper's steps ``(1, t, s)`` fully and cache them; the last hidden state."""
        with torch.no_grad():
            hidden, cache = self.net.encode_with_cache(items, events, gaps)
        self.states[user] = cache
        self.windows[user] = [
            (items[:, j : j + 1], events[:, j : j + 1], gaps[:, j : j + 1])
            for j in range(items.shape[1])
        ]
        return hidden[:, -1]

    def append(self, user: str, items: Tensor, events: Tensor, gaps: Tensor) -> Tensor:
        """Add one step ``(1, 1, s)`` to a cached shopper; the new last hidden state."""
        window = self.windows[user]
        window.append((items, events, gaps))
        if len(window) > self.net.max_len:
            keep = window[-(self.net.max_len // 2) :]
            width = max(int(w[0].shape[2]) for w in keep)
            pad = [
                tuple(F.pad(part, (0, width - part.shape[2])) for part in w[:2]) + (w[2],)
                for w in keep
            ]
            return self.start(
                user,
                torch.cat([p[0] for p in pad], 1),
                torch.cat([p[1] for p in pad], 1),
                torch.cat([p[2] for p in pad], 1),
            )
        with torch.no_grad():
            hidden, self.states[user] = self.net.step(items, events, gaps, self.states[user])
        return hidden[:, -1]


def repeat_logits_numpy(
    net: SequenceNetwork, counts: np.ndarray, recency: np.ndarray, gate: float
) -> np.ndarray:
    """Repeat logits of one shopper's history entries (for an exported encoder's output)."""
    count_table = net.repeat_count.weight.detach().numpy()[:, 0]
    recency_table = net.repeat_recency.weight.detach().numpy()[:, 0]
    return count_table[counts] + recency_table[recency] + gate


__all__ = [
    "CausalBlock",
    "InferenceEncoder",
    "SequenceCache",
    "export_encoder",
    "repeat_logits_numpy",
    "save_encoder",
]
