"""The lab's one settings tree: every environment variable it reads, in :class:`LabSettings`.

Code never reads ``os.environ`` itself (a test greps for it): it asks :func:`lab_settings`,
which parses and validates the environment once and hands the same object back until one of
the variables changes (tests and ``serve`` change them; :func:`reset_lab_settings` forgets
the cached copy). A wrong value fails with a :class:`~recsys_core.errors.ConfigError` naming
the variable, the value and what it accepts.

The security limits (:class:`~recsys_core.security.settings.SecuritySettings`) are a section
of this tree: :class:`LabSettings` inherits them, so a variable added there is part of the
lab's settings and of the generated table (``python -m recsys_core settings-env``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from recsys_core.errors import ConfigError
from recsys_core.security.settings import SecuritySettings

#: Prefix of the lab's own variables (``RECSYS_HOME`` for the field ``home``).
ENV_PREFIX = "RECSYS_"


class LabSettings(SecuritySettings):
    """Every environment variable the lab reads (``RECSYS_<FIELD>`` unless noted)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", env_ignore_empty=True)

    # ------------------------------------------------------------------ lab state
    home: Path = Field(
        Path(".recsys"),
        description="Folder of the lab's state: trained versions, users, audit log, keys.",
    )

    # ------------------------------------------------------------------ app
    app_data: Path | None = Field(
        None, description="An event file (CSV/Parquet) the app opens in every new session."
    )
    app_dataset: str | None = Field(
        None, description="A built-in dataset the app opens in new sessions (without app_data)."
    )

    # ------------------------------------------------------------------ serving
    keep_versions: int = Field(
        10, ge=1, description="Trained versions kept per dataset (older ones are pruned)."
    )
    auto_rollback: bool = Field(
        False, description="Let the live service roll back a version whose health check fails."
    )
    als_factors: str | None = Field(
        None,
        description="How the served ALS factors are held: float32, float16 or int8 "
        "(unset: float32).",
    )
    serve_dataset: str | None = Field(
        None, description="Dataset the API serves (`serve` sets it for its workers)."
    )
    serve_version: str | None = Field(
        None, description="Version the API serves (default: the active one; set by `serve`)."
    )
    serve_batch: Path | None = Field(
        None, description="Batch table the API answers from where it covers the question."
    )
    prometheus_multiproc_dir: Path | None = Field(
        None,
        validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR"),
        description="Metrics folder shared by API workers (`serve --workers N` sets it).",
    )

    # ------------------------------------------------------------------ secrets
    encryption_keys: SecretStr | None = Field(
        None,
        description="Fernet keys, comma- or newline-separated, the first encrypts (default: "
        "the key file under $RECSYS_HOME/keys).",
    )
    pseudonym_key: SecretStr | None = Field(
        None, description="Key of the shopper pseudonyms (default: a key file under keys/)."
    )
    audit_key: SecretStr | None = Field(
        None,
        description="HMAC key that signs the audit log's chain head (default: a key file "
        "under keys/, outside the database).",
    )

    # ------------------------------------------------------------------ Spark
    scoring_workers: int | None = Field(
        None,
        description="Worker processes that score the ranker's chunks of shoppers for every "
        "shopper (`batch`, the pipeline benchmark; default: the number of cores).",
    )
    spark_master: str | None = Field(None, description="Spark master URL (default local[*]).")
    spark_work_dir: Path | None = Field(
        None,
        description="Folder for Spark's exchanged files and checkpoints (default "
        "$RECSYS_HOME/spark-work; shared storage on a cluster).",
    )
    spark_driver_memory: str = Field("2g", description="Memory of the Spark driver.")
    spark_executor_memory: str | None = Field(
        None, description="Memory of each Spark executor (default: Spark's)."
    )
    java_home: Path | None = Field(
        None,
        validation_alias=AliasChoices("JAVA_HOME"),
        description="The Java runtime Spark starts (default: `java` on PATH).",
    )

    # ------------------------------------------------------------------ tests and CI
    require_spark: bool = Field(
        False, description="Tests: fail, not skip, the Spark tests when Spark cannot run."
    )
    require_all: bool = Field(
        False,
        description="Tests: fail, not skip, every test marked `required` whose part is "
        "missing (CI sets it).",
    )

    def secret(self, variable: str) -> str | None:
        """The value of the secret setting read from ``variable`` (``None`` when unset).

        Raises
        ------
        KeyError
            ``variable`` is not one of the secret settings.
        """
        for name in SECRET_FIELDS:
            if env_name(name) == variable:
                value: SecretStr | None = getattr(self, name)
                return None if value is None else value.get_secret_value()
        raise KeyError(f"{variable} is not a secret setting of LabSettings")


