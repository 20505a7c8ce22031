"""Build ``recsys_core/wordnet_nouns.tsv.gz``, the thesaurus hybrid search reads queries with.

Source: Princeton WordNet 3.0's noun database as Debian ships it (``apt-get install
wordnet-base`` puts it in ``/usr/share/wordnet/data.noun``). The output keeps, for every noun
synset, its lemmas (the synonyms), its hypernyms' offsets, its lexicographer file (the
topic WordNet files it under: 6 = ``noun.artifact``, 13 = ``noun.food``, ...) and each
lemma's sense number for it (``index.noun``'s order: 1 = the lemma's most frequent sense),
nothing else (no glosses), with
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


Synset = tuple[str, list[str], list[str], int, list[int]]


def sense_numbers(path: Path) -> dict[tuple[str, str], int]:
    """(lower-case lemma, synset offset) -> the lemma's sense number, from ``index.noun``."""
    numbers: dict[tuple[str, str], int] = {}
    with path.open(encoding="latin-1") as handle:
        for line in handle:
            if line.startswith("  "):
                continue
            fields = line.split()
            pointers = int(fields[3])
            for n, offset in enumerate(fields[6 + pointers :], start=1):
                numbers.setdefault((fields[0], offset), n)
    return numbers


def parse(path: Path) -> tuple[list[str], list[Synset]]:
    """The licence lines (without their numbers) and (offset, lemmas, hypernyms, lexicographer
    file, the lemmas' sense numbers) per synset (``index.noun`` beside ``path``)."""
    numbers = sense_numbers(path.with_name("index.noun"))
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
            sense: dict[str, int] = {}  # stemmed lemma -> its smallest sense number
            for n in range(count):
                raw = fields[4 + 2 * n]
                lemma = " ".join(stem_tokens(raw))
                if lemma:
                    number = numbers.get((raw.lower(), offset), 99)
                    sense[lemma] = min(sense.get(lemma, number), number)
            at = 4 + 2 * count
            pointers = int(fields[at])
            hypernyms = [
                fields[at + 1 + 4 * n + 1]
                for n in range(pointers)
                if fields[at + 1 + 4 * n] in ("@", "@i") and fields[at + 1 + 4 * n + 2] == "n"
            ]
            synsets.append((offset, list(sense), hypernyms, int(fields[1]), list(sense.values())))
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
        out.write(
            "# Derived from Princeton WordNet 3.0 (noun synsets: lemmas, hypernyms, "
            "lexicographer files, sense numbers).\n"
        )
        out.write("# Built by bench/bench_search_thesaurus.py; its licence follows.\n")
        for line in licence:
            out.write(f"# {line}\n")
        out.write(
            "# offset\tstemmed lemmas (|)\thypernym offsets (space)\tlexicographer file"
            "\tsense numbers (|)\n"
        )
        for offset, lemmas, hypernyms, lexfile, senses in synsets:
            ranks = "|".join(map(str, senses))
            out.write(f"{offset}\t{'|'.join(lemmas)}\t{' '.join(hypernyms)}\t{lexfile}\t{ranks}\n")
    print(f"wrote {args.out}: {len(synsets)} synsets, {args.out.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
