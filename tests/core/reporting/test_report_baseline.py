"""The regression view: which changes are flagged, which are skipped, and bad baselines."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from recsys_core.errors import ConfigError
from recsys_core.reporting import (
    ReportData,
    baseline_warnings,
    compare_to_baseline,
    load_baseline,
    render_html,
    render_json,
)


def _run(ndcg: float, fit: float = 1.0, logloss: float = 0.4, **extra: Any) -> dict[str, Any]:
    return {
        "dataset": "shop",
        "k": 10,
        "split": {"cutoff": "2024-05-01"},
        "models": {
            "als": {
                "ndcg@10": ndcg,
                "coverage@10": 0.5,
                "arp@10": 40.0,
                "fit_seconds": fit,
                "params": {"factors": 64},
                "new_items_only": {"ndcg@10": ndcg / 2},
                **extra,
            }
        },
        "classifier": {"auc": 0.83, "logloss": logloss, "candidates": 1000.0},
        "provenance": {"data_sha256": "abc", "created": "2024-06-01T00:00:00+00:00"},
    }


def _by_metric(changes: list[Any]) -> dict[tuple[str, str], Any]:
    return {(c.model, c.metric): c for c in changes}


def test_a_drop_beyond_the_threshold_is_flagged() -> None:
    changes = _by_metric(compare_to_baseline(_run(ndcg=0.30), _run(ndcg=0.33)))
    ndcg = changes[("als", "ndcg@10")]
    assert ndcg.flagged and ndcg.worse
    assert ndcg.relative_change == pytest.approx(-0.03 / 0.33)
    assert changes[("als", "new_items_only/ndcg@10")].flagged
    assert not changes[("als", "coverage@10")].flagged


def test_a_small_drop_or_a_gain_is_not_flagged() -> None:
    small = _by_metric(compare_to_baseline(_run(ndcg=0.32), _run(ndcg=0.33)))
    assert not small[("als", "ndcg@10")].flagged  # -3 % against a 5 % threshold
    strict = _by_metric(compare_to_baseline(_run(ndcg=0.32), _run(ndcg=0.33), threshold=0.01))
    assert strict[("als", "ndcg@10")].flagged
    gain = _by_metric(compare_to_baseline(_run(ndcg=0.5), _run(ndcg=0.33)))
    assert not gain[("als", "ndcg@10")].flagged and not gain[("als", "ndcg@10")].worse


def test_lower_is_better_for_logloss_brier_ece() -> None:
    worse = _by_metric(compare_to_baseline(_run(0.3, logloss=0.5), _run(0.3, logloss=0.4)))
    assert worse[("ranker", "classifier/logloss")].flagged
    better = _by_metric(compare_to_baseline(_run(0.3, logloss=0.3), _run(0.3, logloss=0.4)))
    assert not better[("ranker", "classifier/logloss")].flagged
    assert better[("ranker", "classifier/logloss")].lower_is_better


def test_fit_time_is_compared_but_never_flagged() -> None:
    changes = _by_metric(compare_to_baseline(_run(0.3, fit=10.0), _run(0.3, fit=1.0)))
    fit = changes[("als", "fit_seconds")]
    assert fit.worse and not fit.gated and not fit.flagged


def test_absent_or_undirected_metrics_are_skipped() -> None:
    current = _run(0.3, **{"mrr@10": 0.2})
    baseline = _run(0.3)
    baseline["models"]["bpr"] = {"ndcg@10": 0.2}
    baseline["classifier"] = None
    metrics = {(c.model, c.metric) for c in compare_to_baseline(current, baseline)}
    # exactly the directed metrics both runs have: not mrr@10 (only in the current run), not
    # bpr (only in the baseline), not arp@10 (no better direction), no classifier (baseline
    # has none)
    both = {("als", "ndcg@10"), ("als", "coverage@10"), ("als", "fit_seconds")}
    assert metrics == both | {("als", "new_items_only/ndcg@10")}
    # the control: once both runs have them, bpr, mrr@10 and the classifier are compared
    current["models"]["bpr"] = {"ndcg@10": 0.25}
    baseline = _run(0.3, **{"mrr@10": 0.1})
    baseline["models"]["bpr"] = {"ndcg@10": 0.2}
    metrics = {(c.model, c.metric) for c in compare_to_baseline(current, baseline)}
    assert {("als", "mrr@10"), ("bpr", "ndcg@10"), ("ranker", "classifier/auc")} <= metrics
    assert ("als", "arp@10") not in metrics  # still no better direction


def test_zero_baseline_value() -> None:
    current, baseline = _run(0.3), _run(0.3)
    baseline["classifier"]["logloss"] = 0.0
    change = _by_metric(compare_to_baseline(current, baseline))[("ranker", "classifier/logloss")]
    assert change.flagged and math.isinf(change.relative_change)
    assert change.to_dict()["relative_change"] is None


def test_bad_threshold() -> None:
    with pytest.raises(ConfigError, match="threshold"):
        compare_to_baseline(_run(0.3), _run(0.3), threshold=-0.1)


def test_warnings_for_unlike_comparisons() -> None:
    other = _run(0.3)
    other.update(dataset="elsewhere", k=5)
    other["provenance"]["data_sha256"] = "def"
    text = " ".join(baseline_warnings(_run(0.3), other))
    assert "elsewhere" in text and "checksum" in text and "k=5" in text
    assert baseline_warnings(_run(0.3), _run(0.4)) == []


def test_the_comparison_in_html_and_json() -> None:
    data = ReportData(evaluation=_run(0.30), baseline=_run(0.33), baseline_source="old.json")
    assert [(c.model, c.metric) for c in data.regressions()] == [
        ("als", "ndcg@10"),
        ("als", "new_items_only/ndcg@10"),
    ]
    html = render_html(data)
    assert "REGRESSION: 2 of" in html and 'class="flagged"' in html and "old.json" in html
    block = render_json(data)["report"]["baseline"]
    assert block["flagged"] == 2 and block["threshold"] == 0.05
    assert block["fit_seconds_gated"] is False
    assert {c["metric"] for c in block["changes"] if c["flagged"]} == {
        "ndcg@10",
        "new_items_only/ndcg@10",
    }


def test_load_baseline_rejects_what_it_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_baseline(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_baseline(broken)
    no_models = tmp_path / "list.json"
    no_models.write_text(json.dumps([1, 2]))
    with pytest.raises(ConfigError, match="'models'"):
        load_baseline(no_models)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_run(0.3)))
    assert load_baseline(good)["models"]["als"]["ndcg@10"] == 0.3
