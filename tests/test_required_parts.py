"""The CI rule of tests/conftest.py: a skipped required part fails the run, other skips stay."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recsys_core.paths import PROJECT_ROOT

DEMO = """
import pytest

@pytest.mark.required
def test_needs_a_part():
    pytest.skip("the part is not installed")

@pytest.mark.spark
def test_needs_spark():
    pytest.skip("no Java")

def test_not_applicable():
    pytest.skip("only for another model")
"""


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    required: x\n    spark: x\n    e2e: x\n", encoding="utf-8"
    )
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(PROJECT_ROOT)!r})\n"
        "from tests.conftest import pytest_runtest_makereport  # noqa: F401\n",
        encoding="utf-8",
    )
    (tmp_path / "test_demo.py").write_text(DEMO, encoding="utf-8")
    ours = ("RECSYS_REQUIRE_ALL", "RECSYS_REQUIRE_SPARK")
    clean = {k: v for k, v in os.environ.items() if k not in ours}
    command = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *args]
    return subprocess.run(
        [*command, str(tmp_path)],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_skips_pass_on_a_developer_machine(tmp_path: Path) -> None:
    done = _run(tmp_path)
    assert done.returncode == 0, done.stdout
    assert "3 skipped" in done.stdout


@pytest.mark.parametrize(
    ("env", "failed", "skipped"),
    [({"RECSYS_REQUIRE_ALL": "1"}, 2, 1), ({"RECSYS_REQUIRE_SPARK": "1"}, 1, 2)],
)
def test_required_skips_fail_in_ci(
    tmp_path: Path, env: dict[str, str], failed: int, skipped: int
) -> None:
    done = _run(tmp_path, **env)
    assert done.returncode == 1, done.stdout
    assert f"{failed} failed, {skipped} skipped" in done.stdout
    assert "required part not tested" in done.stdout
    assert "FAILED" in done.stdout and "test_not_applicable" not in done.stdout.split("FAILED")[1]


@pytest.mark.slow
def test_the_rule_holds_in_parallel_runs(tmp_path: Path) -> None:
    done = _run(tmp_path, "-n", "2", RECSYS_REQUIRE_ALL="1")
    assert done.returncode == 1, done.stdout
    assert "2 failed, 1 skipped" in done.stdout and "required part not tested" in done.stdout
