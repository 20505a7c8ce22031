"""Item-text embeddings learnt from the catalog itself (no pretrained weights, no download).

Why not a pretrained model: the one static model that ships inside a PyPI wheel and was
proposed (``wordllama``, 256-d ``l2_supercat``) is derived from Llama 2 70B's token
embeddings, whose licence (the Llama 2 Community License) is not an open-source licence and
whose copy and notice the wheel does not carry; see ``docs/search.md`` for what was checked.

What this module learns instead, from the catalog and (when given) the purchase log:

* **word vectors** for every word of the titles (a light stem: lower case, plural "s"
  dropped), the concatenation of

  - a *title co-occurrence* part: latent semantic analysis (truncated SVD) of the item x word
    TF-IDF matrix, so words that appear with the same neighbours ("mug" and "cup" both come
    with "tea", "coffee", "saucer") get close vectors;
  - a *co-purchase* part: each word's mean of the co-purchase vectors (truncated SVD of the
    item x shopper matrix) of the items holding it, so words of items bought by the same
    shoppers get close vectors;

* **item vectors**: the IDF-weighted mean of the item's word vectors. An item with no
  purchases gets its vector from its words alone, which the other items taught: that is what
  makes it usable for similar items of new items;
* **query vectors**: the same pooling over the words the query is read as
  (:meth:`CatalogTextEmbedding.query_words`): stop words dropped ("mat for the door"), a
  word the catalog does not know or holds only once read, when a thesaurus is given, as the
  catalog words the thesaurus relates to it ("brolly" -> "umbrella"), else when it splits
  into two catalog words as them ("photoframe" -> "photo frame"), else as its closest common
  catalog word by spelling ("neckless", "braclet": character 3-grams, then edit similarity);
  two query words whose join is a catalog word are also read as it ("door mat" ->
  "doormat").

Everything is dense ``float32`` rows of unit length: a query costs one small sparse
transform and one (n_items x dim) matrix-vector product.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from recsys_core.text_thesaurus import Thesaurus

__all__ = [
    "CatalogTextEmbedding",
    "CharNgramEmbedding",
    "QueryCosine",
    "item_shoppers",
    "stem_tokens",
]

_TOKEN = re.compile(r"[a-z0-9]+")
#: Most catalog words one query word is read as through the thesaurus.
MAX_THESAURUS_WORDS = 5


def stem_tokens(text: str) -> list[str]:
    """Lower-case word tokens with a plural 's' dropped ('mugs' -> 'mug', 'boxes' -> 'box')."""
    out = []
    for tok in _TOKEN.findall(text.lower()):
        if len(tok) > 4 and tok.endswith(("xes", "ches", "shes")):
            tok = tok[:-2]
        elif len(tok) > 3 and tok.endswith("s") and not tok.endswith("ss"):
            tok = tok[:-1]
        out.append(tok)
    return out


def _normalise(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero)."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def _svd(matrix: sp.spmatrix, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column factors (each scaled by the singular values) of a truncated SVD."""
    n = min(dim, min(matrix.shape) - 1)
    if n < 1:
        return np.zeros((matrix.shape[0], 0)), np.zeros((matrix.shape[1], 0))
    svd = TruncatedSVD(n_components=n, algorithm="randomized", n_iter=7, random_state=seed)
    rows = svd.fit_transform(matrix)
    cols = svd.components_.T * svd.singular_values_
    return rows, cols


