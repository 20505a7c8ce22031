"""A seeded purchase-only log shaped like a grocery shop's (baskets, staples, prices).

The issue's target log: 1M purchase lines, 30k shoppers, 25k items, four months, prices. The
demo store is a view-heavy web shop, so this is a separate, small generator:

* items belong to 30 departments (Zipf-like department sizes and popularity within each);
  a price per item, log-normal around its department's median;
* each shopper has department tastes (Dirichlet), a heavy-tailed activity (log-normal) and
  a list of 20 *staples* drawn from those tastes by popularity;
* a shopper's orders are spread uniformly over the period; an order has 1 + Poisson(9) lines,
  all at the order's timestamp; each line is one of the shopper's staples with probability
  0.7 (the first staples more often: weight 1 / rank ** 0.8), otherwise an item drawn from
  the shopper's tastes by popularity (so repeat purchases dominate, as in groceries);
* quantity is 1 + Poisson(0.5); a line repeated within one order is dropped.

Everything is drawn from one ``np.random.default_rng(seed)`` in a fixed order: the same
arguments always give the same log.

    python bench/grocery_log.py --out /tmp/grocery_1m.parquet
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

DEPARTMENTS = 30
STAPLES = 20
STAPLE_SHARE = 0.7
#: Orders are drawn for 1.3x the lines (repeats within an order are dropped), then trimmed.
OVERDRAW = 1.3
MEAN_EXTRA_LINES = 9.0


def _draw_items(
    rng: np.random.Generator,
    departments: np.ndarray,
    dept_start: np.ndarray,
    dept_cdf: list[np.ndarray],
) -> np.ndarray:
    """One item per entry of ``departments``, by popularity within the department."""
    out = np.empty(len(departments), dtype=np.int64)
    u = rng.random(len(departments))
    for d in range(DEPARTMENTS):
        mask = departments == d
        out[mask] = dept_start[d] + np.searchsorted(dept_cdf[d], u[mask], side="right")
    return out


def generate_grocery_log(
    n_lines: int = 1_000_000,
    n_shoppers: int = 30_000,
    n_items: int = 25_000,
    days: int = 120,
    seed: int = 0,
    start: str = "2025-01-06",
) -> pd.DataFrame:
    """A purchase log of about ``n_lines`` lines (``user_id, item_id, event, timestamp,
    quantity, price, category``)."""
    rng = np.random.default_rng(seed)
    # catalog: department sizes ~ Zipf, popularity ~ Zipf within a department
    size_w = 1.0 / np.arange(1, DEPARTMENTS + 1) ** 0.7
    sizes = np.maximum(1, np.floor(size_w / size_w.sum() * n_items)).astype(np.int64)
    sizes[0] += n_items - sizes.sum()
    dept_start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    item_dept = np.repeat(np.arange(DEPARTMENTS), sizes)
    dept_cdf = []
    for d in range(DEPARTMENTS):
        w = 1.0 / rng.permutation(np.arange(1, sizes[d] + 1)) ** 1.0
        cdf = np.cumsum(w) / w.sum()
        cdf[-1] = 1.0 + 1e-12
        dept_cdf.append(cdf)
    dept_median = np.exp(rng.normal(1.0, 0.6, DEPARTMENTS))
    price = np.round(dept_median[item_dept] * np.exp(rng.normal(0.0, 0.5, n_items)), 2)
    price = np.maximum(price, 0.1)
    # shoppers: tastes, activity, staples
    dept_w = 1.0 / np.arange(1, DEPARTMENTS + 1) ** 0.5
    tastes = rng.dirichlet(dept_w / dept_w.sum() * 8.0, size=n_shoppers)
    taste_cdf = np.cumsum(tastes, axis=1)
    taste_cdf[:, -1] = 1.0 + 1e-12

    def dept_of(users: np.ndarray) -> np.ndarray:
        u = rng.random(len(users))
        return (taste_cdf[users] < u[:, None]).sum(axis=1)

    staple_users = np.repeat(np.arange(n_shoppers), STAPLES)
    staples = _draw_items(rng, dept_of(staple_users), dept_start, dept_cdf).reshape(
        n_shoppers, STAPLES
    )
    staple_w = 1.0 / np.arange(1, STAPLES + 1) ** 0.8
    staple_cdf = np.cumsum(staple_w) / staple_w.sum()
    activity = rng.lognormal(0.0, 0.9, n_shoppers)
    lines_per_order = 1.0 + MEAN_EXTRA_LINES
    orders_mean = activity / activity.sum() * OVERDRAW * n_lines / lines_per_order
    orders = 1 + rng.poisson(np.maximum(orders_mean - 1.0, 0.0))
    order_user = np.repeat(np.arange(n_shoppers), orders)
    order_time = rng.random(len(order_user)) * days * 86_400.0
    order_lines = 1 + rng.poisson(MEAN_EXTRA_LINES, len(order_user))
    line_order = np.repeat(np.arange(len(order_user)), order_lines)
    line_user = order_user[line_order]
    is_staple = rng.random(len(line_user)) < STAPLE_SHARE
    items = np.empty(len(line_user), dtype=np.int64)
    pick = np.searchsorted(staple_cdf, rng.random(int(is_staple.sum())), side="right")
    items[is_staple] = staples[line_user[is_staple], np.minimum(pick, STAPLES - 1)]
    other = ~is_staple
    items[other] = _draw_items(rng, dept_of(line_user[other]), dept_start, dept_cdf)
    quantity = 1 + rng.poisson(0.5, len(items))
    frame = pd.DataFrame(
        {"order": line_order, "user": line_user, "item": items, "quantity": quantity}
    )
    frame = frame.drop_duplicates(["order", "item"])
    if len(frame) > n_lines:  # whole orders past the target are dropped, in random order
        keep_orders = rng.permutation(len(order_user))
        order_size = np.bincount(frame["order"].to_numpy(), minlength=len(order_user))
        cum = np.cumsum(order_size[keep_orders])
        kept = np.zeros(len(order_user), dtype=bool)
        kept[keep_orders[cum <= n_lines]] = True
        frame = frame[kept[frame["order"].to_numpy()]]
    frame = frame.sort_values(["order", "item"], kind="stable")
    ts = pd.Timestamp(start) + pd.to_timedelta(
        np.floor(order_time[frame["order"].to_numpy()]), unit="s"
    )
    item_idx = frame["item"].to_numpy()
    return pd.DataFrame(
        {
            "user_id": np.char.add("C", frame["user"].to_numpy().astype(str)),
            "item_id": np.char.add("P", item_idx.astype(str)),
            "event": "purchase",
            "timestamp": ts,
            "quantity": frame["quantity"].to_numpy(),
            "price": price[item_idx],
            "category": np.char.add("Dept ", item_dept[item_idx].astype(str)),
        }
    )


def main() -> None:
    """Write the log to ``--out`` (Parquet or CSV by its suffix) and print its shape."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/grocery_1m.parquet"))
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--shoppers", type=int, default=30_000)
    parser.add_argument("--items", type=int, default=25_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    log = generate_grocery_log(args.lines, args.shoppers, args.items, args.days, args.seed)
    if args.out.suffix == ".csv":
        log.to_csv(args.out, index=False)
    else:
        log.to_parquet(args.out, index=False)
    repeat = log.duplicated(["user_id", "item_id"]).mean()
    print(
        f"{len(log):,} purchase lines, {log['user_id'].nunique():,} shoppers, "
        f"{log['item_id'].nunique():,} items, {log['timestamp'].min()} .. "
        f"{log['timestamp'].max()}, {log.groupby(['user_id', 'timestamp']).ngroups:,} orders, "
        f"repeat lines {repeat:.1%}, written to {args.out} in "
        f"{time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
