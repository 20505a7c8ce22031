"""What a report shows: :class:`ReportData` and :func:`build_report_data`, which fills it.

A report is built from the evaluate JSON (``EvaluationResult.to_json()``), never from live
model objects, so one saved ``report --out x.json`` can be rendered again, or used as the
baseline of a later report. The purchase model's SHAP importance and the example shoppers
are optional: they come from the two-stage ranker when it was evaluated and
:mod:`recsys_core.explain` provides them (see :mod:`recsys_core.reporting.explanations`);
otherwise the report says they are not available.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from recsys_core.data.schema import Dataset
from recsys_core.evaluation import (
    SINGLE_STAGE_MODELS,
    EvaluationConfig,
    EvaluationResult,
    ProgressCallback,
    evaluate,
)
from recsys_core.models.registry import purchase_model
from recsys_core.reporting.baseline import DEFAULT_THRESHOLD, MetricChange, compare_to_baseline

#: Columns of :attr:`ReportData.shap_importance`.
SHAP_COLUMNS: tuple[str, ...] = ("feature", "label", "mean_abs_shap")


def display_user_id(user_id: object, *, reveal: bool = False) -> str:
    """The shopper id as it may be shown: its keyed pseudonym (``S-...``), or the id itself
    when ``reveal`` is asked (an admin's audited reveal, or the app's local single-user mode).

    Every id a report prints (HTML, PDF and JSON), the app shows to a logged-in user, or a
    download, file name or log line carries goes through this function
    (:mod:`recsys_core.security.pseudonyms`). A pseudonym passes through unchanged, so a
    saved report renders again with the same ids.
    """
    if reveal:
        return str(user_id)
    from recsys_core.security.pseudonyms import looks_like_pseudonym, pseudonym

    if looks_like_pseudonym(str(user_id)):
        return str(user_id)
    return pseudonym(user_id)


def default_models() -> list[str]:
    """Models a report compares by default: every single-stage model and the ranker."""
    return [*SINGLE_STAGE_MODELS, purchase_model()]


def describe_dataset(dataset: Dataset) -> dict[str, Any]:
    """Name, source, size, event mix, period and loader notes of a dataset."""
    info = dataset.summary()
    info["source"] = dataset.source
    info["notes"] = list(dataset.notes)
    return info


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class ReportData:
    """Everything a report shows, ready to render as HTML, PDF or JSON.

    Attributes
    ----------
    evaluation:
        The evaluate JSON (``EvaluationResult.to_json()`` or a saved ``evaluate --json`` /
        ``report --out x.json`` file). Build from a result with :meth:`from_evaluation`.
    shap_importance:
        Global SHAP importance of the purchase model: columns ``feature``, ``label`` (the
        feature in the shop's words) and ``mean_abs_shap``; ``None`` when not available.
    examples:
        A few shoppers with their recommendations: ``{"user_id", "model", "items": [{"item_id",
        "title", "purchase_probability", "score", "rank", "reasons": [str, ...]}]}``;
        ``None`` when not available.
    dataset_info:
        :func:`describe_dataset` of the evaluated data (may be empty for a re-rendered JSON).
    baseline:
        Evaluate/report JSON of an earlier run to compare against, or ``None``.
    baseline_source:
        Where the baseline came from (a path), shown in the report.
    threshold:
        Relative drop that is flagged in the comparison with the baseline.
    unavailable:
        Why optional parts are missing, e.g. ``{"shap": "..."}`` (shown in the report).
    generated:
        When the report was made (UTC, ISO 8601).
    result:
        The live :class:`EvaluationResult` when there is one (not rendered; for callers such
        as the Model lab page that also want per-user figures).
    """

    evaluation: dict[str, Any]
    shap_importance: pd.DataFrame | None = None
    examples: list[dict[str, Any]] | None = None
    dataset_info: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] | None = None
    baseline_source: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    unavailable: dict[str, str] = field(default_factory=dict)
    generated: str = field(default_factory=_utc_now)
    result: EvaluationResult | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.evaluation, Mapping) or "models" not in self.evaluation:
            raise ValueError("evaluation must be the evaluate JSON (a dict with 'models')")
        if self.shap_importance is not None:
            missing = [c for c in SHAP_COLUMNS if c not in self.shap_importance.columns]
            if missing:
                raise ValueError(f"shap_importance lacks the column(s) {missing}")
            self.shap_importance = self.shap_importance.sort_values(
                "mean_abs_shap", ascending=False, ignore_index=True
            )

    @classmethod
    def from_evaluation(
        cls, evaluation: EvaluationResult | Mapping[str, Any], **fields: Any
    ) -> ReportData:
        """A report of an :class:`EvaluationResult` or of its JSON.

        Parameters
        ----------
        evaluation:
            The result of :func:`~recsys_core.evaluation.evaluate`, or its JSON. A saved
            report JSON also brings back its SHAP importance, examples and dataset
            description (unless given in ``fields``).
        **fields:
            Any other :class:`ReportData` field (``shap_importance``, ``baseline``, ...).
        """
        if isinstance(evaluation, EvaluationResult):
            fields.setdefault("result", evaluation)
            return cls(evaluation=evaluation.to_json(), **fields)
        saved = evaluation.get("report")
        if isinstance(saved, Mapping):  # a saved report JSON: keep what it showed
            if saved.get("shap_importance"):
                fields.setdefault("shap_importance", pd.DataFrame(saved["shap_importance"]))
            fields.setdefault("examples", saved.get("examples"))
            fields.setdefault("dataset_info", dict(saved.get("dataset_description") or {}))
            fields.setdefault("unavailable", dict(saved.get("unavailable") or {}))
        body = {key: value for key, value in evaluation.items() if key != "report"}
        return cls(evaluation=body, **fields)

    def metric_changes(self) -> list[MetricChange]:
        """Every metric against the baseline (empty without a baseline)."""
        if self.baseline is None:
            return []
        return compare_to_baseline(self.evaluation, self.baseline, self.threshold)

    def regressions(self) -> list[MetricChange]:
        """The changes flagged as drops beyond :attr:`threshold`."""
        return [change for change in self.metric_changes() if change.flagged]


def build_report_data(
    dataset: Dataset,
    config: EvaluationConfig | None = None,
    progress: ProgressCallback | None = None,
    n_examples: int = 3,
    *,
    baseline: Mapping[str, Any] | None = None,
    baseline_source: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> ReportData:
    """Evaluate the models on ``dataset`` and gather everything the report shows.

    Parameters
    ----------
    dataset:
        The event log and catalog.
    config:
        Models, ``k`` and protocol; defaults to :func:`default_models` with ``k=10``.
    progress:
        Called with a message and the fraction done (of the evaluation).
    n_examples:
        How many example shoppers to show (when the ranker's explanations are available).
    baseline:
        An earlier evaluate/report JSON to compare against (see
        :func:`~recsys_core.reporting.baseline.load_baseline`).
    baseline_source:
        Where ``baseline`` came from, shown in the report.
    threshold:
        Relative drop flagged in the comparison (``0.05`` = 5 %).

    Returns
    -------
    ReportData
        With SHAP importance and examples filled when the ranker was evaluated and
        :mod:`recsys_core.explain` provides them, ``None`` (and a reason) otherwise.
    """
    from recsys_core.reporting.explanations import ranker_explanations

    config = config or EvaluationConfig(models=default_models())
    result = evaluate(dataset, config, progress=progress)
    explained = ranker_explanations(dataset, config, result, n_examples=n_examples)
    data = ReportData.from_evaluation(
        result,
        shap_importance=explained.importance,
        examples=explained.examples,
        dataset_info=describe_dataset(dataset),
        baseline=dict(baseline) if baseline is not None else None,
        baseline_source=baseline_source,
        threshold=threshold,
        unavailable=explained.unavailable,
    )
    data.metric_changes()  # a bad threshold fails here, before anything is written
    return data
