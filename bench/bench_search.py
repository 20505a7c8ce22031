"""Product search quality and speed on Online Retail's catalog: TF-IDF against hybrid.

The labelled queries are ``tests/data/search_queries.csv`` (how they were written and how an
item is judged relevant: ``docs/search.md``). For each method this prints MRR@10, recall@10
(relevant items in the top 10 over all relevant) and capped recall@10 (over
``min(10, relevant)``), per query kind and overall, and the p50/p99 time of one query
(``ProductSearch.search`` after one warm-up pass; one process, ``OMP_NUM_THREADS=1``
recommended). The hybrid's embeddings learn co-purchases from the purchases of the whole log
(what the service does: they come from the served model's training matrix); "hybrid, titles
only" is the same method without purchases (an ablation: what the co-purchase part adds).

Run: ``OMP_NUM_THREADS=1 python bench/bench_search.py [--k 10] [--repeats 5] [--queries F]``
(``--queries tests/data/search_queries_holdout.csv``: the held-out set, see docs/search.md)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.interactions import IdMap  # noqa: E402
from recsys_core.search import SEARCH_METHODS, ProductSearch  # noqa: E402
from recsys_core.search_quality import load_labelled_queries, search_quality  # noqa: E402
from recsys_core.text_embeddings import item_shoppers  # noqa: E402

QUERIES = Path(__file__).resolve().parents[1] / "tests" / "data" / "search_queries.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over the queries")
    parser.add_argument("--per-query", action="store_true", help="print every query's ranks")
    parser.add_argument(
        "--queries",
        type=Path,
        default=QUERIES,
        help="labelled query file (tests/data/search_queries_holdout.csv: the held-out set)",
    )
    args = parser.parse_args()

    data = load_dataset("online-retail")
    catalog = data.catalog
    queries = load_labelled_queries(args.queries, catalog)
    events = data.events[data.events["event"] == "purchase"]
    users, items = IdMap.from_values(events["user_id"]), IdMap.from_values(events["item_id"])
    user_items = sp.csr_matrix(
        (
            np.ones(len(events), dtype=np.float32),
            (users.to_internal(events["user_id"]), items.to_internal(events["item_id"])),
        ),
        shape=(len(users), len(items)),
    )
    bought = item_shoppers(catalog["item_id"].astype(str).tolist(), items.external_ids, user_items)
    print(
        f"{args.queries.name}: {len(queries)} labelled queries, "
        f"{len(catalog)} catalog items, k={args.k}"
    )
    summary = []
    per_query = {}
    variants = [  # tfidf first (the baseline), the hybrid last (what is served)
        ("tfidf", "tfidf", None),
        ("hybrid, titles only", "hybrid", None),
        ("hybrid", "hybrid", bought),
    ]
    assert {v[1] for v in variants} == set(SEARCH_METHODS)
    for name, method, purchases in variants:
        start = time.perf_counter()
        search = ProductSearch(catalog, method=method, item_shoppers=purchases)
        build = time.perf_counter() - start
        quality = search_quality(search.search, queries, args.k)  # also the warm-up
        seconds = np.concatenate(
            [
                search_quality(search.search, queries, args.k)["seconds"].to_numpy()
                for _ in range(args.repeats)
            ]
        )
        per_query[name] = quality
        kinds = quality.groupby("kind")["reciprocal_rank"].mean().round(3).to_dict()
        summary.append(
            {
                "method": name,
                f"MRR@{args.k}": quality["reciprocal_rank"].mean(),
                f"recall@{args.k}": quality["recall"].mean(),
                f"capped recall@{args.k}": quality["recall_capped"].mean(),
                "p50 ms": 1000 * float(np.percentile(seconds, 50)),
                "p99 ms": 1000 * float(np.percentile(seconds, 99)),
                "build s": build,
                "MRR by kind": kinds,
            }
        )
    table = pd.DataFrame(summary).set_index("method")
    with pd.option_context("display.width", 200, "display.max_colwidth", 200):
        print(table.drop(columns="MRR by kind").round(3).to_string())
        for method, row in table.iterrows():
            print(f"{method} MRR@{args.k} by kind: {row['MRR by kind']}")
        base, new = table.loc["tfidf"], table.loc["hybrid"]
        print(
            f"hybrid / tfidf MRR@{args.k}: "
            f"{new[f'MRR@{args.k}'] / max(base[f'MRR@{args.k}'], 1e-12):.2f}x"
        )
        if args.per_query:
            both = per_query["tfidf"][["query", "kind", "relevant", "reciprocal_rank"]].merge(
                per_query["hybrid"][["query", "reciprocal_rank"]],
                on="query",
                suffixes=("_tfidf", "_hybrid"),
            )
            print(both.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
