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
