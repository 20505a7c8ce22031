"""The Merchandising page, driven headless with AppTest (issue 24 item 13).

The page file runs on its own (as the Operations page's test does) over a small store whose
lab (with the purchase model, so the money figures show) is trained once; each test gets a
private copy of ``$RECSYS_HOME``. An admin (local single-user mode) adds a pin rule, sees it
in the preview and saves it as v1 (audited); a logged-in viewer sees the rules read-only.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from recsys_core.merchandising import MerchandisingRule
from recsys_core.merchandising_store import RuleStore
from recsys_core.security import audit, sessions, users
from ui import auth, state

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "merchandising.py")
APP = str(Path(__file__).resolve().parents[2] / "app.py")
DECISION = "app_pages/decision.py"  # through the app (its links name the app's pages)
PW = "a long enough password"


@pytest.fixture(scope="module")
def merch_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A saved lab of a small store (every model the app wants) and the store's CSV."""
    from recsys_core.data.demo_store import generate_demo_store
    from recsys_core.data.loaders import load_event_file
    from recsys_core.serving import save_lab
    from recsys_core.training import TrainConfig, train_lab
    from tests.conftest import SMALL_RANKER
    from ui.resources import wanted_models

    root = tmp_path_factory.mktemp("merch_app")
    events, catalog = generate_demo_store(n_users=200, n_items=80, n_events=8_000, seed=2)
    events = events.merge(catalog[["item_id", "title", "category"]], on="item_id", how="left")
    csv = root / "store.csv"
    events.to_csv(csv, index=False)
    dataset = load_event_file(csv)
    ranker = {**SMALL_RANKER, "classifier": {**SMALL_RANKER["classifier"], "cross_fit_folds": 0}}  # type: ignore[dict-item]
    config = TrainConfig(
        models=wanted_models(dataset),
        model_params={"als": {"factors": 8, "iterations": 3, "num_threads": 1}, "ranker": ranker},
        headline_metrics=True,  # the Decision page reads them
    )
    home = root / "home"
    save_lab(train_lab(dataset, config), home=home)
    return home, csv