#: Fields holding secrets (never printed; read with :meth:`LabSettings.secret`).
SECRET_FIELDS: tuple[str, ...] = ("encryption_keys", "pseudonym_key", "audit_key")


def env_name(field: str) -> str:
    """The environment variable of the :class:`LabSettings` field ``field``."""
    alias = LabSettings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"{ENV_PREFIX}{field}".upper()


#: Every variable the settings read, in the order of the fields.
ENV_VARIABLES: tuple[str, ...] = tuple(env_name(f) for f in LabSettings.model_fields)

_lock = threading.Lock()
_cached: dict[str, tuple[tuple[Any, ...], LabSettings]] = {}


#: The variables as ``os.environ`` stores them (its ``encodekey``: bytes on POSIX).
_ENV_KEYS: tuple[Any, ...] = tuple(os.environ.encodekey(n) for n in ENV_VARIABLES)  # type: ignore[attr-defined]


def _fingerprint() -> tuple[Any, ...]:
    # read from os.environ's own store: ``os.environ.get`` encodes each name and raises and
    # catches a KeyError for each unset variable (~90 us for all of them under load, and the
    # REST API asks on every request); the store changes with every ``os.environ`` write
    store = getattr(os.environ, "_data", None)
    if store is None:  # pragma: no cover - not CPython's os.environ
        return tuple(os.environ.get(name) for name in ENV_VARIABLES)
    return tuple(map(store.get, _ENV_KEYS))


def lab_settings() -> LabSettings:
    """The lab's settings, parsed once and reused until one of its variables changes.

    Raises
    ------
    ConfigError
        A variable holds a value its setting does not accept (the message names it).
    """
    key = _fingerprint()
    with _lock:
        cached = _cached.get("settings")
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            settings = LabSettings()
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from None
        _cached["settings"] = (key, settings)
        return settings


def reset_lab_settings() -> None:
    """Forget the cached settings (the next :func:`lab_settings` reads the environment)."""
    with _lock:
        _cached.clear()


def set_environment(values: Mapping[str, str], *, only_if_unset: bool = False) -> None:
    """Set environment variables for this process and the ones it starts (``serve``'s workers).

    ``only_if_unset`` leaves variables that already have a value alone.
    """
    for name, value in values.items():
        if only_if_unset:
            os.environ.setdefault(name, value)
        else:
            os.environ[name] = value
    reset_lab_settings()


def _explain(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        known = LabSettings.model_fields.get(field)
        variable = env_name(field) if known is not None else field.upper()
        meaning = f" ({known.description})" if known is not None and known.description else ""
        shown = "<secret>" if field in SECRET_FIELDS else repr(os.environ.get(variable))
        problems.append(f"{variable}={shown}: {error['msg']}{meaning}")
    return (
        "invalid environment setting: "
        + "; ".join(problems)
        + " -- fix the value or unset the variable"
    )


def settings_table(markdown: bool = True) -> str:
    """A table of every variable: name, default and meaning (docs/settings.md is this)."""
    rows = []
    for name, field in LabSettings.model_fields.items():
        default = field.default
        shown = "(unset)" if default is None else str(default)
        description = (field.description or "").replace("|", "\\|")
        rows.append((env_name(name), shown, description))
    if not markdown:
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{v.ljust(width)}  {d}  [default {s}]" for v, s, d in rows)
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{v}` | `{s}` | {d} |" for v, s, d in rows]
    return "\n".join(lines)
