"""Item answers of the service: similar items and product search.

:class:`ItemAnswers` is a part of :class:`~recsys_core.serving.service.RecommendationService`
(its base class): similar items with labelled scores and support, filled from the next model
when one has fewer than asked (:mod:`recsys_core.similar`), and lexical search re-ranked by
the shopper's purchase probabilities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.models.registry import ALS
from recsys_core.search import ProductSearch
from recsys_core.serving.explanations import ServiceExplanations
from recsys_core.serving.hot_path import PreparedRecommender, TopItems, check_k
from recsys_core.serving.probabilities import json_number
from recsys_core.similar import SCORE_LABELS, similar_items_filled, support_for

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
        how the list was filled is in ``frame.attrs["note"]``.

        Raises
        ------
        UnknownItemError
            The item is not known to the model.
        """
        frame, note = similar_items_filled(self.lab.models, str(item_id), check_k(k), model)
        frame.insert(1, "title", self.titles(frame["item_id"].tolist()))
        frame.attrs["note"] = note
        return frame

    def _similar(self, item_id: str, k: int, model: str) -> TopItems:
        engine = self.lab.model(model)
        prepared = self.prepared(model)
        if isinstance(prepared, PreparedRecommender):
            return prepared.similar(item_id, k)
        sim = engine.similar_items([item_id], k)
        ids = sim["similar_item_id"].astype(str).to_numpy(dtype=object)
        return TopItems(
            item_ids=ids,
            titles=np.asarray(self.titles(list(ids)), dtype=object),
            scores=sim[Columns.SCORE].to_numpy(dtype=float),
            cold_start=False,
        )

    def similar(self, item_id: str, k: int = 10, model: str = ALS) -> dict[str, Any]:
        """The ``similar`` JSON of DESIGN.md (plus ``score_label``, ``source``, ``support``
        and a ``note`` when the list was filled from another model)."""
        top = self._similar(str(item_id), check_k(k), model)
        note: str | None = None
        if len(top.item_ids) >= check_k(k):  # the fast path gave k: no fill needed
            rows = list(zip(top.item_ids, top.titles, top.scores, strict=True))
            sources = [model] * len(rows)
        else:
            frame = self.similar_frame(item_id, k, model)
            rows = list(zip(frame["item_id"], frame["title"], frame["score"], strict=True))
            sources = frame["source"].astype(str).tolist()
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
        self, query: str, user_id: str | None = None, k: int = 20
    ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Plain lexical results and, for a shopper, the same re-ranked by purchase probability."""
        if self._search is None:
            self._search = ProductSearch(self.lab.catalog)
        plain = self._search.search(query, k)
        if user_id is None or self.lab.ranker is None:
            return plain, None
        mine = self._search.personalised(query, str(user_id), self.purchase_probability, k=k)
        return plain, mine

    def search_answer(self, query: str, user_id: str | None = None, k: int = 20) -> dict[str, Any]:
        """The ``search`` answer: personalised hits for a known shopper, plain ones otherwise."""
        plain, mine = self.search(query, user_id, check_k(k))
        personalised = mine is not None and user_id is not None and self.knows_user(user_id)
        frame = mine if personalised and mine is not None else plain
        reason = None
        if user_id is not None and not personalised:
            reason = (
                f"shopper {user_id!r} is unknown: plain search order"
                if self.lab.ranker is not None
                else "no purchase model: plain search order"
            )
        if self._search is not None and self._search.problem:  # a damaged catalog: degraded
            reason = self._search.problem
        items = []
        for row in frame.to_dict("records"):
            item = {key: _json_value(value) for key, value in row.items()}
            item["item_id"], item["title"] = str(row["item_id"]), str(row["title"])
            items.append(item)
        return {
            "query": query,
            "user_id": user_id,
            "model_version": self.version,
            "personalised": personalised,
            "degraded": reason is not None,
            "reason": reason,
            "items": items,
        }
