"""Keyed pseudonyms: stable for one key (across restarts), different under another, findable."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from recsys_core.errors import ConfigError
from recsys_core.reporting.data import display_user_id
from recsys_core.security import pseudonyms
from recsys_core.security.keys import key_file

_PRINT = "from recsys_core.security.pseudonyms import pseudonym; print(pseudonym('12346'))"


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pseudonyms.ENV_KEY, raising=False)


def _in_new_process(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if k != pseudonyms.ENV_KEY}
    done = subprocess.run(
        [sys.executable, "-c", _PRINT],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_the_key_file_is_made_once_with_0600_and_pseudonyms_survive_a_restart(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    first = _in_new_process({"RECSYS_HOME": str(home)})
    path = home / "keys" / pseudonyms.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _in_new_process({"RECSYS_HOME": str(home)}) == first  # a restart: same key file
    assert pseudonyms.looks_like_pseudonym(first) and "12346" not in first
    other = _in_new_process({"RECSYS_HOME": str(tmp_path / "other")})
    assert other != first  # another key, another pseudonym


def test_the_environment_key_wins_and_gives_its_own_pseudonyms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from_file = pseudonyms.pseudonym("12346")
    monkeypatch.setenv(pseudonyms.ENV_KEY, "a key from the environment")
    from_env = pseudonyms.pseudonym("12346")
    assert from_env != from_file
    assert from_env == pseudonyms.pseudonym("12346", b"a key from the environment")


def test_pseudonyms_are_distinct_and_found_again_by_reverse_lookup() -> None:
    ids = [str(i) for i in range(12_000, 16_000)]
    names = {pseudonyms.pseudonym(u) for u in ids}
    assert len(names) == len(ids)
    target = pseudonyms.pseudonym("13579")
    assert pseudonyms.find_by_pseudonym(target.lower(), ids) == "13579"
    assert pseudonyms.find_by_pseudonym("S-AAAAAAAAAA", ids) is None
    assert pseudonyms.find_by_pseudonym("13579", ids) is None  # not a pseudonym


def test_reports_show_pseudonyms_unless_revealed() -> None:
    assert display_user_id("12346") == pseudonyms.pseudonym("12346")
    assert display_user_id("12346", reveal=True) == "12346"


def test_a_key_file_readable_by_others_is_refused() -> None:
    pseudonyms.pseudonym("x")
    path = key_file(pseudonyms.KEY_FILE)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        pseudonyms.pseudonym("x")
