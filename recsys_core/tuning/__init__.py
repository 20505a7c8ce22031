"""Good settings for any shop's log: scaled defaults, a validation-window search, saved results.

* :func:`settings_for` — the one place that decides which settings apply to a log (a saved
  ``tune`` result for this data, else the built-in preset, else the scaled defaults) and says
  where they came from;
* :func:`scaled_defaults` — settings scaled to the log's counts and funnel, without a search;
* :mod:`recsys_core.tuning.search` — the optuna search behind ``python -m recsys_core tune``.
"""

from __future__ import annotations

from recsys_core.tuning.defaults import SCALED_DEFAULTS, funnel_weights, scaled_defaults
from recsys_core.tuning.profile import LogProfile, profile_log
from recsys_core.tuning.settings import (
    ResolvedSettings,
    TunedSettings,
    load_tuned,
    save_tuned,
    settings_for,
    tuned_path,
)

__all__ = [
    "SCALED_DEFAULTS",
    "LogProfile",
    "ResolvedSettings",
    "TunedSettings",
    "funnel_weights",
    "load_tuned",
    "profile_log",
    "save_tuned",
    "scaled_defaults",
    "settings_for",
    "tuned_path",
]
