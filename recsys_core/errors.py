"""Errors a user of the lab can cause. Each message says what is wrong and how to fix it.

The CLI turns every :class:`RecsysError` into exit code 2 and its message; the UI shows the
message with ``st.error``. Nothing a user can cause should surface as a bare traceback.
"""

from __future__ import annotations


class RecsysError(Exception):
    """Base class of every error a user can cause (bad input, unknown ids, missing models)."""


class DataValidationError(RecsysError, ValueError):
    """An event log or catalog cannot be used as it is.

    The message names what is wrong, where (file, column, row number, offending value) and
    how to fix it.
    """


class UnknownUserError(RecsysError, KeyError):
    """A user id that the model or dataset has never seen, where no fallback applies."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "unknown user"


class UnknownItemError(RecsysError, KeyError):
    """An item id that is not in the catalog or the model."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown item"


class UnknownDatasetError(RecsysError, KeyError):
    """A built-in dataset name that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown dataset"


class ModelNotTrainedError(RecsysError, RuntimeError):
    """A model was used before ``fit`` or no trained model exists yet."""


class ArtifactError(RecsysError, OSError):
    """A saved model or artifact is missing, corrupted or of an unknown version."""


class ConfigError(RecsysError, ValueError):
    """A configuration or command-line option is invalid."""


class AuthError(RecsysError):
    """A log-in failed, a session ended, or a user lacks the role an action needs."""


class InputLimitError(DataValidationError):
    """An input is larger than a configured limit (the message names the limit and its setting)."""


class EncryptionError(RecsysError):
    """An encrypted file cannot be decrypted: wrong key, or the file was changed."""


class EngineUnavailableError(RecsysError, RuntimeError):
    """An optional training engine (Apache Spark) or what it needs (Java) is not installed."""
