"""Memory while training: the resident set's growth is measured, not guessed."""

from __future__ import annotations

import time

import numpy as np

from recsys_core.evaluation.memory import PeakMemory, resident_bytes


def test_peak_memory_sees_an_allocation_freed_before_the_block_ends() -> None:
    if resident_bytes() is None:  # no /proc: the figure is NaN by design
        assert np.isnan(PeakMemory().mb)
        return
    with PeakMemory(interval=0.005) as memory:
        block = np.ones(40_000_000)  # 320 MB, touched
        block.sum()
        time.sleep(0.1)  # let the sampler run (the allocation itself holds the GIL)
        del block  # freed before the block ends: only the sampled peak remembers it
    assert memory.mb > 150


def test_a_block_that_allocates_nothing_reports_little() -> None:
    with PeakMemory() as memory:
        sum(range(1000))
    assert memory.mb < 50 or np.isnan(memory.mb)
