"""What a tuning search reports: each trial, its progress and the result (with the validation
window it was chosen on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from recsys_core.models.registry import cold_start_model
from recsys_core.presets import Preset


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial."""

    model: str
    number: int
    state: str  # "complete" | "pruned" | "failed"
    ndcg: float | None
    seconds: float
    filter_seen: bool | None
    params: dict[str, Any]
    note: str = ""


@dataclass(frozen=True)
class TuneStatus:
    """What the progress callback receives after each trial (and when a model starts)."""

    message: str
    model: str
    trials_done: int
    best_ndcg: float | None
    best_model: str | None
    elapsed: float
    budget_seconds: float
    last: TrialRecord | None = None

    @property
    def seconds_left(self) -> float:
        """Budget left (never negative)."""
        return max(self.budget_seconds - self.elapsed, 0.0)

    @property
    def fraction(self) -> float:
        """Share of the budget used, 0..1."""
        return min(self.elapsed / self.budget_seconds, 1.0) if self.budget_seconds else 1.0


TuneProgress = Callable[[TuneStatus], None]


def _no_progress(_status: TuneStatus) -> None:
    return None


@dataclass
class TuneResult:
    """The outcome of a search."""

    preset: Preset
    trials: list[TrialRecord]
    default_ndcg: dict[str, float]
    best_ndcg: dict[str, float]
    popularity_ndcg: float
    seconds: float
    budget_seconds: float
    validation: dict[str, Any]
    stopped: str
    k: int = 10
    #: Per tuned model: the chosen settings' NDCG gain over the defaults on the validation
    #: shoppers, its paired-bootstrap interval and which settings were kept (see
    #: :func:`recsys_core.tuning.guard.keep_only_real_gains`).
    guard: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )

    def trials_frame(self) -> pd.DataFrame:
        """One row per trial: model, number, state, NDCG, seconds, repeat policy, settings."""
        rows = [
            {
                "model": t.model,
                "trial": t.number,
                "state": t.state,
                f"ndcg@{self.k}": t.ndcg,
                "seconds": round(t.seconds, 2),
                "filter_seen": t.filter_seen,
                "settings": ", ".join(f"{k}={_short(v)}" for k, v in t.params.items()),
            }
            for t in self.trials
        ]
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (saved with the settings)."""
        return {
            "k": self.k,
            "trials": len(self.trials),
            "trials_by_state": pd.Series([t.state for t in self.trials]).value_counts().to_dict()
            if self.trials
            else {},
            "seconds": round(self.seconds, 1),
            "budget_seconds": round(self.budget_seconds, 1),
            "stopped": self.stopped,
            "validation": self.validation,
            "validation_ndcg": {
                cold_start_model(): self.popularity_ndcg,
                "defaults": self.default_ndcg,
                "tuned": self.best_ndcg,
            },
            "kept_only_real_gains": self.guard,
        }


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _window_of(summary: dict[str, Any]) -> dict[str, str | None] | None:
    """The validation window of a search: its start and the first instant it did not see."""
    end = (summary.get("split") or {}).get("test_cutoff")
    if end is None:
        return None
    start = (summary.get("validation") or {}).get("cutoff")
    return {"start": None if start is None else str(start), "end": str(end)}
