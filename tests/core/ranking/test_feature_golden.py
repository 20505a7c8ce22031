"""The feature table is unchanged by refactoring: compared with golden frames recorded from the
single-module ``features.py`` (before it became a package) on the small demo store and a slice
of Online Retail.

Record again (only when a feature is meant to change) with::

    RECSYS_RECORD_GOLDEN=1 python -m pytest -q tests/core/ranking/test_feature_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_core.data.loaders import online_retail_from_frame
from recsys_core.ranking.features import BEHAVIOUR_FEATURES, BehaviourSnapshot

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "data"
RECORD = os.environ.get("RECSYS_RECORD_GOLDEN") == "1"


def feature_frame(events: pd.DataFrame, catalog: pd.DataFrame | None, cutoff: str) -> pd.DataFrame:
    """Features of up to 1,500 pairs with history and 1,500 random pairs (seeded)."""
    snapshot = BehaviourSnapshot.from_events(events, pd.Timestamp(cutoff), catalog)
    rng = np.random.default_rng(7)
    n_items = len(snapshot.items)
    keys = snapshot.pair_keys
    hist = keys[np.sort(rng.choice(len(keys), size=min(1500, len(keys)), replace=False))]
    users = np.r_[hist // n_items, rng.integers(0, len(snapshot.users), 1500)]
    items = np.r_[hist % n_items, rng.integers(0, n_items, 1500)]
    values = snapshot.features(users, items)
    frame = pd.DataFrame(values, columns=list(snapshot.feature_names))
    frame.insert(0, "item_id", snapshot.items.to_external(items).astype(str))
    frame.insert(0, "user_id", snapshot.users.to_external(users).astype(str))
    return frame


def _check(name: str, frame: pd.DataFrame) -> None:
    path = GOLDEN_DIR / f"features_golden_{name}.parquet"
    if RECORD:
        frame.to_parquet(path, index=False)
    golden = pd.read_parquet(path)
    assert list(frame.columns) == list(golden.columns)
    assert list(golden.columns[2:]) == list(BEHAVIOUR_FEATURES)
    pd.testing.assert_frame_equal(
        frame.reset_index(drop=True), golden, check_exact=False, rtol=1e-9, atol=1e-12
    )


def test_small_store_features_match_golden(small_store: object) -> None:
    events, catalog = small_store.events, small_store.catalog  # type: ignore[attr-defined]
    _check("small_store", feature_frame(events, catalog, "2024-06-01"))


def test_online_retail_features_match_golden(online_retail_slice: pd.DataFrame) -> None:
    data = online_retail_from_frame(online_retail_slice)
    _check("online_retail", feature_frame(data.events, data.catalog, "2011-10-01"))
