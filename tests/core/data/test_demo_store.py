"""Tests of the synthetic demo-store generator (recsys_core.data.demo_store)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_core.columns import EVENT_TYPES, Columns
from recsys_core.data.demo_store import CATEGORIES, STYLES, generate_demo_store
from recsys_core.errors import ConfigError
from recsys_core.interactions import InteractionMatrix

EVENT_COLUMNS = [
    Columns.USER,
    Columns.ITEM,
    Columns.EVENT,
    Columns.TIMESTAMP,
    Columns.QUANTITY,
    Columns.PRICE,
]
CATALOG_COLUMNS = [Columns.ITEM, Columns.TITLE, Columns.CATEGORY, Columns.BRAND, Columns.PRICE]
CONSUMABLES = {c.name for c in CATEGORIES if c.reorder_days}


@pytest.fixture(scope="module")
def store() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The default demo store (3000 shoppers, 800 items, 200k events)."""
    return generate_demo_store()


@pytest.fixture(scope="module")
def small_store() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_demo_store(n_users=200, n_items=120, n_events=20_000, seed=7)


def _counts(events: pd.DataFrame) -> pd.Series:
    return events[Columns.EVENT].value_counts()


# --- determinism ---------------------------------------------------------------------------


def test_same_arguments_give_identical_frames() -> None:
    ev1, cat1 = generate_demo_store(300, 100, 20_000, seed=3)
    ev2, cat2 = generate_demo_store(300, 100, 20_000, seed=3)
    pd.testing.assert_frame_equal(ev1, ev2)
    pd.testing.assert_frame_equal(cat1, cat2)


def test_different_seed_gives_different_store() -> None:
    ev1, cat1 = generate_demo_store(300, 100, 20_000, seed=3)
    ev2, cat2 = generate_demo_store(300, 100, 20_000, seed=4)
    assert not cat1[Columns.TITLE].equals(cat2[Columns.TITLE])
    n = min(len(ev1), len(ev2))
    assert not ev1.iloc[:n].reset_index(drop=True).equals(ev2.iloc[:n].reset_index(drop=True))


# --- schema ----------------------------------------------------------------------------------