@pytest.fixture()
def home(
    merch_home: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    src, csv = merch_home
    copy = tmp_path / "home"
    shutil.copytree(src, copy)
    monkeypatch.setenv("RECSYS_HOME", str(copy))
    monkeypatch.setenv(state.ENV_DATA, str(csv))
    monkeypatch.delenv(state.ENV_DATASET, raising=False)
    yield copy


def _page(page: str = PAGE, **session: object) -> AppTest:
    at = AppTest.from_file(APP if page == DECISION else page, default_timeout=120)
    for key, value in session.items():
        at.session_state[key] = value
    at.run()
    if page == DECISION:
        at.switch_page(DECISION).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _tables(at: AppTest, column: str) -> list[pd.DataFrame]:
    """The page's tables with ``column``, in page order (rules: ``action``; the preview's
    two lists: ``rank``; the history: ``version``)."""
    return [f.value for f in at.dataframe if column in f.value.columns]


def _preview(at: AppTest) -> tuple[list[str], list[str]]:
    """The preview's items now and with the draft, best first."""
    (both,) = _tables(at, "item now")
    return both["item now"].tolist(), both["item with the draft"].tolist()


def _dataset() -> str:
    from recsys_core.serving import load_lab, resolve_version

    return load_lab(resolve_version(None, None)).dataset


def test_an_admin_adds_a_pin_previews_it_and_saves_a_version(home: Path) -> None:
    at = _page()
    assert at.title[0].value == "Merchandising"
    assert any("No merchandising rules are served" in i.value for i in at.info)
    now, same = _preview(at)
    assert now == same  # an empty draft changes nothing
    candidates = [o for o in at.multiselect(key="merch_items").options]
    assert candidates
    # pin an item that is not in the shopper's list at position 1
    chosen = next(
        c for c in at.multiselect(key="merch_items").options if c.rsplit("(", 1)[-1][:-1] not in now
    )
    item = chosen.rsplit("(", 1)[-1][:-1]
    at.radio(key="merch_action").set_value("pin")
    at.multiselect(key="merch_items").select(item)
    at.text_input(key="merch_note").input("launch")
    at.button[[b.label for b in at.button].index("Add to the draft")].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (draft,) = _tables(at, "action")
    assert draft["action"].tolist() == ["pin"] and draft["items"].tolist() == [item]
    before, after = _preview(at)
    assert before == now and after[0] == item
    assert [m.label for m in at.metric][:2] == [
        "Expected revenue now",
        "Expected revenue with the draft",
    ]
    at.text_input(key="merch_save_note").input("spring launch")
    at.button(key="merch_save").click().run()
    assert any("Saved as v1" in s.value for s in at.success)
    store = RuleStore(_dataset())
    served = store.active()
    assert served is not None and served.version == "v1"
    assert served.rules == (MerchandisingRule("pin", (item,), position=1, note="launch"),)
    row = audit.read(action="merchandising-save", limit=1)[0]
    assert row["actor"] == "app:local" and json.loads(str(row["detail"]))["version"] == "v1"
    # the page now serves v1: the list "now" has the pin, and the history names who saved it
    at = _page()
    assert _preview(at)[0][0] == item
    (history,) = _tables(at, "version")
    assert history["version"].tolist() == ["v1"] and history["saved_by"].tolist() == ["app:local"]


def test_a_viewer_sees_the_rules_read_only(home: Path) -> None:
    RuleStore(_dataset()).save(
        (MerchandisingRule("block", ("P01",)),), role="admin", actor="app:admin"
    )
    users.add_user("vic", PW, "viewer")
    at = _page(**{auth.TOKEN: sessions.login("vic", PW, "test").token})
    assert any("Read-only" in i.value for i in at.info)
    served, draft = _tables(at, "action")  # the draft starts as the served rules
    assert served["items"].tolist() == ["P01"] == draft["items"].tolist()
    labels = [b.label for b in at.button]
    assert "Add to the draft" not in labels and "Save the draft as a new version" not in labels
    assert "Serve it" not in labels
    assert _tables(at, "version")[0]["version"].tolist() == ["v1"]
    assert "P01" not in _preview(at)[0]  # the preview works for a viewer, under the rules


def test_the_preview_shows_the_offline_money_before_and_after_a_draft_block(home: Path) -> None:
    """A draft blocking every category: the evaluation's money per shopper on the recorded
    test window, now and with the draft (nothing listed is left to buy: 0), with the sample's
    size, the interval of the change and the recorded figure."""
    at = _page()
    categories = list(at.multiselect(key="merch_categories").options)
    assert categories
    at.radio(key="merch_action").set_value("block")
    for category in categories:
        at.multiselect(key="merch_categories").select(category)
    at.button[[b.label for b in at.button].index("Add to the draft")].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Money per shopper now (offline)" not in [m.label for m in at.metric]
    at.button(key="merch_offline").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    money = {m.label: m.value for m in at.metric}
    now = money["Money per shopper now (offline)"]
    assert money["Money per shopper with the draft (offline)"] == "0.00"
    assert float(now.replace(",", "")) > 0  # the models' own lists: some were bought
    caption = next(c.value for c in at.caption if "paired bootstrap" in c.value)
    assert "test shoppers" in caption and "Recorded over every test shopper" in caption
    # no rules served and the small store has fewer test shoppers than the sample: "now"
    # is the recorded figure itself
    assert f"Recorded over every test shopper without rules: {now}." in caption
    # a rerun reuses the fitted window: the figures show without the button
    at.run()
    assert "Money per shopper now (offline)" in [m.label for m in at.metric]


def test_the_decision_page_says_its_money_excludes_the_rules_and_shows_it_with_them(
    home: Path,
) -> None:
    """Without rules the Decision page says its figures are the served lists; with a served
    block of every category it says the recorded figures exclude the rules and gives the
    money per shopper with them (nothing listed left to buy: 0)."""
    at = _page(DECISION)
    assert any("No merchandising rules are served" in c.value for c in at.caption)
    assert "decision_rules" not in [b.key for b in at.button]
    from recsys_core.serving import load_lab, resolve_version

    lab = load_lab(resolve_version(None, None))
    categories = sorted(set(lab.catalog["category"].dropna().astype(str)))
    RuleStore(lab.dataset).save(
        (MerchandisingRule("block", categories=tuple(categories)),),
        role="analyst",
        actor="app:ann",
    )
    at = _page(DECISION)
    warning = " ".join(w.value for w in at.warning)
    assert "exclude the merchandising rules served now" in warning and "version v1" in warning
    recorded = {m.label: m.value for m in at.metric}
    at.button(key="decision_rules").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    money = {m.label: m.value for m in at.metric}
    label = next(m for m in money if m.startswith("Money per shopper with the rules"))
    assert money[label] == "0.00"
    caption = next(c.value for c in at.caption if "without the rules" in c.value)
    without = next(v for m, v in recorded.items() if m.startswith("Money per shopper ("))
    # the small store's test shoppers all fit in the sample: the recorded figure is "without"
    assert f"{without} without the rules, 0.00 with them" in caption
