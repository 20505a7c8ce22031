"""Product search quality and speed on Online Retail's catalog: every method on every query set.

The labelled query sets (how they were written and how an item is judged relevant:
``docs/search.md``): ``search_queries.csv`` (tuning: the development set the hybrid's reading
and weights were chosen on), ``search_queries_holdout.csv`` (held out) and
``search_queries_paraphrase.csv`` (paraphrases: no query word occurs in a relevant title) and
``search_queries_paraphrase_holdout.csv`` (more paraphrases, written after the thesaurus reading
was designed and run once: the fair paraphrase figures).

Methods: ``tfidf`` (the baseline); ``char-ngram SVD`` (the issue's fallback embedding alone:
character 3-5-gram TF-IDF reduced to 128 dimensions); ``catalog embedding`` (the
catalog-learnt embedding alone, with its query reading, no thesaurus); ``RRF`` (reciprocal-rank
fusion, k=60, of tfidf's ranking and the catalog embedding's with the thesaurus);
``hybrid, no thesaurus`` (the previous default); ``hybrid, no kin`` (the thesaurus reading
without kin readings, the default before them); ``hybrid`` (served: word and character
TF-IDF and the embedding blended with ``HYBRID_WEIGHTS``, queries read through the WordNet
thesaurus, and read again with a word swapped for its kin, ``KIN_WEIGHT``). The embeddings
learn co-purchases from the whole log's purchases (the service takes them from the served
model's training matrix).

For each method and set: MRR@k, recall@k (relevant items in the top k over all relevant) and
capped recall@k (over ``min(k, relevant)``); then the p50/p99 time of one query over all sets
(after a warm-up pass; one process, ``OMP_NUM_THREADS=1`` recommended), and per set the
hybrid's MRR@k over tfidf's with a paired bootstrap 95% interval of the difference. ``--tune``
prints the
hybrid's MRR@k on the tuning set alone for a grid of embedding weights (how ``HYBRID_WEIGHTS``
is chosen; the other sets are not looked at), then its MRR@k and recall@k on the two tuning
sets (tuning, paraphrase) for a grid of kin weights (how ``KIN_WEIGHT`` is chosen).

Run: ``OMP_NUM_THREADS=1 python bench/bench_search.py [--k 10] [--repeats 3] [--tune]``
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.interactions import IdMap  # noqa: E402
from recsys_core.search import HYBRID_WEIGHTS, KIN_WEIGHT, ProductSearch  # noqa: E402
from recsys_core.search_quality import (  # noqa: E402
    LabelledQuery,
    load_labelled_queries,
    search_quality,
)
from recsys_core.text_embeddings import (  # noqa: E402
    CatalogTextEmbedding,
    CharNgramEmbedding,
    item_shoppers,
)
from recsys_core.text_thesaurus import default_thesaurus  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
SETS = {
    "tuning": DATA / "search_queries.csv",
    "held-out": DATA / "search_queries_holdout.csv",
    "paraphrase": DATA / "search_queries_paraphrase.csv",
    "paraphrase held-out": DATA / "search_queries_paraphrase_holdout.csv",
}
Search = Callable[[str, int], pd.DataFrame]


def _purchases(data) -> sp.csr_matrix:
    events = data.events[data.events["event"] == "purchase"]
    users, items = IdMap.from_values(events["user_id"]), IdMap.from_values(events["item_id"])
    user_items = sp.csr_matrix(
        (
            np.ones(len(events), dtype=np.float32),
            (users.to_internal(events["user_id"]), items.to_internal(events["item_id"])),
        ),
        shape=(len(users), len(items)),
    )
    ids = data.catalog["item_id"].astype(str).tolist()
    return item_shoppers(ids, items.external_ids, user_items)


def _ranked(frame: Callable[[np.ndarray, np.ndarray], pd.DataFrame], scores: np.ndarray, k: int):
    order = np.argsort(-scores, kind="stable")[:k]
    return frame(order, scores[order])


def methods(catalog: pd.DataFrame, bought: sp.csr_matrix) -> dict[str, Search]:
    """name -> search(query, k), tfidf first, the served hybrid last."""
    tfidf = ProductSearch(catalog, method="tfidf")
    text = (
        catalog["title"].astype(str) + " " + catalog["category"].fillna("").astype(str)
    ).tolist()
    chars = CharNgramEmbedding().fit(text)
    plain = CatalogTextEmbedding().fit(text, bought)
    read = CatalogTextEmbedding(thesaurus=default_thesaurus()).fit(text, bought)
    n = len(catalog)

    def rrf(query: str, k: int) -> pd.DataFrame:
        fused = np.zeros(n)
        for scores in (tfidf.search(query, n), None):
            if scores is None:
                meaning = read.scores(query)
                order = np.argsort(-meaning, kind="stable")[: 10 * max(k, 10)]
                fused[order] += 1.0 / (60 + np.arange(1, len(order) + 1))
            else:
                rows = tfidf._item_rows.get_indexer(scores["item_id"])
                fused[rows] += 1.0 / (60 + scores["rank"].to_numpy())
        return _ranked(tfidf._frame, fused, k)

    return {
        "tfidf": tfidf.search,
        "char-ngram SVD": lambda q, k: _ranked(tfidf._frame, chars.scores(q), k),
        "catalog embedding": lambda q, k: _ranked(tfidf._frame, plain.scores(q), k),
        "RRF(tfidf, embedding)": rrf,
        "hybrid, no thesaurus": ProductSearch(
            catalog, item_shoppers=bought, thesaurus=False
        ).search,
        "hybrid, no kin": ProductSearch(catalog, item_shoppers=bought, kin_weight=0).search,
        "hybrid": ProductSearch(catalog, item_shoppers=bought).search,
    }


def paired_kin_cpu(
    base: Search, new: Search, queries: dict[str, list[LabelledQuery]], repeats: int
) -> None:
    """CPU seconds per query of the hybrid without and with kin readings, passes alternating."""
    every = [q.query for qs in queries.values() for q in qs]
    cpu: dict[str, list[float]] = {"no kin": [], "kin": []}
    for search in (base, new):  # warm-up: the thesaurus and the kin are loaded once
        for query in every:
            search(query, 10)
    for _ in range(repeats):
        for name, search in (("no kin", base), ("kin", new)):
            start = time.process_time()
            for query in every:
                search(query, 10)
            cpu[name].append((time.process_time() - start) / len(every))
    ratios = np.array(cpu["kin"]) / np.array(cpu["no kin"])
    print(
        f"hybrid CPU per query, {repeats} alternating passes: no kin "
        f"{1000 * np.median(cpu['no kin']):.2f} ms, kin {1000 * np.median(cpu['kin']):.2f} ms; "
        f"paired ratio kin / no kin {np.median(ratios):.2f}x "
        f"(range {ratios.min():.2f}-{ratios.max():.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the queries")
    parser.add_argument(
        "--tune", action="store_true", help="grid of embedding weights (tuning set)"
    )
    parser.add_argument(
        "--per-query", action="store_true", help="tfidf, hybrid without kin and hybrid per query"
    )
    args = parser.parse_args()

    data = load_dataset("online-retail")
    catalog = data.catalog
    bought = _purchases(data)
    queries = {name: load_labelled_queries(path, catalog) for name, path in SETS.items()}
    sizes = ", ".join(f"{name} {len(q)}" for name, q in queries.items())
    print(f"Online Retail: {len(catalog)} catalog items; queries: {sizes}; k={args.k}")
    if args.tune:
        print(f"hybrid MRR@{args.k} on the tuning set by embedding weight (words:chars 5:2):")
        for w in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
            weights = (5 / 7 * (1 - w), 2 / 7 * (1 - w), w)
            search = ProductSearch(catalog, item_shoppers=bought, weights=weights)
            mrr = search_quality(search.search, queries["tuning"], args.k)["reciprocal_rank"]
            print(f"  embedding weight {w:.1f}: MRR@{args.k} {mrr.mean():.3f}")
        print(f"served HYBRID_WEIGHTS: {HYBRID_WEIGHTS}")
        print(f"hybrid MRR@{args.k} / recall@{args.k} on the tuning sets by kin weight:")
        for kin in (0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95):
            search = ProductSearch(catalog, item_shoppers=bought, kin_weight=kin)
            cells = []
            for set_name in ("tuning", "paraphrase"):
                quality = search_quality(search.search, queries[set_name], args.k)
                cells.append(
                    f"{set_name} {quality['reciprocal_rank'].mean():.3f} / "
                    f"{quality['recall'].mean():.3f}"
                )
            print(f"  kin weight {kin:.2f}: " + ", ".join(cells))
        print(f"served KIN_WEIGHT: {KIN_WEIGHT}")
    rows, per_query, timings = [], {}, {}
    searches = methods(catalog, bought)
    for name, search in searches.items():
        every = [q for qs in queries.values() for q in qs]
        search_quality(search, every, args.k)  # warm-up
        start = time.perf_counter()
        timings[name] = np.concatenate(
            [search_quality(search, every, args.k)["seconds"] for _ in range(args.repeats)]
        )
        wall = time.perf_counter() - start
        for set_name, qs in queries.items():
            quality = search_quality(search, qs, args.k)
            per_query[name, set_name] = quality
            rows.append(
                {
                    "set": set_name,
                    "method": name,
                    f"MRR@{args.k}": quality["reciprocal_rank"].mean(),
                    f"recall@{args.k}": quality["recall"].mean(),
                    f"capped recall@{args.k}": quality["recall_capped"].mean(),
                }
            )
        print(
            f"{name}: p50 {1000 * np.percentile(timings[name], 50):.2f} ms, "
            f"p99 {1000 * np.percentile(timings[name], 99):.2f} ms per query "
            f"({args.repeats} passes, {wall:.1f} s)"
        )
    paired_kin_cpu(searches["hybrid, no kin"], searches["hybrid"], queries, args.repeats)
    table = pd.DataFrame(rows).set_index(["set", "method"])
    with pd.option_context("display.width", 200):
        print(table.round(3).to_string())
        mrr = table[f"MRR@{args.k}"]
        rng = np.random.default_rng(0)
        for set_name in queries:
            base, new = mrr[set_name, "tfidf"], mrr[set_name, "hybrid"]
            diff = (
                per_query["hybrid", set_name]["reciprocal_rank"].to_numpy()
                - per_query["tfidf", set_name]["reciprocal_rank"].to_numpy()
            )
            picks = rng.integers(0, len(diff), size=(2000, len(diff)))
            low, high = np.percentile(diff[picks].mean(axis=1), [2.5, 97.5])
            print(
                f"{set_name}: hybrid / tfidf MRR@{args.k} = {new / max(base, 1e-12):.2f}x; "
                f"hybrid - tfidf = {new - base:+.3f} (paired bootstrap 95% interval "
                f"{low:+.3f} .. {high:+.3f}, 2000 resamples of the queries)"
            )
        if args.per_query:
            for set_name in queries:
                both = per_query["tfidf", set_name][["query", "kind", "reciprocal_rank"]].merge(
                    per_query["hybrid", set_name][["query", "reciprocal_rank"]],
                    on="query",
                    suffixes=("_tfidf", "_hybrid"),
                )
                no_kin = per_query["hybrid, no kin", set_name]["reciprocal_rank"].to_numpy()
                both.insert(3, "reciprocal_rank_no_kin", no_kin)
                print(set_name)
                print(both.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
