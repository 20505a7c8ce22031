"""Scaled defaults, the validation-window search and saved settings, on 500-shopper demo-store
variants (no repurchases; views plus few purchases; no timestamps)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys_core.cli import main
from recsys_core.columns import Columns
from recsys_core.data.schema import Dataset
from recsys_core.evaluation import EvaluationConfig, evaluate
from recsys_core.interactions import InteractionMatrix
from recsys_core.models import create_model
from recsys_core.presets import Preset
from recsys_core.split import Split
from recsys_core.training import TrainConfig, train_lab
from recsys_core.tuning import (
    profile_log,
    scaled_defaults,
    settings_for,
    tuned_path,
)
from recsys_core.tuning import search as search_module
from recsys_core.tuning.search import TuneConfig, tune_dataset, validation_split
from recsys_core.tuning.variants import VARIANTS, demo_variant


@pytest.fixture(scope="module")
def variants() -> dict[str, Dataset]:
    return {name: demo_variant(name) for name in VARIANTS}


# ------------------------------------------------------------------------------ scaled defaults


def test_scaled_defaults_follow_the_log(variants: dict[str, Dataset]) -> None:
    with_repeat = scaled_defaults(variants["no-timestamps"].events)
    # with views or without, the training data's repeat rate decides whether the items a
    # shopper bought leave the lists (recsys_core.repeats; viewed items always stay)
    assert with_repeat.filter_seen is None
    purchases_only = variants["no-timestamps"].events.query("event == 'purchase'")
    assert scaled_defaults(purchases_only).filter_seen is None
    assert profile_log(variants["no-repurchases"].events).repeat_rate == 0
    profile = profile_log(variants["no-timestamps"].events)
    # a cart converts more often than a view, so it weighs more; both less than a purchase
    w = with_repeat.weights
    assert w.view == pytest.approx(round(5 * profile.conversion["view"], 2))
    assert w.view < w.cart < w.purchase
    views_only = scaled_defaults(variants["views-few-purchases"].events)
    assert views_only.weights.view < w.view  # views convert less when purchases are rare
    small = scaled_defaults(variants["no-timestamps"].events.head(3000))
    assert small.model_params["als"]["factors"] < with_repeat.model_params["als"]["factors"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_scaled_defaults_beat_popularity(variants: dict[str, Dataset], variant: str) -> None:
    dataset = variants[variant]
    result = evaluate(
        dataset,
        EvaluationConfig(models=["popularity", "itemknn", "als"], new_items_variant=False),
    )
    assert "settings: scaled defaults" in result.notes
    rule = result.split["already_bought"]
    assert rule["source"] == "repeat rate"
    # shoppers who rarely re-buy lose only their bought items; viewed ones stay in the lists
    assert rule["removes"] in ("bought", "nothing") and not rule["lists_without_seen"]
    ndcg = {name: r.metrics["ndcg@10"] for name, r in result.models.items()}
    assert ndcg["als"] > ndcg["popularity"]
    assert ndcg["itemknn"] > ndcg["popularity"]


# ------------------------------------------------------------------------------ the search


@dataclasses.dataclass(frozen=True)
class _TrainOnly:
    """A split whose test part cannot be read."""

    train: pd.DataFrame
    method: str
    cutoff: Any

    @property
    def test(self) -> pd.DataFrame:
        raise AssertionError("the tuner read the test part of the split")

    cold_test = test


def test_tune_never_reads_the_test_window(
    variants: dict[str, Dataset], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_split = search_module.split_events
    real_tune = search_module.tune_training_events
    seen: dict[str, Any] = {}

    def guarded_split(events: pd.DataFrame, **kwargs: Any) -> _TrainOnly:
        split: Split = real_split(events, **kwargs)
        seen["cutoff"] = split.cutoff
        return _TrainOnly(split.train, split.method, split.cutoff)

    def spying_tune(train: pd.DataFrame, *args: Any, **kwargs: Any) -> Any:
        seen["latest"] = train[Columns.TIMESTAMP].max()
        return real_tune(train, *args, **kwargs)

    monkeypatch.setattr(search_module, "split_events", guarded_split)
    monkeypatch.setattr(search_module, "tune_training_events", spying_tune)
    config = TuneConfig(models=["itemknn", "als"], trials=2, budget_minutes=1)
    tune_dataset(variants["no-repurchases"], config, save=False)
    assert seen["latest"] < seen["cutoff"]


def test_tune_result_does_not_change_when_the_test_window_does(
    variants: dict[str, Dataset],
) -> None:
    dataset = variants["no-repurchases"]
    config = TuneConfig(models=["itemknn"], trials=4, budget_minutes=1)
    first, _ = tune_dataset(dataset, config, save=False)
    events = dataset.events.copy()
    cutoff = (events[Columns.TIMESTAMP].max() - pd.Timedelta(days=30)).normalize()
    late = (events[Columns.TIMESTAMP] >= cutoff).to_numpy()
    items = events[Columns.ITEM].astype(str).to_numpy()
    items[late] = np.random.default_rng(0).permutation(items[late])  # other test purchases
    changed = dataclasses.replace(dataset, events=events.assign(**{Columns.ITEM: items}))
    second, _ = tune_dataset(changed, config, save=False)
    assert [t.ndcg for t in first.trials] == [t.ndcg for t in second.trials]
    assert first.preset == second.preset


class _TrialClock:
    """A clock that moves only while a trial runs, by ``step`` seconds per trial, so the
    budget logic is checked by counting trials, not by this machine's speed."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def perf_counter(self) -> float:
        return self.now


