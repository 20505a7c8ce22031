"""The recommendation service as it was before the hot path (commit 4705ed1), kept unchanged
as the oracle of ``test_service_golden.py``: the hot path must answer exactly as this does.

Only this docstring replaces the original one; the code below is the original
``recsys_core/serving/service.py`` (fallback chain ranker -> ALS -> popularity).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.errors import RecsysError, UnknownItemError, UnknownUserError
from recsys_core.serving.lab import TrainedLab

FALLBACK_CHAIN: tuple[str, ...] = ("ranker", "als", "popularity")

#: Answers kept per service (model, shopper, k, filter): a lab version never changes once
#: trained, so a repeated question (the app redrawing a page) is answered from memory.
RECOMMENDATION_CACHE_SIZE = 1024


class RecommendationService:
    """Recommendations, similar items, explanations and search over one :class:`TrainedLab`."""

    def __init__(self, lab: TrainedLab) -> None:
        self.lab = lab
        catalog = lab.catalog.copy()
        catalog[Columns.ITEM] = catalog[Columns.ITEM].astype(str)
        self.catalog = catalog.set_index(Columns.ITEM, drop=False)
        self._titles = self.catalog[Columns.TITLE].astype(str)
        self._search: Any = None
        self._explainer: Any = None
        self._recommend_one = lru_cache(maxsize=RECOMMENDATION_CACHE_SIZE)(self._recommend_uncached)

    # ------------------------------------------------------------------ helpers

    @property
    def version(self) -> str:
        """The served model version."""
        return self.lab.version

    def title(self, item_id: str) -> str:
        """An item's title (its id when the catalog has none)."""
        return str(self._titles.get(str(item_id), str(item_id)))

    def titles(self, item_ids: Sequence[str]) -> list[str]:
        """Titles of several items."""
        ids = pd.Index([str(i) for i in item_ids])
        return self._titles.reindex(ids).fillna(pd.Series(ids, index=ids)).astype(str).tolist()

    def _recommend_uncached(
        self, name: str, user_id: str, k: int, filter_seen: bool
    ) -> pd.DataFrame:
        """One model's top-``k`` for one shopper (cached by :attr:`_recommend_one`).

        The frame is shared between callers: read it, never modify it.
        """
        return self.lab.models[name].recommend([user_id], k, filter_seen=filter_seen)

    def knows_user(self, user_id: str) -> bool:
        """Whether any trained model has seen this shopper."""
        return any(
            str(user_id) in getattr(m, "users_", ()) for m in self.lab.models.values()
        ) or self._ranker_knows(str(user_id))

    def _ranker_knows(self, user_id: str) -> bool:
        ranker = self.lab.ranker
        if ranker is None:
            return False
        return bool(ranker.generator_.users_.to_internal([user_id])[0] >= 0)

    def _chain(self, model: str) -> list[str]:
        if model in FALLBACK_CHAIN:
            chain = list(FALLBACK_CHAIN[FALLBACK_CHAIN.index(model) :])
        else:
            chain = [model]
        if "popularity" not in chain:
            chain.append("popularity")
        return [m for m in chain if m in self.lab.models]

    # ------------------------------------------------------------------ recommendations

    def recommend_frame(
        self, user_id: str, k: int = 10, model: str = "ranker", *, filter_seen: bool = False
    ) -> tuple[pd.DataFrame, str, str | None]:
        """Top-``k`` items for one shopper with titles and purchase probabilities.

        Returns
        -------
        (frame, served_by, reason)
            ``frame`` has ``item_id, title, score, purchase_probability, rank``;
            ``served_by`` is the model that answered; ``reason`` says why it is not the one
            asked for (``None`` when it is).
        """
        user_id = str(user_id)
        reason: str | None = None
        if model not in FALLBACK_CHAIN:
            self.lab.model(model)  # unknown model names are a clear error, not a fallback
        elif model not in self.lab.models:
            reason = f"{model} is not trained in version {self.version}: showing the fallback"
        for name in self._chain(model):
            try:
                reco = self._recommend_one(name, user_id, k, filter_seen)
            except RecsysError as exc:
                reason = f"{name} could not answer: {exc}"
                continue
            cold = bool(reco["cold_start"].any()) if "cold_start" in reco.columns else False
            if cold and name != "popularity":
                reason = f"shopper {user_id!r} is unknown to {name}: showing the fallback"
                continue
            if name != model and reason is None:
                reason = f"{model} is unavailable: served by {name}"
            if cold:
                reason = f"shopper {user_id!r} is unknown: showing the most popular items"
            frame = self._with_probabilities(user_id, reco)
            return frame, name, reason
        raise UnknownUserError(f"no model could recommend for shopper {user_id!r}")

    def _with_probabilities(self, user_id: str, reco: pd.DataFrame) -> pd.DataFrame:
        items = reco[Columns.ITEM].astype(str).tolist()
        if "purchase_probability" in reco.columns:
            probs = reco["purchase_probability"].to_numpy(dtype=float)
        else:
            probs = self.purchase_probability(user_id, items)
        return pd.DataFrame(
            {
                "item_id": items,
                "title": self.titles(items),
                "score": reco[Columns.SCORE].to_numpy(dtype=float),
                "purchase_probability": probs,
                "rank": reco[Columns.RANK].to_numpy(dtype=int),
            }
        )

    def purchase_probability(self, user_id: str, item_ids: Sequence[str]) -> np.ndarray:
        """Calibrated purchase probabilities; NaN where the ranker cannot score."""
        ranker = self.lab.ranker
        items = [str(i) for i in item_ids]
        if ranker is None or not items:
            return np.full(len(items), np.nan)
        try:
            return np.asarray(ranker.purchase_probability(str(user_id), items), dtype=float)
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

    def recommend(
        self, user_id: str, k: int = 10, model: str = "ranker", *, filter_seen: bool = False
    ) -> dict[str, Any]:
        """The ``recommend`` JSON of DESIGN.md."""
        frame, served_by, reason = self.recommend_frame(user_id, k, model, filter_seen=filter_seen)
        items = [
            {
                "item_id": r.item_id,
                "title": r.title,
                "score": _num(r.score),
                "purchase_probability": _num(r.purchase_probability),
                "rank": int(r.rank),
            }
            for r in frame.itertuples(index=False)
        ]
        return {
            "user_id": str(user_id),
            "model_version": self.version,
            "model": served_by,
            "degraded": reason is not None,
            "reason": reason,
            "items": items,
        }

    def compare_models(self, user_id: str, k: int = 10) -> pd.DataFrame:
        """Each trained model's top-``k`` for one shopper, side by side.

        Returns one row per recommended item with the rank each model gives it (NaN when
        it is not in that model's top ``k``), its title and purchase probability.
        """
        user_id = str(user_id)
        ranks: dict[str, pd.Series] = {}
        known: pd.Series | None = None  # the ranker's own probabilities of its top k
        for name in self.lab.models:
            try:
                reco = self._recommend_one(name, user_id, k, False)
            except RecsysError:
                continue
            items = reco[Columns.ITEM].astype(str).to_numpy()
            ranks[name] = pd.Series(reco[Columns.RANK].to_numpy(), index=items)
            if name == "ranker" and "purchase_probability" in reco.columns:
                known = pd.Series(reco["purchase_probability"].to_numpy(dtype=float), index=items)
        table = pd.DataFrame(ranks)
        table.index.name = "item_id"
        table = table.reset_index()
        table.insert(1, "title", self.titles(table["item_id"].tolist()))
        probability = np.full(len(table), np.nan)
        if known is not None:
            probability = table["item_id"].map(known).to_numpy(dtype=float, copy=True)
        missing = np.isnan(probability)
        if missing.any():
            probability[missing] = self.purchase_probability(
                user_id, table.loc[missing, "item_id"].tolist()
            )
        table.insert(2, "purchase_probability", probability)
        return table.sort_values("purchase_probability", ascending=False, na_position="last")

    # ------------------------------------------------------------------ similar items

    def similar_frame(self, item_id: str, k: int = 10, model: str = "als") -> pd.DataFrame:
        """Items similar to ``item_id`` by one model, with titles.

        Raises
        ------
        UnknownItemError
            The item is not known to the model.
        """
        engine = self.lab.model(model)
        sim = engine.similar_items([str(item_id)], k)
        ids = sim["similar_item_id"].astype(str).tolist()
        return pd.DataFrame(
            {
                "item_id": ids,
                "title": self.titles(ids),
                "score": sim[Columns.SCORE].to_numpy(dtype=float),
                "rank": sim[Columns.RANK].to_numpy(dtype=int),
            }
        )

    def similar(self, item_id: str, k: int = 10, model: str = "als") -> dict[str, Any]:
        """The ``similar`` JSON of DESIGN.md."""
        frame = self.similar_frame(item_id, k, model)
        return {
            "item_id": str(item_id),
            "title": self.title(item_id),
            "model_version": self.version,
            "model": model,
            "items": [
                {
                    "item_id": r.item_id,
                    "title": r.title,
                    "score": _num(r.score),
                    "rank": int(r.rank),
                }
                for r in frame.itertuples(index=False)
            ],
        }

    # ------------------------------------------------------------------ explanations

    def explainer(self) -> Any:
        """The SHAP explainer of the purchase model (built once)."""
        ranker = self.lab.ranker
        if ranker is None:
            from recsys_core.errors import ModelNotTrainedError

            raise ModelNotTrainedError(
                "explanations need the purchase model: train with the 'ranker' model"
            )
        if self._explainer is None:
            from recsys_core.explain import PurchaseExplainer

            self._explainer = PurchaseExplainer(ranker)
        return self._explainer

    def because_you_bought(self, user_id: str, item_id: str, k: int = 3) -> list[dict[str, Any]]:
        """ALS's "because you bought X": the shopper's past items that most support the item.

        Empty when ALS is not trained or does not know the shopper or the item.
        """
        als = self.lab.models.get("als")
        if als is None:
            return []
        from recsys_core.explain import because_you_bought

        try:
            return because_you_bought(als, str(user_id), str(item_id), self.lab.catalog, k=k)
        except (UnknownUserError, UnknownItemError):
            return []

    def explain(self, user_id: str, item_id: str, k_reasons: int = 3) -> dict[str, Any]:
        """The ``explain`` JSON of DESIGN.md: SHAP contributions and "because you bought"."""
        explanation = self.explainer().explain(str(user_id), str(item_id))
        payload: dict[str, Any] = dict(explanation.to_dict())
        payload["because_you_bought"] = self.because_you_bought(user_id, item_id, k_reasons)
        payload["model_version"] = self.version
        return payload

    # ------------------------------------------------------------------ search

    def search(
        self, query: str, user_id: str | None = None, k: int = 20
    ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Plain lexical results and, for a shopper, the same re-ranked by purchase probability."""
        if self._search is None:
            from recsys_core.search import ProductSearch

            self._search = ProductSearch(self.lab.catalog)
        plain = self._search.search(query, k)
        if user_id is None or self.lab.ranker is None:
            return plain, None
        mine = self._search.personalised(query, str(user_id), self.purchase_probability, k=k)
        return plain, mine


def _num(value: Any) -> float | None:
    value = float(value)
    return None if not np.isfinite(value) else round(value, 6)
