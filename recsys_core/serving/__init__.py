"""Serving: trained, versioned labs and the recommendation service with its fallback chain."""

from __future__ import annotations

from recsys_core.serving.lab import (
    TrainConfig,
    TrainedLab,
    list_versions,
    load_lab,
    resolve_version,
    save_lab,
    train_lab,
)
from recsys_core.serving.live import LiveService
from recsys_core.serving.service import FALLBACK_CHAIN, RecommendationService

__all__ = [
    "FALLBACK_CHAIN",
    "LiveService",
    "RecommendationService",
    "TrainConfig",
    "TrainedLab",
    "list_versions",
    "load_lab",
    "resolve_version",
    "save_lab",
    "train_lab",
]
