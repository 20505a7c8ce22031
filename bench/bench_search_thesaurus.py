"""Build ``recsys_core/wordnet_nouns.tsv.gz``, the thesaurus hybrid search reads queries with.

Source: Princeton WordNet 3.0's noun database as Debian ships it (``apt-get install
wordnet-base`` puts it in ``/usr/share/wordnet/data.noun``). The output keeps, for every noun
synset, its lemmas (the synonyms) and its hypernyms' offsets, nothing else (no glosses), with
WordNet's licence and copyright notice at the top as the licence requires. Lemmas are stored
as search reads words (``stem_tokens``: lower case, a plural "s" dropped, "hot-water bottle" ->
"hot water bottle"), so loading needs no stemming. The lab only reads
the built file: nothing is downloaded at run time (``recsys_core/text_thesaurus.py``).

Run: ``python bench/bench_search_thesaurus.py [--source /usr/share/wordnet/data.noun]``
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere

from recsys_core.text_embeddings import stem_tokens  # noqa: E402

OUT = ROOT / "recsys_core" / "wordnet_nouns.tsv.gz"
SOURCE = Path("/usr/share/wordnet/data.noun")


def parse(path: Path) -> tuple[list[str], list[tuple[str, list[str], list[str]]]]:
    """The licence lines (without their numbers) and (offset, lemmas, hypernyms) per synset."""
    licence: list[str] = []
    synsets = []
    with path.open(encoding="latin-1") as handle:
        for line in handle:
            if line.startswith("  "):  # the licence header: "  12 text  "
                licence.append(
                    line.strip().split(" ", 1)[1].rstrip() if " " in line.strip() else ""
                )
                continue
            fields = line.split(" | ", 1)[0].split()
            offset, count = fields[0], int(fields[3], 16)
            lemmas = [" ".join(stem_tokens(fields[4 + 2 * n])) for n in range(count)]
            lemmas = [lemma for lemma in lemmas if lemma]
            at = 4 + 2 * count
            pointers = int(fields[at])
            hypernyms = [
                fields[at + 1 + 4 * n + 1]
                for n in range(pointers)
                if fields[at + 1 + 4 * n] in ("@", "@i") and fields[at + 1 + 4 * n + 2] == "n"
            ]
            synsets.append((offset, list(dict.fromkeys(lemmas)), hypernyms))
    return licence, synsets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not args.source.exists():
        print(f"{args.source} not found: apt-get install wordnet-base", file=sys.stderr)
        return 1
    licence, synsets = parse(args.source)
    with gzip.open(args.out, "wt", encoding="utf-8", compresslevel=9) as out:
        out.write("# Derived from Princeton WordNet 3.0 (noun synsets: lemmas, hypernyms).\n")
        out.write("# Built by bench/bench_search_thesaurus.py; its licence follows.\n")
        for line in licence:
            out.write(f"# {line}\n")
        out.write("# offset\tstemmed lemmas (|)\thypernym offsets (space)\n")
        for offset, lemmas, hypernyms in synsets:
            out.write(f"{offset}\t{'|'.join(lemmas)}\t{' '.join(hypernyms)}\n")
    print(f"wrote {args.out}: {len(synsets)} synsets, {args.out.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
