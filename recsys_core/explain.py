"""Why the lab thinks a shopper will buy an item.

Two kinds of explanation:

* :class:`PurchaseExplainer` — SHAP (``shap.TreeExplainer``) on the purchase classifier of a
  :class:`~recsys_core.ranking.ranker.TwoStageRanker` (the mean of its fold models' SHAP
  values, as the served margin is the mean of their margins). A local explanation splits the
  classifier's raw margin (log-odds, before calibration) into one contribution per feature:
  ``base_value + sum(contributions) == raw_score``. ``probability`` is the calibrated
  purchase probability of that margin. Each contribution carries the feature in the shop's
  words, built from its name and value ("bought this item 3 times", "viewed it 2 days ago",
  "ALS score 0.42 (rank 3)").
* :func:`because_you_bought` — the shopper's past items that contribute most to an item's
  score in the model that served the list: an ALS list by that ALS's factors (implicit's
  ``explain()``), an item-kNN list by its neighbours, a ranker list by SHAP of its trees plus
  its own stage-one ALS. Each reason says what was counted (``"bought"`` / ``"viewed"``).

:meth:`Explanation.to_dict` gives the ``explain`` JSON of DESIGN.md::

    {"user_id", "item_id", "probability", "raw_score", "base_value",
     "contributions": [{"feature", "value", "contribution", "name"}],
     "because_you_bought": [{"item_id", "title", "contribution"}]}

where ``feature`` is the shop-words label, ``value`` the raw feature value (``null`` when
missing) and ``name`` the technical feature name (an extra key).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_ids
from recsys_core.errors import ModelNotTrainedError, UnknownItemError, UnknownUserError
from recsys_core.ranking.features import FEATURE_NAMES, describe_feature, feature_description

if TYPE_CHECKING:  # the ranker's modules import LightGBM, scikit-learn and numba
    from recsys_core.ranking.ranker import TwoStageRanker

__all__ = [
    "Contribution",
    "Explanation",
    "HistoryExplainer",
    "PurchaseExplainer",
    "because_you_bought",
    "reasons_label",
]


@dataclass(frozen=True)
class Contribution:
    """One feature's share of the classifier's margin.

    Attributes
    ----------
    name:
        Technical feature name (e.g. ``ui_purchases``).
    feature:
        The feature and its value in the shop's words (e.g. ``"bought this item 3 times"``).
    value:
        The raw feature value (NaN when missing).
    contribution:
        SHAP value in log-odds: positive makes a purchase more likely.
    """

    name: str
    feature: str
    value: float
    contribution: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"feature", "value", "contribution", "name"}`` (NaN -> ``None``)."""
        return {
            "feature": self.feature,
            "value": None if math.isnan(self.value) else float(self.value),
            "contribution": float(self.contribution),
            "name": self.name,
        }


@dataclass(frozen=True)
class Explanation:
    """Why the purchase model gives ``probability`` to (``user_id``, ``item_id``).

    ``base_value + sum(c.contribution for c in contributions) == raw_score``.
    """

    user_id: str
    item_id: str
    probability: float
    raw_score: float
    base_value: float
    contributions: list[Contribution]
    because_you_bought: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``explain`` JSON of DESIGN.md."""
        return {
            "user_id": self.user_id,
            "item_id": self.item_id,
            "probability": float(self.probability),
            "raw_score": float(self.raw_score),
            "base_value": float(self.base_value),
            "contributions": [c.to_dict() for c in self.contributions],
            "because_you_bought": list(self.because_you_bought),
        }


def _titles(catalog: pd.DataFrame | None, item_ids: Sequence[str]) -> list[str]:
    """Catalog titles of ``item_ids`` (the id itself where there is no title)."""
    if catalog is None or Columns.TITLE not in catalog.columns or not len(item_ids):
        return [str(i) for i in item_ids]
    titles = (
        catalog.assign(**{Columns.ITEM: canonical_ids(catalog[Columns.ITEM])})
        .drop_duplicates(Columns.ITEM)
        .set_index(Columns.ITEM)[Columns.TITLE]
        .reindex(pd.Index([str(i) for i in item_ids]))
    )
    return [
        str(title) if isinstance(title, str) and title else str(item)
        for item, title in zip(item_ids, titles.to_numpy(), strict=True)
    ]


class HistoryExplainer(Protocol):
    """A model that splits its score of an item over the user's past items (ALS: its
    factors, implicit's ``explain``; item-kNN: its neighbours)."""

    def explain(self, user_id: str, item_id: str, k: int = 5) -> list[tuple[str, float]]:
        """``(past item id, contribution)``, largest first."""
        ...


