"""Shared fixtures (small real data: a slice of Online Retail, a seeded demo store) and the
rule that a skipped required part fails the run in CI.

Required parts: a test marked ``spark``, ``e2e`` or ``required`` tests a part the lab ships
(Spark, the browser app, anything a marker names). Where it cannot run it skips with the
reason on a developer's machine; with ``RECSYS_REQUIRE_ALL=1`` (CI) that skip is a failure,
and ``RECSYS_REQUIRE_SPARK=1`` does the same for the ``spark`` tests alone.

Parallel runs (pytest-xdist): every worker gets its own $RECSYS_HOME per test (below) and the
browser test its own port; session fixtures are built once per worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd
import pytest

from recsys_core.paths import DATA_DIR, PROJECT_ROOT
from recsys_core.settings import lab_settings


def run_python(
    script: str,
    *,
    cwd: Path = PROJECT_ROOT,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter (``python -c``) that imports this checkout
    (``PYTHONPATH`` = the project root) with ``os.environ`` updated by ``env``; output
    captured as text, the exit status left to the caller."""
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


#: Markers whose tests exercise a required part: their skips fail under RECSYS_REQUIRE_ALL=1.
REQUIRED_MARKERS: tuple[str, ...] = ("required", "spark", "e2e")


def required_part(item: pytest.Item) -> str | None:
    """The marker that makes ``item`` a required part in this run, or ``None``."""
    settings = lab_settings()
    for name in REQUIRED_MARKERS:
        if item.get_closest_marker(name) is None:
            continue
        if settings.require_all or (name == "spark" and settings.require_spark):
            return name
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Turn the skip of a required part into a failure (CI: RECSYS_REQUIRE_ALL=1)."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    part = required_part(item)
    if part is None:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"required part not tested ({part} marker) but skipped: {reason}. "
        "Install what the reason names (see .ci/run), or unset RECSYS_REQUIRE_ALL / "
        "RECSYS_REQUIRE_SPARK on a machine without it."
    )


#: One pseudonymisation key for the whole test run, so fixtures built outside a test's own
#: $RECSYS_HOME (module- and session-scoped ones) give the pseudonyms the test computes.
#: Tests of the key file itself remove it.
os.environ.setdefault("RECSYS_PSEUDONYM_KEY", "test-pseudonym-key")


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test writes lab state into its own temporary $RECSYS_HOME."""
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path_factory.mktemp("recsys_home")))


@pytest.fixture(scope="session")
def online_retail_raw() -> pd.DataFrame:
    """The raw Online Retail file as shipped (541,909 rows)."""
    return pd.read_parquet(DATA_DIR / "online_retail.parquet")


@pytest.fixture(scope="session")
def online_retail_slice(online_retail_raw: pd.DataFrame) -> pd.DataFrame:
    """Raw rows of the first 300 customers (by id) plus some rows without a customer."""
    raw = online_retail_raw
    customers = sorted(raw["CustomerID"].dropna().unique())[:300]
    keep = raw["CustomerID"].isin(customers) | raw.index.isin(raw.index[raw.CustomerID.isna()][:50])
    return raw[keep].reset_index(drop=True)


@pytest.fixture()
def write_csv(tmp_path: Path) -> Iterator[object]:
    """Write text (or bytes) to a file in tmp_path and return its path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    yield _write


@pytest.fixture(scope="session")
def small_store() -> object:
    """A small seeded demo store (300 shoppers, 150 items, ~20k events) as a Dataset."""
    from recsys_core.data.demo_store import generate_demo_store
    from recsys_core.data.schema import Dataset

    events, catalog = generate_demo_store(n_users=300, n_items=150, n_events=20_000, seed=1)
    return Dataset("demo-small", events, catalog, source="test fixture")


@pytest.fixture(scope="session")
def small_store_csv(small_store: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small demo store's events written as a CSV file."""
    path = tmp_path_factory.mktemp("store") / "events.csv"
    small_store.events.to_csv(path, index=False)  # type: ignore[attr-defined]
    return path


#: The instant the small ranker's recommendations are for.
SMALL_RANKER_CUTOFF = pd.Timestamp("2024-06-01")
#: A small, single-threaded ranker: OpenMP threads on shared, busy cores slow tiny fits ~10x.
SMALL_RANKER: dict[str, object] = {
    "als": {"factors": 16, "iterations": 5, "num_threads": 1},
    "itemknn": {"num_threads": 1},
    "classifier": {"n_estimators": 40, "n_jobs": 1},
    "n_als": 30,
    "n_itemknn": 30,
}


@pytest.fixture(scope="session")
def small_ranker(small_store: object) -> object:
    """A two-stage ranker fitted on the small demo store at 2024-06-01 (read-only)."""
    from recsys_core.ranking import TwoStageRanker

    events, catalog = small_store.events, small_store.catalog  # type: ignore[attr-defined]
    return TwoStageRanker(SMALL_RANKER).fit(events, catalog, cutoff=SMALL_RANKER_CUTOFF)
