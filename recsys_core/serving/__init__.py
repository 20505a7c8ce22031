"""Serving: trained, versioned labs and the recommendation service with its fallback chain.

Training a version is :mod:`recsys_core.training` (outside serving: it needs evaluation and
monitoring, which serving never imports).
"""

from __future__ import annotations

from recsys_core.serving.lab import TrainedLab, list_versions, load_lab, resolve_version, save_lab
from recsys_core.serving.live import LiveService
from recsys_core.serving.service import FALLBACK_CHAIN, RecommendationService

__all__ = [
    "FALLBACK_CHAIN",
    "LiveService",
    "RecommendationService",
    "TrainedLab",
    "list_versions",
    "load_lab",
    "resolve_version",
    "save_lab",
]
