"""The regression view: every metric of a report against an earlier one.

A baseline is the JSON of an earlier ``report --out x.json`` or ``evaluate --json`` (the report
JSON *is* the evaluate JSON plus a ``report`` block, so both read the same way). Compared are:

- every ranking and beyond-accuracy metric of every model present in both files
  (``precision@k``, ``recall@k``, ``ndcg@k``, ``map@k``, ``mrr@k``, ``hit_rate@k``,
  ``coverage@k``, ``novelty@k``, ``diversity@k``), also in their "new items only" variant
  (named ``new_items_only/<metric>``);
- the purchase classifier's ``auc``, ``logloss``, ``brier``, ``ece`` and ``candidate_recall``
  (model ``ranker``, named ``classifier/<metric>``);
- ``fit_seconds``, shown but **never flagged**: a fit time says as much about the machine and
  its load as about the model, so it must not fail a release gate.

A change is *flagged* when the metric got worse by more than ``threshold`` relative to the
baseline: lower for most metrics, higher for ``logloss``, ``brier`` and ``ece``. Metrics
absent (or not finite) on either side are skipped, so a baseline with another ``k`` shares
no ranking metrics; :func:`baseline_warnings` says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from recsys_core.errors import ConfigError
from recsys_core.models.registry import purchase_model

#: Metric families where a higher value is better (the name before ``@k``).
HIGHER_IS_BETTER: frozenset[str] = frozenset(
    {
        "precision",
        "recall",
        "ndcg",
        "map",
        "mrr",
        "hit_rate",
        "coverage",
        "novelty",
        "diversity",
        "auc",
        "candidate_recall",
    }
)
#: Metric families where a lower value is better.
LOWER_IS_BETTER: frozenset[str] = frozenset({"logloss", "brier", "ece", "fit_seconds"})
#: Compared and shown, but never flagged (they measure the machine as much as the model).
NOT_GATED: frozenset[str] = frozenset({"fit_seconds"})

#: Default threshold: a drop of more than 5 % relative is flagged.
DEFAULT_THRESHOLD = 0.05

NEW_ITEMS_PREFIX = "new_items_only/"
CLASSIFIER_PREFIX = "classifier/"


@dataclass(frozen=True)
class MetricChange:
    """One metric of one model, in the baseline and now.

    Attributes
    ----------
    model:
        Model name (``ranker`` for the purchase classifier's metrics).
    metric:
        Metric name as in the evaluate JSON, prefixed ``new_items_only/`` or ``classifier/``
        for those blocks.
    old, new:
        Baseline and current value.
    relative_change:
        ``(new - old) / |old|``; ``±inf`` when the baseline was 0 and the value moved.
    lower_is_better:
        Whether a decrease is an improvement (``logloss``, ``brier``, ``ece``,
        ``fit_seconds``).
    gated:
        Whether the metric can be flagged at all (``fit_seconds`` cannot).
    flagged:
        It got worse by more than the threshold (relative).
    """

    model: str
    metric: str
    old: float
    new: float
    relative_change: float
    lower_is_better: bool
    gated: bool
    flagged: bool

    @property
    def worse(self) -> bool:
        """Whether the value moved in the bad direction (by any amount)."""
        return self.new > self.old if self.lower_is_better else self.new < self.old

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (an infinite relative change becomes ``None``)."""
        out = asdict(self)
        if not math.isfinite(self.relative_change):
            out["relative_change"] = None
        out["worse"] = self.worse
        return out


def metric_family(metric: str) -> str:
    """``"new_items_only/ndcg@10"`` -> ``"ndcg"``: the name without prefix and ``@k``."""
    return metric.rsplit("/", 1)[-1].split("@", 1)[0]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _comparable(block: object, prefix: str = "") -> dict[str, float]:
    """The directional metrics of one JSON block, as ``{prefixed name: value}``."""
    if not isinstance(block, Mapping):
        return {}
    out: dict[str, float] = {}
    for name, value in block.items():
        family = metric_family(str(name))
        number = _number(value)
        if number is not None and (family in HIGHER_IS_BETTER or family in LOWER_IS_BETTER):
            out[prefix + str(name)] = number
    return out


def iter_metrics(evaluation: Mapping[str, Any]) -> Iterator[tuple[str, str, float]]:
    """``(model, metric, value)`` of every comparable metric in an evaluate/report JSON."""
    models = evaluation.get("models")
    if isinstance(models, Mapping):
        for model, entry in models.items():
            for metric, value in _comparable(entry).items():
                yield str(model), metric, value
            if isinstance(entry, Mapping):
                new_items = _comparable(entry.get("new_items_only"), NEW_ITEMS_PREFIX)
                for metric, value in new_items.items():
                    yield str(model), metric, value
    for metric, value in _comparable(evaluation.get("classifier"), CLASSIFIER_PREFIX).items():
        yield purchase_model(), metric, value


def compare_to_baseline(
    current_json: Mapping[str, Any],
    baseline_json: Mapping[str, Any],
    threshold: float = DEFAULT_THRESHOLD,
) -> list[MetricChange]:
    """Each metric's change against a baseline, with drops beyond ``threshold`` flagged.

    Parameters
    ----------
    current_json, baseline_json:
        Evaluate JSON (``EvaluationResult.to_json()``, an ``evaluate --json`` file or a
        ``report --out x.json`` file).
    threshold:
        Relative worsening that is flagged, e.g. ``0.05`` for 5 %.

    Returns
    -------
    list[MetricChange]
        In the current report's model and metric order; metrics absent on either side are
        left out.

    Raises
    ------
    ConfigError
        A negative or non-finite threshold.
    """
    if not math.isfinite(threshold) or threshold < 0:
        raise ConfigError(f"--threshold must be a number >= 0 (e.g. 0.05), got {threshold}")
    old_values = {(model, metric): value for model, metric, value in iter_metrics(baseline_json)}
    changes = []
    for model, metric, new in iter_metrics(current_json):
        old = old_values.get((model, metric))
        if old is None:
            continue
        family = metric_family(metric)
        lower_is_better = family in LOWER_IS_BETTER
        if old != 0:
            relative = (new - old) / abs(old)
        else:
            relative = 0.0 if new == old else math.copysign(math.inf, new - old)
        worse = new > old if lower_is_better else new < old
        gated = family not in NOT_GATED
        changes.append(
            MetricChange(
                model=model,
                metric=metric,
                old=old,
                new=new,
                relative_change=relative,
                lower_is_better=lower_is_better,
                gated=gated,
                flagged=gated and worse and abs(relative) > threshold,
            )
        )
    return changes


def baseline_warnings(
    current_json: Mapping[str, Any], baseline_json: Mapping[str, Any]
) -> list[str]:
    """Reasons the comparison may not be like for like (other data, ``k`` or split)."""
    warnings = []
    if current_json.get("dataset") != baseline_json.get("dataset"):
        warnings.append(
            f"the baseline is of dataset {baseline_json.get('dataset')!r}, this report of "
            f"{current_json.get('dataset')!r}"
        )
    old_sha = (baseline_json.get("provenance") or {}).get("data_sha256")
    new_sha = (current_json.get("provenance") or {}).get("data_sha256")
    if old_sha and new_sha and old_sha != new_sha:
        warnings.append("the data changed since the baseline (different data checksum)")
    if current_json.get("k") != baseline_json.get("k"):
        warnings.append(
            f"the baseline used k={baseline_json.get('k')}, this report k={current_json.get('k')}:"
            " ranking metrics are not compared"
        )
    old_cut = (baseline_json.get("split") or {}).get("cutoff")
    new_cut = (current_json.get("split") or {}).get("cutoff")
    if old_cut != new_cut:
        warnings.append(f"the split cutoff moved from {old_cut} to {new_cut}")
    if not compare_to_baseline(current_json, baseline_json):
        warnings.append("the baseline shares no metric with this report")
    return warnings


def load_baseline(path: str | Path, *, role: str = "baseline") -> dict[str, Any]:
    """Read a result written by ``report --out x.json`` or ``evaluate --json``.

    Used for ``report --baseline`` and ``report --from``; ``role`` names the file in error
    messages.

    Raises
    ------
    ConfigError
        The file is missing, is not JSON, or has no ``models`` block.
    """
    path = Path(path)
    hint = "give a file written by `report --out FILE.json` or `evaluate --json FILE`"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{role} file {path} does not exist; {hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {role} file {path} ({exc}); {hint}") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{role} file {path} is not valid JSON (line {exc.lineno}: {exc.msg}); {hint}"
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("models"), dict):
        raise ConfigError(f"{role} file {path} has no 'models' block of metrics; {hint}")
    return payload
