"""Explanations of the service: each list explained by the model that served it.

:class:`ServiceExplanations` is a part of
:class:`~recsys_core.serving.service.RecommendationService` (its base class):

* a list served by the purchase model (the ranker): SHAP of its served trees plus "because
  you ..." from its own stage-one ALS (:class:`~recsys_core.explain.PurchaseExplainer`);
* a list served by ALS: that ALS's factors; by item-kNN: its neighbours
  (:func:`~recsys_core.explain.because_you_bought` on the served model);
* each reason says what was counted (``"bought"`` / ``"viewed"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from recsys_core.errors import (
    ArtifactError,
    ModelNotTrainedError,
    UnknownItemError,
    UnknownUserError,
)
from recsys_core.explain import PurchaseExplainer, because_you_bought, reasons_label
from recsys_core.models.registry import ALS, purchase_model
from recsys_core.security.denylist import refuse_forgotten
from recsys_core.serving.probabilities import ProbabilityAnswers, json_number

__all__ = ["ServiceExplanations"]

_num = json_number


class ServiceExplanations(ProbabilityAnswers):
    """Explanations of a service's lists (a base class of the service)."""

    _explainer: Any

    if TYPE_CHECKING:

        def bought_items(self, user_id: str) -> np.ndarray | None:
            """Items the shopper bought (``None``: bought equals seen)."""
            ...

    def explainer(self) -> Any:
        """The SHAP explainer of the purchase model (built once)."""
        ranker = self.lab.ranker
        broken = (getattr(self.lab, "broken", None) or {}).get(purchase_model())
        if ranker is None and broken:  # a damaged purchase model is broken, not "not trained"
            raise ArtifactError(
                f"the purchase model of version {self.version} is broken ({broken}): restore "
                "it (`registry restore ARCHIVE`) or roll back (`registry rollback`)"
            )
        if ranker is None:
            raise ModelNotTrainedError(
                "explanations need the purchase model: train with the 'ranker' model"
            )
        if self._explainer is None:
            self._explainer = PurchaseExplainer(ranker)
        return self._explainer

    def explaining_model(self, model: str) -> Any | None:
        """The model whose factors or neighbours explain a list served by ``model``: that
        model itself (ALS: the served factors; item-kNN: its neighbours), or for a model
        built on stage-one models (the ranker) its own stage-one ALS. ``None`` when the
        model cannot split a score over the shopper's history (popularity, BPR)."""
        engine = self.lab.model(model)
        if engine.stage_one_models and ALS in engine.stage_one_models:
            return engine.stage_one_model(ALS)
        return engine if callable(getattr(engine, "explain", None)) else None

    def because(self, user_id: str, item_id: str, model: str, k: int = 3) -> list[dict[str, Any]]:
        """The shopper's past items behind ``item_id`` in the list ``model`` served
        (:meth:`explaining_model`), each saying what was counted (``"bought"`` /
        ``"viewed"``). Empty when the model cannot explain, or does not know the shopper
        or the item.
        """
        explainer = self.explaining_model(model)
        if explainer is None:
            return []
        bought = self.bought_items(str(user_id))
        try:
            return because_you_bought(
                explainer, str(user_id), str(item_id), self.lab.catalog, k=k, bought=bought
            )
        except (UnknownUserError, UnknownItemError):
            return []

    def because_you_bought(self, user_id: str, item_id: str, k: int = 3) -> list[dict[str, Any]]:
        """:meth:`because` of the ranker's list when one is trained, else of ALS's."""
        model = purchase_model() if self.lab.ranker is not None else ALS
        if model not in self.lab.models:
            return []
        return self.because(user_id, item_id, model, k)

    def explain_served(
        self, user_id: str, item_id: str, model: str, k_reasons: int = 3
    ) -> dict[str, Any]:
        """Why ``model`` put ``item_id`` in the shopper's list, by the model that served it.

        A probability model (the ranker): :meth:`explain_answer` (SHAP of its served trees
        plus its own stage-one reasons). Any other model: its own reasons
        (:meth:`because`: ALS's factors, item-kNN's neighbours) and no SHAP contributions.
        Keys: ``user_id, item_id, model, model_version, shap`` (whether ``contributions``
        are SHAP values), ``contributions``, ``because_you_bought`` (the reasons; each with
        ``counted``), ``reasons_label`` ("Because you bought / viewed"), ``reasons_from``.
        """
        user_id, item_id = str(user_id), str(item_id)
        refuse_forgotten(user_id)
        engine = self.lab.model(model)
        if not self.knows_item(item_id):
            raise UnknownItemError(f"unknown item id {item_id!r}: not in version {self.version}")
        if engine.scores_are_probabilities:
            payload = self.explain_answer(user_id, item_id, k_reasons)
            payload["shap"] = True
        else:
            payload = {
                "user_id": str(user_id),
                "item_id": str(item_id),
                # the purchase model's chance, where one is trained (not a reason: no SHAP)
                "probability": _num(self.purchase_probability(str(user_id), [str(item_id)])[0]),
                "model_version": self.version,
                "contributions": [],
                "because_you_bought": self.because(user_id, item_id, model, k_reasons),
                "shap": False,
                "degraded": False,
                "reason": None,
            }
        explainer = self.explaining_model(model)
        payload["model"] = model
        payload["reasons_from"] = (
            None
            if explainer is None
            else (model if explainer is engine else f"{model}'s own stage-one {explainer.name}")
        )
        payload["reasons_label"] = reasons_label(payload["because_you_bought"])
        return payload

    def explain(self, user_id: str, item_id: str, k_reasons: int = 3) -> dict[str, Any]:
        """The ``explain`` JSON of DESIGN.md: SHAP contributions and "because you bought".

        One path: :meth:`recsys_core.explain.PurchaseExplainer.explain_dict` on the served
        ranker (SHAP of its classifier, "because you bought" from its stage-one ALS).
        """
        refuse_forgotten(user_id)
        payload = self.explainer().explain_dict(
            str(user_id), str(item_id), self.lab.catalog, k_reasons, self.bought_items(user_id)
        )
        payload["model_version"] = self.version
        payload.update(self.order_explanation(user_id, payload["probability"]))
        return payload

    def explain_answer(self, user_id: str, item_id: str, k_reasons: int = 3) -> dict[str, Any]:
        """:meth:`explain`, or for a shopper the purchase model does not know the documented
        cold-start answer: ``degraded``, the item's base rate as ``probability``, no reasons.

        Raises
        ------
        UnknownItemError
            An item the lab does not know.
        ModelNotTrainedError
            No purchase model in this version.
        """
        user_id, item_id = str(user_id), str(item_id)
        refuse_forgotten(user_id)
        self.explainer()  # ModelNotTrainedError without a ranker
        if not self.knows_item(item_id):
            raise UnknownItemError(f"unknown item id {item_id!r}: not in version {self.version}")
        try:
            payload = self.explain(user_id, item_id, k_reasons)
        except UnknownUserError:
            return {
                "user_id": user_id,
                "item_id": item_id,
                "probability": _num(self.base_rate(item_id)),
                "raw_score": None,
                "base_value": None,
                "contributions": [],
                "because_you_bought": [],
                "model_version": self.version,
                "degraded": True,
                "reason": f"shopper {user_id!r} is unknown: the probability is the item's "
                "base rate and there is no personal explanation",
            }
        payload.setdefault("degraded", False)
        payload.setdefault("reason", None)
        return payload
