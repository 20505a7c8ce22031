"""The first dataset is loaded beside the app's imports (ui.prefetch): the page gets the same
dataset and checksum as its own load would give, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys_core.data.loaders import load_event_file
from recsys_core.provenance import data_checksum
from ui import prefetch, state


def test_the_prefetched_dataset_is_the_pages_own_load(
    small_store_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(state.ENV_DATA, str(small_store_csv))
    monkeypatch.setattr(prefetch, "_started", False)
    monkeypatch.setattr(prefetch, "_loads", {})
    monkeypatch.setattr(prefetch, "_checksums", {})
    key, _ = state.initial_dataset_key()
    prefetch.start()
    prefetch.start()  # once per process
    assert list(prefetch._loads) == [key]
    ready = prefetch.take(key)
    assert ready is not None
    dataset, checksum = ready
    own = load_event_file(small_store_csv)
    assert dataset.events.equals(own.events) and dataset.catalog.equals(own.catalog)
    assert checksum == data_checksum(own.events)
    assert prefetch.checksum_of(key, dataset) == checksum
    assert prefetch.checksum_of(key, own) is None  # another object: computed by the page
    assert prefetch.take(key) is None  # handed out once


def test_a_prefetch_for_another_dataset_is_dropped(
    small_store_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(state.ENV_DATA, str(small_store_csv))
    monkeypatch.setattr(prefetch, "_started", False)
    monkeypatch.setattr(prefetch, "_loads", {})
    prefetch.start()
    assert prefetch.take("demo-store") is None and not prefetch._loads
