"""The sequence transformer behind the ``sasrec`` model (an optional extra: PyTorch).

* :mod:`~recsys_core.models.sequence.steps`: event log -> each shopper's sequence of steps
  (a basket or a burst of events), the horizon targets and the repeat signals (numpy only).
* :mod:`~recsys_core.models.sequence.network`: the causal transformer (imports torch).
* :mod:`~recsys_core.models.sequence.training`: the training loop with early stopping.
* :mod:`~recsys_core.models.sequence.serving`: TorchScript export, int8 quantisation and the
  per-shopper cache of the encoded sequence (a new event costs one step, not a full pass).

Only ``steps`` may be imported without torch; the recommender
(:mod:`recsys_core.models.sasrec`) imports the others inside the calls that need them, so the
lab imports, loads and serves a saved ``sasrec`` model without torch.
"""

from __future__ import annotations

TORCH_REQUIREMENT = "torch==2.13.0"
INSTALL_HINT = (
    "the 'sasrec' sequence model needs PyTorch, an optional extra: install it with "
    "`python -m pip install -r requirements-seq.txt` (pins " + TORCH_REQUIREMENT + ", the CPU "
    "build; a looser pin pulls a multi-GB CUDA build)"
)


def torch_unavailable_reason() -> str | None:
    """Why the sequence model cannot train here (``None`` when torch imports)."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        return f"{INSTALL_HINT} ({exc})"
    return None