def test_tune_respects_the_budget(
    variants: dict[str, Dataset], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _TrialClock(step=1.0)
    run_trial = search_module._run_trial

    def timed_trial(*args: Any, **kwargs: Any) -> Any:
        try:
            return run_trial(*args, **kwargs)
        finally:
            clock.now += clock.step

    monkeypatch.setattr(search_module, "time", clock)
    monkeypatch.setattr(search_module, "_run_trial", timed_trial)
    budget = 0.1  # minutes: 6 trial-seconds, ALS gets 0.5 / 0.7 of them, item-kNN the rest
    result, _ = tune_dataset(
        variants["no-timestamps"],
        TuneConfig(models=["als", "itemknn"], budget_minutes=budget),
        save=False,
    )
    assert result.validation["method"] == "random"
    counts = {m: sum(t.model == m for t in result.trials) for m in ("als", "itemknn")}
    # ALS: deadline 6 * 0.5 / 0.7 = 4.29 s; a trial starts while now + 1 s fits: 4 trials.
    # item-kNN: from 4 s to the budget's end (6 s): 2 trials. No trial would overrun.
    assert counts == {"als": 4, "itemknn": 2}
    assert result.seconds == 6.0 == budget * 60


def _validation_ndcg(dataset: Dataset, preset: Preset, model: str, config: TuneConfig) -> float:
    """Refit ``model`` with ``preset`` on the validation window (independent of the search)."""
    train, _ = search_module.training_part(dataset.events, config)
    validation = search_module._prepare(train, config)
    weights = preset.model_weights.get(model, preset.weights)
    matrix = InteractionMatrix.from_events(validation_split(train, config).train, weights)
    fitted = create_model(model, **preset.model_params[model], seed=config.seed).fit(matrix)
    score, _ = validation.score(fitted)
    return score


@pytest.mark.slow
def test_tuned_settings_do_at_least_as_well_on_validation_as_the_defaults(
    variants: dict[str, Dataset],
) -> None:
    dataset = variants["views-few-purchases"]
    config = TuneConfig(models=["als", "itemknn"], trials=4, budget_minutes=1)
    result, _ = tune_dataset(dataset, config, save=False)
    train, _ = search_module.training_part(dataset.events, config)
    defaults = scaled_defaults(train)
    for model in ("als", "itemknn"):
        assert result.best_ndcg[model] >= result.default_ndcg[model]
        tuned = _validation_ndcg(dataset, result.preset, model, config)
        baseline = _validation_ndcg(dataset, defaults, model, config)
        assert tuned == pytest.approx(result.best_ndcg[model])  # refitting reproduces it
        assert tuned >= baseline - 1e-12


# ------------------------------------------------------------------------------ saved settings


def test_saved_settings_are_reused_and_ignored_when_the_data_changes(
    variants: dict[str, Dataset],
) -> None:
    dataset = variants["no-repurchases"]
    assert settings_for(dataset).origin == "scaled defaults"
    _, tuned = tune_dataset(dataset, TuneConfig(models=["itemknn"], trials=3), save=True)
    assert tuned_path(dataset.name).exists()
    applied = settings_for(dataset)
    assert applied.origin == "tuned" and applied.label.startswith("tuned on ")
    assert applied.preset == tuned.preset
    result = evaluate(dataset, EvaluationConfig(models=["itemknn"], new_items_variant=False))
    assert result.provenance["settings"] == applied.label
    assert result.split["already_bought"]["source"] == "settings"  # tune chose it
    assert result.split["already_bought"]["filter_seen"] == tuned.preset.filter_seen
    assert (
        result.models["itemknn"].params["neighbours"]
        == (tuned.preset.model_params["itemknn"]["neighbours"])
    )
    lab = train_lab(dataset, TrainConfig(models=["itemknn"]))
    assert lab.manifest["settings"]["origin"] == "tuned"
    assert (
        lab.models["itemknn"].config.neighbours
        == (tuned.preset.model_params["itemknn"]["neighbours"])
    )

    changed = dataclasses.replace(dataset, events=dataset.events.iloc[:-100])
    stale = settings_for(changed)
    assert stale.origin == "scaled defaults"
    assert any("other data" in note for note in stale.notes)


def test_cli_tune_and_settings(
    variants: dict[str, Dataset], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shop.csv"
    variants["no-timestamps"].events.to_csv(path, index=False)
    code = main(["tune", "--data", str(path), "--models", "itemknn", "--trials", "3"])
    assert code == 0
    out = capsys.readouterr()
    assert "settings: tuned on" in out.out and "trials |" in out.err and "left]" in out.err
    assert main(["settings", "--data", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["origin"] == "tuned"
    assert main(["tune", "--data", str(path), "--models", "svd"]) == 2


def test_built_in_datasets_get_their_preset_with_its_spark_settings() -> None:
    from recsys_core.data.builtin import load_dataset
    from recsys_core.presets import preset_for

    applied = settings_for(load_dataset("online-retail"))
    assert applied.origin == "preset" and applied.label == "preset"
    assert applied.preset == preset_for("online-retail")


def test_settings_tuned_on_a_window_that_reaches_the_test_window_are_refused(
    variants: dict[str, Dataset],
) -> None:
    dataset = variants["no-repurchases"]
    late = "2024-06-20"
    _, tuned = tune_dataset(
        dataset, TuneConfig(models=["itemknn"], trials=2, cutoff=late), save=True
    )
    assert tuned.validation_window is not None
    assert tuned.validation_window["end"] == str(pd.Timestamp(late))
    assert settings_for(dataset).origin == "tuned"  # no test window: usable

    # evaluate's own (earlier) test window starts before the search's data ended: refused
    result = evaluate(dataset, EvaluationConfig(models=["itemknn"], new_items_variant=False))
    assert pd.Timestamp(result.split["cutoff"]) < pd.Timestamp(late)
    assert not result.provenance["settings"].startswith("tuned")
    assert any("reaches this test window" in note and "ignored" in note for note in result.notes)

    # a test window from the search's end on may use them
    later = settings_for(dataset, test_cutoff=late)
    assert later.origin == "tuned" and later.preset == tuned.preset
    refused = settings_for(dataset, test_cutoff="2024-06-19")
    assert refused.origin == "scaled defaults"
    assert any("--cutoff 2024-06-19" in note for note in refused.notes)


def test_a_tuned_setting_is_kept_only_when_its_gain_is_beyond_chance() -> None:
    from recsys_core.tuning.guard import keep_only_real_gains

    @dataclasses.dataclass
    class Setting:
        params: dict[str, Any]
        weights: Any = None

    rng = np.random.default_rng(0)
    base = rng.random(100)
    scores = {
        ("lucky", "tuned"): base + rng.normal(0.0, 0.2, 100),  # noise around the defaults
        ("lucky", "default"): base,
        ("better", "tuned"): base + 0.1 + rng.normal(0.0, 0.05, 100),
        ("better", "default"): base,
    }
    best = {m: Setting({"which": "tuned"}) for m in ("lucky", "better", "same")}
    defaults = {m: Setting({"which": "default"}) for m in ("lucky", "better")}
    defaults["same"] = best["same"]

    guard = keep_only_real_gains(
        best, defaults, lambda m, s: scores[(m, s.params["which"])], seed=1
    )

    assert guard["lucky"]["kept"] == "defaults" and best["lucky"] is defaults["lucky"]
    low, high = guard["lucky"]["ci95"]
    assert low <= 0 <= high and "defaults are kept" in guard["lucky"]["why"]
    assert guard["better"]["kept"] == "tuned" and best["better"].params["which"] == "tuned"
    assert guard["better"]["ci95"][0] > 0 and guard["better"]["validation_shoppers"] == 100
    assert guard["same"]["kept"] == "defaults"
