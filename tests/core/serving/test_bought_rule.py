"""Served lists treat already-bought items by the lab's rule, the one evaluation applies.

The small store has views, carts and favourites besides purchases, so "bought" and "seen"
differ: a list that leaves out bought items keeps the ones the shopper only looked at.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from recsys_core.policy import ListPolicy
from recsys_core.repeats import bought_pairs, repeat_profile
from recsys_core.serving import RecommendationService, load_lab, resolve_version
from recsys_core.serving.schemas import RecommendAnswer


@pytest.fixture(scope="module")
def lab(saved_home: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return load_lab(resolve_version("demo-small", home=saved_home))


def _bought(small_store) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    pairs = bought_pairs(small_store.events)
    out: dict[str, set[str]] = {}
    for user, item in zip(pairs["user_id"], pairs["item_id"], strict=True):
        out.setdefault(str(user), set()).add(str(item))
    return out


def test_the_lab_stores_the_repeat_rule_and_the_bought_pairs(lab, small_store) -> None:
    profile = repeat_profile(small_store.events)
    assert lab.manifest["repeats"]["filter_seen"] == profile.filter_seen
    assert lab.manifest["repeats"]["bought_is_seen"] is False  # a log with views
    assert len(lab.bought) == len(bought_pairs(small_store.events))  # saved and loaded
    rule = RecommendationService(lab).bought_rule()
    assert (rule.remove, rule.source, rule.why) == (
        profile.filter_seen,
        "repeat rate",
        profile.reason,
    )


@pytest.mark.parametrize("model", ["als", "itemknn", "ranker"])
def test_filter_removes_bought_items_and_keeps_viewed_ones(lab, small_store, model) -> None:
    service = RecommendationService(lab)
    bought = _bought(small_store)
    seen = small_store.events.groupby("user_id")["item_id"].agg(lambda s: set(map(str, s)))
    kept_viewed = 0
    for user in [str(u) for u in lab.models["als"].users_.external_ids[:40]]:
        mine = bought.get(user, set())
        answer = service.recommend(user, 5, model, policy=ListPolicy("leave-out-bought"))
        items = [it["item_id"] for it in answer["items"]]
        assert not set(items) & mine
        assert [it["rank"] for it in answer["items"]] == list(range(1, len(items) + 1))
        assert answer["already_bought"] == {
            "remove": True,
            "source": "request",
            "why": "asked to leave out already-bought items",
        }
        kept_viewed += len(set(items) & (seen.get(user, set()) - mine))
        # the unfiltered list, without the bought items, in order
        deep = service.recommend(user, 5 + len(mine), model, policy=ListPolicy("keep"))
        unbought = [it["item_id"] for it in deep["items"] if it["item_id"] not in mine][:5]
        assert items == unbought
    assert kept_viewed > 0  # items the shoppers only viewed stay (every seen item went before)


def test_the_default_follows_the_lab_rule_and_is_named_in_the_answer(lab) -> None:
    user = str(lab.models["als"].users_.external_ids[3])
    for remove in (True, False):
        repeats = {**lab.manifest["repeats"], "filter_seen": remove, "reason": f"rule {remove}"}
        service = RecommendationService(replace(lab, manifest={**lab.manifest, "repeats": repeats}))
        answer = RecommendAnswer.model_validate(
            service.recommend(user, 5, "als", policy="lab-rule")
        )
        assert answer.already_bought is not None
        assert (answer.already_bought.remove, answer.already_bought.source) == (
            remove,
            "repeat rate",
        )
        asked = service.recommend(user, 5, "als", policy=ListPolicy.from_flags(remove))
        assert [it.item_id for it in answer.items] == [i["item_id"] for i in asked["items"]]
    settings = {**lab.manifest["settings"], "filter_seen": True}  # a tune result wins
    service = RecommendationService(replace(lab, manifest={**lab.manifest, "settings": settings}))
    assert service.bought_rule().source == "settings" and service.bought_rule().remove
    older = {k: v for k, v in lab.manifest.items() if k != "repeats"}
    service = RecommendationService(replace(lab, manifest=older))
    assert service.bought_rule().source == "unrecorded" and not service.bought_rule().remove


def test_cli_recommend_applies_and_names_the_rule(home_copy: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from recsys_core.cli import main

    assert main(["recommend", "--user", "U001", "--k", "4", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)["already_bought"]
    assert default["source"] == "repeat rate"
    assert main(["recommend", "--user", "U001", "--k", "4", "--filter-bought", "--json"]) == 0
    asked = json.loads(capsys.readouterr().out)["already_bought"]
    assert asked == {
        "remove": True,
        "source": "request",
        "why": "asked to leave out already-bought items",
    }
    assert main(["recommend", "--user", "U001", "--k", "4", "--keep-bought"]) == 0
    assert "already-bought items kept" in capsys.readouterr().out


def test_unreadable_bought_pairs_are_named_in_the_answer(home_copy: Path) -> None:
    """A damaged ``bought.parquet``: lists fall back to the models' seen filter and the
    answer's ``why`` says so, instead of silently removing more than the rule asks."""
    folder = resolve_version("demo-small", home=home_copy)
    (folder / "bought.parquet").write_bytes(b"not a parquet file")
    lab = load_lab(folder, tolerant=True)
    assert "bought" in lab.broken and lab.bought is None
    service = RecommendationService(lab)
    user = str(lab.models["als"].users_.external_ids[0])
    answer = service.recommend(user, 5, "als", policy=ListPolicy("leave-out-bought"))
    assert answer["already_bought"]["remove"] is True
    assert "bought pairs cannot be read" in answer["already_bought"]["why"]
    assert "restore the version or retrain" in answer["already_bought"]["why"]
    kept = service.recommend(user, 5, "als", policy=ListPolicy("keep"))["already_bought"]
    assert "cannot be read" not in kept["why"]  # keeping items needs no bought pairs


