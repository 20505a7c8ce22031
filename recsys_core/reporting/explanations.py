"""The purchase model's SHAP importance and example shoppers, for the report.

Both come from :class:`recsys_core.explain.PurchaseExplainer` on the ranker that the
evaluation fitted (``ModelResult.model``): global importance over a seeded sample of the test
shoppers' candidates (at most :data:`IMPORTANCE_ROWS` rows), and a few seeded example
shoppers with their top items and reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_ids
from recsys_core.data.schema import Dataset
from recsys_core.evaluation import EvaluationConfig, EvaluationResult
from recsys_core.models.registry import purchase_model
from recsys_core.reporting.formatting import format_value

#: Items shown per example shopper, and reasons per item.
ITEMS_PER_EXAMPLE = 5
REASONS_PER_ITEM = 3

#: ``(user_id, item_id) -> explain JSON``.
ExplainPurchase = Callable[[str, str], Mapping[str, Any]]


@dataclass
class Explanations:
    """The optional parts of a report and, for each missing one, why it is missing."""

    importance: pd.DataFrame | None = None
    examples: list[dict[str, Any]] | None = None
    unavailable: dict[str, str] = field(default_factory=dict)


def _missing(reason: str) -> Explanations:
    return Explanations(unavailable={"shap": reason, "examples": reason})


def ranker_explanations(
    dataset: Dataset,
    config: EvaluationConfig,
    result: EvaluationResult,
    n_examples: int = 3,
) -> Explanations:
    """SHAP importance and example shoppers of the evaluated ranker.

    Parameters
    ----------
    dataset:
        The evaluated data (its catalog gives the titles).
    config:
        The evaluation's configuration (its seed picks the example shoppers).
    result:
        The evaluation result; the ranker must be among its models.
    n_examples:
        Number of example shoppers.

    Returns
    -------
    Explanations
        Filled parts, and the reason for each part left out.
    """
    ranker_result = result.models.get(purchase_model())
    if ranker_result is None or ranker_result.model is None:
        return _missing("the purchase model (ranker) was not among the evaluated models")
    from recsys_core.explain import PurchaseExplainer

    explainer = PurchaseExplainer(ranker_result.model)
    reco = ranker_result.recommendations
    users = select_example_users(reco, n_examples, seed=config.seed)
    importance = _global_importance(explainer, reco, seed=config.seed)
    examples = build_examples(
        reco,
        dataset.catalog,
        users,
        lambda user, item: explainer.explain_dict(user, item, dataset.catalog),
        model=purchase_model(),
    )
    return Explanations(importance=importance, examples=examples)


#: Candidate rows the report's SHAP importance is averaged over (about 1 ms of SHAP each).
IMPORTANCE_ROWS = 2_000


def _global_importance(explainer: Any, reco: pd.DataFrame, seed: int) -> pd.DataFrame | None:
    """Mean |SHAP| over a seeded sample of the test shoppers' candidate rows."""
    warm = reco[~reco["cold_start"].astype(bool)] if "cold_start" in reco.columns else reco
    users = np.sort(np.asarray(pd.unique(canonical_ids(warm[Columns.USER])), dtype=object))
    if len(users) == 0:
        return None
    rng = np.random.default_rng(seed)
    chosen = rng.choice(users, size=min(len(users), 200), replace=False)
    frame = explainer.ranker.candidate_frame([str(u) for u in chosen])
    if len(frame) > IMPORTANCE_ROWS:
        frame = frame.sample(n=IMPORTANCE_ROWS, random_state=seed)
    return explainer.global_importance(frame)


def select_example_users(reco: pd.DataFrame, n: int, seed: int = 42) -> list[str]:
    """``n`` shoppers drawn (seeded, so reports are reproducible) from a recommendation frame.

    Shoppers served the cold-start list (a ``cold_start`` column, as the ranker gives) are
    left out: there is nothing personal to explain for them.
    """
    if "cold_start" in reco.columns:
        reco = reco[~reco["cold_start"].astype(bool).to_numpy()]
    users = np.sort(np.asarray(pd.unique(canonical_ids(reco[Columns.USER])), dtype=object))
    if n <= 0 or len(users) == 0:
        return []
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(users), size=min(n, len(users)), replace=False)
    return [str(users[i]) for i in np.sort(chosen)]


def reasons_of(explanation: Mapping[str, Any], n: int = REASONS_PER_ITEM) -> list[str]:
    """The top reasons of one explanation as short phrases.

    The strongest "because you bought X" comes first, then the features that pushed the
    probability up most (their ``label`` in the shop's words when given, else
    ``feature = value``).
    """
    reasons: list[str] = []
    bought = [b for b in explanation.get("because_you_bought") or [] if b.get("title")]
    if bought:
        top = max(bought, key=lambda b: float(b.get("contribution") or 0.0))
        reasons.append(f"because you bought {top['title']}")
    contributions = sorted(
        (c for c in explanation.get("contributions") or [] if (c.get("contribution") or 0) > 0),
        key=lambda c: float(c["contribution"]),
        reverse=True,
    )
    for c in contributions:
        if len(reasons) >= n:
            break
        text = c.get("label") or f"{c.get('feature')} = {format_value(c.get('value'))}"
        reasons.append(str(text))
    return reasons[:n]


def build_examples(
    reco: pd.DataFrame,
    catalog: pd.DataFrame,
    users: Sequence[str],
    explain: ExplainPurchase | None,
    *,
    model: str,
    n_items: int = ITEMS_PER_EXAMPLE,
) -> list[dict[str, Any]]:
    """Example shoppers: their top ``n_items`` recommendations with titles and reasons.

    Parameters
    ----------
    reco:
        Recommendations (``user_id, item_id, score, rank`` and optionally
        ``purchase_probability``).
    catalog:
        ``item_id, title``.
    users:
        The shoppers to show.
    explain:
        ``(user_id, item_id) -> explain JSON``, giving the probability (when ``reco`` has
        none) and the reasons; ``None`` for no reasons.
    model:
        The model the recommendations come from.
    n_items:
        Items per shopper.
    """
    titles = dict(
        zip(
            canonical_ids(catalog[Columns.ITEM]),  # a saved lab's catalog
            catalog[Columns.TITLE].astype(str),  # display text, not an id
            strict=False,
        )
    )
    frame = reco.assign(**{Columns.USER: canonical_ids(reco[Columns.USER])})
    examples = []
    for user in users:
        rows = frame[frame[Columns.USER] == str(user)].sort_values(Columns.RANK).head(n_items)
        items = []
        for row in rows.itertuples(index=False):
            item_id = str(getattr(row, Columns.ITEM))
            explanation = explain(str(user), item_id) if explain is not None else {}
            probability = getattr(row, "purchase_probability", explanation.get("probability"))
            items.append(
                {
                    "item_id": item_id,
                    "title": titles.get(item_id, ""),
                    "purchase_probability": None if probability is None else float(probability),
                    "score": float(getattr(row, Columns.SCORE)),
                    "rank": int(getattr(row, Columns.RANK)),
                    "reasons": reasons_of(explanation),
                }
            )
        examples.append({"user_id": str(user), "model": model, "items": items})
    return examples
