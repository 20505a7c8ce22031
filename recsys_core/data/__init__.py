"""Event logs: schema and validation, loaders, built-in datasets, the demo-store generator,
and the :class:`Dataset` that holds a log with its ids canonicalised once."""

from __future__ import annotations

from recsys_core.data.dataset import Dataset, canonical_ids, ensure_canonical, id_values
from recsys_core.data.schema import validate_events

__all__ = ["Dataset", "canonical_ids", "ensure_canonical", "id_values", "validate_events"]
