"""Security and input-limit settings, read from ``RECSYS_*`` environment variables.

Every value has a sensible default; set the environment variable to change it, e.g.
``RECSYS_SESSION_IDLE_MINUTES=60`` or ``RECSYS_MAX_ROWS=20000000``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SecuritySettings(BaseSettings):
    """Durations, attempt limits and input caps (environment variable ``RECSYS_<NAME>``)."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore")

    session_idle_minutes: float = Field(30.0, gt=0, description="Idle time that ends a session.")
    session_max_hours: float = Field(12.0, gt=0, description="Absolute lifetime of a session.")
    login_max_failures: int = Field(
        5, ge=1, description="Failed log-ins per account after which each try must wait."
    )
    login_window_minutes: float = Field(15.0, gt=0, description="Window the failures count in.")
    login_backoff_max_seconds: float = Field(
        60.0,
        gt=0,
        description="Longest wait the back-off asks for after a failure (it doubles from 1 s "
        "with each failure past login_max_failures). Never a lock: a try after the wait is "
        "checked.",
    )
    login_lock_minutes: float = Field(
        15.0,
        gt=0,
        description="Unused since log-ins back off instead of locking (kept so an "
        "existing environment still parses).",
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses or networks of reverse proxies whose "
        "X-Forwarded-For header is believed, e.g. '127.0.0.1,::1' for a proxy on the same host. "
        "Empty: the header is ignored and the connecting address is the client.",
    )
    max_upload_mb: float = Field(
        200.0, gt=0, description="Largest file (as stored, compressed or not) the app accepts."
    )
    max_decompressed_mb: float = Field(
        1024.0, gt=0, description="Largest decompressed size of a compressed event log."
    )
    max_rows: int = Field(5_000_000, ge=1, description="Most rows an event log may have.")
    encrypt_artifacts: bool = Field(
        False,
        description="Encrypt saved model versions (models and catalog) at rest; they are "
        "decrypted into a private temporary folder only while loading.",
    )
    encrypt_backups: bool = Field(
        True,
        description="Encrypt registry backups at rest with the lab's Fernet keys "
        "(RECSYS_ENCRYPT_BACKUPS=0 writes plain archives).",
    )


def get_settings() -> SecuritySettings:
    """The settings as the environment says now (read on every call: tests change it)."""
    return SecuritySettings()
