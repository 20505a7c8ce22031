"""The already-bought filter: lists leave out what the shopper *bought*, not what they viewed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recsys_core.cli import main
from recsys_core.columns import Columns
from recsys_core.data.schema import Dataset
from recsys_core.evaluation import EvaluationConfig, evaluate
from recsys_core.interactions import EventWeights, InteractionMatrix
from recsys_core.models import create_model
from recsys_core.policy import ListContext, ListPolicy, recommend_with_policy
from recsys_core.ranking import TwoStageRanker
from recsys_core.repeats import bought_pairs
from recsys_core.tuning.variants import demo_variant
from tests.conftest import SMALL_RANKER_CUTOFF

K = 10


def _unbought(
    model: object, users: list[str], bought: pd.DataFrame, **extra: object
) -> pd.DataFrame:
    """Lists without the bought items, through the one list policy (as every path)."""
    context = ListContext(bought=bought)
    return recommend_with_policy(model, users, K, ListPolicy("leave-out-bought"), context, **extra)


def _pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame[Columns.USER].astype(str), frame[Columns.ITEM].astype(str), strict=True))


@pytest.fixture(scope="module")
def no_repurchases() -> Dataset:
    """Shoppers view many items and buy each at most once."""
    return demo_variant("no-repurchases", n_users=150, n_items=80, n_events=9000, seed=3)


def _check_lists(reco: pd.DataFrame, events: pd.DataFrame, users: list[str]) -> None:
    bought = _pairs(bought_pairs(events))
    viewed = _pairs(events[events[Columns.EVENT] == "view"]) - bought
    listed = _pairs(reco)
    assert not listed & bought  # nothing already bought
    assert listed & viewed  # viewed-but-unbought items stay
    n_items = events[Columns.ITEM].nunique()
    n_bought = bought_pairs(events)[Columns.USER].value_counts()
    sizes = reco.groupby(Columns.USER).size()
    for user in users:
        if n_items - n_bought.get(user, 0) >= K:  # enough unbought items: exactly k rows
            assert sizes[user] == K
    ranks = reco.groupby(Columns.USER)[Columns.RANK].apply(list)
    assert all(r == list(range(1, len(r) + 1)) for r in ranks)


@pytest.mark.parametrize("name", ["popularity", "itemknn", "als"])
def test_lists_drop_bought_items_keep_viewed_ones_and_have_k_rows(
    no_repurchases: Dataset, name: str
) -> None:
    events = no_repurchases.events
    weights = EventWeights(view=1.0, cart=2.0, favorite=2.0, purchase=5.0)
    model = create_model(name).fit(InteractionMatrix.from_events(events, weights))
    users = sorted(events[Columns.USER].astype(str).unique())[:60]
    reco = _unbought(model, users, bought_pairs(events))
    _check_lists(reco, events, users)
    # the plain lists did hold bought items: the filter had work to do
    assert _pairs(model.recommend(users, K, filter_seen=False)) & _pairs(bought_pairs(events))


def test_the_ranker_lists_drop_bought_items_too(small_store: Dataset, small_ranker) -> None:
    events = small_store.events
    past = events[events[Columns.TIMESTAMP] < SMALL_RANKER_CUTOFF]
    users = sorted(past[Columns.USER].astype(str).unique())[:25]
    candidates = small_ranker.warm_candidate_frame(users)
    reco = _unbought(small_ranker, users, bought_pairs(past), candidates=candidates)
    bought = _pairs(bought_pairs(past))
    assert not _pairs(reco) & bought
    assert _pairs(reco) & (_pairs(past) - bought)  # viewed or carted, not bought: kept
    assert isinstance(small_ranker, TwoStageRanker)
    # more candidates than k + bought for these shoppers: every list is full
    assert (reco.groupby(Columns.USER).size() == K).all()


def test_evaluate_removes_bought_not_viewed_items_when_shoppers_rarely_rebuy(
    no_repurchases: Dataset, tmp_path: Path
) -> None:
    result = evaluate(
        no_repurchases, EvaluationConfig(models=["popularity", "als"], new_items_variant=False)
    )
    rule = result.split["already_bought"]
    assert rule["source"] == "repeat rate" and rule["filter_seen"] is True
    assert rule["removes"] == "bought" and rule["lists_without_seen"] is False
    assert any("viewed, carted and favourited items stay" in n for n in result.notes)
    cutoff = pd.Timestamp(result.split["cutoff"])
    train = no_repurchases.events[no_repurchases.events[Columns.TIMESTAMP] < cutoff]
    for name in ("popularity", "als"):
        reco = result.models[name].recommendations
        _check_lists(reco, train, sorted(reco[Columns.USER].astype(str).unique()))

    # --keep-bought keeps them; --filter-seen removes every seen item (the old rule)
    kept = evaluate(no_repurchases, EvaluationConfig(models=["als"], filter_bought=False))
    assert kept.split["already_bought"]["removes"] == "nothing"
    assert "--keep-bought" in kept.split["already_bought"]["why"]
    assert _pairs(kept.models["als"].recommendations) & _pairs(bought_pairs(train))
    seen = evaluate(no_repurchases, EvaluationConfig(models=["als"], filter_seen=True))
    assert seen.split["already_bought"]["removes"] == "seen"
    assert not _pairs(seen.models["als"].recommendations) & _pairs(train)

    path = tmp_path / "log.csv"
    no_repurchases.events.to_csv(path, index=False)
    out = tmp_path / "eval.json"
    args = ["evaluate", "--data", str(path), "--models", "popularity", "--json", str(out)]
    assert main([*args, "--keep-bought"]) == 0
    data = json.loads(out.read_text())["split"]["already_bought"]
    assert data["filter_seen"] is False and data["source"] == "flag"
    assert main([*args, "--filter-bought"]) == 0
    assert json.loads(out.read_text())["split"]["already_bought"]["removes"] == "bought"


def test_purchase_only_logs_give_the_old_filter_seen_lists(
    online_retail_slice: pd.DataFrame,
) -> None:
    from recsys_core.data.loaders import online_retail_from_frame

    ds = online_retail_from_frame(online_retail_slice)
    config = {"models": ["popularity", "als"], "k": K, "new_items_variant": True}
    bought = evaluate(ds, EvaluationConfig(**config, filter_bought=True))
    seen = evaluate(ds, EvaluationConfig(**config, filter_seen=True))
    assert bought.split["already_bought"]["lists_without_seen"] is True
    for name in ("popularity", "als"):
        pd.testing.assert_frame_equal(
            bought.models[name].recommendations, seen.models[name].recommendations
        )
        assert bought.models[name].metrics == seen.models[name].metrics
        assert bought.models[name].new_items_metrics == seen.models[name].new_items_metrics == {}
    # the generic post-filter gives the same lists as the model's own filter here
    events = ds.events
    model = create_model("als", factors=16, iterations=5).fit(
        InteractionMatrix.from_events(events, EventWeights())
    )
    users = sorted(events[Columns.USER].astype(str).unique())[:80]
    generic = _unbought(model, users, bought_pairs(events))
    own = model.recommend(users, K, filter_seen=True)
    assert _pairs(generic) == _pairs(own)
