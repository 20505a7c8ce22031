"""Search quality on a labelled query set: MRR@k and recall@k per query kind.

A labelled query is a row ``query, kind, relevant`` where ``relevant`` is a regular
expression over the upper-case title: **an item is relevant to the query exactly when its
title matches it**. The relevance is therefore derived by a stated rule from the catalog, not
by the search being measured (``docs/search.md`` says how the set was written).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import id_values
from recsys_core.errors import ConfigError

__all__ = ["LabelledQuery", "load_labelled_queries", "search_quality"]

#: The columns of a labelled query file.
QUERY_COLUMNS = ("query", "kind", "relevant")


@dataclass(frozen=True)
class LabelledQuery:
    """One query and the ids of the catalog items relevant to it."""

    query: str
    kind: str
    pattern: str
    relevant: frozenset[str]


def load_labelled_queries(path: Path | str, catalog: pd.DataFrame) -> list[LabelledQuery]:
    """Read a labelled query file and derive each query's relevant items from ``catalog``.

    Raises
    ------
    ConfigError
        A column is missing, a pattern is not a valid regular expression, or a pattern
        matches no item of the catalog (the query could never be answered right).
    """
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in QUERY_COLUMNS if c not in frame.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}")
    titles = catalog[Columns.TITLE].astype(str).str.upper().to_numpy()  # text the patterns match
    ids = id_values(catalog[Columns.ITEM], where="the catalog").to_numpy()
    out = []
    for line, row in enumerate(frame.itertuples(index=False), start=2):
        try:
            rule = re.compile(row.relevant)
        except re.error as exc:
            raise ConfigError(f"{path}, line {line}: bad pattern {row.relevant!r}: {exc}") from exc
        hits = frozenset(i for i, t in zip(ids, titles, strict=True) if rule.search(t))
        if not hits:
            raise ConfigError(
                f"{path}, line {line}: the pattern of {row.query!r} matches no title of this "
                "catalog; fix the pattern or drop the query"
            )
        out.append(LabelledQuery(row.query, row.kind, row.relevant, hits))
    return out


def search_quality(
    search: Callable[[str, int], pd.DataFrame], queries: list[LabelledQuery], k: int = 10
) -> pd.DataFrame:
    """Per-query reciprocal rank, recall and latency of ``search(query, k)``.

    Returns
    -------
    pandas.DataFrame
        One row per query: ``query, kind, relevant, found, reciprocal_rank, recall,
        recall_capped, seconds``. ``reciprocal_rank`` is 1/rank of the first relevant item
        in the top ``k`` (0 when none); ``recall`` is the relevant items in the top ``k``
        over all relevant items; ``recall_capped`` over ``min(k, relevant)``, so a query
        with 40 relevant items can reach 1.
    """
    rows = []
    for q in queries:
        start = time.perf_counter()
        found = search(q.query, k)
        seconds = time.perf_counter() - start
        top = found[Columns.ITEM].head(k).tolist()  # the search's own (canonical) ids
        hit = np.array([i in q.relevant for i in top], dtype=bool)
        first = int(np.argmax(hit)) + 1 if hit.any() else 0
        rows.append(
            {
                "query": q.query,
                "kind": q.kind,
                "relevant": len(q.relevant),
                "found": len(top),
                "reciprocal_rank": 1.0 / first if first else 0.0,
                "recall": float(hit.sum()) / len(q.relevant),
                "recall_capped": float(hit.sum()) / min(k, len(q.relevant)),
                "seconds": seconds,
            }
        )
    return pd.DataFrame(rows)
