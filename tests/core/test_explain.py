"""SHAP explanations of the purchase model and ALS "because you bought"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core.errors import UnknownItemError, UnknownUserError
from recsys_core.explain import PurchaseExplainer, because_you_bought
from recsys_core.ranking import FEATURE_NAMES, TwoStageRanker
from tests.conftest import SMALL_RANKER, SMALL_RANKER_CUTOFF

CUTOFF = SMALL_RANKER_CUTOFF
SMALL = SMALL_RANKER


@pytest.fixture(scope="module")
def store(small_store) -> tuple[pd.DataFrame, pd.DataFrame]:
    return small_store.events, small_store.catalog


@pytest.fixture(scope="module")
def ranker(small_ranker) -> TwoStageRanker:
    return small_ranker


@pytest.fixture(scope="module")
def explainer(ranker: TwoStageRanker) -> PurchaseExplainer:
    return PurchaseExplainer(ranker)


@pytest.fixture(scope="module")
def candidates(store: tuple[pd.DataFrame, pd.DataFrame], ranker: TwoStageRanker) -> pd.DataFrame:
    events, _ = store
    users = sorted(events[events["timestamp"] < CUTOFF]["user_id"].astype(str).unique())[:30]
    return ranker.candidate_frame(users)


def test_contributions_add_up_to_the_raw_margin(
    explainer: PurchaseExplainer, candidates: pd.DataFrame
) -> None:
    for _, row in candidates.sample(n=20, random_state=0).iterrows():
        exp = explainer.explain(row["user_id"], row["item_id"])
        total = exp.base_value + sum(c.contribution for c in exp.contributions)
        assert total == pytest.approx(exp.raw_score, rel=1e-6, abs=1e-6)
        assert exp.raw_score == pytest.approx(row["raw_score"], rel=1e-9, abs=1e-9)
        assert exp.probability == pytest.approx(row["purchase_probability"], rel=1e-9)
        assert 0.0 <= exp.probability <= 1.0
        assert len(exp.contributions) == len(FEATURE_NAMES)
        sizes = [abs(c.contribution) for c in exp.contributions]
        assert sizes == sorted(sizes, reverse=True)


def test_batch_shap_values_add_up(explainer: PurchaseExplainer, candidates: pd.DataFrame) -> None:
    values = explainer.shap_values(candidates)
    np.testing.assert_allclose(
        explainer.base_value + values.sum(axis=1), candidates["raw_score"], rtol=1e-6, atol=1e-6
    )


def test_labels_read_in_the_shops_words(
    explainer: PurchaseExplainer, candidates: pd.DataFrame
) -> None:
    bought = candidates[candidates["ui_purchases"] >= 2].iloc[0]
    exp = explainer.explain(bought["user_id"], bought["item_id"])
    labels = {c.name: c.feature for c in exp.contributions}
    assert labels["ui_purchases"] == f"bought this item {int(bought['ui_purchases'])} times"
    viewed = candidates[candidates["ui_views"] > 0].iloc[0]
    exp = explainer.explain(viewed["user_id"], viewed["item_id"])
    labels = {c.name: c.feature for c in exp.contributions}
    assert labels["ui_days_since_view"].startswith("viewed it ")
    assert labels["ui_days_since_view"].endswith(("days ago", "day ago", "today"))
    assert labels["als_score"].startswith(("ALS score ", "ALS has no score"))
    assert labels["als_rank"] != labels["als_score"]
    assert all("nan" not in label for label in labels.values())


def test_dict_form_matches_the_design_json(
    explainer: PurchaseExplainer,
    candidates: pd.DataFrame,
    store: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    _, catalog = store
    row = candidates.iloc[0]
    data = explainer.explain_dict(row["user_id"], row["item_id"], catalog, k=3)
    assert set(data) == {
        "user_id",
        "item_id",
        "probability",
        "raw_score",
        "base_value",
        "contributions",
        "because_you_bought",
    }
    assert {"feature", "value", "contribution"} <= set(data["contributions"][0])
    # each reason says what the model counted (bought, or viewed/carted/favourited)
    reason_keys = {"item_id", "title", "contribution", "counted"}
    assert all(set(b) == reason_keys for b in data["because_you_bought"])
    assert 1 <= len(data["because_you_bought"]) <= 3
    total = data["base_value"] + sum(c["contribution"] for c in data["contributions"])
    assert total == pytest.approx(data["raw_score"], rel=1e-6, abs=1e-6)


def test_because_you_bought_lists_the_shoppers_own_past_items(
    ranker: TwoStageRanker,
    candidates: pd.DataFrame,
    store: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    events, catalog = store
    titles = catalog.set_index("item_id")["title"]
    for user, item in candidates[["user_id", "item_id"]].head(50).itertuples(index=False):
        because = because_you_bought(ranker.generator_.als_, user, item, catalog, k=3)
        past = set(
            events[(events["timestamp"] < CUTOFF) & (events["user_id"].astype(str) == user)][
                "item_id"
            ].astype(str)
        )
        assert because and len(because) <= 3
        assert {b["item_id"] for b in because} <= past - {item}
        assert all(b["title"] == titles[b["item_id"]] for b in because)
        scores = [b["contribution"] for b in because]
        assert scores == sorted(scores, reverse=True)
    user, item = candidates.loc[candidates["ui_purchases"] > 0, ["user_id", "item_id"]].iloc[0]
    with_item = because_you_bought(ranker.generator_.als_, user, item, k=50, include_item=True)
    assert item in {b["item_id"] for b in with_item}
    with pytest.raises(UnknownUserError):
        because_you_bought(ranker.generator_.als_, "nobody", "P001", catalog)


def test_global_importance(explainer: PurchaseExplainer, candidates: pd.DataFrame) -> None:
    table = explainer.global_importance(candidates)
    assert list(table.columns) == ["feature", "label", "mean_abs_shap"]
    assert sorted(table["feature"]) == sorted(FEATURE_NAMES)
    assert table["mean_abs_shap"].is_monotonic_decreasing
    assert table["mean_abs_shap"].iloc[0] > 0
    from_users = explainer.global_importance(candidates["user_id"].unique()[:5].tolist())
    assert len(from_users) == len(FEATURE_NAMES)


def test_unknown_ids_are_typed_errors(explainer: PurchaseExplainer) -> None:
    with pytest.raises(UnknownUserError):
        explainer.explain("nobody", "P001")
    with pytest.raises(UnknownItemError):
        explainer.explain("U001", "no-such-item")


def test_the_service_explains_ranker_items_with_the_rankers_own_als(
    ranker: TwoStageRanker,
    candidates: pd.DataFrame,
    store: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """A lab that also serves a separately trained ALS (as the built-in presets do) must not
    use it to explain the ranker: one explanation path, the ranker's own stage one."""
    from recsys_core.interactions import EventWeights, InteractionMatrix
    from recsys_core.models import create_model
    from recsys_core.serving import RecommendationService
    from recsys_core.serving.lab import TrainedLab

    events, catalog = store
    past = events[events["timestamp"] < CUTOFF]
    other_als = create_model("als", factors=8, iterations=3, num_threads=1, seed=7).fit(
        InteractionMatrix.from_events(past, EventWeights())
    )
    lab = TrainedLab(
        dataset="demo-small",
        version="test",
        created="now",
        catalog=catalog,
        models={"ranker": ranker, "als": other_als},
    )
    service = RecommendationService(lab)
    own_als = ranker.generator_.als_
    assert own_als is not other_als
    differs = 0
    for user, item in candidates[["user_id", "item_id"]].head(8).itertuples(index=False):
        answer = service.explain(user, item)
        expected = PurchaseExplainer(ranker).explain_dict(user, item, catalog, k=3)
        assert answer.pop("model_version") == "test"
        # the service adds the shopper-level order model's keys (issue 16); every field the
        # purchase explanation has is explain.py's, unchanged
        assert {key: answer[key] for key in expected} == expected
        assert set(answer) - set(expected) <= {
            "purchase_probability",
            "order_probability",
            "overall_probability",
            "order_explanation",
        }
        assert answer["because_you_bought"] == because_you_bought(own_als, user, item, catalog, k=3)
        assert service.because_you_bought(user, item) == answer["because_you_bought"]
        differs += answer["because_you_bought"] != because_you_bought(
            other_als, user, item, catalog, k=3
        )
    assert differs > 0  # the two ALS models disagree, so the test can tell them apart
