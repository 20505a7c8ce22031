"""The service answers exactly as it did before its hot path was rewritten.

``golden/answers.json`` holds the answers of the original service (recorded with
``python tests/core/serving/golden/make_golden.py`` before any change) for every model,
known and unknown shoppers, two list lengths with and without already-bought items, and
similar items. One deliberate change since that recording: ``filter_seen=True`` removes the
items the shopper bought (evaluation's rule), not every item they interacted with
(``make_golden.expected_answers``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(GOLDEN))

from make_golden import answer_all, expected_answers, fingerprint, train_golden_lab  # noqa: E402
from reference_service import RecommendationService as ReferenceService  # noqa: E402

from recsys_core.serving import RecommendationService  # noqa: E402


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return json.loads((GOLDEN / "answers.json").read_text())


@pytest.fixture(scope="module")
def golden_lab():
    return train_golden_lab()


def _assert_same(new: Any, old: Any, where: str) -> None:
    if isinstance(old, dict):  # fields may be added (e.g. "source"), none changed or lost
        assert set(old) <= set(new), f"{where}: keys {sorted(new)} lack some of {sorted(old)}"
        for key in old:
            _assert_same(new[key], old[key], f"{where}.{key}")
    elif isinstance(old, list):
        assert len(new) == len(old), f"{where}: {len(new)} rows, recorded {len(old)}"
        for i, (a, b) in enumerate(zip(new, old, strict=True)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(old, float) and isinstance(new, float):
        assert new == pytest.approx(old, abs=2e-6), where
    else:
        assert new == old, where


def test_answers_equal_the_original_service(golden_lab, recorded) -> None:
    """Today's models, asked through the original service and through the hot path."""
    expected = expected_answers(ReferenceService(golden_lab), recorded["questions"])
    answers = answer_all(RecommendationService(golden_lab), recorded["questions"])
    for kind in ("recommend", "similar"):
        for question, new, old in zip(
            recorded["questions"][kind], answers[kind], expected[kind], strict=True
        ):
            _assert_same(new, old, f"{kind} {question}")


def test_answers_are_unchanged(golden_lab, recorded) -> None:
    """The recorded answers (when this machine trains the recorded models bit for bit)."""
    if fingerprint(golden_lab) != recorded["fingerprint"]:
        pytest.skip("this machine trains other models than the recording one (BLAS/CPU)")
    service = RecommendationService(golden_lab)
    answers = answer_all(service, recorded["questions"])
    for kind in ("recommend", "similar"):
        for question, new, old in zip(
            recorded["questions"][kind], answers[kind], recorded["answers"][kind], strict=True
        ):
            _assert_same(new, old, f"{kind} {question}")


def test_cached_answers_are_the_same_answers(golden_lab, recorded) -> None:
    service = RecommendationService(golden_lab)
    first = answer_all(service, recorded["questions"])
    again = answer_all(service, recorded["questions"])
    assert again == first
