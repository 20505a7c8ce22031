"""IdMap and the weighted interaction matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys_core.data.schema import validate_events
from recsys_core.interactions import EventWeights, IdMap, InteractionMatrix


def test_idmap_round_trip_and_unknowns(tmp_path: Path) -> None:
    ids = IdMap.from_values(["b", "a", "c", "a", 7])
    assert list(ids.external_ids) == ["7", "a", "b", "c"]
    idx = ids.to_internal(["a", "zzz", 7])
    assert idx.tolist() == [1, -1, 0]
    assert ids.to_external([3, 1]).tolist() == ["c", "a"]
    assert "a" in ids and "q" not in ids
    ids.save(tmp_path / "ids.npy")
    assert IdMap.load(tmp_path / "ids.npy").external_ids.tolist() == ids.external_ids.tolist()


def test_idmap_from_categorical_matches_from_strings() -> None:
    s = pd.Series(["x", "y", "x", "z"], dtype="category")
    assert IdMap.from_values(s).external_ids.tolist() == ["x", "y", "z"]
    ids = IdMap.from_values(["z", "x", "y"])
    assert ids.to_internal(s).tolist() == [0, 1, 0, 2]


def test_matrix_weights_sum_per_cell() -> None:
    events = validate_events(
        pd.DataFrame(
            {
                "user_id": ["u1", "u1", "u1", "u2", "u2"],
                "item_id": ["a", "a", "b", "a", "b"],
                "event": ["view", "purchase", "cart", "favorite", "view"],
                "quantity": [1, 4, 1, 1, 1],
            }
        )
    )
    m = InteractionMatrix.from_events(events)
    dense = m.matrix.toarray()
    np.testing.assert_allclose(dense, [[1 + 5, 3], [3, 1]])
    weighted = InteractionMatrix.from_events(
        events, EventWeights(view=0, purchase=1, use_quantity=True)
    )
    np.testing.assert_allclose(weighted.matrix.toarray(), [[4, 3], [3, 0]])
    assert weighted.matrix.nnz == 3  # zero-weight views are dropped


def test_matrix_with_fixed_maps_drops_unknown_ids() -> None:
    events = validate_events(
        pd.DataFrame({"user_id": ["u1", "u9"], "item_id": ["a", "a"], "event": ["view", "view"]})
    )
    m = InteractionMatrix.from_events(
        events, users=IdMap.from_values(["u1", "u2"]), items=IdMap.from_values(["a"])
    )
    assert m.shape == (2, 1) and m.nnz == 1
