"""The causal transformer over a shopper's steps (imports torch; load it lazily).

Input of position ``t``: the mean of the step's item + event-type embeddings, plus a
time-gap embedding and a learned position (counted from the start of the window, so a
cached prefix stays valid when a step is appended). Pre-norm blocks with causal attention;
the output ``h_t`` scores every item as ``h_t . e_item + bias_item`` (input and output item
embeddings are tied) plus the repeat logit of the items in the shopper's history
(:func:`RepeatHead`): ``count[cb] + recency[rb] + w . h_t``.

Padding is on the right, so causal attention alone keeps real positions from seeing it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from recsys_core.models.sequence.steps import N_COUNT_BUCKETS, N_GAP_BUCKETS, N_RECENCY_BUCKETS

#: Event codes the network embeds: the lab's event types + 1 (0 pads).
N_EVENT_CODES = 6

KVCache = list[tuple[Tensor, Tensor]]


class CausalBlock(nn.Module):
    """Pre-norm transformer block with causal self-attention and a GELU feed-forward."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, 4 * dim)
        self.ff2 = nn.Linear(4 * dim, dim)
        self.drop = nn.Dropout(dropout)
        self.dropout = dropout

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(d, dim=-1)
        shape = (b, t, self.heads, d // self.heads)
        return (
            q.reshape(shape).transpose(1, 2),
            k.reshape(shape).transpose(1, 2),
            v.reshape(shape).transpose(1, 2),
        )

    def _finish(self, x: Tensor, att: Tensor) -> Tensor:
        b, _, t, _ = att.shape
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, t, -1)))
        return x + self.drop(self.ff2(self.drop(F.gelu(self.ff1(self.norm2(x))))))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Full causal pass; returns the output and this block's keys and values."""
        q, k, v = self._split(x)
        p = self.dropout if self.training else 0.0
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        return self._finish(x, att), k, v

    def step(self, x: Tensor, k_cache: Tensor, v_cache: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One new position ``x`` ``(b, 1, d)`` attending to the cached keys and values."""
        q, k, v = self._split(x)
        k_all = torch.cat([k_cache, k], dim=2)
        v_all = torch.cat([v_cache, v], dim=2)
        att = F.scaled_dot_product_attention(q, k_all, v_all)
        return self._finish(x, att), k_all, v_all


class SequenceNetwork(nn.Module):
    """Item/event/gap embeddings, causal blocks and the item + repeat scoring head."""

    def __init__(
        self, n_items: int, dim: int, max_len: int, blocks: int, heads: int, dropout: float
    ) -> None:
        super().__init__()
        self.n_items = n_items
        self.max_len = max_len
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.event = nn.Embedding(N_EVENT_CODES, dim, padding_idx=0)
        self.gap = nn.Embedding(N_GAP_BUCKETS, dim)
        self.position = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(CausalBlock(dim, heads, dropout) for _ in range(blocks))
        self.norm = nn.LayerNorm(dim)
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.repeat_count = nn.Embedding(N_COUNT_BUCKETS, 1)
        self.repeat_recency = nn.Embedding(N_RECENCY_BUCKETS, 1)
        self.repeat_gate = nn.Linear(dim, 1)
        for emb in (self.item, self.event, self.gap, self.position):
            nn.init.normal_(emb.weight, std=0.02)
        nn.init.zeros_(self.repeat_count.weight)
        nn.init.zeros_(self.repeat_recency.weight)
        with torch.no_grad():
            self.item.weight[0].zero_()
            self.event.weight[0].zero_()

    def embed_steps(self, items: Tensor, events: Tensor, gaps: Tensor, start: int = 0) -> Tensor:
        """Input vectors ``(b, t, d)`` of steps ``(b, t, s)`` at positions ``start..``.

        ``embedding_bag`` sums each step's item and event embeddings without materialising
        the ``(b, t, s, d)`` tensor (the largest cost of a naive bag).
        """
        b, t, s = items.shape
        flat_items = items.reshape(b * t, s)
        summed = F.embedding_bag(flat_items, self.item.weight, mode="sum", padding_idx=0)
        summed = summed + F.embedding_bag(
            events.reshape(b * t, s), self.event.weight, mode="sum", padding_idx=0
        )
        count = (flat_items > 0).sum(1, keepdim=True).clamp(min=1).to(summed.dtype)
        bag = (summed / count).reshape(b, t, -1)
        positions = torch.arange(start, start + t, device=items.device)
        return bag + self.gap(gaps) + self.position(positions)[None]

    def forward(self, items: Tensor, events: Tensor, gaps: Tensor) -> Tensor:
        """Hidden state ``(b, t, d)`` of every position (full causal pass)."""
        x = self.drop(self.embed_steps(items, events, gaps))
        for block in self.blocks:
            x, _, _ = block(x)
        return self.norm(x)

    def encode_with_cache(
        self, items: Tensor, events: Tensor, gaps: Tensor
    ) -> tuple[Tensor, KVCache]:
        """Full pass (eval) that also returns every block's keys and values."""
        x = self.embed_steps(items, events, gaps)
        cache: KVCache = []
        for block in self.blocks:
            x, k, v = block(x)
            cache.append((k, v))
        return self.norm(x), cache

    def step(
        self, items: Tensor, events: Tensor, gaps: Tensor, cache: KVCache
    ) -> tuple[Tensor, KVCache]:
        """Append one step ``(b, 1, s)`` to a cached prefix; one position of work."""
        start = int(cache[0][0].shape[2])
        x = self.embed_steps(items, events, gaps, start)
        new_cache: KVCache = []
        for block, (k_cache, v_cache) in zip(self.blocks, cache, strict=True):
            assert isinstance(block, CausalBlock)
            x, k, v = block.step(x, k_cache, v_cache)
            new_cache.append((k, v))
        return self.norm(x), new_cache

    def item_logits(self, hidden: Tensor, columns: Tensor | None = None) -> Tensor:
        """``hidden . e_item + bias_item`` for every item, or for item indices ``columns``."""
        if columns is None:
            return hidden @ self.item.weight[1:].T + self.item_bias
        return hidden @ self.item.weight[columns + 1].T + self.item_bias[columns]

    def repeat_logits(self, hidden: Tensor, counts: Tensor, recency: Tensor) -> Tensor:
        """Repeat logit of history entries; ``hidden`` is each entry's position state."""
        gate = self.repeat_gate(hidden).squeeze(-1)
        count = self.repeat_count(counts).squeeze(-1)
        return count + self.repeat_recency(recency).squeeze(-1) + gate

    def item_vectors(self) -> Tensor:
        """Item embeddings ``(n_items, d)`` (the similar-items space)."""
        return self.item.weight[1:]
