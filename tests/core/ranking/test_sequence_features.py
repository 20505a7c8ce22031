"""The optional ``sequence`` feature group: the ``sasrec`` score and rank of a candidate.

The torch tests skip with the reason when torch (``requirements-seq.txt``) is missing; CI sets
``RECSYS_REQUIRE_SEQ=1`` so that a missing torch fails the run instead (as the ``sasrec``
model's own tests do). The tests that the ranker is unchanged without the group need no torch.
"""

from __future__ import annotations

import subprocess
import textwrap

import numpy as np
import pandas as pd
import pytest

from recsys_core.columns import Columns
from recsys_core.ranking.config import LABEL, WINDOW_CUTOFF, RankerConfig
from recsys_core.ranking.features import FEATURE_NAMES, REGISTRY
from recsys_core.ranking.features.names import OPTIONAL_REGISTRY, describe_feature
from recsys_core.ranking.features.sequence import (
    SEQUENCE_FEATURES,
    SequenceScores,
    sequence_columns,
)
from tests.conftest import run_python
from tests.core.models.test_sasrec import (  # noqa: F401 - torch_present is a fixture
    CYCLE,
    cycle_log,
    cycle_params,
    torch_present,
)

#: Small and quick, enough for a 6-item cycle: the sasrec tests' settings.
CYCLE_SETTINGS: dict[str, object] = cycle_params()


# ---------------------------------------------------------------- without torch


