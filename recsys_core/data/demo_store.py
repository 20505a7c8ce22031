"""A deterministic synthetic "demo-store": an online shop with a full view-to-purchase funnel.

:func:`generate_demo_store` returns an event log and a catalog that behave like a real shop's,
so that every part of the lab (recommenders, the purchase model, search, monitoring) has
something realistic and learnable to work on. Everything is drawn from one
``np.random.default_rng(seed)`` in a fixed order, fully vectorised (loops run only over the
dozen categories or the handful of reorder rounds), so the same arguments always give
identical frames and 10M events take seconds.

The generative story
--------------------
Catalog
    12 categories with styles, price levels, brands and Zipf popularity: see
    :mod:`recsys_core.data.demo_catalog`, which draws it.
Shoppers
    Each has stable latent tastes: category shares ~ Dirichlet (mean = the category
    weights, concentration 3, so most shoppers live in two or three categories), style
    shares ~ Dirichlet(0.5), a price level (budget/standard/premium: 35/45/20 %) and a
    heavy-tailed activity (log-normal, sigma 1.1). Every shopper gets at least one session
    when the store has at least two sessions per shopper.
Sessions and views
    A session belongs to one shopper (drawn by activity) and one category (drawn from the
    shopper's tastes); it has a geometric number of views (mean 4.5, at most 50) spaced
    5 s + Exp(45 s) apart. Each view draws a style from the shopper's style shares and a
    price level (own level 70 %, the others 30 %), then an item of that (category, style,
    level) cell by popularity; 15 % of views (and views of empty cells) browse the whole
    category by popularity instead. Session starts follow a weekly pattern (Saturday and
    Sunday ~1.4x a Tuesday) and a time-of-day pattern (quiet at night, peaks at lunch and
    8-9 pm) over ``days`` days from ``start``.
Funnel (per view; "fit" is 1.3 when the item's price level is the shopper's, 0.75 one level
off, 0.45 two levels off, rescaled to average 1 so the rates below hold on average)
    * view -> cart: 9 % x fit, 5 s + Exp(40 s) after the view;
    * view -> favorite: 4 % x fit, 3 s + Exp(30 s) after the view (independent of cart);
    * cart -> purchase: 40 %; 70 % in the same session (30 s + Exp(5 min) after the cart),
      30 % later (10 min + Exp(1.5 days));
    * quantity 1 for non-purchases; purchases buy a geometric number >= 1 (mean 1.8 for
      consumables, 1.25 otherwise).
Reorders
    A purchase in a consumable category is reordered by the same shopper with probability
    0.5 per round after Gamma(shape 8) days with mean the category's interval (Coffee &
    Tea 21, Snacks 25, Pet Supplies 30, Bath & Body 35, Cleaning 40) times a per-shopper
    factor (log-normal, sigma 0.25); a reorder is a cart followed 30 s + Exp(2 min) later
    by a purchase ("buy it again" from the order history), so it needs no new view.
    Reorders continue until the shopper stops or the window ends.

Events that would fall at or after ``start + days`` are dropped (a cart or purchase is
always later than its view, so nothing is left without its view).

Documented and measured rates
-----------------------------
Measured as event-count ratios over the whole log (``n_events=200_000``, seeds 0-4); reorders
add carts and purchases, and purchases delayed past the window are dropped:

==================  ===========  ==============
ratio               documented   measured
==================  ===========  ==============
carts / views       8-12 %       9.9-10.1 %
favorites / views   3-5 %        3.9-4.0 %
purchases / carts   35-50 %      45.4-46.6 %
==================  ===========  ==============

So views > carts > purchases > favorites: about 84.3 % views, 8.4 % carts, 3.9 % purchases
and 3.4 % favorites of all events, at 200k and at 10M events alike. Tastes are stable, so
the log is learnable: trained on the first 126 of 180 days of the default store, a plain
item-item cosine kNN hits a later purchase in its top 10 for ~32 % of buyers, popularity
for ~12 %.

Number of events
----------------
About 3 % more sessions than needed (plus four standard deviations of their event count)
are generated, then whole sessions (with all of their carts, favourites, purchases and
reorders) are kept in their random order while the count gets closer to ``n_events``. The
log therefore has ``n_events`` rows to within half a session (usually a handful of events,
at most a few dozen); the test suite checks within 1 % from 5,000 events up. A store
smaller than one session's worth (``n_events`` below ~10) can come out a few events off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from recsys_core.columns import EVENT_TYPES, Columns
from recsys_core.data.demo_catalog import (
    CATEGORIES,
    STYLES,
    CategorySpec,
    Items,
    make_catalog,
    make_items,
    numbered_ids,
)
from recsys_core.errors import ConfigError

__all__ = ["CATEGORIES", "CategorySpec", "STYLES", "generate_demo_store"]


# Price levels: budget, standard, premium.
_LEVEL_SHARE_USERS: Final = np.array([0.35, 0.45, 0.2])
# P(view level | shopper level): own level 70 %, the rest 30 %.
_LEVEL_MOVES: Final = np.array([[0.70, 0.22, 0.08], [0.15, 0.70, 0.15], [0.08, 0.22, 0.70]])
# Conversion multiplier by |item level - shopper level|.
_LEVEL_FIT: Final = np.array([1.3, 0.75, 0.45])

_TASTE_CONCENTRATION: Final = 3.0
_STYLE_ALPHA: Final = 0.5
_ACTIVITY_SIGMA: Final = 1.1
_EXPLORE_SHARE: Final = 0.15

_MEAN_SESSION_VIEWS: Final = 4.5
_MAX_SESSION_VIEWS: Final = 50
_VIEW_GAP_S: Final = (5, 45.0)  # minimum, mean of the exponential part
_CART_DELAY_S: Final = (5, 40.0)
_FAVORITE_DELAY_S: Final = (3, 30.0)
_PURCHASE_SAME_SESSION: Final = 0.7
_PURCHASE_DELAY_S: Final = (30, 300.0)
_PURCHASE_LATER_S: Final = (600, 1.5 * 86_400.0)

P_VIEW_TO_CART: Final = 0.09
P_VIEW_TO_FAVORITE: Final = 0.04
P_CART_TO_PURCHASE: Final = 0.40
_QTY_GEOMETRIC_P: Final = (0.8, 0.55)  # durable, consumable: mean 1.25, 1.8

P_REORDER: Final = 0.5
_REORDER_GAMMA_SHAPE: Final = 8.0
_REORDER_USER_SIGMA: Final = 0.25
_REORDER_PURCHASE_S: Final = (30, 120.0)
_MAX_REORDER_ROUNDS: Final = 64

# Mon..Sun and 0..23 h.
# fmt: off
_WEEKDAY_WEIGHT: Final = np.array([0.95, 0.92, 0.94, 0.97, 1.05, 1.30, 1.32])
_HOUR_WEIGHT: Final = np.array(
    [0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.30, 0.60, 0.90, 1.00, 1.05, 1.10,
     1.30, 1.25, 1.05, 1.00, 1.00, 1.10, 1.30, 1.60, 1.80, 1.70, 1.20, 0.60]
)
# fmt: on

_REORDER_DAYS: Final = np.array([c.reorder_days or 0.0 for c in CATEGORIES])

_OVERSHOOT: Final = 1.03
_EVENT_CODE: Final = {name: np.int8(i) for i, name in enumerate(EVENT_TYPES)}
_NS_PER_S: Final = 1_000_000_000


def generate_demo_store(
    n_users: int = 3000,
    n_items: int = 800,
    n_events: int = 200_000,
    *,
    seed: int = 42,
    start: str = "2024-01-01",
    days: int = 180,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate the synthetic demo store's event log and catalog.

    Parameters
    ----------
    n_users:
        Number of shoppers (ids ``U0001`` ... zero-padded to the width of ``n_users``).
    n_items:
        Number of catalog items (ids ``P001`` ... zero-padded to the width of ``n_items``).
    n_events:
        Target number of events; the log has this many rows to within one session (see the
        module docstring).
    seed:
        Seed of the only random generator used; the same arguments give identical frames.
    start:
        First day of the log (anything :class:`pandas.Timestamp` parses; a time zone is
        converted to naive UTC).
    days:
        Length of the log in days; every timestamp is in ``[start, start + days)``.

    Returns
    -------
    events : pandas.DataFrame
        ``user_id`` (category of str), ``item_id`` (category of str, all catalog items as
        categories), ``event`` (category of :data:`~recsys_core.columns.EVENT_TYPES`),
        ``timestamp`` (``datetime64[ns]``, naive UTC), ``quantity`` (float64, 1 except for
        purchases), ``price`` (float64, the item's price); sorted by timestamp, index
        ``0..n-1``.
    catalog : pandas.DataFrame
        One row per item in id order: ``item_id``, ``title``, ``category``, ``brand`` (str)
        and ``price`` (float64).

    Raises
    ------
    ConfigError
        If a count or ``days`` is not positive or ``start`` is not a date.
    """
    _check_arguments(n_users, n_items, n_events, days)
    start_ts = _parse_start(start)
    rng = np.random.default_rng(seed)

    n_categories = min(len(CATEGORIES), n_items)
    items = make_items(rng, n_items, n_categories)
    catalog = make_catalog(rng, items, n_categories)
    shoppers = _make_shoppers(rng, n_users, n_categories)
    sampler = _ItemSampler(items, n_categories)

    log = _simulate(rng, n_events, days, start_ts, items, shoppers, sampler)
    events = _to_frame(log, start_ts, n_users, catalog[Columns.ITEM], items.price)
    return events, catalog


