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
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from recsys_core.columns import Columns
from recsys_core.data.dataset import id_values
from recsys_core.errors import ConfigError
from recsys_core.text_embeddings import stem_tokens

__all__ = [
    "LabelledQuery",
    "build_paraphrase_queries",
    "load_labelled_queries",
    "paraphrase_problems",
    "search_quality",
    "terms_rule",
]

#: The columns of a labelled query file.
QUERY_COLUMNS = ("query", "kind", "relevant")
#: The columns of a paraphrase query file: ``terms`` (the catalog's words for the concept,
#: ``|``-separated) gives ``relevant`` (:func:`terms_rule`).
PARAPHRASE_COLUMNS = ("query", "kind", "concept", "terms", "relevant")


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
    ids, titles = _ids_and_titles(catalog)
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


def _ids_and_titles(catalog: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The catalog's canonical ids and its upper-case titles (the text rules are matched on)."""
    titles = catalog[Columns.TITLE].astype(str).str.upper().to_numpy()  # text the patterns match
    return id_values(catalog[Columns.ITEM], where="the catalog").to_numpy(), titles


def terms_rule(terms: str) -> str:
    """The relevance pattern of a concept's catalog terms (``"KEY RING|KEYRING"``).

    A title is relevant when it holds one of the terms as whole words, with an optional
    plural ``S``/``ES``; a space inside a term may also be missing ("KEY RING" matches
    "KEYRING"). Terms are literal upper-case words, never regular expressions.
    """
    words = [t.strip().upper() for t in terms.split("|") if t.strip()]
    if not words:
        raise ConfigError("a concept needs at least one catalog term")
    alternatives = sorted((re.escape(w).replace(r"\ ", " ?") for w in words), key=len, reverse=True)
    return r"\b(?:" + "|".join(alternatives) + r")(?:S|ES)?\b"


def _content_words(text: str) -> set[str]:
    return {t for t in stem_tokens(text) if t not in ENGLISH_STOP_WORDS}


def paraphrase_problems(frame: pd.DataFrame, catalog: pd.DataFrame) -> list[str]:
    """What breaks the paraphrase set's rules on ``catalog`` (an empty list: none).

    The rules (``docs/search.md``): ``relevant`` is :func:`terms_rule` of ``terms``; the rule
    matches at least one title; and **no content word of the query (stop words dropped, the
    same light stem as search) occurs in any relevant title**, so the query copies no word of
    what it should find.
    """
    missing = [c for c in PARAPHRASE_COLUMNS if c not in frame.columns]
    if missing:
        return [f"missing column(s) {', '.join(missing)}"]
    _, titles = _ids_and_titles(catalog)
    title_words = [set(stem_tokens(t)) for t in titles]
    problems = []
    for line, row in enumerate(frame.itertuples(index=False), start=2):
        rule = terms_rule(row.terms)
        if row.relevant != rule:
            problems.append(f"line {line} ({row.query!r}): relevant is not terms_rule(terms)")
        pattern = re.compile(rule)
        hits = [n for n, t in enumerate(titles) if pattern.search(t)]
        if not hits:
            problems.append(f"line {line} ({row.query!r}): the terms match no title")
        query = _content_words(row.query)
        if not query:
            problems.append(f"line {line} ({row.query!r}): the query has no content word")
        copied = sorted({w for n in hits for w in query & title_words[n]})
        if copied:
            problems.append(
                f"line {line} ({row.query!r}): relevant titles hold the query word(s) "
                f"{', '.join(copied)}: write the query in other words"
            )
    return problems


def build_paraphrase_queries(path: Path | str, catalog: pd.DataFrame) -> pd.DataFrame:
    """Fill a paraphrase file's ``relevant`` column from its ``terms`` and check its rules.

    The file is read with the columns ``query, kind, concept, terms`` (``relevant`` is
    recomputed); the returned frame has :data:`PARAPHRASE_COLUMNS` and is what
    ``bench/bench_search_paraphrases.py --write`` saves.

    Raises
    ------
    ConfigError
        A rule of :func:`paraphrase_problems` is broken (each problem is listed).
    """
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in ("query", "kind", "concept", "terms"):
        if column not in frame.columns:
            raise ConfigError(f"{path}: missing column {column!r}")
    frame = frame.assign(relevant=[terms_rule(t) for t in frame["terms"]])
    frame = frame.loc[:, list(PARAPHRASE_COLUMNS)]
    problems = paraphrase_problems(frame, catalog)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return frame
