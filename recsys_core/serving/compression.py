"""Compressed ALS factors: float16 and int8 (per-row scale), and the serving setting.

``bench/bench_compression.py`` measures each codec on Online Retail (factor bytes, NDCG@10 on
the test window, ALS answer latency). The setting :attr:`ServingConfig.als_factors` (or
``$RECSYS_ALS_FACTORS``) chooses what the service answers ALS questions with: ``float32``
keeps them as trained (the default: answers exactly as trained), ``float16`` rounds them
through half precision, ``int8`` through 8-bit integers with one float32 scale per row. Only
the served ``als`` model is affected: the ranker's stage one keeps its own float32 factors,
so purchase probabilities do not move.

implicit computes in float32, so a compressed model is decoded once when the service
prepares it: the codec saves bytes where factors are stored or shipped
(:func:`encode`/:func:`decode`, ``.npz`` without pickle) and shows the quality a model kept in
that form would have; it does not make a single answer faster.
"""

from __future__ import annotations

import copy
import io
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys_core.errors import ConfigError
from recsys_core.settings import lab_settings

Codec = Literal["float32", "float16", "int8"]
CODECS: tuple[str, ...] = ("float32", "float16", "int8")


class ServingConfig(BaseModel):
    """Settings of the recommendation service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    als_factors: Codec = Field(
        "float32",
        description="How the served ALS model's factors are held: float32 (as trained), "
        "float16 (half the bytes) or int8 (a quarter, with one scale per row).",
    )

    @classmethod
    def from_env(cls) -> ServingConfig:
        """Defaults, overridden by ``$RECSYS_ALS_FACTORS``.

        Raises
        ------
        ConfigError
            An unknown codec name.
        """
        settings: dict[str, Any] = {}
        if lab_settings().als_factors:
            settings["als_factors"] = str(lab_settings().als_factors).strip().lower()
        try:
            return cls(**settings)
        except ValidationError:
            raise ConfigError(
                f"RECSYS_ALS_FACTORS={settings.get('als_factors')!r} is not one of "
                f"{', '.join(CODECS)}"
            ) from None


def encode(factors: np.ndarray, codec: str) -> dict[str, np.ndarray]:
    """The arrays that store ``factors`` in ``codec`` (``values``, plus ``scale`` for int8)."""
    factors = np.asarray(factors, dtype=np.float32)
    if codec == "float32":
        return {"values": factors}
    if codec == "float16":
        return {"values": factors.astype(np.float16)}
    if codec == "int8":
        peak = np.abs(factors).max(axis=1, keepdims=True)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        values = np.clip(np.rint(factors / scale), -127, 127).astype(np.int8)
        return {"values": values, "scale": scale}
    raise ConfigError(f"unknown factor codec {codec!r}; choose one of {', '.join(CODECS)}")


def decode(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """float32 factors back from :func:`encode`'s arrays."""
    values = arrays["values"]
    if values.dtype == np.int8:
        return (values.astype(np.float32) * arrays["scale"]).astype(np.float32)
    return values.astype(np.float32)


def stored_bytes(arrays: dict[str, np.ndarray]) -> int:
    """Bytes of the arrays written as an ``.npz`` (what a saved artifact would hold)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getbuffer().nbytes


def with_codec(model: Any, codec: str) -> Any:
    """A copy of a fitted ALS/BPR recommender whose factors went through ``codec``.

    The original is untouched (the ranker's stage one may be the same object).
    """
    if codec == "float32":
        return model
    clone = copy.copy(model)
    inner = copy.copy(model.model_)
    inner.user_factors = np.ascontiguousarray(decode(encode(model.model_.user_factors, codec)))
    inner.item_factors = np.ascontiguousarray(decode(encode(model.model_.item_factors, codec)))
    for cached in ("_item_norms", "_user_norms"):  # implicit caches norms for similar_items
        if hasattr(inner, cached):
            setattr(inner, cached, None)
    clone.model_ = inner
    return clone
