"""One pydantic model per answer, shared by the REST API and the CLI's ``--json`` output.

The shapes are those of DESIGN.md ("Other JSON outputs"); every answer names the model
version it came from and whether it is ``degraded`` (served by a fallback, or a cold-start
answer for an unknown shopper) with the ``reason``. The CLI prints
``Model.model_validate(answer).model_dump(mode="json")`` and the API declares the same model
as its ``response_model``, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ANSWER_MODELS",
    "AlreadyBought",
    "Contribution",
    "ErrorAnswer",
    "ExplainAnswer",
    "HealthAnswer",
    "ProbabilityAnswer",
    "PurchaseReason",
    "RecommendAnswer",
    "RecommendedItem",
    "SearchAnswer",
    "SearchItem",
    "SimilarAnswer",
    "SimilarItem",
    "to_json",
]


class _Answer(BaseModel):
    # extra="allow": a field another part of the lab adds to an answer (e.g. the order
    # probability) passes through instead of being dropped or rejected
    model_config = ConfigDict(extra="allow")


class RecommendedItem(_Answer):
    """One recommended item."""

    item_id: str = Field(description="The item's id.")
    title: str = Field(description="The item's title (its id when the catalog has none).")
    score: float | None = Field(description="The answering model's score (its own scale).")
    rank: int = Field(ge=1, description="1 for the first item.")
    purchase_probability: float | None = Field(
        None,
        description="Calibrated probability that the shopper buys the item in the next period "
        "if they order in it; null where the purchase model cannot score.",
    )
    order_probability: float | None = Field(
        None, description="Probability that the shopper orders at all in the period."
    )
    probability: float | None = Field(
        None, description="Overall probability (order x purchase), where both are known."
    )


class AlreadyBought(_Answer):
    """What the list did with the items the shopper already bought, and why."""

    remove: bool = Field(description="True when already-bought items were left out.")
    source: Literal["request", "settings", "repeat rate", "unrecorded"] = Field(
        description="Who decided: the request's filter_seen, the lab's settings, the training "
        "data's repeat rate (the rule evaluation uses), or nobody (an older version: kept)."
    )
    why: str = Field(description="One sentence.")


class ListPolicyInfo(_Answer):
    """The list policy an answer was made under (:class:`recsys_core.policy.ListPolicy`)."""

    name: str = Field(description="Short name: the repeat rule plus each active filter.")
    repeats: Literal["keep", "leave-out-bought", "leave-out-seen"]
    source: str = Field(description="Who chose the repeat rule.")
    why: str = Field(description="One sentence.")
    categories: list[str] = Field(default_factory=list)
    min_price: float | None = None
    max_price: float | None = None
    exclude_bought_days: int = 0
    exclude_items: list[str] = Field(default_factory=list)
    allow_items: list[str] | None = None
    rules: list[dict[str, Any]] = Field(default_factory=list)


class RecommendAnswer(_Answer):
    """``recommend``: a shopper's top items."""

    user_id: str
    model_version: str = Field(description="The trained version that answered.")
    model: str = Field(description="The model that answered (a fallback when degraded).")
    degraded: bool = Field(description="True when not the model asked for, or a cold start.")
    reason: str | None = Field(description="Why the answer is degraded (null when it is not).")
    items: list[RecommendedItem]
    source: Literal["live", "batch"] = Field(
        "live", description="'batch' when read from a precomputed batch table."
    )
    computed_at: str | None = Field(
        None, description="When the batch table was computed (UTC, ISO 8601) for 'batch'."
    )
    already_bought: AlreadyBought | None = Field(
        None, description="Whether already-bought items were left out of the list, and why."
    )
    list_policy: ListPolicyInfo | None = Field(
        None, description="The list policy the answer was made under."
    )


class SimilarItem(_Answer):
    """One similar item."""

    item_id: str
    title: str
    score: float | None
    rank: int = Field(ge=1)


class SimilarAnswer(_Answer):
    """``similar``: items similar to one item."""

    item_id: str
    title: str | None = None
    model_version: str
    model: str
    degraded: bool = False
    reason: str | None = None
    items: list[SimilarItem]


class Contribution(_Answer):
    """One feature's SHAP contribution to the classifier's margin."""

    feature: str
    value: float | None = None
    contribution: float


class PurchaseReason(_Answer):
    """A past item that supports the recommendation ("because you bought")."""

    item_id: str
    title: str | None = None
    contribution: float
    counted: str | None = Field(default=None, description="What was counted: 'bought' or 'viewed'.")


class ExplainAnswer(_Answer):
    """``explain``: why the purchase model gives this probability, or (``model=``) why that
    model put the item in the shopper's list, by the model that served it.

    ``base_value + sum(contribution) == raw_score``. For an unknown shopper the answer is the
    cold start: ``degraded`` with the item's base rate as ``probability`` and no reasons.
    """

    user_id: str
    item_id: str
    probability: float | None
    raw_score: float | None = None
    base_value: float | None = None
    contributions: list[Contribution] = Field(default_factory=list)
    because_you_bought: list[PurchaseReason] = Field(default_factory=list)
    model_version: str | None = None
    degraded: bool = False
    reason: str | None = None
    model: str | None = Field(default=None, description="The model whose list is explained.")
    shap: bool | None = Field(
        default=None, description="Whether `contributions` are SHAP values of that model."
    )
    reasons_label: str | None = Field(
        default=None, description='"Because you bought" / "Because you viewed" / both.'
    )
    reasons_from: str | None = Field(
        default=None, description="The model whose factors or neighbours gave the reasons."
    )


class ProbabilityAnswer(_Answer):
    """``purchase-probability``: one shopper and one item."""

    user_id: str
    item_id: str
    title: str | None = None
    model_version: str
    purchase_probability: float | None = Field(
        description="Calibrated purchase probability; for an unknown shopper the item's base "
        "rate (share of the last period's buyers who bought it)."
    )
    degraded: bool
    reason: str | None = None


class SearchItem(_Answer):
    """One search hit."""

    item_id: str
    title: str
    rank: int = Field(ge=1)
    relevance: float | None = None
    category: str | None = None
    purchase_probability: float | None = None
    lexical_rank: int | None = None


class SearchAnswer(_Answer):
    """``search``: lexical hits, re-ranked by purchase probability for a known shopper."""

    query: str
    method: Literal["hybrid", "tfidf"] = Field(
        "hybrid", description="hybrid: TF-IDF blended with text embeddings; tfidf: lexical."
    )
    user_id: str | None = None
    model_version: str
    personalised: bool = Field(description="True when re-ranked for the shopper.")
    degraded: bool = False
    reason: str | None = None
    items: list[SearchItem]


class HealthAnswer(_Answer):
    """``health``: what is served and whether it is whole."""

    status: Literal["ok", "degraded"]
    dataset: str | None = None
    model_version: str | None = None
    models: list[str] = Field(default_factory=list)
    degraded: bool = False
    reason: str | None = None


class ErrorAnswer(BaseModel):
    """Any 4xx answer: one plain sentence saying what is wrong and how to fix it."""

    detail: str


#: Command or endpoint name -> its answer model.
ANSWER_MODELS: dict[str, type[BaseModel]] = {
    "recommend": RecommendAnswer,
    "similar": SimilarAnswer,
    "explain": ExplainAnswer,
    "purchase-probability": ProbabilityAnswer,
    "search": SearchAnswer,
    "health": HealthAnswer,
}


def to_json(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` checked against the answer model of ``kind`` and dumped as JSON types."""
    return ANSWER_MODELS[kind].model_validate(payload).model_dump(mode="json")
