"""Monitoring: drift against stored reference bins, alerts in SQLite, health, quality."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.cli import main
from recsys_core.monitoring import (
    AlertStore,
    alerts_db,
    drift_report,
    health,
    psi,
    reference_profile,
)
from recsys_core.serving import backup, registry
from recsys_core.serving.lab import record_metrics, save_lab
from recsys_core.training import TrainConfig, train_lab


@pytest.fixture(scope="module")
def store_halves() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A demo store cut in time: 90 days of training log, the next 90 days as a newer log."""
    from recsys_core.data.demo_store import generate_demo_store

    events, _ = generate_demo_store(n_users=1500, n_items=150, n_events=40_000, seed=4)
    cut = events["timestamp"].min().normalize() + pd.Timedelta(days=90)
    return events[events["timestamp"] < cut], events[events["timestamp"] >= cut]


@pytest.fixture(scope="module")
def trained_home(store_halves, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recsys_core.data.demo_store import generate_demo_store
    from recsys_core.data.schema import Dataset

    train, _ = store_halves
    _, catalog = generate_demo_store(n_users=1500, n_items=150, n_events=40_000, seed=4)
    home = tmp_path_factory.mktemp("monitor_home")
    lab = train_lab(
        Dataset("drift-store", train.reset_index(drop=True), catalog),
        TrainConfig(models=["popularity", "itemknn"]),
    )
    save_lab(lab, home=home)
    return home


@pytest.fixture()
def home(trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import shutil

    copy = tmp_path / "home"
    shutil.copytree(trained_home, copy)
    monkeypatch.setenv("RECSYS_HOME", str(copy))
    return copy


def _shifted(events: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """20 % of events on items never seen, half of the views dropped."""
    rng = np.random.default_rng(seed)
    events = events.copy()
    events["item_id"] = events["item_id"].astype(str)
    moved = rng.random(len(events)) < 0.2
    events.loc[moved, "item_id"] = [f"NEW{i:03d}" for i in rng.integers(0, 50, moved.sum())]
    drop = (events["event"].astype(str) == "view").to_numpy() & (rng.random(len(events)) < 0.5)
    return events[~drop]


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_psi_is_zero_for_equal_bins_and_finite_for_empty_ones() -> None:
    assert psi([10, 20, 30], [10, 20, 30]) == pytest.approx(0.0)
    assert psi([100, 200, 300], [10, 20, 30]) < 0.01  # smoothing matters little
    assert np.isfinite(psi([10, 0, 30], [0, 25, 0]))
    assert psi([50, 50], [90, 10]) > psi([50, 50], [60, 40]) > 0


def test_reference_profile_is_stored_with_the_version(home: Path) -> None:
    folder = registry.resolve_version(home=home)
    reference = json.loads((folder / "drift_reference.json").read_text())
    assert reference["shoppers"] > 0 and sum(reference["item_group_counts"]) == reference["events"]
    assert set(reference["event_mix"]) >= {"view", "purchase"}
    assert "drift_reference.json" in json.loads((folder / "checksums.json").read_text())["files"]


def test_same_generator_no_alert_shifted_alert_and_exit_code(
    home: Path, store_halves, tmp_path: Path, capsys
) -> None:
    _, newer = store_halves
    same = _csv(newer, tmp_path / "same.csv")
    assert main(["monitor", "--data", str(same), "--no-quality", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert not [m for m in result["drift"]["metrics"] if m["drifted"]]
    assert result["alerts"] == [] and result["health"]["status"] == "ok"

    shifted = _csv(_shifted(newer), tmp_path / "shifted.csv")
    assert main(["monitor", "--data", str(shifted), "--no-quality"]) == 1
    out = capsys.readouterr().out
    assert "DRIFT" in out and "new_items" in out and "[critical]" in out
    open_alerts = AlertStore(alerts_db(home)).alerts()
    keys = {a["key"] for a in open_alerts}
    assert {"drift-store:drift:new_items", "drift-store:drift:event_mix"} <= keys
    assert all(a["action"] and a["what"] and a["first_seen"] for a in open_alerts)

    # deduplicated: the same finding again updates the open alerts instead of adding rows
    assert main(["monitor", "--data", str(shifted), "--no-quality"]) == 1
    again = AlertStore(alerts_db(home)).alerts()
    assert len(again) == len(open_alerts) and all(a["times"] == 2 for a in again)
    assert main(["monitor"]) == 1  # still open: exits non-zero while a critical alert is open

    # a later check without drift resolves them; the alert rows stay as history
    assert main(["monitor", "--data", str(same), "--no-quality"]) == 0
    db = sqlite3.connect(alerts_db(home))
    assert db.execute("SELECT COUNT(*) FROM alerts WHERE status = 'resolved'").fetchone()[0] == len(
        open_alerts
    )


def test_small_no_drift_samples_do_not_alarm(store_halves, trained_home: Path) -> None:
    """Calibrated thresholds: samples of 100 shoppers of the same shop stay quiet."""
    train, newer = store_halves
    reference = reference_profile(train)
    rng = np.random.default_rng(0)
    shoppers = newer["user_id"].astype(str).unique()
    alarms = fixed = 0
    for _ in range(20):
        chosen = rng.choice(shoppers, 100, replace=False)
        report = drift_report(reference, newer[newer["user_id"].astype(str).isin(chosen)])
        alarms += bool(report.drifted)
        fixed += any(m.value > 0.1 for m in report.metrics if m.name != "new_shoppers")
    assert alarms <= 1
    fixed_cutoff = fixed
    assert fixed_cutoff >= 1  # a fixed PSI 0.1 cut-off would have raised alarms


def test_damaged_active_version_is_a_critical_alert_until_restored(
    home: Path, tmp_path: Path, capsys
) -> None:
    archive = tmp_path / "b.tar.gz"
    backup.backup(archive, home)
    folder = registry.resolve_version(home=home)
    target = folder / "itemknn" / "arrays.npz"
    target.write_bytes(target.read_bytes()[:-10])
    assert main(["monitor"]) == 1
    assert "itemknn" in capsys.readouterr().out
    backup.restore(archive, home)
    assert main(["monitor"]) == 0


def test_quality_regression_against_recorded_metrics(
    home: Path, store_halves, tmp_path: Path, capsys
) -> None:
    from recsys_core.serving.lab import load_lab

    _, newer = store_halves
    lab = load_lab(registry.resolve_version(home=home))
    metrics = json.loads(json.dumps(lab.manifest["metrics"]))
    assert metrics["models"]["itemknn"]["ndcg@10"] > 0  # recorded at training
    metrics["models"]["itemknn"]["ndcg@10"] = 0.95  # pretend it once was excellent
    record_metrics(lab, metrics)
    assert registry.verify_version(lab.path).ok  # the manifest's checksum was refreshed
    data = _csv(newer, tmp_path / "newer.csv")
    assert main(["monitor", "--data", str(data), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["quality"]["itemknn"]["recorded"] == 0.95
    assert result["quality"]["itemknn"]["change"] < -0.6
    assert any(a["key"] == "drift-store:quality:itemknn" for a in result["alerts"])


def test_health_reports_answers_of_a_live_service(home: Path) -> None:
    from recsys_core.serving.live import LiveService

    live = LiveService(check_interval=0)
    for user in ["nobody", "U0001", "U0002"]:
        live.recommend(user, 5, "itemknn", policy="lab-rule")
    state = health(live=live)
    assert state["status"] == "ok" and state["verification"] == "ok"
    assert state["answers"]["answers"] == 3
    assert state["answers"]["degraded_share"] == pytest.approx(1 / 3, abs=1e-3)
    assert state["answers"]["latency_ms"]["p50"] > 0


def test_alerts_command_lists_and_resolves(home: Path, capsys) -> None:
    store = AlertStore()
    first = store.raise_alert("x:test", "critical", "something broke", "fix it", dataset="x")
    assert store.raise_alert("x:test", "critical", "something broke", "fix it") == first
    assert main(["alerts"]) == 0
    assert "something broke" in capsys.readouterr().out
    assert main(["monitor"]) == 1
    assert main(["alerts", "--resolve", str(first)]) == 0
    assert main(["alerts", "--resolve", str(first)]) == 2
    assert main(["monitor"]) == 0


# ------------------------------------------------------------------ issue 23


def test_nothing_servable_is_a_critical_alert_and_exit_1(tmp_path: Path, capsys) -> None:
    """``monitor`` with nothing trained (or unreadable pointers) said "health: down" and
    exited 0 without an alert."""
    assert main(["monitor"]) == 1
    assert "health: down" in capsys.readouterr().out
    open_alerts = AlertStore(alerts_db()).alerts()
    assert [a["severity"] for a in open_alerts] == ["critical"]
    assert "nothing can be served" in open_alerts[0]["what"]


def test_damaged_last_pointer_is_down_and_critical(home: Path, capsys) -> None:
    assert main(["monitor"]) == 0
    (registry.models_root(home) / "LAST").write_bytes(b"\x00\xffgarbage")
    assert main(["monitor"]) == 1
    out = capsys.readouterr().out
    assert "health: down" in out and "damaged" in out
    registry.rollback("drift-store", home=home)  # repairs LAST (nothing older: re-activates)
    assert main(["monitor"]) == 0  # and the down alert is resolved


def test_shopper_activity_is_compared_per_unit_of_time(store_halves, trained_home: Path) -> None:
    """A random half of the training rows, or its last 60 days, is not a critical activity
    drift; a log without timestamps is "not comparable"."""
    train, _ = store_halves
    reference = json.loads(
        (registry.resolve_version(home=trained_home) / "drift_reference.json").read_text()
    )
    last_60 = train[train["timestamp"] >= train["timestamp"].max() - pd.Timedelta(days=60)]
    for newer in (train.sample(frac=0.5, random_state=1), last_60):
        activity = next(
            m for m in drift_report(reference, newer).metrics if m.name.startswith("shopper")
        )
        assert activity.severity != "critical", activity
        assert "per 90 days" in activity.detail or "per 89 days" in activity.detail
    undated = train.drop(columns=["timestamp"])
    report = drift_report(reference, undated)
    activity = next(m for m in report.metrics if m.name == "shopper_activity")
    assert not activity.drifted and activity.threshold is None
    assert "not comparable" in activity.detail
