"""The sequence transformer (``sasrec``): steps, targets, repeat signals, learning, serving.

The torch tests skip with the reason when torch (``requirements-seq.txt``) is missing; CI sets
``RECSYS_REQUIRE_SEQ=1`` so that a missing torch fails the run instead. The tests of the
step building and of "works without torch" need no torch.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.columns import Columns
from recsys_core.errors import ConfigError, DataValidationError
from recsys_core.interactions import InteractionMatrix
from recsys_core.models import create_model, load_model
from recsys_core.models.sasrec import SASRecRecommender
from recsys_core.models.sequence import torch_unavailable_reason
from recsys_core.models.sequence.steps import (
    FIRST_STEP_GAP,
    build_steps,
    count_bucket,
    day_bucket,
    horizon_targets,
    repeat_signals,
)
from tests.conftest import run_python

CYCLE = [f"c{j}" for j in range(6)]


@pytest.fixture(scope="module")
def torch_present() -> None:
    """Skip (or fail when CI sets RECSYS_REQUIRE_SEQ=1) without torch."""
    reason = torch_unavailable_reason()
    if reason is not None:
        if os.environ.get("RECSYS_REQUIRE_SEQ") == "1":
            pytest.fail(f"RECSYS_REQUIRE_SEQ=1 but {reason}")
        pytest.skip(reason)


def cycle_log(n_users: int = 60, seed: int = 0) -> pd.DataFrame:
    """Each shopper buys the items of a 6-item cycle in order, one a week (day jitter 0-1),
    starting anywhere in the cycle, for 3 to 11 weeks."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01 09:00")
    rows = []
    for u in range(n_users):
        offset, weeks = int(rng.integers(6)), int(rng.integers(3, 12))
        for s in range(weeks):
            day = 7 * s + int(rng.integers(0, 2))
            rows.append(
                (f"u{u}", CYCLE[(offset + s) % 6], "purchase", start + pd.Timedelta(days=day))
            )
    return pd.DataFrame(
        rows, columns=[Columns.USER, Columns.ITEM, Columns.EVENT, Columns.TIMESTAMP]
    )


def cycle_params(**extra: object) -> dict[str, object]:
    params: dict[str, object] = {
        "seed": 3,
        "dim": 16,
        "max_len": 16,
        "blocks": 1,
        "heads": 1,
        "max_epochs": 15,
        "batch_size": 16,
        "learning_rate": 5e-3,
        "horizon_days": 8,  # the target of a week's purchase is next week's item only
        "validation_days": 0,
        "threads": 1,
        "dropout": 0.0,
    }
    params.update(extra)
    return params


def next_in_cycle_accuracy(model: SASRecRecommender, events: pd.DataFrame) -> float:
    last = events.sort_values(Columns.TIMESTAMP).groupby(Columns.USER)[Columns.ITEM].last()
    reco = model.recommend(list(last.index), k=1, filter_seen=False)
    expected = {u: CYCLE[(CYCLE.index(i) + 1) % 6] for u, i in last.items()}
    hits = [expected[u] == i for u, i in zip(reco[Columns.USER], reco[Columns.ITEM], strict=True)]
    return float(np.mean(hits))


# ---------------------------------------------------------------- steps (no torch)


def test_a_basket_is_one_step_and_targets_are_the_horizons_purchases() -> None:
    # shopper 0: basket {1, 2} at day 0 (two events a minute apart... within 1 minute),
    # item 3 viewed at day 2, item 1 bought at day 10, item 4 bought at day 40
    users = np.array([0, 0, 0, 0, 0, 1])
    items = np.array([1, 2, 3, 1, 4, 2])
    events = np.array([3, 3, 0, 3, 3, 3])  # purchase = 3, view = 0
    minute = 1 / 1440
    days = np.array([0.0, 0.5 * minute, 2.0, 10.0, 40.0, 5.0])
    bought = events == 3
    log = build_steps(users, items, events, days, bought, n_users=3, max_basket=4, step_minutes=1.0)

    assert log.user_offsets.tolist() == [0, 4, 5, 5]  # shopper 2 has no steps
    assert log.step_time.tolist() == [0.0, 2.0, 10.0, 40.0, 5.0]
    assert log.step_items[0].tolist() == [2, 3, 0, 0]  # items 1, 2 (+1), padded
    assert log.step_events[1].tolist() == [1, 0, 0, 0]  # a view (code 0 + 1)
    assert log.step_gap.tolist() == [FIRST_STEP_GAP, 1, 3, 4, FIRST_STEP_GAP]

    targets = horizon_targets(log, horizon_days=30.0)
    # after the basket: bought within 30 days -> item 1 at day 10 (the view is no purchase)
    assert targets.row(0).tolist() == [1]
    assert targets.row(1).tolist() == [1]
    assert targets.row(2).tolist() == [4]  # day 40 is 30 days after day 10
    assert targets.row(3).tolist() == [] and targets.row(4).tolist() == []


