"""Repeat detection: the repeat rate of a log and the already-bought default that follows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recsys_core.cli import main
from recsys_core.data.schema import Dataset, validate_events
from recsys_core.evaluation import EvaluationConfig, evaluate
from recsys_core.repeats import REPEAT_RATE_THRESHOLD, repeat_profile


def _log(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return validate_events(pd.DataFrame(rows, columns=["user_id", "item_id", "event", "timestamp"]))


def test_repeat_rate_counts_pairs_bought_on_two_or_more_days() -> None:
    # pairs: (a,x) bought on 2 days, (a,y) twice on one day, (b,x) once; a view does not count
    events = _log(
        [
            ("a", "x", "purchase", "2024-01-01 09:00"),
            ("a", "x", "purchase", "2024-01-05 09:00"),
            ("a", "y", "purchase", "2024-01-05 09:00"),
            ("a", "y", "purchase", "2024-01-05 17:00"),
            ("b", "x", "purchase", "2024-01-03 09:00"),
            ("b", "z", "view", "2024-01-03 09:00"),
            ("b", "z", "view", "2024-01-04 09:00"),
        ]
    )
    profile = repeat_profile(events)
    assert (profile.pairs, profile.repeated_pairs) == (3, 1)
    assert profile.repeat_rate == pytest.approx(1 / 3)
    assert profile.counted == "purchase days"
    assert not profile.filter_seen and "re-buy" in profile.reason
    without_time = repeat_profile(events.drop(columns="timestamp"))
    assert without_time.repeated_pairs == 2 and without_time.counted == "purchase events"


def _one_purchase_per_pair(n_users: int = 120, n_items: int = 60) -> pd.DataFrame:
    """A shop where nobody buys the same item twice, with a 30-day test period at the end."""
    rows = []
    for u in range(n_users):
        for j in range(8):
            item = (u * 7 + j * 5) % n_items
            day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=(u + j * 13) % 90)
            rows.append((f"u{u}", f"i{item}", "purchase", str(day)))
    return _log(rows)


def test_a_shop_without_rebuying_removes_already_bought_items_by_default(tmp_path: Path) -> None:
    events = _one_purchase_per_pair()
    profile = repeat_profile(events)
    assert profile.repeat_rate == 0.0 < REPEAT_RATE_THRESHOLD
    assert profile.filter_seen and "rarely re-buy" in profile.reason

    ds = Dataset("once-per-shopper", events, None)
    auto = evaluate(ds, EvaluationConfig(models=["popularity"], k=5))
    rule = auto.split["already_bought"]
    assert rule["filter_seen"] is True and rule["source"] == "repeat rate"
    assert any("already-bought items removed" in n for n in auto.notes)
    # no price column: no revenue figure, and the output says why
    assert "revenue@5" not in auto.models["popularity"].metrics
    assert any("no prices" in n for n in auto.notes)
    seen = set(zip(events["user_id"].astype(str), events["item_id"].astype(str), strict=True))
    listed = auto.models["popularity"].recommendations
    train_pairs = {
        (u, i)
        for u, i, t in zip(
            events["user_id"].astype(str),
            events["item_id"].astype(str),
            events["timestamp"],
            strict=True,
        )
        if t < pd.Timestamp(auto.split["cutoff"])
    }
    assert seen and not train_pairs & set(
        zip(listed["user_id"].astype(str), listed["item_id"].astype(str), strict=True)
    )

    kept = evaluate(ds, EvaluationConfig(models=["popularity"], k=5, filter_seen=False))
    assert kept.split["already_bought"]["source"] == "flag"
    assert "--keep-seen" in kept.split["already_bought"]["why"]

    # the CLI flag overrides, and the JSON says which default applied and why
    path = tmp_path / "log.csv"
    events.to_csv(path, index=False)
    out = tmp_path / "eval.json"
    args = ["evaluate", "--data", str(path), "--models", "popularity", "--json", str(out)]
    assert main(args) == 0
    assert json.loads(out.read_text())["split"]["already_bought"]["filter_seen"] is True
    assert main([*args, "--keep-seen"]) == 0
    data = json.loads(out.read_text())
    assert data["split"]["already_bought"]["filter_seen"] is False
    assert data["split"]["already_bought"]["source"] == "flag"


def test_online_retail_slice_keeps_reorders(online_retail_slice: pd.DataFrame) -> None:
    from recsys_core.data.loaders import online_retail_from_frame

    events = online_retail_from_frame(online_retail_slice).events
    profile = repeat_profile(events)
    assert profile.repeat_rate > 0.1 and not profile.filter_seen


# ---------------------------------------------------------------- every event type counts


def test_the_return_rate_counts_every_event_type() -> None:
    # purchases never repeat, but (b, z) was viewed on two days: 1 of 4 pairs came back
    events = _log(
        [
            ("a", "x", "purchase", "2024-01-01 09:00"),
            ("a", "y", "view", "2024-01-02 09:00"),
            ("b", "x", "purchase", "2024-01-03 09:00"),
            ("b", "z", "view", "2024-01-03 09:00"),
            ("b", "z", "cart", "2024-01-04 09:00"),
        ]
    )
    profile = repeat_profile(events)
    assert profile.repeat_rate == 0 and profile.return_rate == pytest.approx(1 / 4)
    assert profile.removes == "bought" and profile.filter_seen  # viewed items stay
    once = repeat_profile(events[events["item_id"] != "z"])
    assert once.return_rate == 0 and once.removes == "seen"
    assert "never come back" in once.reason and "viewed ones too" in once.reason
    assert once.to_dict()["removes"] == "seen"


def test_a_log_where_every_item_is_consumed_once_leaves_out_seen_items() -> None:
    from recsys_core.tuning.variants import CONSUMED_ONCE, demo_variant

    dataset = demo_variant(CONSUMED_ONCE)
    events = dataset.events
    assert not events.duplicated(["user_id", "item_id"]).any()
    result = evaluate(
        dataset,
        EvaluationConfig(
            models=["popularity", "itemknn"], new_items_variant=False, bootstrap_resamples=0
        ),
    )
    rule = result.split["already_bought"]
    assert rule["source"] == "repeat rate" and rule["removes"] == "seen"
    assert rule["lists_without_seen"] and rule["repeat"]["return_rate"] == 0
    assert "never come back" in rule["why"]
    cutoff = pd.Timestamp(result.split["cutoff"])
    train = events[events["timestamp"] < cutoff]
    viewed = set(zip(train["user_id"].astype(str), train["item_id"].astype(str), strict=True))
    for res in result.models.values():
        reco = res.recommendations
        listed = set(zip(reco["user_id"], reco["item_id"], strict=True))
        assert not listed & viewed


def test_settings_that_remove_bought_items_remove_seen_ones_where_shoppers_never_return() -> None:
    # the bench finding: a tune result's "remove already-bought" brought viewed items back
    # into the lists of a consumed-once log (item-kNN NDCG@10 0.19 -> 0.06)
    from types import SimpleNamespace

    from recsys_core.evaluation.protocol import list_rule, seen_pairs
    from recsys_core.tuning.variants import CONSUMED_ONCE, demo_variant

    train = demo_variant(CONSUMED_ONCE).events
    settings = SimpleNamespace(
        preset=SimpleNamespace(filter_seen=True), repeat_reason="chosen by tune"
    )
    rule = list_rule(EvaluationConfig(), settings, train, seen_pairs(train))

    assert rule.description["source"] == "settings"
    assert rule.removes == "seen" and rule.description["lists_without_seen"]

    asked = list_rule(EvaluationConfig(filter_bought=True), settings, train, seen_pairs(train))
    assert asked.removes == "bought"  # the caller's --filter-bought wins: viewed items stay
