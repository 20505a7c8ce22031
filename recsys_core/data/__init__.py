"""Event logs: schema and validation, loaders, built-in datasets, the demo-store generator."""

from __future__ import annotations

from recsys_core.data.schema import Dataset, validate_events

__all__ = ["Dataset", "validate_events"]
