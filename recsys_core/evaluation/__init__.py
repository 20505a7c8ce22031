"""Train and evaluate several models on one split or several folds, into one result object.

* :mod:`~recsys_core.evaluation.runner` — :func:`evaluate`: models x folds -> one
  :class:`EvaluationResult`;
* :mod:`~recsys_core.evaluation.fold` — one fold: fit, recommend, measure;
* :mod:`~recsys_core.evaluation.protocol` — test windows, relevant items, the repeat rule;
* :mod:`~recsys_core.evaluation.intervals` — paired bootstrap and the ranker's ratio;
* :mod:`~recsys_core.evaluation.probability` — purchase, order and overall probabilities;
* :mod:`~recsys_core.evaluation.config` / :mod:`~recsys_core.evaluation.result` — what runs
  and what comes out (the JSON of ``evaluate --json``).

The protocol is described in ``docs/evaluation-protocol.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recsys_core.lazy_exports import lazy_exports
from recsys_core.provenance import data_checksum, library_versions

if TYPE_CHECKING:
    from recsys_core.evaluation.config import (
        ALL_MODELS,
        OPTIONAL_MODELS,
        SINGLE_STAGE_MODELS,
        EvaluationConfig,
        ProgressCallback,
        no_progress,
        with_preset,
    )
    from recsys_core.evaluation.intervals import bootstrap_intervals
    from recsys_core.evaluation.protocol import (
        cannot_run,
        fold_splits,
        relevant_items,
        test_purchase_revenue,
    )
    from recsys_core.evaluation.result import EvaluationResult, ModelResult, json_safe
    from recsys_core.evaluation.runner import evaluate

# imported on first use: the runner imports the purchase model's LightGBM and scikit-learn,
# which ``evaluation.config`` (the progress callback of training) must not bring along
__getattr__ = lazy_exports(
    __name__,
    {
        "config": [
            "ALL_MODELS",
            "OPTIONAL_MODELS",
            "SINGLE_STAGE_MODELS",
            "EvaluationConfig",
            "ProgressCallback",
            "no_progress",
            "with_preset",
        ],
        "intervals": ["bootstrap_intervals"],
        "protocol": ["cannot_run", "fold_splits", "relevant_items", "test_purchase_revenue"],
        "result": ["EvaluationResult", "ModelResult", "json_safe"],
        "runner": ["evaluate"],
    },
)

__all__ = [
    "ALL_MODELS",
    "OPTIONAL_MODELS",
    "SINGLE_STAGE_MODELS",
    "EvaluationConfig",
    "EvaluationResult",
    "ModelResult",
    "ProgressCallback",
    "bootstrap_intervals",
    "cannot_run",
    "data_checksum",
    "evaluate",
    "fold_splits",
    "json_safe",
    "library_versions",
    "no_progress",
    "relevant_items",
    "test_purchase_revenue",
    "with_preset",
]