def _run_python(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter at the project root; it must exit 0."""
    result = run_python(script)
    assert result.returncode == 0, result.stderr
    return result


def test_the_group_is_declared_but_off_by_default() -> None:
    assert "sequence" not in {g.name for g in REGISTRY.groups}
    assert not set(SEQUENCE_FEATURES) & set(FEATURE_NAMES)
    assert OPTIONAL_REGISTRY.names() == (*FEATURE_NAMES, *SEQUENCE_FEATURES)
    assert describe_feature("sasrec_rank", {"sasrec_rank": 2.0}) == (
        "the sequence model ranks it 2nd"
    )
    assert describe_feature("sasrec_score", {"sasrec_score": float("nan")}) == (
        "the sequence model has no score for it"
    )


def test_without_torch_the_ranker_features_import_and_the_group_says_how_to_install() -> None:
    # a finder that refuses torch, as if it were not installed (``sys.modules['torch'] =
    # None`` would break scipy, which looks torch up in sys.modules)
    script = textwrap.dedent(
        """
        import sys
        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("No module named 'torch' (blocked by the test)")
        sys.meta_path.insert(0, NoTorch())
        import pandas as pd
        from recsys_core.errors import EngineUnavailableError
        from recsys_core.ranking import TwoStageRanker
        from recsys_core.ranking.features import FEATURE_NAMES
        from recsys_core.ranking.features.sequence import SequenceScores
        print("features", len(FEATURE_NAMES))
        events = pd.DataFrame({"user_id": ["a"], "item_id": ["x"], "event": ["purchase"],
                               "timestamp": [pd.Timestamp("2024-01-01")]})
        try:
            SequenceScores().fit(events, "2024-02-01")
        except EngineUnavailableError as exc:
            print("ERROR:", exc)
        try:  # the ranker's setting refuses before any work, with the same hint
            TwoStageRanker(sequence={}).fit(events)
        except EngineUnavailableError as exc:
            print("RANKER:", exc)
        """
    )
    result = _run_python(script)
    assert f"features {len(FEATURE_NAMES)}" in result.stdout
    assert "'sequence' feature group" in result.stdout and "requirements-seq.txt" in result.stdout
    assert "RANKER: the ranker's 'sequence' feature group (RankerConfig.sequence)" in (
        result.stdout
    )


# ---------------------------------------------------------------- values (torch)


@pytest.mark.usefixtures("torch_present")
def test_values_are_the_models_scores_and_ranks() -> None:
    events = cycle_log()
    cutoff = pd.Timestamp("2024-03-01")
    scorer = SequenceScores(CYCLE_SETTINGS).fit(events, cutoff)
    users = ["u0", "u0", "u1", "u5", "nobody", "u2"]
    items = ["c0", "c3", "c1", "c5", "c1", "unknown-item"]

    values = scorer.pair_values(users, items)

    direct = scorer.model_.score_items(users, items)
    # the same dot products, summed in another order (a matrix product for all items against
    # one dot per pair): equal to the last bit on some CPUs, one ulp apart on others
    np.testing.assert_allclose(values["sasrec_score"], direct, rtol=1e-12, atol=0)
    assert np.isnan(values["sasrec_score"][4:]).all() and np.isnan(values["sasrec_rank"][4:]).all()
    for j in range(4):  # rank = 1 + items scored higher (no ties in float scores here)
        everything = scorer.model_.score_items([users[j]] * 6, CYCLE)
        assert values["sasrec_rank"][j] == 1 + (everything > direct[j]).sum()


@pytest.mark.usefixtures("torch_present")
def test_the_next_item_of_the_cycle_ranks_first() -> None:
    # hand-checked: a shopper who last bought c_j buys c_{j+1} next, so a model that
    # learnt the cycle ranks c_{j+1} first for (almost) every shopper
    events = cycle_log()
    cutoff = pd.Timestamp("2024-03-01")
    past = events[events[Columns.TIMESTAMP] < cutoff]
    last = past.sort_values(Columns.TIMESTAMP).groupby(Columns.USER)[Columns.ITEM].last()
    following = [CYCLE[(CYCLE.index(i) + 1) % 6] for i in last]
    scorer = SequenceScores(CYCLE_SETTINGS).fit(events, cutoff)

    ranks = scorer.pair_values(list(last.index), following)["sasrec_rank"]

    assert np.mean(ranks == 1) >= 0.9
    top = scorer.top_items(list(last.index), 1)
    assert (top["sasrec_rank"] == 1).all()
    assert top[Columns.ITEM].tolist() == [
        CYCLE[int(np.argmax(scorer.model_.score_items([u] * 6, CYCLE)))] for u in last.index
    ]


@pytest.mark.usefixtures("torch_present")
def test_the_model_of_a_window_saw_no_event_at_or_after_its_cutoff() -> None:
    events = cycle_log()
    cutoffs = [pd.Timestamp("2024-02-01"), pd.Timestamp("2024-03-01")]
    frame = pd.DataFrame(
        {
            Columns.USER: ["u0", "u1", "u2", "u0", "u1", "u2"],
            Columns.ITEM: ["c0", "c1", "c2", "c3", "c4", "c5"],
            WINDOW_CUTOFF: [cutoffs[0]] * 3 + [cutoffs[1]] * 3,
        }
    )
    values, models = sequence_columns(events, frame, WINDOW_CUTOFF, CYCLE_SETTINGS)

    assert [m.cutoff_ for m in models] == cutoffs
    for model in models:
        assert model.last_event_ < model.cutoff_
        assert model.model_.n_items <= len(CYCLE)
    # rewrite everything at or after the first cutoff (other items, other shoppers, more
    # purchases): the first window's values do not move
    later = events[Columns.TIMESTAMP] >= cutoffs[0]
    changed = events.copy()
    changed.loc[later, Columns.ITEM] = "c0"
    noise = changed[later].assign(**{Columns.USER: "newcomer"})
    changed = pd.concat([changed, noise], ignore_index=True)
    again, _ = sequence_columns(changed, frame, WINDOW_CUTOFF, CYCLE_SETTINGS)

    first = (frame[WINDOW_CUTOFF] == cutoffs[0]).to_numpy()
    pd.testing.assert_frame_equal(values[first], again[first])
    assert not values[~first].equals(again[~first])  # the later window did see the change


@pytest.mark.usefixtures("torch_present")
def test_the_purchase_model_trains_and_scores_with_the_group(small_store: object) -> None:
    from recsys_core.ranking.features import BehaviourSnapshot
    from recsys_core.ranking.purchase_model import PurchaseModel
    from recsys_core.ranking.training_frame import (
        build_training_frame,
        candidate_features,
        make_generator,
    )
    from tests.conftest import SMALL_RANKER, SMALL_RANKER_CUTOFF

    events, catalog = small_store.events, small_store.catalog  # type: ignore[attr-defined]
    config = RankerConfig(**{**SMALL_RANKER, "training_windows": 2})  # type: ignore[arg-type]
    train = build_training_frame(events, catalog, SMALL_RANKER_CUTOFF, config)
    settings = {"max_epochs": 1, "seed": 0}
    train_seq, models = sequence_columns(events, train, WINDOW_CUTOFF, settings)
    columns = [*FEATURE_NAMES, *SEQUENCE_FEATURES]
    rows = pd.concat([train, train_seq], axis=1)

    assert [m.cutoff_ for m in models] == sorted(train[WINDOW_CUTOFF].unique())
    assert train_seq["sasrec_rank"].notna().mean() > 0.9  # candidates of known shoppers
    model = PurchaseModel(n_estimators=20, cross_fit_folds=0, random_state=0).fit(
        rows[columns], rows[LABEL], groups=rows[Columns.USER].to_numpy()
    )

    past = events[events[Columns.TIMESTAMP] < SMALL_RANKER_CUTOFF]
    generator = make_generator(config).fit(past, SMALL_RANKER_CUTOFF)
    snapshot = BehaviourSnapshot.from_events(past, SMALL_RANKER_CUTOFF, catalog)
    users = list(generator.users_.external_ids[:20])
    cand = candidate_features(generator, snapshot, users)
    scorer = SequenceScores(settings).fit(events, SMALL_RANKER_CUTOFF)
    cand = cand.assign(**scorer.pair_values(cand[Columns.USER], cand[Columns.ITEM]))
    probability = model.purchase_probability(cand[columns].to_numpy(dtype=np.float64))

    assert probability.shape == (len(cand),)
    assert np.isfinite(probability).all() and ((probability >= 0) & (probability <= 1)).all()


# ---------------------------------------------------------------- the ranker's setting


def test_the_ranker_setting_is_off_by_default_and_leaves_saved_rankers_as_before(
    small_ranker: object, tmp_path: object
) -> None:
    import json
    from pathlib import Path

    from recsys_core.errors import ConfigError
    from recsys_core.ranking import TwoStageRanker

    assert RankerConfig().sequence is None
    assert "sequence" not in RankerConfig().model_dump(mode="json")  # configs as before
    assert small_ranker.sequence_ is None  # type: ignore[attr-defined]
    assert small_ranker.feature_names == FEATURE_NAMES  # type: ignore[attr-defined]
    folder = Path(str(tmp_path)) / "ranker"
    small_ranker.save(folder)  # type: ignore[attr-defined]
    saved = json.loads((folder / "config.json").read_text())
    assert "sequence" not in saved["config"] and not (folder / "sequence").exists()
    assert saved["feature_names"] == list(FEATURE_NAMES)
    assert TwoStageRanker.load(folder).sequence_ is None
    with pytest.raises(ConfigError, match="bogus"):  # sasrec settings are checked by name
        TwoStageRanker(sequence={"bogus": 1})
    assert RankerConfig(sequence={}).model_dump(mode="json")["sequence"] == {}


@pytest.mark.usefixtures("torch_present")
def test_a_ranker_with_the_setting_on_serves_the_group_and_the_service_equals_the_batch(
    small_store: object, tmp_path: object
) -> None:
    from pathlib import Path

    from recsys_core.policy import ListPolicy
    from recsys_core.ranking import TwoStageRanker
    from recsys_core.ranking.batch_scoring import score_all_shoppers
    from recsys_core.serving import RecommendationService
    from recsys_core.serving.batch import score_batch
    from recsys_core.serving.lab import TrainedLab
    from tests.conftest import SMALL_RANKER, SMALL_RANKER_CUTOFF

    events, catalog = small_store.events, small_store.catalog  # type: ignore[attr-defined]
    settings = {"max_epochs": 1, "seed": 0}
    config = {**SMALL_RANKER, "training_windows": 2, "sequence": settings}
    ranker = TwoStageRanker(config).fit(events, catalog, cutoff=SMALL_RANKER_CUTOFF)

    names = (*FEATURE_NAMES, *SEQUENCE_FEATURES)
    assert ranker.feature_names == names
    # the training rows' columns come from one sasrec per window, fitted before its cutoff
    from recsys_core.ranking.training_frame import build_training_frame

    rows = build_training_frame(events, catalog, SMALL_RANKER_CUTOFF, ranker.config)
    plain = build_training_frame(
        events, catalog, SMALL_RANKER_CUTOFF, ranker.config.model_copy(update={"sequence": None})
    )
    separate, models = sequence_columns(events, plain, WINDOW_CUTOFF, settings)
    assert len(models) == 2 and all(m.last_event_ < m.cutoff_ for m in models)
    pd.testing.assert_frame_equal(rows[list(SEQUENCE_FEATURES)], separate)
    assert list(rows.columns[-3:]) == [*SEQUENCE_FEATURES, LABEL]
    assert list(ranker.purchase_model_.feature_names_in_) == list(names)
    assert ranker.sequence_ is not None
    assert ranker.sequence_.cutoff_ == SMALL_RANKER_CUTOFF
    assert ranker.sequence_.last_event_ < SMALL_RANKER_CUTOFF  # no event at or after it
    users = ranker.known_users()[::15]
    # the features of an answer are the cutoff model's values (its cached shopper states)
    frame = ranker.candidate_frame(users[:3])
    expected = ranker.sequence_.pair_values(frame[Columns.USER], frame[Columns.ITEM])
    for name in SEQUENCE_FEATURES:
        np.testing.assert_array_equal(frame[name].to_numpy(), expected[name])
    assert frame["sasrec_rank"].notna().mean() > 0.9

    # saved and loaded (the saved sasrec serves from its cached states), same answers
    folder = Path(str(tmp_path)) / "ranker"
    ranker.save(folder)
    loaded = TwoStageRanker.load(folder)
    assert loaded.sequence_ is not None and (folder / "sequence" / "scores.json").is_file()
    batch = loaded.recommend(users, 5, filter_seen=False)
    pd.testing.assert_frame_equal(batch, ranker.recommend(users, 5, filter_seen=False))
    chunked = score_all_shoppers(loaded, users, 5, chunk_size=7, workers=1)
    pd.testing.assert_frame_equal(chunked, batch)
    # ... and without torch (the saved sasrec answers from its cached shopper states)
    script = textwrap.dedent(
        f"""
        import sys
        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("No module named 'torch' (blocked by the test)")
        sys.meta_path.insert(0, NoTorch())
        from recsys_core.ranking import TwoStageRanker
        ranker = TwoStageRanker.load({str(folder)!r})
        reco = ranker.recommend({users!r}, 5, filter_seen=False)
        print("ITEMS", "|".join(reco["item_id"].astype(str)))
        """
    )
    result = _run_python(script)
    assert f"ITEMS {'|'.join(batch[Columns.ITEM].astype(str))}" in result.stdout

    # the service's one-shopper answers equal the batch answers (and the batch table's)
    lab = TrainedLab("demo-small", "seq", "now", catalog, {"ranker": loaded})
    service = RecommendationService(lab)
    policy = ListPolicy("keep")
    table = score_batch(lab, "ranker", 5, users, policy=policy).frame
    for user in users:
        answer = service.recommend(user, 5, "ranker", policy=policy)
        rows = batch[batch[Columns.USER] == user]
        assert [i["item_id"] for i in answer["items"]] == rows[Columns.ITEM].tolist()
        assert [i["score"] for i in answer["items"]] == pytest.approx(
            rows[Columns.SCORE].tolist(), abs=1e-6
        )
        in_table = table[table[Columns.USER].astype(str) == user].sort_values(Columns.RANK)
        assert in_table[Columns.ITEM].astype(str).tolist() == rows[Columns.ITEM].tolist()
    # explanations cover the group's columns
    from recsys_core.explain import PurchaseExplainer

    item = str(batch[Columns.ITEM].iloc[0])
    explained = PurchaseExplainer(loaded).explain(str(batch[Columns.USER].iloc[0]), item)
    assert {c.name for c in explained.contributions} == set(names)
