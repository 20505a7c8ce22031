"""evaluate(): one split, several models, one JSON in the DESIGN.md shape."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recsys_core.cli import main
from recsys_core.evaluation import EvaluationConfig, evaluate, relevant_items
from recsys_core.evaluation.probability import (
    horizon_labels,
    horizon_mismatch,
    overall_probability_block,
)
from recsys_core.models import create_model
from recsys_core.split import temporal_split
from tests.conftest import SMALL_RANKER

METRICS = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "coverage", "novelty")


@pytest.fixture(scope="module")
def result(small_store):
    progress: list[tuple[str, float]] = []
    res = evaluate(
        small_store,
        EvaluationConfig(models=["popularity", "itemknn", "als"], k=5),
        progress=lambda m, f: progress.append((m, f)),
    )
    res.progress_seen = progress  # type: ignore[attr-defined]
    return res


def test_json_has_the_design_keys(result) -> None:
    out = json.loads(result.dumps())
    assert out["dataset"] == "demo-small" and out["k"] == 5
    assert out["split"]["method"] == "temporal" and out["split"]["test_users"] > 0
    for model in ("popularity", "itemknn", "als"):
        entry = out["models"][model]
        for metric in METRICS:
            assert f"{metric}@5" in entry
        assert entry["fit_seconds"] >= 0 and "diversity@5" in entry
        assert "new_items_only" in entry
        assert entry["revenue@5"] >= 0 and entry["revenue_total@5"] >= entry["revenue@5"]
        # a seeded 95 % bootstrap interval for every metric averaged over test shoppers
        assert set(entry["ci95"]) == {
            *(f"{m}@5" for m in METRICS if m != "coverage"),
            "diversity@5",
            "arp@5",
            "revenue@5",
            "revenue_total@5",
        }
        for metric, (low, high) in entry["ci95"].items():
            assert low - 1e-9 <= entry[metric] <= high + 1e-9, metric
    pair = out["comparisons"]["differences"]["itemknn-als"]["ndcg@5"]
    assert pair["difference"] == pytest.approx(
        out["models"]["itemknn"]["ndcg@5"] - out["models"]["als"]["ndcg@5"]
    )
    assert pair["ci95"][0] <= pair["difference"] <= pair["ci95"][1]
    assert "ranker_vs_best_single_stage" not in out["comparisons"]  # no ranker here
    assert "library_versions" in out["provenance"] and len(out["provenance"]["data_sha256"]) == 64
    assert out["classifier"] is None
    assert out["overall_probability"] is None  # no probability model here
    assert "folds" not in out and "summary" not in out  # one fold: the output is unchanged
    table = out["selection"]
    assert [r["model"] for r in table["rows"]] == ["popularity", "itemknn", "als"]
    for row in table["rows"]:
        assert row["low"] <= row["ndcg@5"] <= row["high"] and row["spread"] == "95% interval"
        assert row["train_seconds"] >= 0 and row["size_mb"] > 0 and row["explains"]
        assert row["train_memory_mb"] >= 0  # RSS growth while it trained (Linux)
    assert "resident memory" in table["memory"]
    assert table["recommendation"].split(":")[0] in ("popularity", "itemknn", "als")
    assert set(out["overlap"]) == {"popularity~itemknn", "popularity~als", "itemknn~als"}


def test_progress_is_reported_and_reaches_one(result) -> None:
    fractions = [f for _, f in result.progress_seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_models_beat_popularity_on_a_learnable_store(result) -> None:
    ndcg = {name: r.metrics["ndcg@5"] for name, r in result.models.items()}
    assert ndcg["itemknn"] > ndcg["popularity"]
    assert ndcg["als"] > ndcg["popularity"]


def test_per_user_metrics_average_to_the_model_metrics(result, small_store) -> None:
    res = result.models["itemknn"]
    assert res.per_user["ndcg@5"].mean() == pytest.approx(res.metrics["ndcg@5"])
    split = temporal_split(small_store.events, test_days=30, test_events=("purchase",))
    relevant = relevant_items(split, ("purchase",))
    assert len(res.per_user) == relevant["user_id"].nunique()


def test_metrics_table_has_one_row_per_model(result) -> None:
    table = result.metrics_table()
    assert list(table.index) == ["popularity", "itemknn", "als"]
    assert {"ndcg@5", "fit_seconds", "model_mb"} <= set(table.columns)


def test_random_split_without_timestamps(small_store) -> None:
    from recsys_core.data.schema import Dataset

    events = small_store.events.drop(columns="timestamp")
    ds = Dataset("no-time", events, small_store.catalog)
    res = evaluate(ds, EvaluationConfig(models=["popularity"], k=5))
    assert res.split["method"] == "random"
    assert any("random split" in n for n in res.notes)


def test_cli_evaluate_writes_json(small_store_csv: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "eval.json"
    code = main(
        [
            "evaluate",
            "--data",
            str(small_store_csv),
            "--models",
            "popularity,als",
            "--k",
            "5",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "ndcg@5" in captured.out and "fitting als" in captured.err
    assert "95% intervals" in captured.out and "revenue@5" in captured.out
    data = json.loads(out.read_text())
    assert set(data["models"]) == {"popularity", "als"}


def test_cli_evaluate_rejects_unknown_models_and_missing_input(small_store_csv: Path) -> None:
    assert main(["evaluate", "--data", str(small_store_csv), "--models", "svd"]) == 2
    assert main(["evaluate"]) == 2
    assert main(["evaluate", "--dataset", "nope"]) == 2


def test_relevant_items_deduplicates_repurchases() -> None:
    from recsys_core.data.schema import validate_events

    ev = validate_events(
        pd.DataFrame(
            {
                "user_id": ["a", "a", "a", "a"],
                "item_id": ["x", "y", "y", "y"],
                "event": ["purchase"] * 4,
                "timestamp": ["2024-01-01", "2024-03-01", "2024-03-02", "2024-03-03"],
            }
        )
    )
    split = temporal_split(ev, cutoff="2024-02-01")
    assert relevant_items(split, ("purchase",)).to_dict("records") == [
        {"user_id": "a", "item_id": "y"}
    ]


def test_views_only_timestamped_log_falls_back_to_all_events(small_store) -> None:
    """A log without purchases still evaluates: any test-period event is relevant, the ranker
    (which needs purchases for its labels) is skipped with its reason, the rest is kept."""
    from recsys_core.data.schema import Dataset

    events = small_store.events
    views = events[events["event"].astype(str) == "view"].reset_index(drop=True)
    ds = Dataset("views-only", views, small_store.catalog)
    res = evaluate(ds, EvaluationConfig(models=["popularity", "als", "ranker"], k=5))
    assert res.split["method"] == "temporal" and res.split["test_users"] > 0
    assert set(res.models) == {"popularity", "als"}
    assert set(res.skipped) == {"ranker"} and "purchase" in res.skipped["ranker"]
    assert any("every test-period event counts as relevant" in n for n in res.notes)
    assert res.models["als"].metrics["ndcg@5"] > 0
    out = json.loads(res.dumps())
    assert out["skipped"] == res.skipped


def test_all_models_without_timestamps_skip_the_ranker_and_keep_the_rest(
    small_store_csv: Path, tmp_path: Path, capsys
) -> None:
    frame = pd.read_csv(small_store_csv).drop(columns="timestamp")
    path = tmp_path / "no_time.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "eval.json"
    code = main(
        ["evaluate", "--data", str(path), "--models", "all", "--k", "5", "--json", str(out)]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "skipped ranker: the two-stage ranker needs timestamps" in captured.out
    data = json.loads(out.read_text())
    assert set(data["models"]) == {"popularity", "buy-again", "itemknn", "ease", "bpr", "als"}
    assert set(data["skipped"]) == {"ranker"} and "timestamps" in data["skipped"]["ranker"]
    assert data["split"]["method"] == "random"


def test_a_log_no_model_can_use_is_one_clear_error(small_store) -> None:
    from recsys_core.data.schema import Dataset
    from recsys_core.errors import DataValidationError

    ds = Dataset("no-time", small_store.events.drop(columns="timestamp"), small_store.catalog)
    with pytest.raises(DataValidationError, match="no model could run.*ranker: .*timestamps"):
        evaluate(ds, EvaluationConfig(models=["ranker"], k=5))


# ---------------------------------------------------------------- folds


def test_folds_report_each_fold_and_the_mean_min_max(small_store) -> None:
    config = EvaluationConfig(
        models=["popularity", "buy-again"], k=5, folds=3, test_days=20, bootstrap_resamples=20
    )
    res = evaluate(small_store, config)
    out = json.loads(res.dumps())

    cutoffs = [pd.Timestamp(f["cutoff"]) for f in out["folds"]]
    assert len(cutoffs) == 3
    assert all(b - a == pd.Timedelta(days=20) for a, b in zip(cutoffs, cutoffs[1:], strict=False))
    # the top level is the last (most recent) fold, as with one fold
    assert str(cutoffs[-1]) == out["split"]["cutoff"]
    assert out["folds"][-1]["models"]["buy-again"]["ndcg@5"] == out["models"]["buy-again"]["ndcg@5"]
    for model in ("popularity", "buy-again"):
        values = [f["models"][model]["ndcg@5"] for f in out["folds"]]
        summary = out["summary"][model]["ndcg@5"]
        assert summary["mean"] == pytest.approx(sum(values) / 3)
        assert summary["min"] == min(values) and summary["max"] == max(values)
    # on a shop where shoppers re-buy, their own items beat popularity in every fold
    assert all(
        f["models"]["buy-again"]["ndcg@5"] > f["models"]["popularity"]["ndcg@5"]
        for f in out["folds"]
    )


def test_the_ratio_best_is_chosen_before_the_test_window_and_overall_probability_is_scored(
    small_store,
) -> None:
    config = EvaluationConfig(
        models=["popularity", "buy-again", "ranker"],
        k=5,
        new_items_variant=False,
        bootstrap_resamples=50,
        model_params={"ranker": dict(SMALL_RANKER)},
    )
    out = json.loads(evaluate(small_store, config).dumps())

    ratio = out["comparisons"]["ranker_vs_best_single_stage"]
    assert ratio["chosen_on"].startswith("chosen on the validation window")
    cutoff = pd.Timestamp(out["split"]["cutoff"])
    assert f".. {cutoff.date()}" in ratio["chosen_on"]
    assert ratio["best_single_stage"] in ("popularity", "buy-again")
    overall = out["overall_probability"]
    for key in ("auc", "logloss", "brier", "ece", "ece_quantile"):
        assert overall[key] is not None
    # every known shopper's list, not only the test buyers'
    assert overall["shoppers"] > out["split"]["test_users"]
    assert 0 < overall["mean_predicted"] < 1 and overall["reliability_quantile"]
    # labelled over the horizon both models predict, not the whole (longer) test period
    assert overall["labels"] == f"bought in the {config.test_days:g} days from {cutoff}"
    # the JSON says which part misses: the split adds up to observed - predicted
    gap = overall["parts"]["gap"]
    assert gap["order_part"] + gap["purchase_part"] == pytest.approx(
        overall["positive_rate"] - overall["mean_predicted"], abs=1e-9
    )


def _three_shoppers() -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Served lists of a, b, c; order probabilities of a and b (c unknown); a bought x."""
    served = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "c"],
            "item_id": ["x", "y", "x", "x"],
            "purchase_probability": [0.5, 0.25, 1.0, 0.8],
        }
    )
    order = pd.Series({"a": 0.8, "b": 0.5}, name="order_probability")
    relevant = pd.DataFrame({"user_id": ["a"], "item_id": ["x"]})
    return served, order, relevant