def test_repeat_signals_count_steps_and_days_since_last_seen() -> None:
    users = np.zeros(4, dtype=np.int64)
    items = np.array([5, 5, 6, 5])
    days = np.array([0.0, 3.0, 3.0, 10.0])
    log = build_steps(
        users,
        items,
        np.full(4, 3),
        days,
        np.ones(4, bool),
        n_users=1,
        max_basket=4,
        step_minutes=1.0,
    )
    signals = repeat_signals(log, np.array([1, 2]), max_history=8)

    # at step 1 (day 3): item 5 seen in 2 steps, last at day 3; item 6 once, day 3
    assert signals.row(0).tolist() == [5, 6]
    assert signals.extra[0][:2].tolist() == count_bucket(np.array([2, 1])).tolist()
    assert signals.extra[1][:2].tolist() == [0, 0]
    # at step 2 (day 10): item 5 three times, today; item 6 once, 7 days ago
    assert signals.row(1).tolist() == [5, 6]
    assert signals.extra[0][2:].tolist() == count_bucket(np.array([3, 1])).tolist()
    assert signals.extra[1][2:].tolist() == day_bucket(np.array([0.0, 7.0])).tolist()
    # max_history keeps the most bought
    assert repeat_signals(log, np.array([2]), max_history=1).row(0).tolist() == [5]


# ---------------------------------------------------------------- errors (no torch)


def test_matrix_fit_and_untimed_logs_are_clear_errors() -> None:
    events = cycle_log(5)
    model = create_model("sasrec")
    with pytest.raises(ConfigError, match="fit_log"):
        model.fit(InteractionMatrix.from_events(events))
    untimed = events.drop(columns=[Columns.TIMESTAMP])
    assert "timestamps" in str(SASRecRecommender.cannot_train_on(untimed))
    if torch_unavailable_reason() is None:
        with pytest.raises(DataValidationError, match="timestamps"):
            model.fit_log(untimed)


def test_heads_must_divide_dim() -> None:
    with pytest.raises(ConfigError, match="must divide"):
        create_model("sasrec", dim=10, heads=3)