# ---------------------------------------------------------------------------------------------
# arguments


def _check_arguments(n_users: int, n_items: int, n_events: int, days: int) -> None:
    for name, value in (
        ("n_users", n_users),
        ("n_items", n_items),
        ("n_events", n_events),
        ("days", days),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(
                f"demo store: {name} must be a positive whole number, got {value!r}; "
                f"pass e.g. {name}=1000"
            )


def _parse_start(start: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(start)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"demo store: start={start!r} is not a date; pass e.g. start='2024-01-01'"
        ) from exc
    if ts is pd.NaT:
        raise ConfigError(f"demo store: start={start!r} is not a date; pass e.g. '2024-01-01'")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


# ---------------------------------------------------------------------------------------------
# shoppers


@dataclass(frozen=True)
class _Shoppers:
    """Latent shopper attributes, one row per user index."""

    taste_cdf: np.ndarray  # (n_users, n_categories) float32, cumulative category shares
    style_cdf: np.ndarray  # (n_users, n_styles) float32
    level: np.ndarray  # int8
    activity_cdf: np.ndarray  # float64
    reorder_factor: np.ndarray  # float32


def _make_shoppers(rng: np.random.Generator, n_users: int, n_categories: int) -> _Shoppers:
    weights = np.array([c.weight for c in CATEGORIES[:n_categories]])
    alpha = _TASTE_CONCENTRATION * weights / weights.sum()
    taste = rng.dirichlet(alpha, size=n_users)
    style = rng.dirichlet(np.full(len(STYLES), _STYLE_ALPHA), size=n_users)
    level = rng.choice(3, size=n_users, p=_LEVEL_SHARE_USERS).astype(np.int8)
    activity = rng.lognormal(0.0, _ACTIVITY_SIGMA, size=n_users)
    reorder = rng.lognormal(0.0, _REORDER_USER_SIGMA, size=n_users).astype(np.float32)
    activity_cdf = np.cumsum(activity)
    return _Shoppers(
        taste_cdf=np.cumsum(taste, axis=1).astype(np.float32),
        style_cdf=np.cumsum(style, axis=1).astype(np.float32),
        level=level,
        activity_cdf=activity_cdf / activity_cdf[-1],
        reorder_factor=reorder,
    )


def _draw_rows(rng: np.random.Generator, cdf: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each row index, one column drawn from that row of a cumulative table."""
    u = rng.random(len(rows), dtype=np.float32)
    out = np.zeros(len(rows), dtype=np.int8)
    for j in range(cdf.shape[1] - 1):  # a handful of columns, vectorised over rows
        out += u >= cdf[rows, j]
    return out


# ---------------------------------------------------------------------------------------------
# item sampling


class _ItemSampler:
    """Draw items by popularity within a (category, style, level) cell or a whole category.

    Distributions are numbered: cells ``0..n_cells-1`` then categories ``n_cells + c``. All
    of them live in one sorted key array ``dist + cdf_within``, so one ``searchsorted`` draws
    items for millions of views at once.
    """

    def __init__(self, items: Items, n_categories: int) -> None:
        n_styles = len(STYLES)
        self.n_cells = n_categories * n_styles * 3
        cell = self.cell_of(items.category.astype(np.int64), items.style, items.level)
        self.cell_has_items = np.bincount(cell, minlength=self.n_cells) > 0
        dist = np.concatenate([cell, self.n_cells + items.category.astype(np.int64)])
        item = np.concatenate([np.arange(len(cell)), np.arange(len(cell))])
        weight = np.concatenate([items.popularity, items.popularity])
        order = np.argsort(dist, kind="stable")
        dist, item, weight = dist[order], item[order], weight[order]
        totals = np.bincount(dist, weights=weight)
        before = np.cumsum(totals) - totals  # cumulative weight before each distribution
        cdf = (np.cumsum(weight) - before[dist]) / totals[dist]
        last = np.r_[dist[1:] != dist[:-1], True]
        cdf[last] = 1.0
        self.keys = dist + cdf
        self.items = item.astype(np.int32)

    def cell_of(self, category: np.ndarray, style: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Cell number of (category, style, level)."""
        return (category.astype(np.int64) * len(STYLES) + style) * 3 + level

    def draw(self, rng: np.random.Generator, dist: np.ndarray) -> np.ndarray:
        """One item index per requested distribution number."""
        u = rng.random(len(dist))
        pos = np.searchsorted(self.keys, dist + u, side="right")
        np.minimum(pos, len(self.keys) - 1, out=pos)
        return self.items[pos]


# ---------------------------------------------------------------------------------------------
# simulation


def _delay(rng: np.random.Generator, n: int, spec: tuple[int, float]) -> np.ndarray:
    """Whole seconds: a minimum plus an exponential part."""
    minimum, mean = spec
    return minimum + (np.float32(mean) * rng.standard_exponential(n, dtype=np.float32)).astype(
        np.int64
    )


@dataclass(frozen=True)
class _Sessions:
    """One entry per session, in random order (the order used to trim to ``n_events``)."""

    user: np.ndarray  # int32
    category: np.ndarray  # int8
    start_s: np.ndarray  # int64, seconds since start
    length: np.ndarray  # int64, number of views


def _make_sessions(
    rng: np.random.Generator,
    n_sessions: int,
    days: int,
    start_ts: pd.Timestamp,
    shoppers: _Shoppers,
) -> _Sessions:
    n_users = len(shoppers.level)
    # every shopper gets one session when there are enough; the rest follow activity
    forced = n_users if n_sessions >= 2 * n_users else 0
    drawn = np.searchsorted(shoppers.activity_cdf, rng.random(n_sessions - forced), side="right")
    user = np.concatenate([np.arange(forced), np.minimum(drawn, n_users - 1)]).astype(np.int32)
    category = _draw_rows(rng, shoppers.taste_cdf, user)
    day_weight = _WEEKDAY_WEIGHT[(start_ts.day_of_week + np.arange(days)) % 7]
    day = rng.choice(days, size=n_sessions, p=day_weight / day_weight.sum())
    hour = rng.choice(24, size=n_sessions, p=_HOUR_WEIGHT / _HOUR_WEIGHT.sum())
    start_s = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, n_sessions)
    length = np.minimum(rng.geometric(1.0 / _MEAN_SESSION_VIEWS, n_sessions), _MAX_SESSION_VIEWS)
    return _Sessions(user, category, start_s.astype(np.int64), length.astype(np.int64))


@dataclass(frozen=True)
class _Views:
    """One entry per product view."""

    session: np.ndarray  # int32
    user: np.ndarray  # int32
    item: np.ndarray  # int32
    second: np.ndarray  # int64


def _make_views(
    rng: np.random.Generator, sessions: _Sessions, shoppers: _Shoppers, sampler: _ItemSampler
) -> _Views:
    n_sessions = len(sessions.user)
    session = np.repeat(np.arange(n_sessions, dtype=np.int32), sessions.length)
    n_views = len(session)
    first = np.cumsum(sessions.length) - sessions.length
    gap = _delay(rng, n_views, _VIEW_GAP_S)
    gap[first] = 0
    offset = np.cumsum(gap)
    offset -= np.repeat(offset[first], sessions.length)
    second = sessions.start_s[session] + offset
    del gap, offset

    user = sessions.user[session]
    style = _draw_rows(rng, shoppers.style_cdf, user)
    level = _draw_rows(rng, np.cumsum(_LEVEL_MOVES, axis=1), shoppers.level[user])
    category = sessions.category[session].astype(np.int64)
    cell = sampler.cell_of(category, style, level)
    del style, level
    browse = rng.random(n_views, dtype=np.float32) < _EXPLORE_SHARE
    browse |= ~sampler.cell_has_items[cell]
    item = sampler.draw(rng, np.where(browse, sampler.n_cells + category, cell))
    return _Views(session, user, item, second)


@dataclass(frozen=True)
class _Funnel:
    """Carts, favourites and purchases, each pointing at the view it came from."""

    cart_view: np.ndarray  # int64 view index
    cart_s: np.ndarray
    favorite_view: np.ndarray
    favorite_s: np.ndarray
    purchase_view: np.ndarray
    purchase_s: np.ndarray
    purchase_qty: np.ndarray


def _make_funnel(
    rng: np.random.Generator, views: _Views, items: Items, shoppers: _Shoppers
) -> _Funnel:
    n_views = len(views.user)
    fit = _LEVEL_FIT[np.abs(items.level[views.item] - shoppers.level[views.user])]
    fit /= fit.mean()
    fit = fit.astype(np.float32)
    cart_view = np.flatnonzero(rng.random(n_views, dtype=np.float32) < P_VIEW_TO_CART * fit)
    favorite_view = np.flatnonzero(rng.random(n_views, dtype=np.float32) < P_VIEW_TO_FAVORITE * fit)
    del fit
    cart_s = views.second[cart_view] + _delay(rng, len(cart_view), _CART_DELAY_S)
    favorite_s = views.second[favorite_view] + _delay(rng, len(favorite_view), _FAVORITE_DELAY_S)

    bought = rng.random(len(cart_view)) < P_CART_TO_PURCHASE
    n_bought = int(bought.sum())
    same_session = rng.random(n_bought) < _PURCHASE_SAME_SESSION
    delay = np.where(
        same_session,
        _delay(rng, n_bought, _PURCHASE_DELAY_S),
        _delay(rng, n_bought, _PURCHASE_LATER_S),
    )
    purchase_view = cart_view[bought]
    consumable = _REORDER_DAYS[items.category[views.item[purchase_view]]] > 0
    qty = rng.geometric(np.where(consumable, _QTY_GEOMETRIC_P[1], _QTY_GEOMETRIC_P[0]))
    return _Funnel(
        cart_view,
        cart_s,
        favorite_view,
        favorite_s,
        purchase_view,
        cart_s[bought] + delay,
        qty.astype(np.float32),
    )


@dataclass(frozen=True)
class _Reorders:
    """Repeat (cart, purchase) pairs of consumables, pointing at the chain's first view."""

    view: np.ndarray
    cart_s: np.ndarray
    purchase_s: np.ndarray
    purchase_qty: np.ndarray


def _make_reorders(
    rng: np.random.Generator,
    funnel: _Funnel,
    views: _Views,
    items: Items,
    shoppers: _Shoppers,
    horizon_s: int,
) -> _Reorders:
    interval_days = _REORDER_DAYS[items.category[views.item[funnel.purchase_view]]]
    chain = np.flatnonzero((interval_days > 0) & (funnel.purchase_s < horizon_s))
    at = funnel.purchase_s[chain]
    mean_wait_s = (
        interval_days[chain]
        * shoppers.reorder_factor[views.user[funnel.purchase_view[chain]]]
        * 86_400.0
    )
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for _ in range(_MAX_REORDER_ROUNDS):  # one round per repeat; stops when all chains end
        if len(chain) == 0:
            break
        at = at + rng.gamma(_REORDER_GAMMA_SHAPE, mean_wait_s / _REORDER_GAMMA_SHAPE).astype(
            np.int64
        )
        again = (rng.random(len(chain)) < P_REORDER) & (at < horizon_s)
        chain, at, mean_wait_s = chain[again], at[again], mean_wait_s[again]
        buy_s = at + _delay(rng, len(chain), _REORDER_PURCHASE_S)
        parts.append((chain, at, buy_s))
        at = buy_s
    empty = np.zeros(0, dtype=np.int64)
    chains = np.concatenate([p[0] for p in parts]) if parts else empty
    cart_s = np.concatenate([p[1] for p in parts]) if parts else empty
    purchase_s = np.concatenate([p[2] for p in parts]) if parts else empty
    qty = rng.geometric(_QTY_GEOMETRIC_P[1], len(chains)).astype(np.float32)
    return _Reorders(funnel.purchase_view[chains], cart_s, purchase_s, qty)


@dataclass(frozen=True)
class _Log:
    """Unsorted events as parallel compact arrays."""

    user: np.ndarray  # int32
    item: np.ndarray  # int32
    event: np.ndarray  # int8
    second: np.ndarray  # int64, seconds since start
    quantity: np.ndarray  # float32


def _simulate(
    rng: np.random.Generator,
    n_events: int,
    days: int,
    start_ts: pd.Timestamp,
    items: Items,
    shoppers: _Shoppers,
    sampler: _ItemSampler,
) -> _Log:
    """Run sessions, views, funnel and reorders; keep whole sessions up to ``n_events``."""
    horizon_s = days * 86_400
    events_per_view = 1 + P_VIEW_TO_CART * (1 + P_CART_TO_PURCHASE) + P_VIEW_TO_FAVORITE
    # overshoot by 3 % plus four standard deviations of the per-session event count, so the
    # trim below almost never runs short even for tiny stores
    expected = n_events / events_per_view / _MEAN_SESSION_VIEWS
    n_sessions = int(np.ceil(expected * _OVERSHOOT + 4.0 * np.sqrt(expected))) + 2
    sessions = _make_sessions(rng, n_sessions, days, start_ts, shoppers)
    views = _make_views(rng, sessions, shoppers, sampler)
    del sessions
    funnel = _make_funnel(rng, views, items, shoppers)
    reorders = _make_reorders(rng, funnel, views, items, shoppers, horizon_s)

    # equal timestamps keep funnel order: views, carts, favourites, purchases
    n_views = len(views.user)
    parts = (
        (np.arange(n_views), views.second, "view", None),
        (funnel.cart_view, funnel.cart_s, "cart", None),
        (funnel.favorite_view, funnel.favorite_s, "favorite", None),
        (funnel.purchase_view, funnel.purchase_s, "purchase", funnel.purchase_qty),
        (reorders.view, reorders.cart_s, "cart", None),
        (reorders.view, reorders.purchase_s, "purchase", reorders.purchase_qty),
    )
    view_of = np.concatenate([p[0] for p in parts]).astype(np.int32)
    second = np.concatenate([p[1] for p in parts])
    event = np.concatenate([np.full(len(p[0]), _EVENT_CODE[p[2]]) for p in parts])
    quantity = np.concatenate(
        [np.ones(len(p[0]), dtype=np.float32) if p[3] is None else p[3] for p in parts]
    )
    del parts, funnel, reorders

    # drop what falls after the window, then keep whole sessions (in their random order)
    # until the count is closest to n_events
    inside = second < horizon_s
    session = views.session[view_of]
    total = np.cumsum(np.bincount(session[inside], minlength=n_sessions))
    last = min(int(np.searchsorted(total, n_events, side="left")), n_sessions - 1)
    if last > 0 and n_events - total[last - 1] < total[last] - n_events:
        last -= 1
    keep = inside & (session <= last)
    del inside, session

    view_of = view_of[keep]
    return _Log(
        user=views.user[view_of],
        item=views.item[view_of],
        event=event[keep],
        second=second[keep],
        quantity=quantity[keep],
    )


def _to_frame(
    log: _Log,
    start_ts: pd.Timestamp,
    n_users: int,
    item_ids: pd.Series,
    item_price: np.ndarray,
) -> pd.DataFrame:
    order = np.argsort(log.second, kind="stable")
    start_ns = np.int64(start_ts.value)
    stamp = (start_ns + log.second[order] * _NS_PER_S).view("datetime64[ns]")
    item = log.item[order]
    event_dtype = pd.CategoricalDtype(categories=list(EVENT_TYPES))
    return pd.DataFrame(
        {
            Columns.USER: pd.Categorical.from_codes(
                log.user[order], categories=numbered_ids("U", n_users)
            ),
            Columns.ITEM: pd.Categorical.from_codes(
                item, categories=pd.Index(item_ids.to_numpy(), dtype="str")
            ),
            Columns.EVENT: pd.Categorical.from_codes(log.event[order], dtype=event_dtype),
            Columns.TIMESTAMP: stamp,
            Columns.QUANTITY: log.quantity[order].astype(np.float64),
            Columns.PRICE: item_price[item].astype(np.float64),
        }
    )
