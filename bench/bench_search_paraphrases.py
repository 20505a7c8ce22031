"""Build and check the paraphrase query set (``tests/data/search_queries_paraphrase.csv``).

Each row names a product concept of Online Retail's catalog, the catalog's own words for it
(``terms``) and a query in a shopper's everyday words (``query``, written first, from a list
of synonyms, regional words, abbreviations and descriptions; ``docs/search.md`` gives the
procedure). This script derives each row's ``relevant`` pattern from its terms
(``recsys_core.search_quality.terms_rule``) and checks the set's rules
(``paraphrase_problems``): the terms match some title, and no content word of the query
occurs in any relevant title.

Run: ``python bench/bench_search_paraphrases.py`` (check only; exit 1 on a problem) or
``python bench/bench_search_paraphrases.py --write`` (recompute ``relevant`` and save).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.errors import ConfigError  # noqa: E402
from recsys_core.search_quality import build_paraphrase_queries  # noqa: E402

PARAPHRASES = Path(__file__).resolve().parents[1] / "tests" / "data"
PARAPHRASES = PARAPHRASES / "search_queries_paraphrase.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=PARAPHRASES)
    parser.add_argument("--write", action="store_true", help="save the recomputed file")
    args = parser.parse_args()
    catalog = load_dataset("online-retail").catalog
    try:
        frame = build_paraphrase_queries(args.path, catalog)
    except ConfigError as exc:
        print(f"paraphrase set broken: {exc}", file=sys.stderr)
        return 1
    if args.write:
        frame.to_csv(args.path, index=False)
        print(f"wrote {args.path} ({len(frame)} queries, {frame['concept'].nunique()} concepts)")
    else:
        print(f"{args.path}: {len(frame)} queries, every rule holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
