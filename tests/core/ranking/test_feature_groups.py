"""The feature registry: every feature declared once, with its labels, by a group that
returns exactly the columns it declares; the column order and the tables derive from it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.errors import ArtifactError
from recsys_core.ranking.features import (
    BEHAVIOUR_FEATURES,
    FEATURE_NAMES,
    LEVELS,
    REGISTRY,
    SEEN_FEATURES,
    STAGE_ONE_FEATURES,
    BehaviourSnapshot,
    Feature,
    FeatureGroup,
    PairLookup,
    PastEvents,
    describe_feature,
    feature_description,
)

CUTOFF = pd.Timestamp("2024-06-01")


@pytest.fixture(scope="module")
def past(small_store: object) -> PastEvents:
    events, catalog = small_store.events, small_store.catalog  # type: ignore[attr-defined]
    return PastEvents(events, CUTOFF, catalog)


def test_names_are_unique_and_derived_from_the_groups() -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert len({g.name for g in REGISTRY.groups}) == len(REGISTRY.groups)
    assert tuple(n for g in REGISTRY.groups for n in g.names) == FEATURE_NAMES
    assert (*BEHAVIOUR_FEATURES, *STAGE_ONE_FEATURES) == FEATURE_NAMES
    levels = [g.level for g in REGISTRY.groups]
    assert levels == sorted(levels, key=LEVELS.index)  # pair, user, item, lookup, stage one
    assert set(SEEN_FEATURES) == {"ui_views", "ui_carts", "ui_favorites", "ui_purchases"}


def test_every_feature_has_a_description_and_a_value_label() -> None:
    nan_row = dict.fromkeys(FEATURE_NAMES, math.nan)
    for feature in REGISTRY.features():
        assert feature.description and feature.description != feature.name
        assert feature_description(feature.name) == feature.description
        for row in ({feature.name: 0.0}, {feature.name: 1.0}, {feature.name: 2.5}, nan_row):
            text = describe_feature(feature.name, row)
            assert text and "nan" not in text and feature.name not in text


def test_each_group_returns_exactly_its_declared_columns(past: PastEvents) -> None:
    rows = {"pair": past.n_pairs, "user": past.n_users, "item": past.n_items}
    for group in REGISTRY.groups:
        if group.level == "stage_one":
            assert group.build is None  # filled by the candidate generator
            continue
        if group.level == "lookup":
            assert group.tables is not None
            snapshot = BehaviourSnapshot.from_events(past.events, CUTOFF, past.catalog)
            u = np.arange(5, dtype=np.int64)
            i = np.arange(5, dtype=np.int64)
            context: object = PairLookup(
                u, i, snapshot.tables, snapshot.user_values[u], snapshot.item_values[i], REGISTRY
            )
            n = 5
        else:
            context, n = past, rows[group.level]
        assert group.build is not None
        values = group.build(context)
        assert list(values) == list(group.names), group.name  # same names, same order
        for name, column in values.items():
            assert np.shape(column) == (n,), (group.name, name)


def test_a_group_returning_other_columns_is_refused(past: PastEvents) -> None:
    feature = Feature("user_x", "x", lambda v, r: "x")
    wrong = FeatureGroup("wrong", "user", (feature,), lambda p: {"user_y": np.zeros(p.n_users)})
    with pytest.raises(ValueError, match="declares"):
        wrong.columns(past, past.n_users)
    short = FeatureGroup("short", "user", (feature,), lambda p: {"user_x": np.zeros(3)})
    with pytest.raises(ValueError, match="shape"):
        short.columns(past, past.n_users)


def test_the_registry_refuses_duplicates_and_is_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        REGISTRY.add(
            FeatureGroup("more", "user", (Feature("user_more", "m", lambda v, r: "m"),), dict)
        )
    copy = REGISTRY.copy()
    with pytest.raises(ValueError, match="twice"):
        copy.add(
            FeatureGroup(
                "again", "user", (Feature("ui_views", "again", lambda v, r: "a"),), lambda p: {}
            )
        )


def test_adding_a_group_adds_its_column_and_nothing_else(
    small_store: object, tmp_path: Path
) -> None:
    """A test-local registry with one more user group: the column appears after the user
    features, its labels work, and every other column keeps its values."""
    events, catalog = small_store.events, small_store.catalog  # type: ignore[attr-defined]
    registry = REGISTRY.copy()

    @registry.group(
        "user",
        Feature(
            "user_weekend_share",
            "share of their events at the weekend",
            lambda v, r: f"{100 * v:.0f}% of their events at the weekend",
        ),
    )
    def weekend(past: PastEvents) -> dict[str, np.ndarray]:
        weekend = (past.events["timestamp"].dt.day_of_week >= 5).to_numpy()
        counts = np.bincount(past.u[weekend], minlength=past.n_users)
        return {"user_weekend_share": counts / np.bincount(past.u, minlength=past.n_users)}

    base = BehaviourSnapshot.from_events(events, CUTOFF, catalog)
    wider = BehaviourSnapshot.from_events(events, CUTOFF, catalog, registry=registry)
    names = list(wider.feature_names)
    at = names.index("user_weekend_share")
    assert names[:at] + names[at + 1 :] == list(BEHAVIOUR_FEATURES)
    assert at == len(registry.names("pair", "user")) - 1  # last of the user block
    u = np.repeat(np.arange(len(base.users)), 3)
    i = np.tile(np.arange(3), len(base.users))
    matrix = wider.features(u, i)
    assert matrix.shape == (len(u), len(BEHAVIOUR_FEATURES) + 1)
    np.testing.assert_array_equal(np.delete(matrix, at, axis=1), base.features(u, i))
    past = events[events["timestamp"] < CUTOFF]
    shopper = str(base.users.external_ids[0])
    mine = past[past["user_id"].astype(str) == shopper]
    assert np.std(matrix[:, at]) > 0  # the new column is a real feature, not a constant
    assert matrix[0, at] == pytest.approx((mine["timestamp"].dt.day_of_week >= 5).mean())
    assert registry.feature("user_weekend_share") is not None
    # saved tables load back with the same registry, not with one that lacks the column
    wider.save(tmp_path / "snap")
    loaded = BehaviourSnapshot.load(tmp_path / "snap", registry=registry)
    np.testing.assert_array_equal(loaded.features(u, i), matrix)
    with pytest.raises(ArtifactError):
        BehaviourSnapshot.load(tmp_path / "snap")


def test_tables_without_a_lookup_groups_table_do_not_load(
    small_store: object, tmp_path: Path
) -> None:
    events, catalog = small_store.events, small_store.catalog  # type: ignore[attr-defined]
    snapshot = BehaviourSnapshot.from_events(events, CUTOFF, catalog)
    snapshot.save(tmp_path / "snap")
    with np.load(tmp_path / "snap" / "tables.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "user_typical_price"}
    np.savez(tmp_path / "snap" / "tables.npz", **arrays)
    with pytest.raises(ArtifactError, match="retrain"):
        BehaviourSnapshot.load(tmp_path / "snap")
