"""The repurchase-cycle feature group, worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core.ranking.features import BEHAVIOUR_FEATURES, REGISTRY, BehaviourSnapshot

T0 = pd.Timestamp("2024-01-01 12:00")


def _events() -> pd.DataFrame:
    rows = [  # (shopper, item, day)
        ("a", "A", 0),
        ("a", "A", 10),
        ("a", "A", 20),  # a reorders A every 10 days
        ("b", "A", 0),
        ("b", "A", 32),  # b every 32 days: the shop's cycle for A is the median, 21
        ("c", "A", 50),  # c bought A once, 10 days before the cutoff
        ("c", "B", 55),  # nobody reordered B: no cycle
    ]
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "event": "purchase",
            "timestamp": [T0 + pd.Timedelta(days=r[2]) for r in rows],
            "quantity": 1.0,
            "price": 2.0,
        }
    )


def test_item_cycle_and_due_ratio_by_hand() -> None:
    snapshot = BehaviourSnapshot.from_events(_events(), T0 + pd.Timedelta(days=60))
    pairs = [("a", "A"), ("b", "A"), ("c", "A"), ("c", "B"), ("a", "B")]
    users = snapshot.users.to_internal(pd.Series([p[0] for p in pairs]))
    items = snapshot.items.to_internal(pd.Series([p[1] for p in pairs]))
    frame = pd.DataFrame(snapshot.features(users, items), columns=list(BEHAVIOUR_FEATURES))
    assert frame["ui_item_cycle_days"].iloc[:3].tolist() == [21.0, 21.0, 21.0]
    # days since each one's last order of A (40, 28, 10) over the shop's cycle
    assert frame["ui_due_vs_item_cycle"].iloc[:3].tolist() == pytest.approx(
        [40 / 21, 28 / 21, 10 / 21]
    )
    assert frame["ui_orders_30d"].tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    # B: bought once by c, never reordered by anyone; (a, B): no history at all
    assert np.isnan(frame.loc[3, "ui_item_cycle_days"]) and np.isnan(
        frame.loc[3, "ui_due_vs_item_cycle"]
    )
    assert np.isnan(frame.loc[4, "ui_item_cycle_days"])


def test_the_group_is_registered_after_the_older_pair_groups() -> None:
    names = [g.name for g in REGISTRY.groups]
    assert names.index("repurchase_cycle") == names.index("order_sequence") + 1
