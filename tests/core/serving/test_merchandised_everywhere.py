"""The served merchandising rules reach every path that produces a list (issue 24 item 13).

A rule set saved in the rule store (block, pin, a segment-limited pin, a category boost and
an expired rule) gives one shopper the same merchandised list from the service call the
Shopper page makes, the REST API (FastAPI's TestClient on the real app), the CLI's
``recommend --json``, the CLI's ``batch`` Parquet file and the bulk export.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recsys_core.business import top_k_for_shoppers
from recsys_core.cli import main
from recsys_core.merchandising import MerchandisingRule
from recsys_core.merchandising_preview import preview_rules
from recsys_core.merchandising_store import RuleStore
from recsys_core.models.registry import ALS, RANKER
from recsys_core.policy import ListPolicy
from recsys_core.serving import RecommendationService, load_lab, resolve_version
from recsys_core.serving.api import create_app
from recsys_core.serving.batch import BatchTable, lab_segments

K = 5


@pytest.mark.parametrize("model", [ALS, RANKER])
def test_one_shopper_gets_the_same_merchandised_list_everywhere(
    home_copy: Path, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = load_lab(resolve_version(None, None), tolerant=True)
    assert lab.bought is not None
    service = RecommendationService(lab)
    bought = lab.bought.groupby("user_id")["item_id"].apply(lambda s: set(s.astype(str)))
    user = next(u for u in lab.models[model].known_users() if len(bought.get(u, ())) >= 2)
    plain = ListPolicy("leave-out-bought", merchandising="none")  # the list without rules
    before = service.recommend_frame(user, K, model, policy=plain)[0]["item_id"].tolist()
    catalog = lab.catalog.astype({"item_id": str})
    spare = [i for i in catalog["item_id"] if i not in before and i not in bought.get(user, set())]
    pinned, for_segment = spare[-1], spare[-2]
    segments = lab_segments(lab)
    assert segments is not None and user in segments.index
    volume = segments.loc[user, "volume"]
    category = str(catalog.set_index("item_id").loc[before[-1], "category"])
    rules = (
        MerchandisingRule("block", (before[0],)),
        MerchandisingRule("pin", (pinned,), position=2),
        MerchandisingRule("pin", (for_segment,), position=1, segment=f"volume={volume}"),
        MerchandisingRule("boost", categories=(category,), weight=1.0),
        MerchandisingRule("block", (pinned,), end="2000-01-01"),  # long over: does nothing
    )
    RuleStore(lab.dataset).save(rules, role="analyst", actor="cli:test", note="test")

    frame, served_by, _ = service.recommend_frame(
        user, K, model, policy=ListPolicy("leave-out-bought")
    )
    page = frame["item_id"].tolist()
    assert served_by == model and len(page) == K
    assert page[:2] == [for_segment, pinned] and before[0] not in page
    assert frame.attrs["list_policy"]["merchandising"] == "v1"

    client = TestClient(
        create_app(lambda: service), base_url="http://127.0.0.1", client=("127.0.0.1", 50000)
    )
    response = client.get(
        "/recommend",
        params={"user_id": user, "k": K, "model": model, "repeats": "leave-out-bought"},
    )
    assert response.status_code == 200, response.text
    api = response.json()
    assert "merchandising v1" in api["list_policy"]["name"]

    capsys.readouterr()
    argv = ["recommend", "--user", user, "--k", str(K), "--model", model, "--json"]
    assert main([*argv, "--filter-bought"]) == 0
    cli = json.loads(capsys.readouterr().out)

    ids = tmp_path / "users.txt"
    ids.write_text(user, encoding="utf-8")
    out = tmp_path / "batch.parquet"
    argv = ["batch", "--out", str(out), "--model", model, "--k", str(K), "--users", str(ids)]
    assert main([*argv, "--filter-bought"]) == 0
    batch = pd.read_parquet(out).astype({"user_id": str, "item_id": str}).sort_values("rank")
    described = BatchTable.read(out).policy  # the file names the rules it was scored under
    assert described.rules == rules and described.merchandising == "v1"
    export = top_k_for_shoppers(service, [user], K, model, ListPolicy("leave-out-bought"))
    assert set(export["list_policy"]) == {"leave-out-bought + merchandising v1 (5 rules)"}

    lists = {
        "API": [i["item_id"] for i in api["items"]],
        "recommend": [i["item_id"] for i in cli["items"]],
        "batch": batch["item_id"].tolist(),
        "bulk export": export["item_id"].tolist(),
    }
    for path, items in lists.items():
        assert items == page, f"{path} differs from the Shopper page ({model})"


def test_preview_shows_the_list_and_money_before_and_after_a_draft(home_copy: Path) -> None:
    lab = load_lab(resolve_version(None, None), tolerant=True)
    service = RecommendationService(lab)
    assert lab.bought is not None
    bought = lab.bought.groupby("user_id")["item_id"].apply(lambda s: set(s.astype(str)))
    user = next(u for u in lab.models[RANKER].known_users() if len(bought.get(u, ())) >= 2)
    served = (MerchandisingRule("block", ("no-such-item",)),)
    RuleStore(lab.dataset).save(served, role="admin", actor="cli:test")
    policy = ListPolicy("leave-out-bought")
    now = service.recommend_frame(user, K, RANKER, policy=policy)[0]["item_id"].tolist()
    catalog = lab.catalog.astype({"item_id": str})
    spare = [i for i in catalog["item_id"] if i not in now and i not in bought.get(user, set())]
    owned = sorted(bought[user])[0]
    draft = (
        MerchandisingRule("block", (now[0],)),
        MerchandisingRule("pin", (spare[0],), position=1),
        MerchandisingRule("pin", (owned,), position=2),  # already bought: not pinned
        MerchandisingRule("boost", (spare[1],), weight=1.0, start="2000-01-01", end="2000-01-02"),
    )
    preview = preview_rules(service, user, K, RANKER, draft, policy=policy, sample_users=[user])
    assert preview.before["item_id"].tolist() == now  # as served now (the active v1)
    assert preview.policy_before.merchandising == "v1"
    after = preview.after["item_id"].tolist()
    assert after[0] == spare[0] and now[0] not in after and owned not in after
    assert preview.changed and preview.policy_after.merchandising == "draft"
    # the money is the Shopper page's figure: Σ probability x price of the listed items
    expected = float((preview.after["probability"] * preview.after["price"]).sum())
    assert preview.revenue_after == pytest.approx(expected)
    assert np.isfinite(preview.revenue_before) and preview.revenue_before != preview.revenue_after
    assert preview.sample is not None
    assert preview.sample["after"] == pytest.approx(preview.revenue_after)
    notes = " | ".join(preview.notes)
    assert f"{owned} not pinned" in notes and "outside its dates" in notes
    # nothing was saved by previewing
    assert RuleStore(lab.dataset).active_version() == "v1"


def test_the_cli_saves_lists_activates_and_previews_rule_files(
    home_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = load_lab(resolve_version(None, None), tolerant=True)
    user = lab.models[ALS].known_users()[0]
    first = lab.catalog["item_id"].astype(str).iloc[0]
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"action": "pin", "item_ids": [first], "position": 1}]}))
    assert main(["merchandising", "save", str(rules), "--note", "first"]) == 0
    rules.write_text(json.dumps([{"action": "block", "item_ids": [first]}]))
    assert main(["merchandising", "save", str(rules)]) == 0
    capsys.readouterr()
    assert main(["merchandising", "list", "--json"]) == 0
    versions = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["served"]) for v in versions] == [("v2", True), ("v1", False)]
    assert versions[1]["note"] == "first" and versions[1]["saved_by"].startswith("cli:")
    assert main(["merchandising", "activate", "v1"]) == 0
    capsys.readouterr()
    assert main(["merchandising", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "v1"
    # preview the block (v2's file) against the served pin (v1): nothing is saved
    assert (
        main(["merchandising", "preview", str(rules), "--user", user, "--model", ALS, "--json"])
        == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert shown["before"][0] == first and first not in shown["after"]
    assert RuleStore(lab.dataset).active_version() == "v1"
    rules.write_text(json.dumps([{"action": "pin", "item_ids": [first]}]))
    assert main(["merchandising", "save", str(rules)]) == 2
    assert "rule 1: a pin rule needs a position" in capsys.readouterr().err
