"""Product search over the catalog, with re-ranking for a chosen shopper.

Two methods (:data:`SEARCH_METHODS`): ``"tfidf"``, lexical only, and ``"hybrid"`` (the
default), the lexical scores blended with the cosine of catalog-learnt text embeddings
(:mod:`recsys_core.text_embeddings`), with the query read in the catalog's words: misspellings
and compounds by the catalog's own vocabulary ("neckless" -> necklaces), words no title uses
through a shipped WordNet noun thesaurus (:mod:`recsys_core.text_thesaurus`: "brolly" ->
umbrellas, "pillow" -> cushions).

Lexical retrieval is scikit-learn's TF-IDF over each item's title, category and brand: word
unigrams and bigrams of a light stem (lower case, a plural "s" dropped, so "mugs" finds
"mug"), scored by cosine similarity. When no word matches (a typo), character 3-5-grams
inside word boundaries are used instead, with a higher threshold.

Personalisation re-ranks **only the relevant matches** by the shopper's purchase
probability (lexical relevance breaks ties): a match is relevant when it holds every word of
the query (when any product does) and its relevance is at least :data:`RELEVANCE_FLOOR` of the
best match's. Less relevant matches follow, in relevance order, never above a relevant one,
so "cake stand" cannot put cake cases first and "mug" cannot put a mug cosy first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from recsys_core.columns import Columns
from recsys_core.data.dataset import id_values
from recsys_core.errors import ConfigError
from recsys_core.text_embeddings import CatalogTextEmbedding, QueryCosine, stem_tokens
from recsys_core.text_thesaurus import Thesaurus, default_thesaurus

#: Turns (user_id, item_ids) into purchase probabilities in [0, 1].
ProbabilityFunction = Callable[[str, Sequence[str]], np.ndarray]

SEARCH_COLUMNS = ("item_id", "title", "category", "relevance", "rank")

SearchMethod = Literal["tfidf", "hybrid"]
#: The search methods, the default first.
SEARCH_METHODS: Final[tuple[SearchMethod, ...]] = ("hybrid", "tfidf")
#: Minimum cosine of the character-n-gram fallback (typos); word matches need only > 0.
CHAR_THRESHOLD = 0.3
#: Share of the best match's relevance a match needs to be re-ranked for a shopper.
RELEVANCE_FLOOR = 0.5


#: Hybrid score = these weights x (word TF-IDF cosine, character n-gram cosine, embedding
#: cosine); chosen before the labelled queries were run (docs/search.md).
HYBRID_WEIGHTS: Final = (0.5, 0.2, 0.3)
#: Smallest embedding cosine that makes an item a hit on its own (no shared word or n-grams).
EMBEDDING_THRESHOLD = 0.4

_stem_tokens = stem_tokens


def _word_ngrams(text: str) -> list[str]:
    toks = _stem_tokens(text)
    return toks + [f"{a} {b}" for a, b in zip(toks, toks[1:], strict=False)]


class ProductSearch:
    """Search over a catalog: TF-IDF, or TF-IDF blended with text embeddings.

    Parameters
    ----------
    catalog:
        One row per item with ``item_id`` and ``title`` (``category`` and ``brand`` are
        used when present).
    method:
        ``"hybrid"`` (default) or ``"tfidf"`` (:data:`SEARCH_METHODS`).
    item_shoppers:
        Optional items x shoppers matrix in catalog row order (who bought what): it teaches
        the embeddings which words go together in baskets. Without it the embeddings learn
        from titles alone.
    thesaurus:
        Hybrid only: ``True`` (default) reads query words the catalog does not know through
        the shipped WordNet thesaurus ("brolly" -> "umbrella",
        :mod:`recsys_core.text_thesaurus`), ``False`` does not, or the
        :class:`~recsys_core.text_thesaurus.Thesaurus` to use.
    weights:
        Hybrid only: the (word TF-IDF, character n-gram, embedding) weights of the blend.
    """

    def __init__(
        self,
        catalog: pd.DataFrame,
        method: SearchMethod = "hybrid",
        item_shoppers: sp.spmatrix | None = None,
        thesaurus: Thesaurus | bool = True,
        weights: tuple[float, float, float] = HYBRID_WEIGHTS,
    ) -> None:
        if Columns.ITEM not in catalog.columns or Columns.TITLE not in catalog.columns:
            raise ConfigError("a search catalog needs the columns 'item_id' and 'title'")
        if method not in SEARCH_METHODS:
            raise ConfigError(
                f"unknown search method {method!r}: use one of {', '.join(SEARCH_METHODS)}"
            )
        self.method: SearchMethod = method
        self.weights = weights
        self.catalog = catalog.reset_index(drop=True)
        ids = id_values(self.catalog[Columns.ITEM], where="the search catalog")
        self._item_rows = pd.Index(ids)
        # the catalog's text (titles, categories, brands) is what is searched: text, not ids
        titles = self.catalog[Columns.TITLE].astype(str)
        text = titles
        for col in (Columns.CATEGORY, Columns.BRAND):
            if col in self.catalog.columns:
                text = text + " " + self.catalog[col].fillna("").astype(str)
        self._words = TfidfVectorizer(analyzer=_word_ngrams, sublinear_tf=True)
        self._chars = TfidfVectorizer(
            lowercase=True, analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True
        )
        self._ids = ids.to_numpy(dtype=object)
        self._titles = titles.to_numpy(dtype=object)
        self._categories = (
            self.catalog[Columns.CATEGORY].astype(str).to_numpy(dtype=object)
            if Columns.CATEGORY in self.catalog.columns
            else np.full(len(self.catalog), "", dtype=object)
        )
        docs = text.tolist()
        #: Why search finds nothing whatever the query (``None`` when it works): a catalog
        #: without searchable titles (e.g. the fallback of a damaged catalog).
        self.problem: str | None = None
        #: The text embeddings of the hybrid method (``None`` for TF-IDF or a broken catalog).
        self.embedding: CatalogTextEmbedding | None = None
        try:
            self._word_matrix = self._words.fit_transform(docs).tocsr()
            self._char_matrix = self._chars.fit_transform(docs).tocsr()
            self._word_query = QueryCosine(self._words, self._word_matrix)
            self._char_query = QueryCosine(self._chars, self._char_matrix)
            if method == "hybrid":
                reader = default_thesaurus if thesaurus is True else thesaurus or None
                self.embedding = CatalogTextEmbedding(thesaurus=reader).fit(docs, item_shoppers)
        except ValueError as exc:  # "empty vocabulary": degrade, never fail every search
            self.problem = (
                f"the catalog has no searchable titles ({exc}): search finds nothing until "
                "the catalog is restored (`python -m recsys_core registry restore ARCHIVE`)"
            )

    def search(self, query: str, k: int = 20) -> pd.DataFrame:
        """Items matching ``query``, most relevant first.

        TF-IDF: the cosine of word TF-IDF vectors; when no word matches (a typo), of
        character n-grams (at least :data:`CHAR_THRESHOLD`). Hybrid: the
        :data:`HYBRID_WEIGHTS` blend of both cosines and the embedding cosine, over the items
        that share a word, are close in n-grams or have an embedding cosine of at least
        :data:`EMBEDDING_THRESHOLD`.

        Returns
        -------
        pandas.DataFrame
            ``item_id, title, category, relevance, rank``; empty for an empty query or when
            nothing matches.
        """
        query = (query or "").strip()
        if not query or k < 1 or self.problem is not None:
            return self._frame(np.array([], dtype=np.int64), np.array([]))
        if self.embedding is not None:
            read = self.embedding.query_words(query)
            words = self._word_query(" ".join(read) or query)
            chars = self._char_query(query)
            meaning = np.clip(self.embedding.scores_of_words(read), 0.0, 1.0)
            w_words, w_chars, w_meaning = self.weights
            scores = w_words * words + w_chars * chars + w_meaning * meaning
            hit = (words > 0) | (chars >= CHAR_THRESHOLD) | (meaning >= EMBEDDING_THRESHOLD)
            hits = np.flatnonzero(hit)
        else:
            scores = words = self._word_query(query)
            hits = np.flatnonzero(scores > 0)
            if hits.size == 0:
                scores = self._char_query(query)
                hits = np.flatnonzero(scores >= CHAR_THRESHOLD)
        order = hits[np.lexsort((hits, -scores[hits]))][:k]
        return self._frame(order, scores[order])

    def similar_by_text(self, item_id: str, k: int = 10) -> pd.DataFrame:
        """Items whose titles are closest to ``item_id``'s: for items with no purchases.

        The :data:`HYBRID_WEIGHTS` blend of the word TF-IDF, character n-gram and (for the
        hybrid method) text-embedding cosines between the item's text and every other
        item's; the item itself is left out.

        Returns
        -------
        pandas.DataFrame
            The :meth:`search` columns (``relevance`` is the blended cosine); empty when the
            item is not in the catalog or the catalog is not searchable.
        """
        row = int(self._item_rows.get_indexer([str(item_id)])[0])
        if row < 0 or k < 1 or self.problem is not None:
            return self._frame(np.array([], dtype=np.int64), np.array([]))
        w_words, w_chars, w_meaning = self.weights
        words = _row_cosine(self._word_query, self._word_matrix, row)
        chars = _row_cosine(self._char_query, self._char_matrix, row)
        scores = w_words * words + w_chars * chars
        if self.embedding is not None:
            vectors = self.embedding.item_vectors_
            scores = scores + w_meaning * np.clip(vectors @ vectors[row], 0.0, 1.0)
        else:
            scores = scores / (w_words + w_chars)
        scores[row] = -np.inf
        hits = np.flatnonzero(scores > 0)
        order = hits[np.lexsort((hits, -scores[hits]))][:k]
        return self._frame(order, scores[order])

    def _frame(self, rows: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        rows = np.asarray(rows, dtype=np.int64)
        return pd.DataFrame(
            {
                "item_id": self._ids[rows],
                "title": self._titles[rows],
                "category": self._categories[rows],
                "relevance": np.asarray(scores, dtype=np.float64),
                "rank": np.arange(1, len(rows) + 1),
            }
        )

    def relevant(
        self, query: str, found: pd.DataFrame, floor: float = RELEVANCE_FLOOR
    ) -> np.ndarray:
        """Which rows of a :meth:`search` result are relevant enough to re-rank.

        A row is relevant when its relevance is at least ``floor`` x the best row's and,
        when any row holds every word of the query, it holds every word too.
        """
        if found.empty:
            return np.zeros(0, dtype=bool)
        relevance = found["relevance"].to_numpy(dtype=np.float64)
        mask = relevance >= floor * relevance.max()
        vocabulary = self._words.vocabulary_
        columns = [vocabulary.get(tok) for tok in dict.fromkeys(_stem_tokens(query))]
        if columns and all(c is not None for c in columns):
            rows = self._item_rows.get_indexer(found["item_id"])  # this search's own ids
            sub = self._word_matrix[rows][:, columns]
            has_all = np.asarray((sub > 0).sum(axis=1)).ravel() == len(columns)
            if has_all.any():
                mask &= has_all
        mask[int(np.argmax(relevance))] = True
        return mask

    def personalised(
        self,
        query: str,
        user_id: str,
        purchase_probability: ProbabilityFunction,
        k: int = 20,
        candidates: int = 100,
        floor: float = RELEVANCE_FLOOR,
    ) -> pd.DataFrame:
        """Relevant matches re-ranked by the shopper's purchase probability, then the rest.

        The relevant matches (:meth:`relevant`) among the top ``candidates`` come first, by
        purchase probability (relevance breaks ties); the other matches follow in relevance
        order. Returns the :meth:`search` columns plus ``purchase_probability``,
        ``lexical_rank`` (the plain order) and ``reranked`` (whether the row was re-ranked).
        """
        found = self.search(query, max(k, candidates))
        if found.empty:
            return found.assign(
                purchase_probability=pd.Series(dtype=float), lexical_rank=[], reranked=[]
            )
        mask = self.relevant(query, found, floor)
        probs = np.asarray(purchase_probability(user_id, found["item_id"].tolist()), dtype=float)
        found = found.assign(
            purchase_probability=probs, lexical_rank=found["rank"].to_numpy(), reranked=mask
        )
        head = found[mask].sort_values(
            ["purchase_probability", "relevance"], ascending=[False, False], kind="stable"
        )
        found = pd.concat([head, found[~mask]]).head(k)
        found["rank"] = np.arange(1, len(found) + 1)
        return found.reset_index(drop=True)


def _cosine(docs: sp.csr_matrix, query: sp.spmatrix) -> np.ndarray:
    """Cosine similarity of every (L2-normalised) document row with the query vector."""
    return np.asarray((docs @ query.T).toarray()).ravel()


def _row_cosine(index: QueryCosine, matrix: sp.csr_matrix, row: int) -> np.ndarray:
    """Cosine of document ``row`` (already unit length) with every document."""
    start, end = matrix.indptr[row], matrix.indptr[row + 1]
    return index.of_vector(matrix.indices[start:end], matrix.data[start:end])
