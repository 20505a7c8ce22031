"""Which window chose the ranker's defaults, and evaluation saying so where it matters."""

from __future__ import annotations

import pandas as pd

from recsys_core.ranking.config import RANKER_DEFAULTS_CHOSEN_ON, ranker_defaults_note


def test_a_test_window_before_the_choice_window_ends_is_named_optimistic() -> None:
    end = pd.Timestamp(RANKER_DEFAULTS_CHOSEN_ON["end"])
    note = ranker_defaults_note("online-retail", end - pd.Timedelta(days=30))
    assert note is not None and "optimistic" in note and RANKER_DEFAULTS_CHOSEN_ON["start"] in note
    assert ranker_defaults_note("online-retail", end) is None  # the test window starts after
    assert ranker_defaults_note("online-retail", None) is None
    assert ranker_defaults_note("my-shop", end - pd.Timedelta(days=30)) is None


def test_folds_before_the_choice_window_ends_are_marked_and_named() -> None:
    from recsys_core.evaluation.runner import note_optimistic_ranker_folds

    folds = [
        {"cutoff": "2011-09-10 00:00:00", "models": {}},
        {"cutoff": "2011-10-10 00:00:00", "models": {}},
        {"cutoff": RANKER_DEFAULTS_CHOSEN_ON["end"] + " 00:00:00", "models": {}},
    ]
    notes = note_optimistic_ranker_folds("online-retail", folds)
    assert len(notes) == 1 and "2011-09-10, 2011-10-10" in notes[0]
    assert "optimistic" in folds[0]["ranker_defaults"] and "ranker_defaults" not in folds[2]
    assert note_optimistic_ranker_folds("my-shop", folds[2:]) == []
