"""Where the lab reads shipped data and writes its state.

All state (models, databases, keys, backups) lives under ``$RECSYS_HOME``, default
``.recsys/`` in the working directory. Shipped data lives in the repository's ``data/``.
"""

from __future__ import annotations

from pathlib import Path

from recsys_core.settings import lab_settings

#: The repository root (the folder that holds ``recsys_core/`` and ``data/``).
PROJECT_ROOT: Path = Path(__file__).resolve().parent.parent

#: Shipped data files (the Online Retail parquet and its licence note).
DATA_DIR: Path = PROJECT_ROOT / "data"


def recsys_home() -> Path:
    """Return the state folder, ``$RECSYS_HOME`` or ``./.recsys``, creating it if needed."""
    home = lab_settings().home.expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home
