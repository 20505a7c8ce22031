"""A thesaurus of English nouns (from WordNet 3.0) that search reads unfamiliar query words with.

A catalog's own text cannot say that a pillow is a cushion or that a brolly is an umbrella:
no title holds both words. :class:`Thesaurus` brings that outside knowledge without any
download: ``recsys_core/wordnet_nouns.tsv.gz`` (built once by
``bench/bench_search_thesaurus.py`` from Princeton WordNet 3.0, whose licence and copyright
notice head the file) holds every noun synset's lemmas, hypernyms and lexicographer file (the
topic WordNet files it under: ``noun.artifact``, ``noun.food``, ...).

For a query word, :meth:`Thesaurus.related` gives the lemmas of every synset that holds it
(its synonyms), of those synsets' hypernyms (one level up: "pillow" -> "cushion") and of their
hyponyms (one level down: "timepiece" -> "clock"). Words are compared after
:func:`~recsys_core.text_embeddings.stem_tokens` ("clothespins" -> "clothespin"); the file
stores its lemmas so.

For words a catalog already knows, :meth:`Thesaurus.kin` gives their close relatives among a
set of words (a catalog's product types): the words naming a synonym or a *sister* (another
hyponym of a small direct hypernym) of one of their senses, in the topic most of the set's
senses share. A compound lemma also names its head word ("loving cup", a sister of "mug"
under "drinking vessel", names a cup), which is how "mug" and "cup" become kin.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np

__all__ = ["MAX_SISTERS", "THESAURUS_FILE", "Thesaurus", "default_thesaurus"]

#: The shipped thesaurus (WordNet 3.0 noun synsets).
THESAURUS_FILE: Final = Path(__file__).resolve().parent / "wordnet_nouns.tsv.gz"
#: Most hyponyms a hypernym may have for them to count as sisters in :meth:`Thesaurus.kin`:
#: "drinking vessel" (4) joins mug and loving cup; "container" (~100) joins nothing.
MAX_SISTERS: Final = 12

#: How far above a synset naming a compound ("loving cup") its head's sense ("cup") may be.
HEAD_LEVELS: Final = 3

#: A synset: (stemmed lemmas, indices of its hypernym synsets[, lexicographer file[, the
#: lemmas' sense numbers]]).
Synset = (
    tuple[Sequence[str], Sequence[int]]
    | tuple[Sequence[str], Sequence[int], int]
    | tuple[Sequence[str], Sequence[int], int, Sequence[int]]
)


class Thesaurus:
    """Synonyms, hypernyms, hyponyms and sisters of nouns, keyed by their stemmed words.

    Stored compactly (one string per distinct lemma, the relations as ``int32`` CSR arrays):
    the shipped file takes ~29 MB in memory (~59 MB at the peak of loading, ``tracemalloc``).

    Parameters
    ----------
    synsets:
        One entry per synset: (lemmas as :func:`~recsys_core.text_embeddings.stem_tokens`
        joined by spaces gives them, indices of its hypernym synsets, and optionally its
        lexicographer file, 0 when left out, and its lemmas' sense numbers, 1 when left out).
    """

    def __init__(self, synsets: Iterable[Synset]) -> None:
        self._ids: dict[str, int] = {}
        members: list[int] = []  # lemma ids of every synset, in order
        member_ptr = [0]
        parents: list[int] = []
        parent_ptr = [0]
        topics: list[int] = []
        senses: list[int] = []  # the sense number of every member, as members
        for synset in synsets:
            lemmas, hyper = synset[0], synset[1]
            topics.append(synset[2] if len(synset) > 2 else 0)  # type: ignore[misc]
            numbers = synset[3] if len(synset) > 3 else [1] * len(lemmas)  # type: ignore[misc]
            for lemma, number in zip(lemmas, numbers, strict=True):
                if lemma:
                    members.append(self._ids.setdefault(lemma, len(self._ids)))
                    senses.append(number)
            member_ptr.append(len(members))
            parents.extend(hyper)
            parent_ptr.append(len(parents))
        self._names = list(self._ids)
        self._topics = np.asarray(topics, dtype=np.int16)
        self._members = _Csr(member_ptr, members)
        self._hypernyms = _Csr(parent_ptr, parents)
        n = len(member_ptr) - 1
        child_of = np.repeat(np.arange(n, dtype=np.int32), np.diff(self._hypernyms.indptr))
        self._hyponyms = _Csr.grouped(self._hypernyms.indices, child_of, n)
        synset_of = np.repeat(np.arange(n, dtype=np.int32), np.diff(self._members.indptr))
        self._by_word = _Csr.grouped(self._members.indices, synset_of, len(self._names))
        #: The sense number of each of ``_by_word``'s entries (the same order).
        self._sense_of = _Csr.grouped(
            self._members.indices, np.asarray(senses, dtype=np.int32), len(self._names)
        )

    @classmethod
    def load(cls, path: Path | str = THESAURUS_FILE) -> Thesaurus:
        """Read a thesaurus file (``#`` lines are its licence; then offset, lemmas, hypernyms
        and, in files built since the kin relation, the lexicographer file and the lemmas'
        sense numbers).

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

        def synsets() -> Iterator[tuple[list[str], list[int], int, list[int]]]:
            for line in lines:
                _, lemmas, hypernyms, *more = line.split("\t")
                words = lemmas.split("|")
                parents = [index[h] for h in hypernyms.split() if h in index]
                topic = int(more[0]) if more else 0
                numbers = [int(n) for n in more[1].split("|")] if len(more) > 1 else []
                yield words, parents, topic, numbers or [1] * len(words)

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

    def kin(
        self, words: Collection[str], most: int = 5, max_sisters: int = MAX_SISTERS
    ) -> dict[str, list[str]]:
        """Close relatives of each of ``words`` among ``words`` (stemmed, e.g. product types).

        Each word is taken in one sense: its most frequent one (WordNet's sense numbers) in
        the *topic* of ``words``, the lexicographer file holding most of their senses
        (``noun.artifact`` for a shop): "mug" as a face, a fool or a mugful finds nothing,
        "box" is the container, not the television. ``b`` is kin of ``a`` (and ``a`` of
        ``b``) when the sense of ``a`` and a synset naming ``b`` (:meth:`_names_in`: ``b``'s
        sense, or a compound of ``b`` such as "loving cup" for a cup) are the same synset
        (synonyms: strength 1) or sisters, hyponyms of one hypernym with at most
        ``max_sisters`` hyponyms (strength 1 / their number: the closer family counts more).
        Per word: at most ``most`` kin, the strongest first (ties alphabetical); words
        without kin are left out.
        """
        vocabulary = set(words)
        known = [w for w in sorted(vocabulary) if w in self]
        counts = Counter(int(self._topics[s]) for w in known for s in self._senses(w))
        if not counts:
            return {}
        topic = counts.most_common(1)[0][0]
        sense = {}  # word -> its most frequent sense in the topic
        for w in known:
            in_topic = [s for s in self._senses(w) if self._topics[s] == topic]
            if in_topic:
                sense[w] = in_topic[0]
        strength: dict[str, dict[str, float]] = {}

        def link(a: str, b: str, value: float) -> None:
            if a != b:
                for x, y in ((a, b), (b, a)):
                    row = strength.setdefault(x, {})
                    row[y] = max(row.get(y, 0.0), value)

        for word, synset in sense.items():
            for name in self._names_in(synset, sense):
                link(word, name, 1.0)
            for parent in self._hypernyms.row(synset):
                sisters = self._hyponyms.row(parent)
                if len(sisters) > max_sisters:
                    continue
                for sister in sisters:
                    if sister != synset and self._topics[sister] == topic:
                        for name in self._names_in(sister, sense):
                            link(word, name, 1.0 / len(sisters))
        return {
            w: [b for b, _ in sorted(row.items(), key=lambda kv: (-kv[1], kv[0]))][:most]
            for w, row in sorted(strength.items())
        }

    def _senses(self, word: str) -> list[int]:
        """The synsets holding ``word``, its most frequent sense first."""
        wid = self._ids[word]
        rows, numbers = self._by_word.row(wid), self._sense_of.row(wid)
        return [s for _, s in sorted(zip(numbers, rows, strict=True))]

    def _names_in(self, synset: int, sense: dict[str, int]) -> list[str]:
        """The words of ``sense`` (word -> its sense) that a synset names.

        A synset names a lemma whose sense it is, and the head (last word) of a compound
        lemma when the head's sense is close above it in the hierarchy, the head's sense or
        one of its hypernyms among the synset's :data:`HEAD_LEVELS` nearest ancestors:
        "loving cup" ->
        "drinking vessel" -> "vessel" -> "container", a hypernym of "cup" (names a cup);
        "shooting box" -> "country house" -> "house" -> "building" (does not name a box).
        """
        out = []
        above: set[int] | None = None
        for lemma in (self._names[m] for m in self._members.row(synset)):
            head = lemma.rsplit(" ", 1)[-1]
            if lemma in sense:
                if sense[lemma] == synset:
                    out.append(lemma)
            elif head != lemma and head in sense:
                above = self._ancestors(synset, HEAD_LEVELS) if above is None else above
                near = {sense[head], *self._hypernyms.row(sense[head])}
                if near & above:
                    out.append(head)
        return out

    def _ancestors(self, synset: int, levels: int) -> set[int]:
        """The hypernyms of a synset up to ``levels`` steps up."""
        found: set[int] = set()
        layer = [synset]
        for _ in range(levels):
            layer = [h for s in layer for h in self._hypernyms.row(s) if h not in found]
            found.update(layer)
        return found

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
