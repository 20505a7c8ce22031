"""Explanations for the pages: "because you bought" and SHAP values on a sample of candidates.

Everything comes from :mod:`recsys_core`: the service's explainer
(:class:`recsys_core.explain.PurchaseExplainer`: ``shap_values``, ``global_importance``) and
the ranker's ``candidate_frame``. This module only picks the sample and caches the answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from recsys_core.errors import RecsysError
from recsys_core.serving import RecommendationService
from ui.resources import explainer_for

#: Most candidate rows explained at once (TreeExplainer costs about a millisecond per row).
MAX_ROWS = 1500


@dataclass(frozen=True)
class ShapSample:
    """SHAP values of the purchase model on a sample of candidate (shopper, item) pairs.

    Attributes
    ----------
    pairs:
        ``user_id, item_id, title, purchase_probability`` per candidate row.
    features:
        The classifier's feature values, one column per feature (same rows as ``pairs``).
    shap:
        SHAP values (log-odds), same shape and columns as ``features``.
    importance:
        ``feature, label, mean_abs_shap`` over the sample, most important first.
    """

    pairs: pd.DataFrame
    features: pd.DataFrame
    shap: pd.DataFrame
    importance: pd.DataFrame

    def effect(self, feature: str) -> pd.DataFrame:
        """One feature's value against its SHAP value: ``user_id, item_id, title, value,
        contribution``."""
        return self.pairs[["user_id", "item_id", "title"]].assign(
            value=self.features[feature].to_numpy(),
            contribution=self.shap[feature].to_numpy(),
        )


def sample_shoppers(user_ids: list[str], n: int, seed: int) -> list[str]:
    """``n`` shoppers drawn without replacement (seeded), in their original order."""
    if len(user_ids) <= n:
        return list(user_ids)
    rng = np.random.default_rng(seed)
    return [user_ids[i] for i in np.sort(rng.choice(len(user_ids), size=n, replace=False))]


@st.cache_data(show_spinner="Computing SHAP values on a sample of candidates ...", max_entries=8)
def shap_sample(
    key: str,
    checksum: str,
    version: str,
    user_ids: tuple[str, ...],
    n_shoppers: int,
    seed: int,
    _svc: RecommendationService,
    max_rows: int = MAX_ROWS,
) -> ShapSample:
    """SHAP values of the candidates of ``n_shoppers`` shoppers drawn from ``user_ids``.

    Shoppers the purchase model does not know (no history before its cutoff) are skipped; at
    most ``max_rows`` candidate rows (a seeded sample of them) are explained.

    Raises
    ------
    ModelNotTrainedError
        The lab has no purchase model.
    DataValidationError
        None of the sampled shoppers has candidates.
    """
    explainer = explainer_for(_svc)  # raises ModelNotTrainedError without a ranker
    ranker = _svc.lab.ranker
    assert ranker is not None
    known = [u for u in user_ids if _svc.knows_user(u)]
    chosen = sample_shoppers(known, n_shoppers, seed)
    try:
        frames = [ranker.candidate_frame(chosen)] if chosen else []
    except RecsysError:  # a shopper unknown to stage one: go one by one, skipping it
        frames = []
        for user in chosen:
            try:
                frames.append(ranker.candidate_frame([user]))
            except RecsysError:
                continue
    if not frames or not sum(len(f) for f in frames):
        from recsys_core.errors import DataValidationError

        raise DataValidationError(
            "none of the sampled shoppers has candidates to explain; try another sample seed"
        )
    candidates = pd.concat(frames, ignore_index=True)
    if len(candidates) > max_rows:  # SHAP costs about 1 ms per row: keep the page quick
        candidates = candidates.sample(n=max_rows, random_state=seed).sort_index()
    from recsys_core.ranking import FEATURE_NAMES

    values = explainer.shap_values(candidates)  # one SHAP pass serves the importance and effects
    shap_frame = pd.DataFrame(values, columns=list(FEATURE_NAMES))
    importance = explainer.global_importance(candidates, shap_values=values)
    names = list(importance["feature"])
    features = candidates[names].reset_index(drop=True)
    shap_frame = shap_frame[names]
    pairs = pd.DataFrame(
        {
            "user_id": candidates["user_id"].astype(str).to_numpy(),
            "item_id": candidates["item_id"].astype(str).to_numpy(),
            "title": _svc.titles(candidates["item_id"].astype(str).tolist()),
            "purchase_probability": candidates["purchase_probability"].to_numpy(dtype=float),
        }
    )
    return ShapSample(pairs=pairs, features=features, shap=shap_frame, importance=importance)


#: Stage-one scores in words: their raw values (an item-kNN score of 1,441,630) mean nothing
#: to a shopper or a product manager.
PLAIN_SCORES: dict[str, str] = {
    "als_score": "close to their taste (ALS)",
    "als_rank": "high on the taste model's list (ALS)",
    "itemknn_score": "often bought together with what they bought (item-kNN)",
    "itemknn_rank": "high among items bought with theirs (item-kNN)",
}


def plain_reasons(explanation: Mapping[str, Any], n: int = 4) -> tuple[list[str], list[str]]:
    """The reasons behind a purchase probability in the shop's words, strongest first.

    Returns ``(for, against)``: up to ``n`` features that raise the probability and up to two
    that lower it, as the explainer's labels ("reorders this about every 11 days", "last
    bought 2 days ago"); raw model scores are replaced by what they mean
    (:data:`PLAIN_SCORES`). The numbers (log-odds, base value) stay in the SHAP chart.
    """
    rows = [c for c in explanation.get("contributions") or [] if c.get("contribution")]
    ranked = sorted(rows, key=lambda c: -abs(float(c["contribution"])))

    def words(c: Mapping[str, Any]) -> str:
        return PLAIN_SCORES.get(str(c.get("name")), str(c.get("feature", "")))

    up: list[str] = []
    down: list[str] = []
    for c in ranked:
        side, most = (up, n) if float(c["contribution"]) > 0 else (down, 2)
        text = words(c)
        if text and text not in side and len(side) < most:
            side.append(text)
    return up, down
