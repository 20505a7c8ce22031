"""A thesaurus of English nouns (from WordNet 3.0) that search reads unfamiliar query words with.

A catalog's own text cannot say that a pillow is a cushion or that a brolly is an umbrella:
no title holds both words. :class:`Thesaurus` brings that outside knowledge without any
download: ``recsys_core/wordnet_nouns.tsv.gz`` (built once by
``bench/bench_search_thesaurus.py`` from Princeton WordNet 3.0, whose licence and copyright
notice head the file) holds every noun synset's lemmas and hypernyms.

For a query word, :meth:`Thesaurus.related` gives the lemmas of every synset that holds it
(its synonyms), of those synsets' hypernyms (one level up: "pillow" -> "cushion") and of their
hyponyms (one level down: "timepiece" -> "clock"). Words are compared after
:func:`~recsys_core.text_embeddings.stem_tokens` ("clothespins" -> "clothespin"); the file
stores its lemmas so.
"""

from __future__ import annotations

import gzip
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Final

__all__ = ["THESAURUS_FILE", "Thesaurus", "default_thesaurus"]

#: The shipped thesaurus (WordNet 3.0 noun synsets).
THESAURUS_FILE: Final = Path(__file__).resolve().parent / "wordnet_nouns.tsv.gz"


class Thesaurus:
    """Synonyms, hypernyms and hyponyms of nouns, keyed by their stemmed words.

    Parameters
    ----------
    synsets:
        One entry per synset: (lemmas as :func:`~recsys_core.text_embeddings.stem_tokens`
        joined by spaces gives them, indices of its hypernym synsets).
    """

    def __init__(self, synsets: list[tuple[list[str], list[int]]]) -> None:
        self._lemmas = [lemmas for lemmas, _ in synsets]
        self._hypernyms = [hyper for _, hyper in synsets]
        hyponyms: list[list[int]] = [[] for _ in synsets]
        by_word: dict[str, list[int]] = defaultdict(list)
        for index, (lemmas, hyper) in enumerate(zip(self._lemmas, self._hypernyms, strict=True)):
            for parent in hyper:
                hyponyms[parent].append(index)
            for lemma in lemmas:
                if lemma:
                    by_word[lemma].append(index)
        self._hyponyms = hyponyms
        self._by_word = dict(by_word)

    @classmethod
    def load(cls, path: Path | str = THESAURUS_FILE) -> Thesaurus:
        """Read a thesaurus file (``#`` lines are its licence; then offset, lemmas, hypernyms).

        Raises
        ------
        FileNotFoundError
            The file is missing: rebuild it with ``python bench/bench_search_thesaurus.py``.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"the search thesaurus {path} is missing: rebuild it with "
                "`apt-get install wordnet-base && python bench/bench_search_thesaurus.py`"
            )
        rows: list[tuple[str, list[str], list[str]]] = []
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("#"):
                    continue
                offset, lemmas, hypernyms = line.rstrip("\n").split("\t")
                rows.append((offset, lemmas.split("|"), hypernyms.split()))
        index = {offset: n for n, (offset, _, _) in enumerate(rows)}
        return cls([(lemmas, [index[h] for h in hyper if h in index]) for _, lemmas, hyper in rows])

    def __contains__(self, word: str) -> bool:
        return word in self._by_word

    def related_tiers(self, word: str) -> tuple[list[str], list[str]]:
        """(synonyms and hypernyms, hyponyms) of a word: stemmed lemmas, not the word itself."""
        synsets = self._by_word.get(word, [])
        up = list(synsets) + [h for s in synsets for h in self._hypernyms[s]]
        down = [h for s in synsets for h in self._hyponyms[s]]
        return self._names(up, word), self._names(down, word)

    def _names(self, synsets: list[int], word: str) -> list[str]:
        out = [lemma for s in synsets for lemma in self._lemmas[s] if lemma and lemma != word]
        return list(dict.fromkeys(out))

    def related(self, word: str) -> list[str]:
        """Stemmed lemmas of the word's synsets, their hypernyms and hyponyms (not the word).

        Synonyms come first, then hypernyms, then hyponyms; an unknown word gives ``[]``.
        """
        synsets = self._by_word.get(word, [])
        near = list(synsets)
        near += [h for s in synsets for h in self._hypernyms[s]]
        near += [h for s in synsets for h in self._hyponyms[s]]
        out = [lemma for s in near for lemma in self._lemmas[s] if lemma and lemma != word]
        return list(dict.fromkeys(out))


@lru_cache(maxsize=1)
def default_thesaurus() -> Thesaurus:
    """The shipped thesaurus, read once per process (~1 s)."""
    return Thesaurus.load()
