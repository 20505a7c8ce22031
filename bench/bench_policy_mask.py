"""CPU time of ``policy_mask`` (the one function that applies a list policy), as text.

Leave-out-bought, a category filter, an exclude list and a block rule over 4,000 items,
5,000 shoppers and 200,000 random bought pairs (``category`` ids, as a lab holds them; seed
0). Run it in two trees to compare old and new code in one sitting::

    mkdir -p /tmp/old && git archive 1290dc6 recsys_core | tar -x -C /tmp/old
    (cd /tmp/old && PYTHONPATH=/tmp/old python "$OLDPWD/bench/bench_policy_mask.py")
    PYTHONPATH=. python bench/bench_policy_mask.py

CPU seconds (``time.process_time``), so the figure holds on a busy machine too.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from recsys_core.policy import (
    BusinessFilters,
    ListContext,
    ListPolicy,
    MerchandisingRule,
    policy_mask,
)


def main() -> None:
    """Print microseconds per one-shopper call and milliseconds per 2,000-shopper call."""
    rng = np.random.default_rng(0)
    items = np.array([f"I{i:05d}" for i in range(4000)], dtype=object)
    users = np.array([f"U{i:05d}" for i in range(5000)], dtype=object)
    bought = pd.DataFrame(
        {"user_id": rng.choice(users, 200_000), "item_id": rng.choice(items, 200_000)}
    )
    bought = bought.drop_duplicates().astype("category")
    catalog = pd.DataFrame(
        {
            "item_id": items,
            "title": items,
            "category": rng.choice(list("abcdef"), len(items)),
            "price": rng.random(len(items)),
        }
    )
    context = ListContext(bought=bought, catalog=catalog)
    policy = ListPolicy(
        "leave-out-bought",
        BusinessFilters(categories=["a", "b"]),
        exclude_items=frozenset(items[:20]),
        rules=(MerchandisingRule("block", tuple(items[20:30])),),
    )
    one = rng.choice(items, 40)
    shopper = np.full(40, users[7], dtype=object)
    policy_mask(policy, context, shopper, one)  # builds the context's lookups once
    start = time.process_time()
    for _ in range(2000):
        policy_mask(policy, context, shopper, one)
    single = (time.process_time() - start) / 2000
    many_users = np.repeat(users[:2000], 20)
    many_items = rng.choice(items, len(many_users))
    policy_mask(policy, context, many_users, many_items)
    start = time.process_time()
    for _ in range(10):
        kept = policy_mask(policy, context, many_users, many_items)
    many = (time.process_time() - start) / 10
    print(
        f"one shopper x 40 items: {single * 1e6:.0f} us CPU per call; "
        f"2,000 shoppers x 20 items: {many * 1e3:.0f} ms CPU per call; rows kept {int(kept.sum())}"
    )


if __name__ == "__main__":
    main()