def test_overall_probability_by_hand() -> None:
    served, order, relevant = _three_shoppers()

    metrics, tables = overall_probability_block(served, order, relevant)

    # c has no order probability (not a known shopper): left out; b did not order: a 0
    p = [0.4, 0.2, 0.5]
    y = [1, 0, 0]
    assert metrics["pairs"] == 3 and metrics["shoppers"] == 2
    assert metrics["brier"] == pytest.approx(
        sum((pi - yi) ** 2 for pi, yi in zip(p, y, strict=True)) / 3
    )
    assert metrics["mean_predicted"] == pytest.approx(sum(p) / 3)
    assert set(tables) == {"uniform", "quantile"}


def test_overall_probability_labels_stop_at_the_models_horizon() -> None:
    """The test period runs to the log's last event (up to a day past ``test_days``); a
    purchase after ``cutoff + test_days`` is outside what both models predict."""
    cutoff = pd.Timestamp("2024-01-01")
    test = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "c"],
            "item_id": ["x", "y", "x", "z", "x"],
            "event": ["purchase", "purchase", "view", "purchase", "purchase"],
            "timestamp": pd.to_datetime(
                [
                    "2024-01-02 00:00",
                    "2024-01-30 23:59",  # the last minute of 30 days
                    "2024-01-05 00:00",  # a view: not a purchase
                    "2024-01-31 00:00",  # day 31: the test period's extra part
                    "2024-01-31 10:00",
                ]
            ),
        }
    )
    labels = horizon_labels(test, cutoff, 30, ("purchase",))
    assert sorted(map(tuple, labels[["user_id", "item_id"]].to_numpy())) == [
        ("a", "x"),
        ("a", "y"),
    ]
    # a window without any relevant event falls back to every event, like the ranking's
    assert len(horizon_labels(test, cutoff, 10, ("purchase",))) == 1  # a's x only
    assert len(horizon_labels(test, cutoff, 4, ("favorite",))) == 1  # a's x