def because_you_bought(
    als_model: HistoryExplainer,
    user_id: str,
    item_id: str,
    catalog: pd.DataFrame | None = None,
    k: int = 3,
    *,
    include_item: bool = False,
    bought: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """The shopper's past items that contribute most to ``item_id``'s score in the model
    that explains (the served ALS's factors, item-kNN's neighbours, the ranker's stage-one
    ALS).

    Parameters
    ----------
    als_model:
        A fitted model with ``explain(user_id, item_id, k)`` (:class:`HistoryExplainer`).
    user_id, item_id:
        A shopper and an item the model knows.
    catalog:
        Optional catalog for titles.
    k:
        Number of past items.
    include_item:
        Also list ``item_id`` itself when the shopper interacted with it before (off by
        default: "because you bought X" should name *other* items; a reorder is explained
        by the SHAP features "bought this item ...").

    bought:
        The items the shopper bought (``None``: every item the model counted was bought, a
        purchase-only log); each reason says what was counted.

    Returns
    -------
    list of dict
        ``{"item_id", "title", "contribution", "counted"}``, largest contribution first;
        ``counted`` is ``"bought"`` or ``"viewed"`` (viewed, carted or favourited, not
        bought): the model counts every interaction, and the label says which it was.

    Raises
    ------
    UnknownUserError, UnknownItemError
        The shopper or item is not in the model's training data.
    """
    pairs = als_model.explain(str(user_id), str(item_id), k=k + (0 if include_item else 1))
    if not include_item:
        pairs = [(item, score) for item, score in pairs if item != str(item_id)][:k]
    items = [item for item, _ in pairs]
    owned = None if bought is None else {str(i) for i in bought}
    return [
        {
            "item_id": item,
            "title": title,
            "contribution": float(score),
            "counted": "bought" if owned is None or item in owned else "viewed",
        }
        for (item, score), title in zip(pairs, _titles(catalog, items), strict=True)
    ]


def reasons_label(reasons: Sequence[Mapping[str, Any]]) -> str:
    """The heading of a list of reasons, saying what was counted ("Because you bought",
    "Because you viewed", "Because you bought / viewed")."""
    counted = {str(r.get("counted", "bought")) for r in reasons}
    if counted == {"viewed"}:
        return "Because you viewed"
    if counted == {"bought", "viewed"}:
        return "Because you bought / viewed"
    return "Because you bought"


class PurchaseExplainer:
    """SHAP explanations of a fitted :class:`TwoStageRanker`'s purchase classifier.

    Parameters
    ----------
    ranker:
        A fitted (or loaded) ranker; its LightGBM fold models are explained with
        ``shap.TreeExplainer`` (exact, path-dependent tree SHAP on the raw margin) and
        averaged, like their margins.
    """

    def __init__(self, ranker: TwoStageRanker) -> None:
        if not ranker.is_fitted:
            raise ModelNotTrainedError(
                "the ranker is not trained yet: fit or load it before explaining it"
            )
        self.ranker = ranker
        self._model = ranker.purchase_model_
        #: The classifier's columns (FEATURE_NAMES, + the optional sequence group when on).
        self._names: list[str] = list(getattr(ranker, "feature_names", FEATURE_NAMES))

    @property
    def base_value(self) -> float:
        """Expected served margin of the classifier (SHAP's base value, log-odds)."""
        return self._model.expected_value

    def shap_values(self, features: pd.DataFrame | np.ndarray) -> np.ndarray:
        """SHAP values (log-odds) of feature rows, ``(n_rows, n_features)``.

        The served margin is the mean of the classifier's fold models, so these are the
        mean of their SHAP values (:meth:`PurchaseModel.shap_values`).
        """
        matrix = (
            features[self._names].to_numpy(dtype=np.float64)
            if isinstance(features, pd.DataFrame)
            else np.asarray(features, dtype=np.float64)
        )
        return self._model.shap_values(matrix)

    def explain(
        self,
        user_id: str,
        item_id: str,
        *,
        catalog: pd.DataFrame | None = None,
        because_k: int = 0,
        bought: np.ndarray | None = None,
    ) -> Explanation:
        """Why the shopper would (not) buy the item.

        Parameters
        ----------
        user_id, item_id:
            A shopper with history and any item of the log or catalog.
        catalog:
            Titles for ``because_you_bought``.
        because_k:
            Number of "because you bought" items from ALS (0: none).

        Returns
        -------
        Explanation
            Contributions of every feature, largest absolute contribution first.

        Raises
        ------
        UnknownUserError, UnknownItemError
            The shopper has no history before the ranker's cutoff, or the item is unknown.
        """
        features = self.ranker.features([str(user_id)], [str(item_id)])
        matrix = features[self._names].to_numpy(dtype=np.float64)
        raw = float(self._model.decision_function(matrix)[0])
        probability = float(self._model.calibrator_.predict(np.array([raw]))[0])
        values = self.shap_values(matrix)[0]
        row = dict(zip(self._names, matrix[0].tolist(), strict=True))
        order = np.argsort(-np.abs(values), kind="stable")
        contributions = [
            Contribution(
                name=self._names[j],
                feature=describe_feature(self._names[j], row),
                value=float(matrix[0, j]),
                contribution=float(values[j]),
            )
            for j in order
        ]
        because: list[dict[str, Any]] = []
        if because_k > 0:
            try:
                because = because_you_bought(
                    self.ranker.generator_.als_,
                    str(user_id),
                    str(item_id),
                    catalog,
                    because_k,
                    bought=bought,
                )
            except (UnknownUserError, UnknownItemError):
                because = []  # e.g. a catalog item nobody has interacted with yet
        return Explanation(
            user_id=str(user_id),
            item_id=str(item_id),
            probability=probability,
            raw_score=raw,
            base_value=self.base_value,
            contributions=contributions,
            because_you_bought=because,
        )

    def explain_dict(
        self,
        user_id: str,
        item_id: str,
        catalog: pd.DataFrame | None = None,
        k: int = 3,
        bought: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """The DESIGN.md ``explain`` JSON, with ``k`` "because you bought" items (the
        ranker's own stage-one ALS; ``bought`` labels what was counted)."""
        return self.explain(user_id, item_id, catalog=catalog, because_k=k, bought=bought).to_dict()

    def global_importance(
        self, sample: pd.DataFrame | Sequence[str], *, shap_values: np.ndarray | None = None
    ) -> pd.DataFrame:
        """Mean absolute SHAP value of each feature over a sample of candidates.

        Parameters
        ----------
        sample:
            A frame with the :data:`FEATURE_NAMES` columns (e.g. rows of
            :meth:`TwoStageRanker.candidate_frame`) or shopper ids whose candidates are
            used.

        shap_values:
            SHAP values of ``sample`` already computed with :meth:`shap_values` (skips a
            second SHAP pass over the same rows).

        Returns
        -------
        pandas.DataFrame
            ``feature`` (name), ``label`` (what it measures, in the shop's words) and
            ``mean_abs_shap`` (log-odds), most important first.
        """
        if shap_values is not None:
            values = np.asarray(shap_values, dtype=np.float64)
        else:
            frame = (
                sample if isinstance(sample, pd.DataFrame) else self.ranker.candidate_frame(sample)
            )
            if frame.empty:
                raise ValueError("global_importance needs at least one candidate row")
            values = self.shap_values(frame)
        importance = pd.DataFrame(
            {
                "feature": self._names,
                "label": [feature_description(name) for name in self._names],
                "mean_abs_shap": np.abs(values).mean(axis=0),
            }
        )
        return importance.sort_values(
            ["mean_abs_shap", "feature"], ascending=[False, True], ignore_index=True
        )
