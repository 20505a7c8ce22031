"""Product search over the catalog, with re-ranking for a chosen shopper.

Two methods (:data:`SEARCH_METHODS`): ``"tfidf"``, lexical only, and ``"hybrid"`` (the
default), the lexical scores blended with the cosine of catalog-learnt text embeddings
(:mod:`recsys_core.text_embeddings`), with the query read in the catalog's words: misspellings
and compounds by the catalog's own vocabulary ("neckless" -> necklaces), words no title uses
through a shipped WordNet noun thesaurus (:mod:`recsys_core.text_thesaurus`: "brolly" ->
umbrellas, "pillow" -> cushions), and, below the exact matches, read again with a word
swapped for a product type the thesaurus calls its kin ("mug" also finds cups, "cup" mugs).

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
#: Discount of a kin reading of the query ("mug" read as "cup"): an item's score is the
#: larger of its score for the query and this x its score for a kin reading; chosen on the
#: tuning sets (docs/search.md).
KIN_WEIGHT = 0.9
#: Most kin readings of one query (each costs about as much as the query itself).
MAX_KIN_READINGS = 5

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
    kin_weight:
        Hybrid with a thesaurus only: the discount of the query read with a word swapped for
        a catalog product type the thesaurus calls its kin ("mug" also finds cups, below the
        best mugs; :data:`KIN_WEIGHT`, :meth:`~recsys_core.text_thesaurus.Thesaurus.kin`);
        0 turns kin readings off.
    """

    def __init__(
        self,
        catalog: pd.DataFrame,
        method: SearchMethod = "hybrid",
        item_shoppers: sp.spmatrix | None = None,
        thesaurus: Thesaurus | bool = True,
        weights: tuple[float, float, float] = HYBRID_WEIGHTS,
        kin_weight: float = KIN_WEIGHT,
    ) -> None:
        if Columns.ITEM not in catalog.columns or Columns.TITLE not in catalog.columns:
            raise ConfigError("a search catalog needs the columns 'item_id' and 'title'")
        if method not in SEARCH_METHODS:
            raise ConfigError(
                f"unknown search method {method!r}: use one of {', '.join(SEARCH_METHODS)}"
            )
        self.method: SearchMethod = method
        self.weights = weights
        self.kin_weight = kin_weight
        self._kin: dict[str, list[str]] | None = None  # built on the first query that needs it
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
        :data:`EMBEDDING_THRESHOLD`; then the same for each kin reading of the query
        ("mug" -> "cup", :meth:`_kin_readings`), over the items holding its words, at
        ``kin_weight`` x that score and never above ``kin_weight`` x the query's best.

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
            scores, hit = self._blend(read, query)
            top = scores[hit].max(initial=0.0)
            for must, kin_read in self._kin_readings(read, query):  # "mug" also as "cup"
                kin_scores, kin_hit = self._blend(kin_read, " ".join(kin_read))
                for word in must:  # the kin word and the query's other own words
                    kin_hit &= self._word_query(word) > 0
                best = kin_scores[kin_hit].max(initial=0.0)
                # discounted, and never above kin_weight x the query's best match
                scale = self.kin_weight * min(1.0, top / best) if top > 0 and best > 0 else 0.0
                kin_scores = np.where(kin_hit, scale * kin_scores, 0.0)
                scores, hit = np.maximum(scores, kin_scores), hit | kin_hit
            hits = np.flatnonzero(hit)
        else:
            scores = self._word_query(query)
            hits = np.flatnonzero(scores > 0)
            if hits.size == 0:
                scores = self._char_query(query)
                hits = np.flatnonzero(scores >= CHAR_THRESHOLD)
        order = hits[np.lexsort((hits, -scores[hits]))][:k]
        return self._frame(order, scores[order])

    def _blend(self, read: Sequence[str], text: str) -> tuple[np.ndarray, np.ndarray]:
        """Hybrid scores of every item for query words ``read`` (``text`` for the character
        n-grams, and the words when none was read), and which items are hits."""
        assert self.embedding is not None
        words = self._word_query(" ".join(read) or text)
        chars = self._char_query(text)
        meaning = np.clip(self.embedding.scores_of_words(read), 0.0, 1.0)
        w_words, w_chars, w_meaning = self.weights
        scores = w_words * words + w_chars * chars + w_meaning * meaning
        hit = (words > 0) | (chars >= CHAR_THRESHOLD) | (meaning >= EMBEDDING_THRESHOLD)
        return scores, hit

    def _kin_readings(self, read: Sequence[str], query: str) -> list[tuple[list[str], list[str]]]:
        """The query read again with one of its own words swapped for a kin ("mug" -> "cup").

        Each reading comes with the words its matches must hold: the kin and the query's
        other own words ("red mug" -> "red cup": items holding "red" and "cup"). Only words
        the query itself holds are swapped (not the words a misspelling or an unfamiliar
        word was read as: kin of a guess compound its errors). Kin
        (:meth:`~recsys_core.text_thesaurus.Thesaurus.kin`) are looked for among the
        catalog's category words (its common words when it has no categories); a kin the
        query already holds is skipped; at most :data:`MAX_KIN_READINGS`, the query's first
        words and their strongest kin first. ``[]`` when ``kin_weight`` is 0 or there is no
        thesaurus.
        """
        if self.embedding is None or self.kin_weight <= 0 or not read:
            return []
        if self._kin is None:
            thesaurus = self.embedding.loaded_thesaurus()
            if Columns.CATEGORY in self.catalog.columns:
                types = {w for c in set(self._categories) for w in _stem_tokens(c)}
            else:
                types = set(self.embedding.common_words_)
            known = self._words.vocabulary_
            self._kin = {} if thesaurus is None else thesaurus.kin(types & known.keys())
        tokens = set(_stem_tokens(query))
        own = [w for w in read if w in tokens]
        readings = [
            ([kin, *(w for w in own if w != word)], [kin if w == word else w for w in read])
            for word in own
            for kin in self._kin.get(word, [])
            if kin not in read
        ]
        return readings[:MAX_KIN_READINGS]

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
