"""The Dataset canonicalises ids once; ensure_canonical refuses frames that are not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recsys_core.columns import Columns
from recsys_core.data.dataset import (
    Dataset,
    canonical_ids,
    ensure_canonical,
    is_canonical_ids,
)
from recsys_core.data.schema import Dataset as SchemaDataset
from recsys_core.data.schema import catalog_from_events, validate_events
from recsys_core.errors import DataValidationError


def _events(users: list[object], items: list[object]) -> pd.DataFrame:
    n = len(users)
    return pd.DataFrame(
        {
            Columns.USER: users,
            Columns.ITEM: items,
            Columns.EVENT: ["purchase"] * n,
            Columns.TIMESTAMP: pd.date_range("2024-01-01", periods=n, freq="D"),
        }
    )


def test_schema_still_exports_the_one_dataset_class() -> None:
    assert SchemaDataset is Dataset


def test_validated_and_generated_logs_are_canonical(small_store: Dataset) -> None:
    raw = _events([12346.0, 12347.0, 7.0], ["A", 85123, " b "])
    events = validate_events(raw)
    ensure_canonical(events)
    assert list(events[Columns.USER].astype(object)) == ["12346", "12347", "7"]
    assert list(events[Columns.ITEM].astype(object)) == ["A", "85123", "b"]
    ensure_canonical(small_store.events)
    ensure_canonical(small_store.catalog, [Columns.ITEM])


def test_a_dataset_built_from_integer_ids_holds_strings_once() -> None:
    ds = Dataset("ints", _events([3, 1, 3], [10, 20, 10]), pd.DataFrame({Columns.ITEM: [10, 20]}))
    ensure_canonical(ds.events)
    ensure_canonical(ds.catalog, [Columns.ITEM])
    assert list(ds.events[Columns.USER]) == ["3", "1", "3"]
    assert list(ds.user_id_map.external_ids) == ["1", "3"]
    assert list(ds.item_id_map.external_ids) == ["10", "20"]


def test_a_canonical_log_is_not_copied(small_store: Dataset) -> None:
    again = Dataset("same", small_store.events, small_store.catalog)
    assert again.events is small_store.events
    assert again.catalog is small_store.catalog


def test_id_maps_cover_catalog_items_without_events() -> None:
    catalog = pd.DataFrame({Columns.ITEM: ["a", "b", "z"], Columns.PRICE: [1.0, 2.0, 3.5]})
    ds = Dataset("cat", _events(["u1", "u2"], ["a", "b"]), catalog)
    assert list(ds.item_id_map.external_ids) == ["a", "b", "z"]
    assert ds.prices.to_dict() == {"a": 1.0, "b": 2.0, "z": 3.5}
    assert Dataset("no-prices", ds.events, catalog[[Columns.ITEM]]).prices.empty


def test_before_is_a_view_with_the_same_id_maps() -> None:
    ds = Dataset("t", _events(["u1", "u2", "u3"], ["a", "b", "c"]), None)  # type: ignore[arg-type]
    early = ds.before("2024-01-02")
    assert list(early.events[Columns.USER]) == ["u1"]
    assert early.user_id_map is ds.user_id_map
    assert early.item_id_map is ds.item_id_map
    assert len(early.user_id_map) == 3
    untimed = Dataset("u", ds.events.drop(columns=Columns.TIMESTAMP), None)  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match="no timestamps"):
        untimed.before("2024-01-02")


def test_replace_builds_fresh_id_maps() -> None:
    ds = Dataset("t", _events(["u1", "u2"], ["a", "b"]), None)  # type: ignore[arg-type]
    assert len(ds.user_id_map) == 2
    smaller = dataclasses.replace(ds, events=ds.events.iloc[:1])
    assert list(smaller.user_id_map.external_ids) == ["u1"]


def test_ensure_canonical_names_the_column_and_the_fix() -> None:
    with pytest.raises(DataValidationError, match=r"'user_id' in the test log.*canonical_ids"):
        ensure_canonical(_events([1, 2], ["a", "b"]), where="the test log")
    ensure_canonical(_events(["1", "2"], ["a", "b"]))  # object strings are canonical
    assert not is_canonical_ids(pd.Series([1, "a"], dtype=object))
    assert is_canonical_ids(pd.Series(["x"]).astype("category"))


def test_canonical_ids_is_str_of_each_value() -> None:
    assert list(canonical_ids([12346, "a", 7.5])) == ["12346", "a", "7.5"]
    assert canonical_ids(np.array(["a", "b"])).dtype == object
    text = pd.Series(["a", "b"], dtype="str")
    assert canonical_ids(text) is text
    assert list(canonical_ids(pd.Series([1, 2]))) == ["1", "2"]


def test_catalog_from_events_keeps_canonical_ids() -> None:
    events = validate_events(_events(["u1", "u2"], ["a", "b"]))
    ensure_canonical(catalog_from_events(events), [Columns.ITEM])


def test_integer_ids_handed_straight_to_a_split_are_canonicalised_there() -> None:
    from recsys_core.repeats import repeat_profile
    from recsys_core.split import random_split, temporal_split

    ints = _events([1, 2, 1, 2, 1], [10, 20, 20, 10, 10])
    split = temporal_split(ints, cutoff="2024-01-03")
    ensure_canonical(split.train)
    assert list(split.test_users) == ["1", "2"]
    ensure_canonical(random_split(ints, seed=1).train)
    text = ints.assign(**{c: ints[c].astype("str") for c in (Columns.USER, Columns.ITEM)})
    assert repeat_profile(ints) == repeat_profile(text)


def test_a_core_function_that_trusts_ids_refuses_integer_ids_clearly() -> None:
    from recsys_core.drift import reference_profile

    with pytest.raises(DataValidationError, match="canonical_ids"):
        reference_profile(_events([1, 2], [10, 20]))