def _run_without_torch(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = "import sys\nsys.modules['torch'] = None  # as if torch were not installed\n"
    script += textwrap.dedent(code)
    return run_python(script)


def test_without_torch_training_says_how_to_install(tmp_path: Path) -> None:
    result = _run_without_torch(
        """
        import pandas as pd
        from recsys_core.errors import EngineUnavailableError
        from recsys_core.models import create_model
        events = pd.DataFrame({"user_id": ["a"], "item_id": ["x"], "event": ["purchase"],
                               "timestamp": [pd.Timestamp("2024-01-01")]})
        try:
            create_model("sasrec").fit_log(events)
        except EngineUnavailableError as exc:
            print("ERROR:", exc)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "requirements-seq.txt" in result.stdout and "torch==2.13.0" in result.stdout


# ---------------------------------------------------------------- learning (torch)


@pytest.mark.usefixtures("torch_present")
def test_learns_to_continue_a_deterministic_cycle() -> None:
    events = cycle_log()
    model = SASRecRecommender(cycle_params()).fit_log(events)

    assert next_in_cycle_accuracy(model, events) >= 0.9


@pytest.mark.usefixtures("torch_present")
def test_sampled_softmax_learns_the_cycle_too() -> None:
    events = cycle_log()
    model = SASRecRecommender(
        cycle_params(full_softmax_max_items=3, negatives=2, max_epochs=25)
    ).fit_log(events)

    assert next_in_cycle_accuracy(model, events) >= 0.9


@pytest.mark.usefixtures("torch_present")
def test_early_stopping_uses_the_validation_window() -> None:
    events = cycle_log()
    model = SASRecRecommender(
        cycle_params(validation_days=14, max_epochs=6, patience=2, refit=False)
    ).fit_log(events)

    assert 1 <= len(model.validation_ndcg_) <= 6
    assert model.epochs_ == int(np.argmax(model.validation_ndcg_)) + 1
    assert next_in_cycle_accuracy(model, events) >= 0.5


@pytest.mark.usefixtures("torch_present")
def test_refit_trains_on_everything_for_the_chosen_epochs() -> None:
    events = cycle_log()
    early = SASRecRecommender(cycle_params(validation_days=14, max_epochs=4, refit=False))
    refit = SASRecRecommender(cycle_params(validation_days=14, max_epochs=4, refit=True))
    early.fit_log(events)
    refit.fit_log(events)

    np.testing.assert_array_equal(early.validation_ndcg_, refit.validation_ndcg_)
    assert early.epochs_ == refit.epochs_
    assert not np.allclose(early.user_state_, refit.user_state_)  # other weights
    assert next_in_cycle_accuracy(refit, events) >= 0.5


@pytest.mark.usefixtures("torch_present")
def test_saved_model_serves_without_torch(tmp_path: Path) -> None:
    events = cycle_log()
    model = SASRecRecommender(cycle_params(max_epochs=3)).fit_log(events)
    model.save(tmp_path / "m")
    expected = model.recommend(["u0", "u1"], k=3, filter_seen=False)

    result = _run_without_torch(
        f"""
        from recsys_core.models import load_model
        m = load_model({str(tmp_path / "m")!r})
        reco = m.recommend(["u0", "u1"], k=3, filter_seen=False)
        print(",".join(reco["item_id"]))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ",".join(expected[Columns.ITEM])
    assert isinstance(load_model(tmp_path / "m"), SASRecRecommender)


@pytest.mark.usefixtures("torch_present")
def test_rebuilt_network_reproduces_the_cached_shopper_states() -> None:
    import torch

    from recsys_core.models.sequence.training import StepTensors, encode_last

    events = cycle_log()
    model = SASRecRecommender(cycle_params(max_epochs=3)).fit_log(events)
    net = model.network()
    steps = model.steps_
    windows = np.stack([steps.user_offsets[:-1], steps.user_offsets[1:]], axis=1)
    with torch.no_grad():
        hidden = encode_last(net, StepTensors.of(steps, torch.device("cpu")), windows, 16)
    np.testing.assert_allclose(hidden, model.user_state_, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- serving (torch)


@pytest.mark.usefixtures("torch_present")
def test_exported_encoders_score_like_the_model(tmp_path: Path) -> None:
    import torch

    from recsys_core.models.sequence.serving import export_encoder, save_encoder
    from recsys_core.models.sequence.training import StepTensors

    events = cycle_log()
    model = SASRecRecommender(cycle_params()).fit_log(events)
    net = model.network()
    steps = model.steps_
    windows = np.stack([steps.user_offsets[:-1], steps.user_offsets[1:]], axis=1)
    items, evs, gaps = StepTensors.of(steps, torch.device("cpu")).window_batch(windows, 16)
    last = torch.from_numpy(windows[:, 1] - windows[:, 0] - 1)
    expected = model._scores(np.arange(len(windows))) - model.repeat_.toarray()

    fp32 = export_encoder(net, quantize=False)
    int8 = export_encoder(net, quantize=True)
    with torch.no_grad():
        scores32, _ = fp32(items, evs, gaps, last)
        scores8, _ = int8(items, evs, gaps, last)
    np.testing.assert_allclose(scores32.numpy(), expected, rtol=1e-4, atol=1e-4)
    # int8 keeps the learnt ranking: the same top item for nearly every shopper
    same_top = (scores8.numpy().argmax(1) == expected.argmax(1)).mean()
    assert same_top >= 0.9
    # (sizes on disk are compared in bench/bench_sasrec.py: on this toy model the
    # TorchScript code outweighs the weights)
    assert save_encoder(fp32, tmp_path / "fp32.pt") > 0
    save_encoder(int8, tmp_path / "int8.pt")
    reloaded = torch.jit.load(str(tmp_path / "int8.pt"))
    with torch.no_grad():
        np.testing.assert_allclose(reloaded(items, evs, gaps, last)[0].numpy(), scores8.numpy())


@pytest.mark.usefixtures("torch_present")
def test_cached_sequence_state_appends_one_step_like_a_full_pass() -> None:
    import torch

    from recsys_core.models.sequence.serving import SequenceCache
    from recsys_core.models.sequence.training import StepTensors

    events = cycle_log()
    model = SASRecRecommender(cycle_params(max_epochs=2)).fit_log(events)
    net = model.network()
    steps = model.steps_
    tensors = StepTensors.of(steps, torch.device("cpu"))
    user = int(np.argmax(np.diff(steps.user_offsets)))  # the longest history
    start, end = steps.steps_of(user)
    window = np.array([[start, end]])
    items, evs, gaps = tensors.window_batch(window, end - start)

    cache = SequenceCache(net)
    cache.start("u", items[:, :-1], evs[:, :-1], gaps[:, :-1])
    stepped = cache.append("u", items[:, -1:], evs[:, -1:], gaps[:, -1:])
    with torch.no_grad():
        full = net(items, evs, gaps)[:, -1]
    np.testing.assert_allclose(stepped.numpy(), full.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(full.numpy()[0], model.user_state_[user], rtol=1e-4, atol=1e-5)


@pytest.mark.usefixtures("torch_present")
def test_length_batches_cover_every_window_once_with_similar_lengths() -> None:
    from recsys_core.models.sequence.training import _length_batches

    rng = np.random.default_rng(0)
    starts = np.arange(1000) * 100
    windows = np.stack([starts, starts + rng.integers(1, 50, size=1000)], axis=1)
    batches = _length_batches(windows, 10, np.random.default_rng(1))

    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    sizes = windows[:, 1] - windows[:, 0]
    spread = np.mean([np.ptp(sizes[b]) for b in batches])
    assert spread < 0.5 * np.ptp(sizes)  # sorted within chunks: batches are homogeneous
