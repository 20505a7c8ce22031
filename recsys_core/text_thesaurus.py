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
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np

__all__ = ["THESAURUS_FILE", "Thesaurus", "default_thesaurus"]

#: The shipped thesaurus (WordNet 3.0 noun synsets).
THESAURUS_FILE: Final = Path(__file__).resolve().parent / "wordnet_nouns.tsv.gz"


class Thesaurus:
    """Synonyms, hypernyms and hyponyms of nouns, keyed by their stemmed words.

    Stored compactly (one string per distinct lemma, the relations as ``int32`` CSR arrays):
    the shipped file takes ~20 MB in memory (~47 MB at the peak of loading).

    Parameters
    ----------
    synsets:
        One entry per synset: (lemmas as :func:`~recsys_core.text_embeddings.stem_tokens`
        joined by spaces gives them, indices of its hypernym synsets).
    """

    def __init__(self, synsets: Iterable[tuple[Sequence[str], Sequence[int]]]) -> None:
        self._ids: dict[str, int] = {}
        members: list[int] = []  # lemma ids of every synset, in order
        member_ptr = [0]
        parents: list[int] = []
        parent_ptr = [0]
        for lemmas, hyper in synsets:
            for lemma in lemmas:
                if lemma:
                    members.append(self._ids.setdefault(lemma, len(self._ids)))
            member_ptr.append(len(members))
            parents.extend(hyper)
            parent_ptr.append(len(parents))
        self._names = list(self._ids)
        self._members = _Csr(member_ptr, members)
        self._hypernyms = _Csr(parent_ptr, parents)
        n = len(member_ptr) - 1
        child_of = np.repeat(np.arange(n, dtype=np.int32), np.diff(self._hypernyms.indptr))
        self._hyponyms = _Csr.grouped(self._hypernyms.indices, child_of, n)
        synset_of = np.repeat(np.arange(n, dtype=np.int32), np.diff(self._members.indptr))
        self._by_word = _Csr.grouped(self._members.indices, synset_of, len(self._names))

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
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            lines = [line.rstrip("\n") for line in handle if not line.startswith("#")]
        index = {line.split("\t", 1)[0]: n for n, line in enumerate(lines)}

        def synsets() -> Iterator[tuple[list[str], list[int]]]:
            for line in lines:
                _, lemmas, hypernyms = line.split("\t")
                yield lemmas.split("|"), [index[h] for h in hypernyms.split() if h in index]

        return cls(synsets())

    def __contains__(self, word: str) -> bool:
        return word in self._ids

    def related_tiers(self, word: str) -> tuple[list[str], list[str]]:
        """(synonyms and hypernyms, hyponyms) of a word: stemmed lemmas, not the word itself.

        Within the first tier the synonyms come first. An unknown word gives ``([], [])``.
        """
        wid = self._ids.get(word)
        if wid is None:
            return [], []
        synsets = self._by_word.row(wid)
        up = synsets + [h for s in synsets for h in self._hypernyms.row(s)]
        down = [h for s in synsets for h in self._hyponyms.row(s)]
        return self._lemmas_of(up, wid), self._lemmas_of(down, wid)

    def _lemmas_of(self, synsets: list[int], skip: int) -> list[str]:
        ids = [m for s in synsets for m in self._members.row(s) if m != skip]
        return [self._names[m] for m in dict.fromkeys(ids)]


class _Csr:
    """Rows of ``int32`` indices (compressed sparse rows without values)."""

    def __init__(self, indptr: Sequence[int] | np.ndarray, indices: Sequence[int] | np.ndarray):
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int32)

    @classmethod
    def grouped(cls, rows: np.ndarray, values: np.ndarray, n_rows: int) -> _Csr:
        """The CSR whose row ``r`` holds ``values[rows == r]`` (in their order)."""
        order = np.argsort(rows, kind="stable")
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))])
        return cls(indptr, values[order])

    def row(self, r: int) -> list[int]:
        return self.indices[self.indptr[r] : self.indptr[r + 1]].tolist()


@lru_cache(maxsize=1)
def default_thesaurus() -> Thesaurus:
    """The shipped thesaurus, read once per process (~1.3 CPU s on the loaded machine)."""
    return Thesaurus.load()
