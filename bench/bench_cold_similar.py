"""Similar items of new items by title text, checked against what shoppers bought together.

No item of Online Retail is new, so new items are simulated: for 300 items with at least 20
buyers (seeded sample), the title-text list (``ProductSearch.similar_by_text``, k = 10) is
built **without any purchases** (the "titles only" hybrid, so the item's own purchases cannot
leak in) and compared with the item's 20 most co-bought items (shoppers who bought both),
and with its 20 closest items by co-buy cosine (both counts over the square root of the two
items' buyer counts: what goes with this item rather than with everything).
The baseline is what a new item gets without text: the 10 most bought items. Printed: the
mean share of the 10 suggestions that are among the 20 most co-bought (precision), and the
time of one answer (hybrid).

Run: ``OMP_NUM_THREADS=1 python bench/bench_cold_similar.py [--items 300]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.interactions import IdMap  # noqa: E402
from recsys_core.search import ProductSearch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_dataset("online-retail")
    events = data.events[data.events["event"] == "purchase"]
    users, items = IdMap.from_values(events["user_id"]), IdMap.from_values(events["item_id"])
    bought = sp.csr_matrix(
        (
            np.ones(len(events), dtype=np.float32),
            (users.to_internal(events["user_id"]), items.to_internal(events["item_id"])),
        ),
        shape=(len(users), len(items)),
    )
    bought.data[:] = 1.0
    buyers = np.asarray(bought.sum(axis=0)).ravel()
    popular = items.to_external(np.argsort(-buyers, kind="stable")[:11])
    search = ProductSearch(data.catalog, method="hybrid")  # no purchases: titles only
    catalog_ids = set(data.catalog["item_id"].astype(str))
    pool = [i for i in np.flatnonzero(buyers >= 20) if items.external_ids[i] in catalog_ids]
    rng = np.random.default_rng(args.seed)
    sample = rng.choice(pool, size=min(args.items, len(pool)), replace=False)
    by_item = sp.csc_matrix(bought)
    text_hits, pop_hits, text_spec, pop_spec, seconds = [], [], [], [], []
    for col in sample:
        item = str(items.external_ids[col])
        shoppers = by_item[:, col].nonzero()[0]
        co = np.asarray(bought[shoppers].sum(axis=0)).ravel()
        co[col] = 0
        truth = set(items.to_external(np.argsort(-co, kind="stable")[:20]))
        lift = co / np.sqrt(np.maximum(buyers, 1) * buyers[col])  # cosine: not just popular
        specific = set(items.to_external(np.argsort(-lift, kind="stable")[:20]))
        start = time.perf_counter()
        text = search.similar_by_text(item, 10)["item_id"].tolist()
        seconds.append(time.perf_counter() - start)
        text_hits.append(len(truth & set(text)) / 10)
        pop = [p for p in popular if p != item][:10]
        pop_hits.append(len(truth & set(pop)) / 10)
        text_spec.append(len(specific & set(text)) / 10)
        pop_spec.append(len(specific & set(pop)) / 10)
    print(f"{len(sample)} simulated new items (>= 20 buyers each), k = 10")
    print("precision@10 against           20 most co-bought   20 closest by co-buy cosine")
    print(f"title text                     {np.mean(text_hits):17.3f} {np.mean(text_spec):29.3f}")
    print(f"most bought (no text)          {np.mean(pop_hits):17.3f} {np.mean(pop_spec):29.3f}")
    print(f"title text : p50 {1000 * np.median(seconds):.2f} ms per answer")


if __name__ == "__main__":
    main()
