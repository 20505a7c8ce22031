"""The building blocks the run configs of ``evaluate``, ``train`` and ``tune`` share.

Each block defines its fields, defaults and descriptions once; a run config composes the
blocks it needs by inheriting them (``class EvaluationConfig(SplitConfig, ModelSettings)``),
so its flat fields, JSON files and CLI options stay as they are, while the part another step
needs comes out as one object::

    split = SplitConfig.of(evaluation_config)      # what tuning's validation window reuses
    models = ModelSettings.of(evaluation_config)   # what training fits with

Both round-trip: ``SplitConfig.model_validate(split.model_dump())`` gives the same object.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from recsys_core.interactions import EventWeights

_Block = TypeVar("_Block", bound="_ConfigBlock")

#: The seed every step uses unless told otherwise.
DEFAULT_SEED = 42


class _ConfigBlock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def of(cls: type[_Block], config: BaseModel) -> _Block:
        """This block's fields taken from ``config`` (a run config that inherits the block)."""
        values = {name: getattr(config, name) for name in cls.model_fields}
        return cls.model_validate(values)


class SplitConfig(_ConfigBlock):
    """How the log is split into what the models see and what they are scored on."""

    test_days: float = Field(30, gt=0, description="Length of the temporal test period in days.")
    cutoff: str | None = Field(
        None,
        description="Explicit start of the test period (ISO date; default: the log's "
        "last day minus test_days).",
    )
    test_fraction: float = Field(
        0.2, gt=0, lt=1, description="Held-out share per shopper for logs without timestamps."
    )
    relevant_events: tuple[str, ...] = Field(
        ("purchase",),
        description="Test-period events that make an item relevant (falls back to all events "
        "when the log has none of them).",
    )
    seed: int = Field(
        DEFAULT_SEED, ge=0, description="Seed of the random split, the models and resamples."
    )


class ModelSettings(_ConfigBlock):
    """What the models are fitted with (on top of the settings that apply to the dataset)."""

    weights: EventWeights | None = Field(
        None,
        description="Event weights of the interaction matrix (default: the settings that apply "
        "to the dataset, recsys_core.tuning.settings_for).",
    )
    model_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-model hyperparameters, e.g. {'als': {'factors': 64}}; they override "
        "the settings that apply to the dataset.",
    )
    seed: int = Field(
        DEFAULT_SEED, ge=0, description="Seed of the random split, the models and resamples."
    )
