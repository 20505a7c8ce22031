"""One settings tree: every environment variable is read through ``LabSettings``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from recsys_core.configs import ModelSettings, SplitConfig
from recsys_core.errors import ConfigError
from recsys_core.interactions import EventWeights
from recsys_core.paths import PROJECT_ROOT, recsys_home
from recsys_core.security.settings import SecuritySettings
from recsys_core.settings import (
    ENV_VARIABLES,
    LabSettings,
    lab_settings,
    reset_lab_settings,
    set_environment,
    settings_table,
)

#: Code that reads the environment itself instead of asking LabSettings.
RAW_READ = re.compile(r"os\.environ|getenv\(|environ\.get\(|environ\[")
#: Where the lab's code lives (tests and benchmarks may set variables for subprocesses).
CODE = ("recsys_core", "ui", "app_pages", "app.py")


def test_no_environment_read_outside_settings() -> None:
    offenders = []
    for root in CODE:
        base = PROJECT_ROOT / root
        files = [base] if base.is_file() else sorted(base.rglob("*.py"))
        for path in files:
            if path == PROJECT_ROOT / "recsys_core" / "settings.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if RAW_READ.search(line):
                    offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert not offenders, "read these through recsys_core.settings.lab_settings():\n" + "\n".join(
        offenders
    )


def test_docs_table_is_the_generated_one() -> None:
    text = (PROJECT_ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    start, end = "<!-- settings-table:start -->\n", "\n<!-- settings-table:end -->"
    table = text.split(start)[1].split(end)[0]
    assert table == settings_table(markdown=True), (
        "docs/settings.md is out of date: paste `python -m recsys_core settings-env --markdown`"
    )


def test_every_variable_is_in_the_table() -> None:
    table = settings_table(markdown=True)
    for name in ("RECSYS_HOME", "RECSYS_KEEP_VERSIONS", "RECSYS_MAX_ROWS", "JAVA_HOME"):
        assert name in ENV_VARIABLES and f"`{name}`" in table


def test_security_section_is_part_of_the_tree() -> None:
    assert issubclass(LabSettings, SecuritySettings)
    assert set(SecuritySettings.model_fields) <= set(LabSettings.model_fields)


def test_read_once_and_again_when_a_variable_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_KEEP_VERSIONS", "3")
    first = lab_settings()
    assert first is lab_settings() and first.keep_versions == 3
    monkeypatch.setenv("RECSYS_KEEP_VERSIONS", "4")
    assert lab_settings().keep_versions == 4
    reset_lab_settings()
    assert lab_settings() is not first


def test_home_follows_recsys_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path / "lab"))
    assert recsys_home() == tmp_path / "lab" and (tmp_path / "lab").is_dir()


def test_empty_value_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_KEEP_VERSIONS", "")
    monkeypatch.setenv("RECSYS_AUTO_ROLLBACK", "")
    assert lab_settings().keep_versions == 10 and lab_settings().auto_rollback is False


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RECSYS_KEEP_VERSIONS", "ten"),
        ("RECSYS_KEEP_VERSIONS", "0"),
        ("RECSYS_AUTO_ROLLBACK", "maybe"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"{variable}='{value}'.*unset the variable"):
        lab_settings()


def test_secrets_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_PSEUDONYM_KEY", "top-secret")
    settings = lab_settings()
    assert settings.secret("RECSYS_PSEUDONYM_KEY") == "top-secret"
    assert "top-secret" not in repr(settings)
    with pytest.raises(KeyError):
        settings.secret("RECSYS_HOME")


def test_set_environment_is_seen_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECSYS_SERVE_DATASET", raising=False)
    assert lab_settings().serve_dataset is None
    monkeypatch.setenv("RECSYS_SERVE_DATASET", "placeholder")  # so monkeypatch restores it
    set_environment({"RECSYS_SERVE_DATASET": "demo"})
    assert lab_settings().serve_dataset == "demo"


class _RunConfig(SplitConfig, ModelSettings):
    """A run config composed of both blocks, as evaluate's is meant to be."""

    k: int = 10


def test_blocks_compose_and_round_trip() -> None:
    config = _RunConfig(test_days=14, model_params={"als": {"factors": 8}}, seed=7)
    split = SplitConfig.of(config)
    models = ModelSettings.of(config)
    assert (split.test_days, split.seed) == (14, 7)
    assert models.model_params == {"als": {"factors": 8}} and models.seed == 7
    assert SplitConfig.model_validate(split.model_dump()) == split
    weights = ModelSettings(weights=EventWeights(view=2.0))
    assert ModelSettings.model_validate(weights.model_dump()) == weights
    assert isinstance(config, BaseModel) and set(SplitConfig.model_fields) <= set(
        _RunConfig.model_fields
    )