def test_a_loaded_lab_holds_canonical_ids(lab) -> None:  # type: ignore[no-untyped-def]
    """``load_lab`` is the way in for a saved version's frames: the policy trusts their ids."""
    from recsys_core.data.dataset import ensure_canonical

    ensure_canonical(lab.catalog, ["item_id"], where="the loaded catalog")
    ensure_canonical(lab.bought, where="the loaded bought pairs")
    if lab.last_purchases is not None:
        ensure_canonical(lab.last_purchases, where="the loaded purchase times")


def test_a_lab_where_shoppers_never_return_serves_lists_without_seen_items() -> None:
    # the review finding: evaluation left every seen item out of a consumed-once log's lists
    # while the service's default left out only bought ones (viewed items came back)
    from recsys_core.evaluation.protocol import list_rule, seen_pairs
    from recsys_core.evaluation.runner import EvaluationConfig
    from recsys_core.training import TrainConfig, train_lab
    from recsys_core.tuning.variants import CONSUMED_ONCE, demo_variant

    dataset = demo_variant(CONSUMED_ONCE)
    lab = train_lab(dataset, TrainConfig(models=["popularity", "itemknn"], seed=3))
    service = RecommendationService(lab)
    policy = service.default_policy()
    assert policy.repeats == "leave-out-seen" and policy.source == "repeat rate"
    assert "never come back" in policy.why
    settings = SimpleNamespace(preset=SimpleNamespace(filter_seen=None), repeat_reason="")
    events = dataset.events
    assert list_rule(EvaluationConfig(), settings, events, seen_pairs(events)).removes == "seen"

    seen = events.groupby("user_id")["item_id"].agg(lambda s: set(map(str, s)))
    for user in [str(u) for u in lab.models["itemknn"].users_.external_ids[:30]]:
        for model in ("popularity", "itemknn"):
            answer = service.recommend(user, 10, model, policy="lab-rule")
            items = {it["item_id"] for it in answer["items"]}
            assert len(items) == 10 and not items & seen[user]
            assert answer["list_policy"]["repeats"] == "leave-out-seen"
    # a product manager's own "hide bought items" stays as asked
    rule = service.bought_rule(True)
    assert ListPolicy.from_rule(rule).repeats == "leave-out-bought"