def test_event_schema_and_dtypes(store: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, catalog = store
    assert list(events.columns) == EVENT_COLUMNS
    assert isinstance(events.index, pd.RangeIndex)
    for col in (Columns.USER, Columns.ITEM):
        dtype = events[col].dtype
        assert isinstance(dtype, pd.CategoricalDtype)
        assert pd.api.types.is_string_dtype(dtype.categories.dtype)
    assert events[Columns.EVENT].dtype == pd.CategoricalDtype(categories=list(EVENT_TYPES))
    assert events[Columns.TIMESTAMP].dtype == np.dtype("datetime64[ns]")
    assert events[Columns.QUANTITY].dtype == np.float64
    assert events[Columns.PRICE].dtype == np.float64
    assert events[Columns.TIMESTAMP].is_monotonic_increasing
    assert events.notna().all().all()
    # ids are zero-padded to the width of the count, so text order is number order
    assert events[Columns.USER].cat.categories[0] == "U0001"
    assert events[Columns.USER].cat.categories[-1] == "U3000"
    assert list(events[Columns.ITEM].cat.categories) == list(catalog[Columns.ITEM])
    assert catalog[Columns.ITEM].iloc[0] == "P001"


@pytest.mark.parametrize(
    ("n_users", "n_items", "n_events"),
    [(3000, 800, 200_000), (50, 20, 5_000), (2000, 300, 30_000), (10, 2000, 50_000)],
)
def test_number_of_events_is_close_to_requested(n_users: int, n_items: int, n_events: int) -> None:
    events, catalog = generate_demo_store(n_users, n_items, n_events, seed=11)
    assert abs(len(events) - n_events) <= 0.01 * n_events
    assert len(catalog) == n_items


def test_quantity_and_price(store: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, catalog = store
    is_purchase = events[Columns.EVENT] == "purchase"
    qty = events[Columns.QUANTITY]
    assert (qty[~is_purchase] == 1).all()
    assert (qty[is_purchase] >= 1).all()
    assert (qty[is_purchase] == np.floor(qty[is_purchase])).all()
    assert qty[is_purchase].max() > 1
    price_of = catalog.set_index(Columns.ITEM)[Columns.PRICE]
    expected = price_of.reindex(events[Columns.ITEM].astype(str)).to_numpy()
    np.testing.assert_array_equal(events[Columns.PRICE].to_numpy(), expected)


def test_every_shopper_appears(store: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, _ = store
    assert events[Columns.USER].nunique() == 3000


def test_bad_arguments_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="n_users"):
        generate_demo_store(n_users=0)
    with pytest.raises(ConfigError, match="days"):
        generate_demo_store(days=0)
    with pytest.raises(ConfigError, match="start"):
        generate_demo_store(start="not a date")


def test_tiny_store_works() -> None:
    events, catalog = generate_demo_store(n_users=1, n_items=1, n_events=50, days=1)
    assert len(catalog) == 1
    assert abs(len(events) - 50) <= 15  # within half a session
    assert set(events[Columns.ITEM].astype(str)) == {"P1"}


# --- funnel ----------------------------------------------------------------------------------


def test_funnel_rates_match_documentation(store: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    counts = _counts(store[0])
    assert counts["view"] > counts["cart"] > counts["purchase"]
    assert 0.08 <= counts["cart"] / counts["view"] <= 0.12
    assert 0.03 <= counts["favorite"] / counts["view"] <= 0.05
    assert 0.35 <= counts["purchase"] / counts["cart"] <= 0.50


def test_carts_and_purchases_follow_a_view(small_store: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, _ = small_store
    keys = [Columns.USER, Columns.ITEM]
    first_view = (
        events[events[Columns.EVENT] == "view"]
        .groupby(keys, observed=True)[Columns.TIMESTAMP]
        .min()
        .rename("first_view")
    )
    later = events[events[Columns.EVENT].isin(["cart", "favorite", "purchase"])]
    joined = later.join(first_view, on=keys)
    assert len(joined) > 500
    assert joined["first_view"].notna().all()
    assert (joined["first_view"] <= joined[Columns.TIMESTAMP]).all()
    # and every purchase has a cart of the same pair at or before it
    first_cart = (
        events[events[Columns.EVENT] == "cart"]
        .groupby(keys, observed=True)[Columns.TIMESTAMP]
        .min()
        .rename("first_cart")
    )
    bought = events[events[Columns.EVENT] == "purchase"].join(first_cart, on=keys)
    assert (bought["first_cart"] <= bought[Columns.TIMESTAMP]).all()


def test_consumables_are_repurchased(store: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, catalog = store
    bought = events[events[Columns.EVENT] == "purchase"]
    per_pair = bought.groupby([Columns.USER, Columns.ITEM], observed=True).size()
    category = catalog.set_index(Columns.ITEM)[Columns.CATEGORY]
    pair_category = category.reindex(per_pair.index.get_level_values(Columns.ITEM).astype(str))
    consumable = pair_category.isin(CONSUMABLES).to_numpy()
    repeat = per_pair.to_numpy() >= 2
    assert repeat[consumable].sum() > 100
    assert repeat[consumable].mean() > 3 * max(repeat[~consumable].mean(), 1e-3)


def test_shoppers_prefer_their_price_level(store: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """A shopper's purchases cluster in price: within-shopper spread < between-shopper."""
    events, catalog = store
    bought = events[events[Columns.EVENT] == "purchase"]
    category = catalog.set_index(Columns.ITEM)[Columns.CATEGORY]
    cat_median = catalog.groupby(Columns.CATEGORY)[Columns.PRICE].median()
    rel = np.log(
        bought[Columns.PRICE].to_numpy()
        / cat_median.reindex(category.reindex(bought[Columns.ITEM].astype(str))).to_numpy()
    )
    frame = pd.DataFrame({"user": bought[Columns.USER].to_numpy(), "rel": rel})
    per_user = frame.groupby("user", observed=True)["rel"].agg(["mean", "count"])
    heavy = per_user[per_user["count"] >= 5]
    # the spread of shoppers' mean relative price is wider than chance would give
    shuffled = frame.assign(rel=np.random.default_rng(0).permutation(rel))
    null = shuffled.groupby("user", observed=True)["rel"].mean().reindex(heavy.index)
    assert heavy["mean"].std() > 1.3 * null.std()


# --- catalog ---------------------------------------------------------------------------------


def test_catalog(store: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, catalog = store
    assert list(catalog.columns) == CATALOG_COLUMNS
    assert catalog[Columns.ITEM].is_unique
    assert catalog[Columns.TITLE].is_unique
    assert 10 <= catalog[Columns.CATEGORY].nunique() <= 15
    assert catalog[Columns.BRAND].nunique() >= 20
    assert (catalog[Columns.PRICE] > 0).all()
    assert catalog[Columns.PRICE].dtype == np.float64
    adjectives = {a for group in STYLES.values() for a in group}
    first_words = catalog[Columns.TITLE].str.split(" ").str[0]
    assert first_words.isin(adjectives).all()
    # titles carry searchable words: each category's nouns appear in its titles
    mugs = catalog[catalog[Columns.TITLE].str.contains("Coffee Mug")]
    assert len(mugs) > 0 and (mugs[Columns.CATEGORY] == "Kitchen").all()
    assert set(events[Columns.ITEM].astype(str)) <= set(catalog[Columns.ITEM])
    # premium categories cost more than cheap ones
    median = catalog.groupby(Columns.CATEGORY)[Columns.PRICE].median()
    assert median["Home Decor"] > 2 * median["Snacks & Pantry"]


def test_titles_stay_unique_for_a_large_catalog() -> None:
    _, catalog = generate_demo_store(n_users=10, n_items=30_000, n_events=100, seed=1)
    assert catalog[Columns.TITLE].is_unique


# --- time ------------------------------------------------------------------------------------


def test_timestamps_within_window() -> None:
    events, _ = generate_demo_store(200, 100, 20_000, start="2023-03-15", days=30, seed=2)
    start = pd.Timestamp("2023-03-15")
    stamps = events[Columns.TIMESTAMP]
    assert stamps.min() >= start
    assert stamps.max() < start + pd.Timedelta(days=30)
    assert stamps.min() < start + pd.Timedelta(days=1)
    assert stamps.max() >= start + pd.Timedelta(days=29)


def test_timezone_aware_start_becomes_naive_utc() -> None:
    events, _ = generate_demo_store(50, 20, 2_000, start="2024-01-01 00:00+02:00", days=3)
    assert events[Columns.TIMESTAMP].dt.tz is None
    assert events[Columns.TIMESTAMP].min() >= pd.Timestamp("2023-12-31 22:00")


def test_weekends_are_busier_and_nights_quiet(store: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    stamps = store[0][Columns.TIMESTAMP]
    per_day = stamps.dt.floor("D").value_counts()
    weekend = per_day[per_day.index.day_of_week >= 5]
    weekday = per_day[per_day.index.day_of_week < 5]
    assert weekend.mean() > 1.15 * weekday.mean()
    per_hour = stamps.dt.hour.value_counts()
    assert per_hour[20] > 3 * per_hour[4]


# --- learnability ----------------------------------------------------------------------------


def test_later_purchases_are_predictable_beyond_popularity(
    store: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """Item-item cosine kNN on the first 70 % of the period beats popularity on the rest."""
    events, _ = store
    cutoff = events[Columns.TIMESTAMP].min() + pd.Timedelta(days=126)
    train = events[events[Columns.TIMESTAMP] < cutoff]
    test = events[(events[Columns.TIMESTAMP] >= cutoff) & (events[Columns.EVENT] == "purchase")]
    matrix = InteractionMatrix.from_events(train)
    x = matrix.matrix.astype(np.float64).tocsr()
    rows = matrix.users.to_internal(test[Columns.USER])
    cols = matrix.items.to_internal(test[Columns.ITEM])
    ok = (rows >= 0) & (cols >= 0)
    truth = sp.csr_matrix((np.ones(ok.sum()), (rows[ok], cols[ok])), shape=x.shape)
    users = np.unique(rows[ok])

    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel()) + 1e-9
    xn = x.multiply(1.0 / norms).tocsr()
    sim = (xn.T @ xn).toarray()
    np.fill_diagonal(sim, 0.0)
    knn = np.asarray(x[users] @ sim)
    popularity = np.tile(np.asarray(x.sum(axis=0)).ravel(), (len(users), 1))
    hits = truth[users].toarray() > 0

    def hit_rate(scores: np.ndarray) -> float:
        top = np.argsort(-scores, axis=1)[:, :10]
        return float(np.take_along_axis(hits, top, axis=1).any(axis=1).mean())

    assert hit_rate(knn) > 2.0 * hit_rate(popularity)