def test_overall_probability_says_which_part_is_off() -> None:
    """The product's mean error splits exactly into the order model's part (weighted by the
    served purchase probability) and the purchase model's part (among those who ordered)."""
    served, order, relevant = _three_shoppers()

    parts = overall_probability_block(served, order, relevant)[0]["parts"]

    # a ordered (bought x), b did not; c is unknown to the order model and left out
    assert parts["order"]["mean_predicted"] == pytest.approx(0.65)
    assert parts["order"]["observed"] == pytest.approx(0.5)
    assert parts["order"]["shoppers"] == 2
    given = parts["purchase_given_order"]
    assert given["pairs"] == 2 and given["mean_predicted"] == pytest.approx(0.375)
    assert given["observed"] == pytest.approx(0.5)
    gap = parts["gap"]
    assert gap["order_part"] == pytest.approx((0.2 * 0.5 + 0.2 * 0.25 - 0.5 * 1.0) / 3)
    assert gap["purchase_part"] == pytest.approx((0.5 - 0.25) / 3)
    assert gap["total"] == pytest.approx(1 / 3 - (0.4 + 0.2 + 0.5) / 3)  # observed - predicted
    # the product with the observed order: a's 0.5 and 0.25, b's 0
    assert parts["observed_order_x_purchase"]["ece"] == pytest.approx((0.5 + 0.25 + 0.0) / 3)


