"""Where a number came from: the event log's checksum and the library versions behind it.

Used by training, evaluation and tuning (a saved ``tune`` result is matched to its log by
:func:`data_checksum`). A leaf module: it imports nothing from the rest of the lab, so
evaluation and tuning can both use it without importing each other.
"""

from __future__ import annotations

import hashlib
from importlib import metadata

import pandas as pd

#: Libraries whose versions decide the numbers.
VERSIONED_LIBRARIES: tuple[str, ...] = (
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "implicit",
    "lightgbm",
    "shap",
)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide the numbers (for reproducibility)."""
    out = {}
    for pkg in VERSIONED_LIBRARIES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def data_checksum(events: pd.DataFrame) -> str:
    """A SHA-256 over the event log's content (ids, events, timestamps, quantities)."""
    digest = hashlib.sha256()
    for col in events.columns:
        values = events[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            # hash the values, not the category codes (saved labs hold this checksum)
            values = values.astype(str)
        hashed = pd.util.hash_pandas_object(values, index=False).to_numpy()
        digest.update(col.encode())
        digest.update(hashed.tobytes())
    return digest.hexdigest()
