"""The list policy: one function decides what a list may hold, and lists are filled to k."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from recsys_core.errors import ConfigError, DataValidationError
from recsys_core.interactions import InteractionMatrix
from recsys_core.models import MODEL_NAMES, create_model, model_class
from recsys_core.policy import (
    BusinessFilters,
    ListContext,
    ListPolicy,
    MerchandisingRule,
    policy_mask,
    recommend_with_policy,
)
from recsys_core.repeats import bought_pairs

CATALOG = pd.DataFrame(
    {
        "item_id": ["a", "b", "c", "d", "e"],
        "title": ["A", "B", "C", "D", "E"],
        "category": ["x", "y", "x", "y", "x"],
        "price": [1.0, 5.0, 10.0, np.nan, 20.0],
    }
)
BOUGHT = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "c"]})


def _mask(policy: ListPolicy, context: ListContext) -> list[bool]:
    users = ["u1"] * 5 + ["u2"] * 5
    items = list("abcde") * 2
    return policy_mask(policy, context, users, items).tolist()


def test_policy_mask_applies_repeats_filters_and_merchandising() -> None:
    context = ListContext(bought=BOUGHT, catalog=CATALOG)
    assert all(_mask(ListPolicy("keep"), context))
    left_out = _mask(ListPolicy("leave-out-bought"), context)
    assert left_out == [False, False, True, True, True, True, True, False, True, True]
    # "seen" is the model's own filter: the mask does not touch it
    assert all(_mask(ListPolicy("leave-out-seen"), context))
    cheap = ListPolicy("keep", BusinessFilters(categories=["x"], max_price=10))
    assert _mask(cheap, context)[:5] == [True, False, True, False, False]
    merch = ListPolicy(
        "keep",
        exclude_items=frozenset({"a"}),
        allow_items=frozenset({"a", "b", "c"}),
        rules=(MerchandisingRule("block", ("c",)),),
    )
    assert _mask(merch, context)[:5] == [False, True, False, False, False]


def test_bad_rules_and_unknown_repeats_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="repeats"):
        ListPolicy("forget")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="position"):
        MerchandisingRule("pin", ("a",))
    # pins change the order, not what passes (recsys_core.policy.merchandise)
    pinned = ListPolicy("keep", rules=(MerchandisingRule("pin", ("a",), position=1),))
    assert policy_mask(pinned, ListContext(), ["u1"], ["a"]).tolist() == [True]
    recent = ListPolicy("keep", BusinessFilters(exclude_bought_days=7))
    with pytest.raises(ConfigError, match="purchase times"):
        policy_mask(recent, ListContext(), ["u1"], ["a"])


def test_the_policy_is_named_and_round_trips() -> None:
    policy = ListPolicy(
        "leave-out-bought",
        BusinessFilters(categories=["x"], min_price=2.0),
        exclude_items=frozenset({"z"}),
        source="settings",
        why="a tune result",
    )
    assert policy.name == "leave-out-bought + categories x + price >= 2 + 1 items excluded"
    again = ListPolicy.from_dict(policy.to_dict())
    assert again == policy and again.same_lists(ListPolicy.from_dict(policy.to_dict()))
    assert not policy.same_lists(ListPolicy("keep"))


def test_recent_purchases_filter_uses_the_purchase_times() -> None:
    purchases = pd.DataFrame(
        {
            "user_id": ["u1", "u1"],
            "item_id": ["a", "b"],
            "event": ["purchase", "purchase"],
            "timestamp": pd.to_datetime(["2024-05-30", "2024-03-01"]),
        }
    )
    context = ListContext(purchases=purchases, now=pd.Timestamp("2024-06-01"))
    recent = ListPolicy("keep", BusinessFilters(exclude_bought_days=7))
    assert policy_mask(recent, context, ["u1", "u1", "u2"], ["a", "b", "a"]).tolist() == [
        False,
        True,
        True,
    ]


@pytest.fixture(scope="module")
def fitted(small_store):
    events = small_store.events
    matrix = InteractionMatrix.from_events(events)
    als = create_model("als", factors=8, iterations=3, seed=1).fit(matrix)
    return als, events


def test_lists_are_filled_to_k_after_the_policy(fitted) -> None:
    als, events = fitted
    users = als.known_users()[:40]
    bought = bought_pairs(events)
    context = ListContext(bought=bought, catalog=None)
    reco = recommend_with_policy(als, users, 6, ListPolicy("leave-out-bought"), context)
    owned = set(zip(bought["user_id"].astype(str), bought["item_id"].astype(str), strict=True))
    pairs = set(zip(reco["user_id"], reco["item_id"], strict=True))
    assert not pairs & owned
    assert reco.groupby("user_id").size().eq(6).all()
    assert reco.groupby("user_id")["rank"].apply(list).map(lambda r: r == list(range(1, 7))).all()
    # the kept items are the model's own order with the bought ones taken out
    user = users[0]
    deep = als.recommend([user], 200, filter_seen=False)
    expected = [i for i in deep["item_id"] if (user, i) not in owned][:6]
    assert reco[reco["user_id"] == user]["item_id"].tolist() == expected


def test_a_narrow_business_filter_still_fills_k_by_asking_deeper(fitted, small_store) -> None:
    als, _ = fitted
    catalog = small_store.catalog
    category = str(catalog["category"].value_counts().index[-1])  # the rarest category
    allowed = set(catalog.loc[catalog["category"].astype(str) == category, "item_id"].astype(str))
    policy = ListPolicy("keep", BusinessFilters(categories=[category]))
    users = als.known_users()[:5]
    reco = recommend_with_policy(als, users, 3, policy, ListContext(catalog=catalog))
    assert set(reco["item_id"]) <= allowed
    assert reco.groupby("user_id").size().eq(min(3, len(allowed))).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_models_have_no_filtering_default_of_their_own(name: str) -> None:
    """implicit's habit: the filter is an argument of every call, never a default."""
    parameter = inspect.signature(model_class(name).recommend).parameters["filter_seen"]
    assert parameter.default is inspect.Parameter.empty