class QueryCosine:
    """Cosine of one query with every document of a fitted TF-IDF vectoriser, fast.

    What ``_cosine(matrix, vectorizer.transform([query]))`` gives (the same analyser,
    sublinear term frequency, IDF and L2 norm), without scikit-learn's per-call validation
    and with the matrix read term by term: ~0.1 ms instead of ~2 ms a query.
    """

    def __init__(self, vectorizer: TfidfVectorizer, matrix: sp.csr_matrix) -> None:
        if not vectorizer.sublinear_tf or vectorizer.norm != "l2" or not vectorizer.use_idf:
            raise ValueError("QueryCosine needs sublinear_tf=True, norm='l2' and use_idf=True")
        self._analyse = vectorizer.build_analyzer()
        self._vocabulary: dict[str, int] = vectorizer.vocabulary_
        self._idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        by_term = sp.csr_matrix(matrix.T)
        self._indptr, self._indices, self._data = by_term.indptr, by_term.indices, by_term.data
        self._n = matrix.shape[0]

    def __call__(self, text: str) -> np.ndarray:
        """Cosine of ``text`` with every document (zeros when no term is known)."""
        counts: dict[int, int] = {}
        for term in self._analyse(text):
            col = self._vocabulary.get(term)
            if col is not None:
                counts[col] = counts.get(col, 0) + 1
        if not counts:
            return np.zeros(self._n)
        cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        weights = (1.0 + np.log(tf)) * self._idf[cols]
        return self.of_vector(cols, weights / np.linalg.norm(weights))

    def of_vector(self, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Cosine of a unit vector given as (term columns, weights) with every document."""
        cols = np.asarray(cols, dtype=np.int64)
        if cols.size == 0:  # an empty text: close to nothing
            return np.zeros(self._n)
        starts, ends = self._indptr[cols], self._indptr[cols + 1]
        lengths = ends - starts
        take = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
        values = self._data[take] * np.repeat(weights, lengths)
        return np.bincount(self._indices[take], weights=values, minlength=self._n)


class CatalogTextEmbedding:
    """Dense text embeddings of catalog items and queries, learnt from the catalog.

    Parameters
    ----------
    cooccurrence_dim:
        Dimensions of the title co-occurrence (LSA) part of the word vectors.
    purchase_dim:
        Dimensions of the co-purchase part (used only when ``fit`` gets purchases).
    purchase_weight:
        Share of the co-purchase part in a word vector (0..1; the rest is co-occurrence).
    spelling_threshold:
        Smallest edit similarity (``difflib`` ratio) at which a rare or unknown query word
        is read as a common catalog word.
    seed:
        Seed of the randomized SVDs (the same seed gives the same vectors).
    thesaurus:
        Optional :class:`~recsys_core.text_thesaurus.Thesaurus` (or a function that returns
        one, called the first time a query needs it) that reads query words the catalog does
        not know well as the catalog words it relates them to ("brolly" -> "umbrella");
        ``None``: no such reading.
    """

    def __init__(
        self,
        cooccurrence_dim: int = 64,
        purchase_dim: int = 32,
        purchase_weight: float = 0.5,
        spelling_threshold: float = 0.7,
        seed: int = 0,
        thesaurus: Thesaurus | Callable[[], Thesaurus] | None = None,
    ) -> None:
        self.thesaurus = thesaurus
        self.cooccurrence_dim = cooccurrence_dim
        self.purchase_dim = purchase_dim
        self.purchase_weight = purchase_weight
        self.spelling_threshold = spelling_threshold
        self.seed = seed

    def fit(
        self, texts: Sequence[str], item_shoppers: sp.spmatrix | None = None
    ) -> CatalogTextEmbedding:
        """Learn word and item vectors.

        Parameters
        ----------
        texts:
            One text per item (title, category, ...), in catalog row order.
        item_shoppers:
            Optional items x shoppers matrix (rows in the same order as ``texts``) of who
            bought or saw what; rows of items without purchases are empty.

        Raises
        ------
        ValueError
            No text holds a word (scikit-learn's "empty vocabulary").
        """
        if not 0.0 <= self.purchase_weight <= 1.0:
            raise ValueError(f"purchase_weight must be in [0, 1], got {self.purchase_weight}")
        self.words_ = TfidfVectorizer(analyzer=stem_tokens, sublinear_tf=True)
        item_words = self.words_.fit_transform(list(texts)).tocsr()
        self.vocabulary_ = np.array(self.words_.get_feature_names_out(), dtype=object)
        self.idf_ = self.words_.idf_.astype(np.float32)
        _, cooccurrence = _svd(item_words, self.cooccurrence_dim, self.seed)
        parts = [_normalise(cooccurrence)]
        weights = [1.0]
        if item_shoppers is not None and item_shoppers.shape[0] == item_words.shape[0]:
            bought = sp.csr_matrix(item_shoppers, dtype=np.float32)
            bought.data[:] = 1.0
            if bought.nnz:
                items, _ = _svd(bought, self.purchase_dim, self.seed)
                items = _normalise(items)
                holds = item_words.copy()
                holds.data[:] = 1.0
                parts.append(_normalise(np.asarray(holds.T @ items)))
                weights = [1.0 - self.purchase_weight, self.purchase_weight]
        words = np.hstack([np.sqrt(w) * p for w, p in zip(weights, parts, strict=True)])
        self.word_vectors_ = _normalise(words).astype(np.float32)
        # character 3-grams of the common words, to read rare or unknown query words as them
        self.doc_freq_ = np.asarray((item_words > 0).sum(axis=0)).ravel()
        #: Items a word must appear in to be a spelling target ("common"); 1 in tiny catalogs.
        self.common_ = 2 if item_words.shape[0] >= 100 else 1
        self.common_words_ = self.vocabulary_[self.doc_freq_ >= self.common_]
        self.spelling_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), sublinear_tf=True)
        spelling = self.spelling_.fit_transform(self.common_words_.tolist()).tocsr()
        self.spelling_cosine_ = QueryCosine(self.spelling_, spelling)
        self.item_vectors_ = self._pool(item_words)
        return self

    @property
    def dim(self) -> int:
        """Length of a vector."""
        return int(self.word_vectors_.shape[1])

    def _pool(self, weights: sp.spmatrix) -> np.ndarray:
        """IDF-weighted mean of the word vectors per row, unit length."""
        return _normalise(np.asarray(weights @ self.word_vectors_, dtype=np.float32))

    def _is_common(self, word: str) -> bool:
        col = self.words_.vocabulary_.get(word)
        return col is not None and self.doc_freq_[col] >= self.common_

    def _closest(self, word: str) -> str | None:
        """The most common catalog word close in spelling (``None`` when none is close).

        Candidates are the 10 common words nearest by character 3-grams; of those with an
        edit similarity of at least ``spelling_threshold`` the one in most items wins (the
        usual prior of a spelling corrector: "neckless" is "necklace", not "neckl").
        """
        sims = self.spelling_cosine_(word)
        best, most = None, 0
        near = np.argpartition(-sims, 10)[:10] if len(sims) > 10 else np.arange(len(sims))
        for row in near[np.argsort(-sims[near])]:
            if sims[row] <= 0:
                break
            candidate = str(self.common_words_[row])
            freq = int(self.doc_freq_[self.words_.vocabulary_[candidate]])
            if freq <= most:
                continue
            matcher = difflib.SequenceMatcher(None, word, candidate)
            threshold = self.spelling_threshold  # quick_ratio is a cheap upper bound
            if matcher.quick_ratio() >= threshold and matcher.ratio() >= threshold:
                best, most = candidate, freq
        return best

    def loaded_thesaurus(self) -> Thesaurus | None:
        """The thesaurus (loaded now if it was given as a loader), ``None`` without one."""
        if self.thesaurus is not None and not isinstance(self.thesaurus, Thesaurus):
            self.thesaurus = self.thesaurus()  # loaded on first use
        return self.thesaurus

    def _thesaurus_words(self, word: str) -> list[str]:
        """Catalog words the thesaurus relates to a word the catalog does not know well.

        The first of two tiers that names any catalog word wins: its synonyms and hypernyms
        ("pillow" -> "cushion"), else its hyponyms ("timepiece" -> "clock"). A related lemma
        counts when every word of it is a common catalog word; at most
        :data:`MAX_THESAURUS_WORDS` words. ``[]`` without a thesaurus, for a catalog word or
        phrase, or when nothing related is in the catalog.
        """
        thesaurus = None if word in self.words_.vocabulary_ else self.loaded_thesaurus()
        if thesaurus is None:
            return []
        if " " in word and all(self._is_common(w) for w in word.split()):
            return []  # a phrase of catalog words: TF-IDF's bigrams already read it
        for tier in thesaurus.related_tiers(word):
            found = [
                w
                for lemma in tier
                if all(self._is_common(w) for w in lemma.split())
                for w in lemma.split()
            ]
            if found:
                return list(dict.fromkeys(found))[:MAX_THESAURUS_WORDS]
        return []

    def _split(self, word: str) -> list[str]:
        """Two common catalog words that make ``word`` ("photoframe"), or none."""
        for cut in range(3, len(word) - 2):
            head, tail = stem_tokens(word[:cut]), stem_tokens(word[cut:])
            if head and tail and self._is_common(head[0]) and self._is_common(tail[0]):
                return [head[0], tail[0]]
        return []

    def query_words(self, query: str) -> list[str]:
        """The catalog words a query is read as (see the module docstring)."""
        tokens = stem_tokens(query)
        content = [t for t in tokens if t not in ENGLISH_STOP_WORDS]
        tokens = content or tokens
        out: list[str] = []
        for a, b in zip(tokens, tokens[1:], strict=False):
            joined = stem_tokens(a + b)
            if joined and self._is_common(joined[0]):
                out.append(joined[0])
        for a, b in zip(tokens, tokens[1:], strict=False):
            out.extend(self._thesaurus_words(f"{a} {b}"))
        for tok in tokens:
            if tok in self.words_.vocabulary_:
                out.append(tok)
            if self._is_common(tok):
                continue
            related = self._thesaurus_words(tok)
            if related:
                out.extend(related)
                continue
            parts = self._split(tok)
            if parts:
                out.extend(parts)
                continue
            closest = self._closest(tok)
            if closest is not None:
                out.append(closest)
        return list(dict.fromkeys(out))

    def encode_query(self, query: str) -> np.ndarray:
        """One query as a unit vector (all zeros when no word can be read)."""
        return self.encode_words(self.query_words(query))

    def encode_words(self, words: Sequence[str]) -> np.ndarray:
        """Catalog words (as :meth:`query_words` gives them) pooled into a unit vector."""
        if not words:
            return np.zeros(self.dim, dtype=np.float32)
        cols = np.array([self.words_.vocabulary_[w] for w in words], dtype=np.int64)
        vec = (self.idf_[cols, None] * self.word_vectors_[cols]).sum(axis=0)
        norm = float(np.linalg.norm(vec))
        return (vec / norm).astype(np.float32) if norm > 0 else vec.astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Item texts as unit rows (words the catalog does not know are ignored)."""
        return self._pool(self.words_.transform(list(texts)))

    def scores(self, query: str) -> np.ndarray:
        """Cosine of the query with every item (catalog row order)."""
        return self.item_vectors_ @ self.encode_query(query)

    def scores_of_words(self, words: Sequence[str]) -> np.ndarray:
        """Cosine of already-read query words with every item (catalog row order)."""
        return self.item_vectors_ @ self.encode_words(words)


class CharNgramEmbedding:
    """The issue's fallback embedding: TF-IDF character n-grams reduced by truncated SVD.

    Items and queries are their character 3-5-gram TF-IDF vectors (inside word boundaries)
    projected on the top ``dim`` singular directions of the catalog's n-gram matrix, unit
    length. It knows spelling, not meaning: measured against the catalog-learnt
    :class:`CatalogTextEmbedding` in ``bench/bench_search.py`` (``docs/search.md``).
    """

    def __init__(self, dim: int = 128, seed: int = 0) -> None:
        self.dim = dim
        self.seed = seed

    def fit(self, texts: Sequence[str]) -> CharNgramEmbedding:
        """Learn the n-gram vocabulary, IDF and SVD directions from the item texts."""
        self.ngrams_ = TfidfVectorizer(
            lowercase=True, analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True
        )
        matrix = self.ngrams_.fit_transform(list(texts))
        n = max(1, min(self.dim, min(matrix.shape) - 1))
        self.svd_ = TruncatedSVD(n_components=n, algorithm="randomized", random_state=self.seed)
        self.item_vectors_ = _normalise(self.svd_.fit_transform(matrix)).astype(np.float32)
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Texts as unit rows in the fitted space."""
        rows = self.svd_.transform(self.ngrams_.transform(list(texts)))
        return _normalise(rows).astype(np.float32)

    def scores(self, query: str) -> np.ndarray:
        """Cosine of the query with every item (catalog row order)."""
        return self.item_vectors_ @ self.encode([query])[0]


def item_shoppers(
    catalog_ids: Sequence[str], item_ids: Sequence[str], user_items: sp.spmatrix
) -> sp.csr_matrix:
    """A users x items matrix turned into items x users rows in catalog order.

    ``item_ids`` names the columns of ``user_items``; catalog items the matrix does not hold
    (no purchases yet) get empty rows, matrix items the catalog lacks are left out.
    """
    column = {str(i): c for c, i in enumerate(item_ids)}
    rows = np.array([column.get(str(i), -1) for i in catalog_ids], dtype=np.int64)
    known = np.flatnonzero(rows >= 0)
    picked = sp.csr_matrix(sp.csc_matrix(user_items)[:, rows[known]].T, dtype=np.float32)
    placement = sp.csr_matrix(
        (np.ones(len(known), dtype=np.float32), (known, np.arange(len(known)))),
        shape=(len(catalog_ids), len(known)),
    )
    return sp.csr_matrix(placement @ picked, dtype=np.float32)
