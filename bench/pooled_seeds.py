"""Scratch: pool a setting's paired NDCG@10 difference over several seeds (prints figures).

Reads the per-shopper NDCG@10 tables ``tune_ranker.py --sweep ... --per-user-out CSV`` writes
(one column per sweep entry, named by its position) and, for pairs ``F:I-F:J`` (file ``F``'s
entry ``I`` against file ``F``'s entry ``J``, usually a setting and the defaults refitted
with the same seed), prints each pair's difference and the pooled one: per shopper the mean
over the pairs of (setting - defaults), with a paired bootstrap over the shoppers (1,000
resamples, seed 0) of its mean. A shopper missing from a table counts 0, as in the sweep.

    python bench/pooled_seeds.py A.csv B.csv --pairs 0:6-0:0 0:7-0:1 1:1-1:0 1:5-1:4 1:9-1:8

The pooled interval covers the shoppers' sampling only; how far the seeds' own differences
spread is printed next to it (their standard deviation), since a refit with another seed
moves NDCG@10 by as much as a setting does.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tables", nargs="+", help="--per-user-out CSVs of tune_ranker --sweep")
    parser.add_argument("--pairs", nargs="+", required=True, help="F:I-F:J (setting-defaults)")
    args = parser.parse_args()
    tables = [pd.read_csv(path, index_col=0) for path in args.tables]
    shoppers = tables[0].index
    for table in tables[1:]:
        shoppers = shoppers.union(table.index)

    def column(ref: str) -> pd.Series:
        file, _, entry = ref.partition(":")
        return tables[int(file)][entry].reindex(shoppers).fillna(0.0)

    diffs = []
    for pair in args.pairs:
        setting, _, defaults = pair.partition("-")
        a, b = column(setting), column(defaults)
        diffs.append((a - b).to_numpy())
        print(f"  {pair}: {a.mean():.4f} vs {b.mean():.4f}, {diffs[-1].mean():+.4f}")
    pooled = np.mean(diffs, axis=0)
    draws = np.random.default_rng(0).integers(0, len(pooled), size=(1000, len(pooled)))
    low, high = np.percentile(pooled[draws].mean(axis=1), [2.5, 97.5])
    spread = np.std([d.mean() for d in diffs], ddof=1) if len(diffs) > 1 else float("nan")
    print(
        f"  pooled over {len(diffs)} pairs: {pooled.mean():+.4f} [{low:+.4f}, {high:+.4f}], "
        f"{sum(d.mean() > 0 for d in diffs)}/{len(diffs)} above 0, sd over pairs {spread:.4f}"
    )


if __name__ == "__main__":
    main()