def test_bought_pairs_are_matched_the_same_for_one_or_many_shoppers() -> None:
    rng = np.random.default_rng(0)
    users = np.array([f"u{i}" for i in rng.integers(0, 200, 3000)], dtype=object)
    items = np.array([f"i{i}" for i in rng.integers(0, 50, 3000)], dtype=object)
    bought = pd.DataFrame({"user_id": users[::7], "item_id": items[::7]})
    context = ListContext(bought=bought)
    policy = ListPolicy("leave-out-bought")
    many = policy_mask(policy, context, users, items)  # one pair index
    one_by_one = np.concatenate(
        [policy_mask(policy, context, users[i : i + 1], items[i : i + 1]) for i in range(300)]
    )
    np.testing.assert_array_equal(many[:300], one_by_one)
    assert (~many).sum() >= len(users[::7])  # every bought row (and its repeats) left out


def test_the_policy_reads_canonical_ids_as_they_are() -> None:
    """Bought pairs and catalogs as the lab holds them (``category`` ids, as an event log
    has them) give the same mask as plain text ids: the policy decodes, it does not re-cast."""
    as_categories = BOUGHT.astype("category")
    catalog = CATALOG.assign(item_id=CATALOG["item_id"].astype("category"))
    for policy in (
        ListPolicy("leave-out-bought"),
        ListPolicy("keep", BusinessFilters(categories=["x"], max_price=10)),
    ):
        text = _mask(policy, ListContext(bought=BOUGHT, catalog=CATALOG))
        assert _mask(policy, ListContext(bought=as_categories, catalog=catalog)) == text


def test_ids_that_are_not_canonical_are_a_clear_error() -> None:
    """Integer ids in the bought pairs used to be cast silently in the policy; now the way in
    (Dataset, load_lab, canonical_ids) converts them and the policy names what is wrong."""
    numbers = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [10, 11, 12]})
    context = ListContext(bought=numbers, catalog=CATALOG)
    with pytest.raises(DataValidationError, match="bought pairs.*canonical_ids"):
        _mask(ListPolicy("leave-out-bought"), context)
