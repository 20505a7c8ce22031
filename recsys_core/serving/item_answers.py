"""Item answers of the service: similar items and product search.

:class:`ItemAnswers` is a part of :class:`~recsys_core.serving.service.RecommendationService`
(its base class): similar items with labelled scores and support, filled from the next model
when one has fewer than asked (:mod:`recsys_core.similar`), by title text for an item in the
catalog that no model knows (no purchases yet; source ``title-text``), and product search
(hybrid or TF-IDF) re-ranked by the shopper's purchase probabilities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.errors import UnknownItemError
from recsys_core.models.registry import ALS
from recsys_core.serving.explanations import ServiceExplanations
from recsys_core.serving.hot_path import PreparedRecommender, TopItems, check_k
from recsys_core.serving.probabilities import json_number
from recsys_core.similar import (
    SCORE_LABELS,
    TEXT_NOTE,
    similar_items_by_text,
    similar_items_filled,
    support_for,
)

if TYPE_CHECKING:  # search imports scikit-learn: when a search is first built
    from recsys_core.search import ProductSearch, SearchMethod

__all__ = ["ItemAnswers"]

_num = json_number


def _json_value(value: Any) -> Any:
    """NumPy scalars as Python numbers, NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class ItemAnswers(ServiceExplanations):
    """Similar items and search of a service (a base class of the service)."""

    _search: Any

    def product_search(self, method: SearchMethod = "hybrid") -> ProductSearch:
        """The service's search over its catalog (built once per method).

        The hybrid method's embeddings learn co-purchases from the training matrix of the
        first model that has one.
        """
        from recsys_core.search import ProductSearch
        from recsys_core.text_embeddings import item_shoppers

        if not isinstance(self._search, dict):
            self._search = {}
        if method not in self._search:
            bought = None
            if method == "hybrid":
                for engine in self.lab.models.values():
                    matrix = getattr(engine, "user_items_", None)
                    items = getattr(engine, "items_", None)
                    if matrix is not None and items is not None:
                        ids = self.lab.catalog[Columns.ITEM].tolist()  # canonical (load_lab)
                        bought = item_shoppers(ids, items.external_ids, matrix)
                        break
            self._search[method] = ProductSearch(
                self.lab.catalog, method=method, item_shoppers=bought
            )
        return self._search[method]

    def _by_text(self, item_id: str, k: int) -> pd.DataFrame:
        """Similar items of a cold item by title text (raises when not in the catalog)."""
        frame = similar_items_by_text(self.product_search(), item_id, k)
        frame.insert(1, "title", self.titles(frame["item_id"].tolist()))
        frame.attrs["note"] = TEXT_NOTE
        return frame

    if TYPE_CHECKING:

        def titles(self, item_ids: Any) -> list[str]:
            """Titles of several items."""
            ...

        def knows_user(self, user_id: str) -> bool:
            """Whether any trained model has seen this shopper."""
            ...

    def similar_frame(self, item_id: str, k: int = 10, model: str = ALS) -> pd.DataFrame:
        """Up to ``k`` items similar to ``item_id``, filled from the next model when ``model``
        has fewer (:func:`recsys_core.similar.similar_items_filled`), with titles.

        Columns ``item_id, title, score, score_label, source, support, rank``; the note on
        how the list was filled is in ``frame.attrs["note"]``. An item in the catalog that
        the model does not know (no purchases yet) gets similar items by title text (source
        ``title-text``).

        Raises
        ------
        UnknownItemError
            The item is neither known to the model nor in the catalog.
        """
        try:
            frame, note = similar_items_filled(self.lab.models, str(item_id), check_k(k), model)
        except UnknownItemError:
            return self._by_text(str(item_id), check_k(k))
        frame.insert(1, "title", self.titles(frame["item_id"].tolist()))
        frame.attrs["note"] = note
        return frame

    def _similar(self, item_id: str, k: int, model: str) -> TopItems:
        engine = self.lab.model(model)
        prepared = self.prepared(model)
        if isinstance(prepared, PreparedRecommender):
            return prepared.similar(item_id, k)
        sim = engine.similar_items([item_id], k)
        ids = sim["similar_item_id"].to_numpy(dtype=object)  # the model's canonical ids
        return TopItems(
            item_ids=ids,
            titles=np.asarray(self.titles(list(ids)), dtype=object),
            scores=sim[Columns.SCORE].to_numpy(dtype=float),
            cold_start=False,
        )

    def similar(self, item_id: str, k: int = 10, model: str = ALS) -> dict[str, Any]:
        """The ``similar`` JSON of DESIGN.md (plus ``score_label``, ``source``, ``support``
        and a ``note`` when the list was filled from another model or, for an item no model
        knows but the catalog holds, found by title text)."""
        note: str | None = None
        try:
            top = self._similar(str(item_id), check_k(k), model)
        except UnknownItemError:
            top = None
        if top is None:
            frame = self._by_text(str(item_id), check_k(k))
            rows = list(zip(frame["item_id"], frame["title"], frame["score"], strict=True))
            sources = frame["source"].tolist()
            note = frame.attrs.get("note")
        elif len(top.item_ids) >= check_k(k):  # the fast path gave k: no fill needed
            rows = list(zip(top.item_ids, top.titles, top.scores, strict=True))
            sources = [model] * len(rows)
        else:
            frame = self.similar_frame(item_id, k, model)
            rows = list(zip(frame["item_id"], frame["title"], frame["score"], strict=True))
            sources = frame["source"].tolist()
            note = frame.attrs.get("note")
        ids = [str(r[0]) for r in rows]
        support = support_for(self.lab.models, model, str(item_id), ids)
        items: list[dict[str, Any]] = [
            {
                "item_id": str(i),
                "title": str(t),
                "score": _num(score),
                "score_label": SCORE_LABELS.get(source, f"{source} score"),
                "source": source,
                "support": int(count),
                "rank": rank,
            }
            for rank, ((i, t, score), source, count) in enumerate(
                zip(rows, sources, support, strict=True), start=1
            )
        ]
        return {
            "item_id": str(item_id),
            "title": self.title(item_id),
            "model_version": self.version,
            "model": model,
            "note": note,
            "items": items,
        }

    # ------------------------------------------------------------------ search

    def search(
        self,
        query: str,
        user_id: str | None = None,
        k: int = 20,
        method: SearchMethod = "hybrid",
    ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Plain results (by relevance) and, for a shopper, the same re-ranked by purchase
        probability; ``method`` is ``"hybrid"`` or ``"tfidf"``."""
        search = self.product_search(method)
        plain = search.search(query, k)
        if user_id is None or self.lab.ranker is None:
            return plain, None
        mine = search.personalised(query, str(user_id), self.purchase_probability, k=k)
        return plain, mine

    def search_answer(
        self,
        query: str,
        user_id: str | None = None,
        k: int = 20,
        method: SearchMethod = "hybrid",
    ) -> dict[str, Any]:
        """The ``search`` answer: personalised hits for a known shopper, plain ones otherwise."""
        plain, mine = self.search(query, user_id, check_k(k), method)
        personalised = mine is not None and user_id is not None and self.knows_user(user_id)
        frame = mine if personalised and mine is not None else plain
        reason = None
        if user_id is not None and not personalised:
            reason = (
                f"shopper {user_id!r} is unknown: plain search order"
                if self.lab.ranker is not None
                else "no purchase model: plain search order"
            )
        problem = self.product_search(method).problem
        if problem:  # a damaged catalog: degraded
            reason = problem
        items = []
        for row in frame.to_dict("records"):
            item = {key: _json_value(value) for key, value in row.items()}
            item["item_id"], item["title"] = str(row["item_id"]), str(row["title"])
            items.append(item)
        return {
            "query": query,
            "method": method,
            "user_id": user_id,
            "model_version": self.version,
            "personalised": personalised,
            "degraded": reason is not None,
            "reason": reason,
            "items": items,
        }
