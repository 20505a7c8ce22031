"""Demo-store variants that look like other shops' logs (for checking that settings adapt).

Each is derived from :func:`recsys_core.data.demo_store.generate_demo_store` by one change:

* ``no-repurchases``: every (shopper, item) pair is bought at most once (later purchases of an
  item the shopper already bought are dropped, as are the carts of those reorders);
* ``views-few-purchases``: views only plus a seeded tenth of the purchases (no carts or
  favourites);
* ``no-timestamps``: the timestamp column is removed (evaluation and tuning use the seeded
  per-user split).

And, outside :data:`VARIANTS` (its rule differs: lists leave out every seen item):

* ``consumed-once``: every (shopper, item) pair keeps one event, at its first time: a
  purchase when the shopper ever bought the item, else a view — like a ratings log mapped to
  purchases (high ratings) and views (the rest), where nobody comes back to an item.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.demo_store import generate_demo_store
from recsys_core.data.schema import Dataset
from recsys_core.errors import ConfigError

#: Names of the variants, in the order benchmarks report them.
VARIANTS: Final[tuple[str, ...]] = ("no-repurchases", "views-few-purchases", "no-timestamps")
#: The variant where every item is consumed once (see the module docstring).
CONSUMED_ONCE: Final = "consumed-once"


def _consumed_once(events: pd.DataFrame) -> pd.DataFrame:
    keys = [Columns.USER, Columns.ITEM]
    bought = events[events[Columns.EVENT] == "purchase"].drop_duplicates(keys)
    first = events.drop_duplicates(keys)
    viewed = first.merge(bought[keys], on=keys, how="left", indicator=True)
    viewed = viewed[(viewed["_merge"] == "left_only").to_numpy()].drop(columns="_merge")
    viewed[Columns.EVENT] = (
        pd.Categorical(["view"] * len(viewed), categories=events[Columns.EVENT].cat.categories)
        if isinstance(events[Columns.EVENT].dtype, pd.CategoricalDtype)
        else "view"
    )
    once = pd.concat([bought, viewed], ignore_index=True)
    return once.sort_values(Columns.TIMESTAMP, kind="stable", ignore_index=True)


def _no_repurchases(events: pd.DataFrame) -> pd.DataFrame:
    user = events[Columns.USER]  # a Dataset's log: canonical ids
    item = events[Columns.ITEM]
    is_purchase = (events[Columns.EVENT] == "purchase").to_numpy()
    # number of earlier purchases of the same pair (the log is sorted by time)
    bought_before = (
        pd.Series(is_purchase.astype(np.int64)).groupby([user.to_numpy(), item.to_numpy()])
    ).cumsum().to_numpy() - is_purchase
    first_purchase = ~is_purchase | (bought_before == 0)
    reorder_cart = (events[Columns.EVENT] == "cart").to_numpy() & (bought_before > 0)
    return events[first_purchase & ~reorder_cart].reset_index(drop=True)


def _views_few_purchases(events: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ev = events[Columns.EVENT].to_numpy()
    keep = (ev == "view") | ((ev == "purchase") & (rng.random(len(events)) < 0.1))
    return events[keep].reset_index(drop=True)


def demo_variant(
    variant: str,
    *,
    n_users: int = 500,
    n_items: int = 200,
    n_events: int = 40_000,
    seed: int = 7,
) -> Dataset:
    """A seeded demo store changed as ``variant`` says (see the module docstring).

    ``variant="demo"`` returns the unchanged store of the same size.

    Raises
    ------
    ConfigError
        An unknown variant name.
    """
    known = ("demo", *VARIANTS, CONSUMED_ONCE)
    if variant not in known:
        raise ConfigError(f"unknown demo variant {variant!r}; choose from {list(known)}")
    events, catalog = generate_demo_store(
        n_users=n_users, n_items=n_items, n_events=n_events, seed=seed
    )
    if variant == "no-repurchases":
        events = _no_repurchases(events)
    elif variant == "views-few-purchases":
        events = _views_few_purchases(events, seed)
    elif variant == CONSUMED_ONCE:
        events = _consumed_once(events)
    elif variant == "no-timestamps":
        events = events.drop(columns=[Columns.TIMESTAMP])
    return Dataset(
        f"demo-{variant}" if variant != "demo" else "demo-small",
        events,
        catalog,
        source=f"recsys_core.tuning.variants ({variant}, seed {seed})",
    )
