"""Purchase and order probabilities of the service: the calibrated chances behind every list.

:class:`ProbabilityAnswers` is a part of
:class:`~recsys_core.serving.service.RecommendationService` (its base class): the purchase
model's probability of a shopper buying an item (through the hot path's compiled trees), the
order model's chance that the shopper orders at all, their product, and the item's base rate
for a shopper the purchase model does not know.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recsys_core.errors import RecsysError, UnknownItemError, UnknownUserError
from recsys_core.models.registry import purchase_model
from recsys_core.security.denylist import refuse_forgotten
from recsys_core.serving.hot_path import PreparedRanker, PreparedRecommender
from recsys_core.serving.lab import TrainedLab

__all__ = ["ProbabilityAnswers", "json_number"]


class ProbabilityAnswers:
    """Probabilities and one-item answers of a service (a base class of the service)."""

    lab: TrainedLab
    catalog: pd.DataFrame
    _order: dict[str, float] | None

    if TYPE_CHECKING:

        @property
        def version(self) -> str:
            """The served model version."""
            ...

        def prepared(self, name: str) -> PreparedRecommender | PreparedRanker | None:
            """Model ``name`` prepared for one-shopper calls."""
            ...

        def title(self, item_id: str) -> str:
            """An item's title."""
            ...

    # ---- order model (issue 16, owned by h16-app): begin
    def order_probability(self, user_id: str) -> float:
        """Calibrated chance the shopper orders at all in the next period (NaN if unknown).

        The purchase probability is conditional on an order; the overall chance of buying
        an item is ``order_probability * purchase_probability``.
        """
        order_model = getattr(self.lab, "order_model", None)
        if order_model is None:
            return float("nan")
        if self._order is None:  # every known shopper's in one batch, then dict lookups
            known = getattr(order_model, "features_", None)
            ids = [str(u) for u in known.index] if known is not None else []
            self._order = dict(zip(ids, order_model.order_probability(ids).tolist(), strict=True))
        found = self._order.get(str(user_id))
        if found is None:  # not in the batch: the model's own answer (NaN when unknown)
            return float(order_model.order_probability([str(user_id)])[0])
        return float(found)

    def order_explanation(self, user_id: str, purchase_probability: float) -> dict[str, Any]:
        """``purchase_probability`` (conditional), ``order_probability``, their product
        ``overall_probability`` and the order model's SHAP explanation (``order_explanation``,
        ``None`` without an order model or for an unknown shopper)."""
        order = self.order_probability(user_id)
        detail = None
        order_model = getattr(self.lab, "order_model", None)
        if order_model is not None and np.isfinite(order):
            detail = order_model.explain(str(user_id))
        return {
            "purchase_probability": _num(purchase_probability),
            "order_probability": _num(order),
            "overall_probability": _num(order * float(purchase_probability)),
            "order_explanation": detail,
        }

    # ---- order model: end

    def purchase_probability(
        self, user_id: str, item_ids: Sequence[str] | np.ndarray
    ) -> np.ndarray:
        """Calibrated purchase probabilities; NaN where the ranker cannot score."""
        ranker = self.lab.ranker
        items = np.asarray([str(i) for i in item_ids], dtype=object)
        if ranker is None or not len(items):
            return np.full(len(items), np.nan)
        prepared = self.prepared(purchase_model())
        if isinstance(prepared, PreparedRanker):
            return prepared.probabilities(str(user_id), items)
        try:
            return np.asarray(ranker.purchase_probability(str(user_id), list(items)), dtype=float)
        except (UnknownUserError, UnknownItemError):
            out = np.full(len(items), np.nan)
            known = [i for i in items if i in self.catalog.index]
            if len(known) != len(items) and known:
                try:
                    probs = ranker.purchase_probability(str(user_id), known)
                except RecsysError:
                    return out
                lookup = dict(zip(known, probs, strict=True))
                out = np.array([lookup.get(i, np.nan) for i in items], dtype=float)
            return out

    # ------------------------------------------------------------------ one item

    def knows_item(self, item_id: str) -> bool:
        """Whether the catalog or any trained model knows the item."""
        item_id = str(item_id)
        if item_id in self.catalog.index:
            return True
        for name in self.lab.models:
            prepared = self.prepared(name)
            if isinstance(prepared, PreparedRecommender) and item_id in prepared.item_row:
                return True
            if isinstance(prepared, PreparedRanker) and item_id in prepared.snap_item_row:
                return True
        return False

    def base_rate(self, item_id: str) -> float:
        """The ranker's cold-start probability of an item: the share of the last period's
        buyers who bought it (0 when none did; NaN without a ranker)."""
        ranker = self.lab.ranker
        if ranker is None:
            return float("nan")
        prepared = self.prepared(purchase_model())
        if isinstance(prepared, PreparedRanker):
            lookup = prepared.cold_rate
        else:
            items = [str(i) for i in ranker.cold_start_items_]
            lookup = dict(zip(items, ranker.cold_start_rates_, strict=True))
        return float(lookup.get(str(item_id), 0.0))

    def purchase_probability_answer(self, user_id: str, item_id: str) -> dict[str, Any]:
        """The ``purchase-probability`` answer of one shopper and one item.

        A shopper the purchase model does not know gets the item's base rate (degraded).

        Raises
        ------
        UnknownItemError
            An item the lab does not know.
        """
        user_id, item_id = str(user_id), str(item_id)
        refuse_forgotten(user_id)
        if not self.knows_item(item_id):
            raise UnknownItemError(f"unknown item id {item_id!r}: not in version {self.version}")
        answer: dict[str, Any] = {
            "user_id": user_id,
            "item_id": item_id,
            "title": self.title(item_id),
            "model_version": self.version,
            "purchase_probability": None,
            "degraded": False,
            "reason": None,
        }
        if self.lab.ranker is None:
            answer["degraded"] = True
            answer["reason"] = f"the purchase model (ranker) is not trained in {self.version}"
            return answer
        probability = float(self.purchase_probability(user_id, [item_id])[0])
        if np.isnan(probability):
            probability = self.base_rate(item_id)
            answer["degraded"] = True
            answer["reason"] = (
                f"shopper {user_id!r} is unknown to the purchase model: showing the item's "
                "base rate (share of the last period's buyers who bought it)"
            )
        answer["purchase_probability"] = _num(probability)
        return answer


def json_number(value: Any) -> float | None:
    """A number for JSON: rounded to 6 decimals, ``None`` for NaN or infinity."""
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


_num = json_number
