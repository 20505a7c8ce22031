"""Compressed ALS factors: encode/decode round trips, the setting, and the served model."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_core.errors import ConfigError
from recsys_core.serving import RecommendationService
from recsys_core.serving.compression import (
    ServingConfig,
    decode,
    encode,
    stored_bytes,
    with_codec,
)
from recsys_core.training import TrainConfig, train_lab


def test_codecs_round_trip_within_their_precision() -> None:
    factors = np.random.default_rng(0).normal(size=(50, 32)).astype(np.float32)
    factors[3] = 0.0  # an all-zero row keeps a usable scale
    assert np.array_equal(decode(encode(factors, "float32")), factors)
    half = decode(encode(factors, "float16"))
    assert np.allclose(half, factors, rtol=1e-3, atol=1e-4)
    small = encode(factors, "int8")
    assert small["values"].dtype == np.int8 and small["scale"].shape == (50, 1)
    back = decode(small)
    peak = np.abs(factors).max(axis=1, keepdims=True)
    assert (np.abs(back - factors) <= peak / 127 / 2 + 1e-6).all()
    assert (back[3] == 0).all()
    sizes = [stored_bytes(encode(factors, c)) for c in ("float32", "float16", "int8")]
    assert sizes[0] > sizes[1] > sizes[2]
    with pytest.raises(ConfigError):
        encode(factors, "int4")


def test_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServingConfig.from_env().als_factors == "float32"
    monkeypatch.setenv("RECSYS_ALS_FACTORS", "INT8")
    assert ServingConfig.from_env().als_factors == "int8"
    monkeypatch.setenv("RECSYS_ALS_FACTORS", "int4")
    with pytest.raises(ConfigError, match="RECSYS_ALS_FACTORS"):
        ServingConfig.from_env()
    with pytest.raises(ValueError):
        ServingConfig(als_factors="float64")  # type: ignore[arg-type]


def test_service_serves_compressed_als_without_touching_the_lab(small_store) -> None:
    lab = train_lab(small_store, TrainConfig(models=["popularity", "als"]))
    original = lab.models["als"].model_.item_factors.copy()
    exact = RecommendationService(lab, ServingConfig(als_factors="float32"))
    small = RecommendationService(lab, ServingConfig(als_factors="int8"))
    a = exact.recommend("U001", 10, "als", policy="lab-rule")
    b = small.recommend("U001", 10, "als", policy="lab-rule")
    assert len(b["items"]) == 10 and not b["degraded"]
    overlap = {i["item_id"] for i in a["items"]} & {i["item_id"] for i in b["items"]}
    assert len(overlap) >= 7  # quantised, not broken
    assert [i["score"] for i in a["items"]] != [i["score"] for i in b["items"]]
    assert np.array_equal(lab.models["als"].model_.item_factors, original)
    clone = with_codec(lab.models["als"], "float16")
    assert clone is not lab.models["als"] and clone.model_ is not lab.models["als"].model_
