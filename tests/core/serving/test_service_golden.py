"""The service gives the recorded answers, on every machine.

``golden/answers.json`` holds the service's answers (recorded with
``python tests/core/serving/golden/make_golden.py``) for every model, known and unknown
shoppers, two list lengths with and without already-bought items, and similar items.

On the machine that recorded them (same model checksums, ``fingerprint``) the answers must be
the same to the last digit. Elsewhere BLAS and CPU may train factors that differ in the last
bits, so scores and probabilities are compared with tolerances and two items may swap places
only where their recorded scores are tied within that tolerance; everything else (which
shoppers are degraded and why, list lengths, titles, the items with clearly different scores
and their ranks) must be the same.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(GOLDEN))

from make_golden import answer_all, fingerprint, train_golden_lab  # noqa: E402

from recsys_core.serving import RecommendationService  # noqa: E402

#: Tolerances where the trained numbers may differ by machine (relative on scores).
SCORE_REL = 1e-3
PROBABILITY_ABS = 5e-3
#: Tolerance where the machine trains the recorded models bit for bit.
EXACT_ABS = 2e-6


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return json.loads((GOLDEN / "answers.json").read_text())


@pytest.fixture(scope="module")
def golden_lab():
    return train_golden_lab()


@pytest.fixture(scope="module")
def same_machine(golden_lab, recorded) -> bool:
    """Whether this machine trains the recorded models bit for bit."""
    return fingerprint(golden_lab) == recorded["fingerprint"]


def _close(new: float | None, old: float | None, *, rel: float, abs_: float) -> bool:
    if new is None or old is None:
        return new is old
    if math.isnan(old):
        return math.isnan(new)
    return math.isclose(new, old, rel_tol=rel, abs_tol=abs_)


def _tied(scores: list[float], i: int, rel: float) -> bool:
    """Whether recorded score ``i`` is within tolerance of a neighbour's (a swap is fair)."""
    return any(
        _close(scores[j], scores[i], rel=rel, abs_=1e-9)
        for j in (i - 1, i + 1)
        if 0 <= j < len(scores)
    )


def _assert_list(new: list[dict], old: list[dict], where: str, exact: bool) -> None:
    rel = 0.0 if exact else SCORE_REL
    abs_ = EXACT_ABS if exact else 0.0
    p_abs = EXACT_ABS if exact else PROBABILITY_ABS
    assert len(new) == len(old), f"{where}: {len(new)} items, recorded {len(old)}"
    old_scores = [float(row["score"]) for row in old]
    by_item = {row["item_id"]: row for row in new}
    for i, (a, b) in enumerate(zip(new, old, strict=True)):
        assert a["rank"] == b["rank"] == i + 1, f"{where}[{i}]: rank"
        # the i-th best score is stable under small changes, whichever item holds it
        assert _close(float(a["score"]), old_scores[i], rel=rel, abs_=abs_ or 1e-9), (
            f"{where}[{i}]: score {a['score']} vs recorded {b['score']}"
        )
        if a["item_id"] != b["item_id"]:
            assert not exact and _tied(old_scores, i, SCORE_REL), (
                f"{where}[{i}]: item {a['item_id']} where {b['item_id']} was recorded "
                f"(scores not tied: {old_scores[max(i - 1, 0) : i + 2]})"
            )
        mine = by_item.get(b["item_id"])
        if mine is None:  # swapped out at the end of a tied tail
            assert not exact and _tied(old_scores, i, SCORE_REL), f"{where}: {b['item_id']} lost"
            continue
        for key, value in b.items():
            if key in ("rank", "score"):
                continue
            if key == "purchase_probability" and value is not None:
                assert _close(mine[key], value, rel=0.0, abs_=p_abs), f"{where} {b['item_id']}"
            elif isinstance(value, float):
                assert _close(mine[key], value, rel=rel, abs_=abs_ or 1e-9), f"{where} {key}"
            else:
                assert mine[key] == value, f"{where} {b['item_id']}.{key}"


def _assert_answer(new: dict, old: dict, where: str, exact: bool) -> None:
    assert set(old) <= set(new), f"{where}: keys {sorted(new)} lack some of {sorted(old)}"
    for key, value in old.items():
        if key == "items":
            _assert_list(new["items"], value, where, exact)
        else:
            assert new[key] == value, f"{where}.{key}: {new[key]!r}, recorded {value!r}"


def test_answers_are_the_recorded_ones(golden_lab, recorded, same_machine) -> None:
    """Every recorded question: exact on the recording machine, within tolerances elsewhere."""
    answers = answer_all(RecommendationService(golden_lab), recorded["questions"])
    for kind in ("recommend", "similar"):
        assert len(answers[kind]) == len(recorded["answers"][kind])
        for question, new, old in zip(
            recorded["questions"][kind], answers[kind], recorded["answers"][kind], strict=True
        ):
            _assert_answer(new, old, f"{kind} {question}", exact=False)
            if same_machine:
                _assert_answer(new, old, f"{kind} {question} (recording machine)", exact=True)


def test_tolerant_check_still_catches_a_changed_answer(recorded) -> None:
    """The tolerances do not let a real change through: a reordered list fails."""
    old = next(a for a in recorded["answers"]["recommend"] if a["model"] == "als")
    items = [dict(row) for row in old["items"]]
    items[0], items[-1] = dict(items[-1], rank=1), dict(items[0], rank=len(items))
    with pytest.raises(AssertionError):
        _assert_answer({**old, "items": items}, old, "als", exact=False)


def test_cached_answers_are_the_same_answers(golden_lab, recorded) -> None:
    service = RecommendationService(golden_lab)
    first = answer_all(service, recorded["questions"])
    again = answer_all(service, recorded["questions"])
    assert again == first
