"""The report's model-selection section: per-fold chart and tables, overall probability."""

from __future__ import annotations

from typing import Any

from recsys_core.reporting.content import Chart, Table, Text
from recsys_core.reporting.folds import folds_blocks, overall_blocks


def _evaluation() -> dict[str, Any]:
    folds = [
        {
            "cutoff": "2024-04-01 00:00:00",
            "test_users": 10,
            "models": {"popularity": {"ndcg@10": 0.1}, "ranker": {"ndcg@10": 0.3}},
            "ranker_vs_best_single_stage": {"ratio": 3.0},
        },
        {
            "cutoff": "2024-05-01 00:00:00",
            "test_users": 12,
            "models": {"popularity": {"ndcg@10": 0.2}, "ranker": {"ndcg@10": 0.5}},
            "ranker_vs_best_single_stage": {"ratio": 2.5},
        },
    ]
    summary = {
        "popularity": {"ndcg@10": {"mean": 0.15, "min": 0.1, "max": 0.2}},
        "ranker": {"ndcg@10": {"mean": 0.4, "min": 0.3, "max": 0.5}},
    }
    return {"k": 10, "folds": folds, "summary": summary}


def test_per_fold_chart_and_tables_show_every_fold_and_the_spread() -> None:
    blocks = folds_blocks(_evaluation())

    chart = next(b for b in blocks if isinstance(b, Chart))
    assert chart.kind == "bars"
    assert chart.data["categories"] == ["2024-04-01", "2024-05-01"]
    assert chart.data["series"] == {"popularity": [0.1, 0.2], "ranker": [0.3, 0.5]}
    per_fold, spread = [b for b in blocks if isinstance(b, Table)]
    assert per_fold.rows[1][0] == "2024-05-01" and per_fold.rows[1][-1] == "2.500x"
    assert spread.rows[1][0] == "ranker" and spread.rows[1][1:] == ["0.4000", "0.3000", "0.5000"]


def test_one_fold_shows_no_fold_section() -> None:
    assert folds_blocks({"k": 10, "models": {}}) == []


def test_overall_probability_blocks_or_the_refusal() -> None:
    scored = overall_blocks(
        {
            "overall_probability": {
                "auc": 0.8,
                "logloss": 0.1,
                "brier": 0.02,
                "ece": 0.004,
                "ece_quantile": 0.006,
                "reliability": [{"mean_predicted": 0.1, "fraction_positive": 0.1, "count": 5}],
            }
        }
    )
    assert any(isinstance(b, Chart) and b.kind == "calibration" for b in scored)
    table = next(b for b in scored if isinstance(b, Table))
    assert ["ECE (10 equal-mass bins)", "0.0060"] in table.rows
    refused = overall_blocks({"overall_probability": {"refused": "two horizons"}})
    assert len(refused) == 1 and isinstance(refused[0], Text)
    assert "two horizons" in refused[0].text
