"""The Operations page, driven headless with AppTest, and its helpers in ui/operations.py.

AppTest cannot feed ``st.file_uploader``: the restore and drift uploads are the functions
:func:`ui.operations.restore_upload` and :func:`ui.operations.drift_upload`, tested
directly; the page is then run to show what they left behind.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from recsys_core.serving import backup, registry
from ui import state

#: Run on its own: through app.py the default page (Overview) would train the app's dataset.
PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "operations.py")


@pytest.fixture(scope="module")
def ops_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    """Two saved versions of a small store (trained on its first 90 days), its CSV and the
    newer 90 days."""
    from recsys_core.data.demo_store import generate_demo_store
    from recsys_core.data.schema import Dataset
    from recsys_core.serving.lab import save_lab
    from recsys_core.training import TrainConfig, train_lab

    root = tmp_path_factory.mktemp("ops_app")
    events, catalog = generate_demo_store(n_users=800, n_items=120, n_events=20_000, seed=3)
    cut = events["timestamp"].min().normalize() + pd.Timedelta(days=90)
    train = events[events["timestamp"] < cut].reset_index(drop=True)
    csv = root / "store.csv"
    train.to_csv(csv, index=False)
    home = root / "home"
    lab = train_lab(Dataset("ops-store", train, catalog), TrainConfig(models=["popularity", "als"]))
    save_lab(lab, home=home)
    save_lab(lab, home=home)
    return home, csv, events[events["timestamp"] >= cut]


@pytest.fixture()
def home(ops_home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    src, csv, _ = ops_home
    copy = tmp_path / "home"
    shutil.copytree(src, copy)
    monkeypatch.setenv("RECSYS_HOME", str(copy))
    monkeypatch.setenv(state.ENV_DATA, str(csv))
    monkeypatch.delenv(state.ENV_DATASET, raising=False)
    from ui.operations import live_service

    live_service.clear()  # one live service per test's home
    yield copy


def _page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _table(at: AppTest, column: str) -> pd.DataFrame:
    for frame in at.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with {column!r}")


def test_page_shows_versions_health_and_rolls_back(home: Path) -> None:
    at = _page()
    assert at.title[0].value == "Operations"
    versions = _table(at, "verification")
    assert len(versions) == 2 and (versions["verification"] == "ok").all()
    assert versions["active"].tolist() == [True, False]
    assert "ndcg@10 als" in versions.columns and versions["size (MB)"].gt(0).all()
    assert {m.label: m.value for m in at.metric}["Status"] == "ok"
    newer, older = versions["version"].tolist()

    at.button(key="ops_rollback").click().run()
    assert registry.active_version("ops-store", home) == older
    at.selectbox(key="ops_activate_choice").set_value(newer)
    at.button(key="ops_activate").click().run()
    assert registry.active_version("ops-store", home) == newer
    assert [h["why"] for h in registry.activation_history("ops-store", home)[:2]] == [
        "activate",
        "rollback",
    ]

    at.button(key="ops_probe").click().run()
    assert any("items from" in i.value for i in at.info)
    at.run()  # the health window is drawn above the probe: the next run counts it
    assert "last 1 answers" in " ".join(c.value for c in at.caption)


def test_damage_is_shown_and_a_backup_restore_heals_it(home: Path) -> None:
    from ui.operations import make_backup, restore_upload

    at = _page()
    at.button(key="ops_backup").click().run()
    assert any("Backed up 2 version(s)" in s.value for s in at.success)
    name, data, _ = make_backup()
    folder = registry.resolve_version(home=home)
    target = folder / "als" / "arrays.npz"
    target.write_bytes(target.read_bytes()[:-5])

    at = _page()
    assert any("fail verification" in e.value for e in at.error)
    assert any("**als**" in w.value for w in at.warning)
    assert {m.label: m.value for m in at.metric}["Status"] == "degraded"

    with pytest.raises(backup.BackupRefusedError):
        restore_upload("junk.tar.zst", b"\x28\xb5\x2f\xfd" + b"junk" * 100)
    result = restore_upload(name, data)
    assert result.healed == [f"ops-store/{folder.name}"]
    at = _page()
    assert not at.error
    assert {m.label: m.value for m in at.metric}["Status"] == "ok"


def test_drift_upload_raises_alerts_shown_and_resolved_on_the_page(home: Path, ops_home) -> None:
    from ui.operations import drift_frame, drift_upload

    _, _, newer = ops_home
    same = drift_upload("newer.csv", newer.to_csv(index=False).encode(), "ops-store")
    assert not drift_frame(same)["drift"].any()
    shifted = newer.copy()
    shifted["item_id"] = shifted["item_id"].astype(str)
    rng = np.random.default_rng(0)
    moved = rng.random(len(shifted)) < 0.3
    shifted.loc[moved, "item_id"] = "BRAND-NEW"
    result = drift_upload("shifted.csv", shifted.to_csv(index=False).encode(), "ops-store")
    assert drift_frame(result).set_index("metric").loc["new_items", "drift"]

    at = _page()
    alerts = _table(at, "action")
    assert (alerts["severity"] == "critical").any()
    for _ in range(len(alerts)):
        at.button(key="ops_alert_resolve").click().run()
    assert any("No open alerts" in s.value for s in at.success)


def test_a_restore_says_which_damaged_pointers_it_repaired(home: Path) -> None:
    """Issue 23 (4): restore rewrites a damaged ACTIVE or LAST; the page says so (it only
    counted added, healed and intact versions)."""
    from ui.operations import make_backup, restore_report, restore_upload

    name, data, _ = make_backup()
    (home / "models" / "ops-store" / "ACTIVE").write_bytes(b"\x00\xffgarbage")
    (home / "models" / "LAST").write_bytes(b"\x00\xffgarbage")
    result = restore_upload(name, data)
    # LAST was rewritten by the re-activation: it was reported only when repaired on its own
    assert sorted(result.repaired) == ["LAST", "ops-store/ACTIVE"]
    report = restore_report(result)
    assert report[0][0] == "success" and "2 already intact" in report[0][1]
    repaired = [text for level, text in report if level == "info"]
    assert repaired and "`models/ops-store/ACTIVE`" in repaired[0]
    assert "`models/LAST`" in repaired[0]
    assert not [text for level, text in report if level == "warning"]

    (home / "models" / "LAST").write_bytes(b"\x00\xffgarbage")
    report = restore_report(restore_upload(name, data))
    assert [text for level, text in report if level == "info" and "`models/LAST`" in text]
    at = _page()
    assert not at.error and {m.label: m.value for m in at.metric}["Status"] == "ok"


def test_a_restore_that_could_not_repair_everything_warns() -> None:
    from ui.operations import restore_report

    result = backup.RestoreResult([], [], ["a/v1"], {}, 0.1, problems=["models/LAST names x"])
    levels = [level for level, _ in restore_report(result)]
    assert levels == ["success", "warning"]
