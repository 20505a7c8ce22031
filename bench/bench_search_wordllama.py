"""Reference only: what the wordllama static model would have given search (not shipped).

The lab neither ships nor depends on ``wordllama`` (its weights derive from Llama 2 70B's
token embeddings; docs/search.md says why). This script measures it once, so the decision
is made knowing what it costs: the same labelled queries, the same blend as the hybrid
method (``HYBRID_WEIGHTS`` of word TF-IDF, character n-gram and embedding cosines) with the
wordllama cosine of the query and the item text in place of the catalog-learnt embedding,
and no query reading (wordllama tokenises misspellings itself).

Install it into a folder of its own, not the lab's environment, and point ``--path`` at it::

    pip install --target /tmp/wlpkgs --no-deps wordllama==0.4.0.post1 safetensors tokenizers toml
    # the 0.4.0.post1 wheel looks for its tokenizer in wordllama/tokenizer/ but ships it in
    # wordllama/tokenizers/: without this copy, load() downloads it from Hugging Face
    mkdir -p /tmp/wlpkgs/wordllama/tokenizer
    cp /tmp/wlpkgs/wordllama/tokenizers/*.json /tmp/wlpkgs/wordllama/tokenizer/
    OMP_NUM_THREADS=1 python bench/bench_search_wordllama.py --path /tmp/wlpkgs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.search import CHAR_THRESHOLD, HYBRID_WEIGHTS, ProductSearch  # noqa: E402
from recsys_core.search_quality import load_labelled_queries, search_quality  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
QUERY_SETS = (
    "search_queries.csv",
    "search_queries_holdout.csv",
    "search_queries_paraphrase.csv",
    "search_queries_paraphrase_holdout.csv",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, required=True, help="folder wordllama is in")
    parser.add_argument("--threshold", type=float, default=0.5, help="cosine that makes a hit")
    args = parser.parse_args()
    sys.path.insert(0, str(args.path))
    from wordllama import WordLlama

    model = WordLlama.load(disable_download=True)
    catalog = load_dataset("online-retail").catalog
    tfidf = ProductSearch(catalog, method="tfidf")
    text = (catalog["title"].astype(str) + " " + catalog["category"].astype(str)).tolist()
    items = np.asarray(model.embed(text, norm=True), dtype=np.float32)

    def search(query: str, k: int) -> pd.DataFrame:
        words = tfidf._word_query(query)
        chars = tfidf._char_query(query)
        meaning = np.clip(items @ np.asarray(model.embed([query], norm=True))[0], 0.0, 1.0)
        w_words, w_chars, w_meaning = HYBRID_WEIGHTS
        scores = w_words * words + w_chars * chars + w_meaning * meaning
        hits = np.flatnonzero((words > 0) | (chars >= CHAR_THRESHOLD) | (meaning >= args.threshold))
        order = hits[np.lexsort((hits, -scores[hits]))][:k]
        return tfidf._frame(order, scores[order])

    def alone(query: str, k: int) -> pd.DataFrame:  # wordllama's cosine only, no TF-IDF
        meaning = items @ np.asarray(model.embed([query], norm=True))[0]
        order = np.argsort(-meaning, kind="stable")[:k]
        return tfidf._frame(order, meaning[order])

    for name in QUERY_SETS:
        queries = load_labelled_queries(DATA / name, catalog)
        search_quality(search, queries, 10)  # warm-up
        start = time.perf_counter()
        quality = search_quality(search, queries, 10)
        print(
            f"{name}: wordllama blend MRR@10 {quality['reciprocal_rank'].mean():.3f}, "
            f"recall@10 {quality['recall'].mean():.3f}, "
            f"p50 {1000 * quality['seconds'].median():.2f} ms "
            f"({time.perf_counter() - start:.1f} s for {len(queries)} queries)"
        )
        print(
            "  by kind:",
            quality.groupby("kind")["reciprocal_rank"].mean().round(3).to_dict(),
        )
        quality = search_quality(alone, queries, 10)
        print(
            f"{name}: wordllama alone MRR@10 {quality['reciprocal_rank'].mean():.3f}, "
            f"recall@10 {quality['recall'].mean():.3f}"
        )


if __name__ == "__main__":
    main()