def test_overall_probability_needs_one_horizon() -> None:
    ranker = create_model("ranker", horizon_days=14)

    assert horizon_mismatch(ranker, 14) is None
    why = horizon_mismatch(ranker, 30)
    assert why is not None and "--test-days 14" in why and "horizon_days=30" in why


def test_the_recommendation_prefers_a_faster_model_within_the_spread() -> None:
    from recsys_core.evaluation.selection import recommend

    def row(model: str, mean: float, low: float, high: float, seconds: float) -> dict:
        return {
            "model": model,
            "ndcg@10": mean,
            "low": low,
            "high": high,
            "spread": "folds",
            "train_seconds": seconds,
            "explains": "x",
        }

    close = [row("ranker", 0.33, 0.31, 0.35, 300.0), row("buy-again", 0.32, 0.30, 0.34, 1.0)]
    assert recommend(close, "ndcg@10").startswith("buy-again: its ndcg@10 (0.3200) is not clearly")
    # paired: the ranker wins every fold, so overlapping spreads do not make buy-again close
    assert recommend(close, "ndcg@10", close_to_best=set()).startswith("ranker: the best")
    apart = [row("ranker", 0.39, 0.37, 0.41, 300.0), row("buy-again", 0.32, 0.30, 0.34, 1.0)]
    sentence = recommend(apart, "ndcg@10")
    assert sentence.startswith("ranker: the best ndcg@10 (0.3900), ahead of buy-again")
