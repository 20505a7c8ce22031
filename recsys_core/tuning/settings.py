"""Which settings apply to a log — the one place that decides, and says where they came from.

In order:

1. **tuned**: a saved ``tune`` result for this data (``$RECSYS_HOME/tuned/<dataset>.json``,
   matched by the data's SHA-256, :func:`recsys_core.provenance.data_checksum`). A saved
   result for the same dataset name but other data is *stale*: ignored, with a note.
2. **preset**: the built-in dataset's preset (:mod:`recsys_core.presets`).
3. **scaled defaults**: settings scaled to the log (:mod:`recsys_core.tuning.defaults`).

``evaluate``, ``train``, the app and the Model lab all call :func:`settings_for`; explicit
settings passed to them still override single values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys_core.data.schema import Dataset
from recsys_core.io_utils import atomic_write_text
from recsys_core.paths import recsys_home
from recsys_core.presets import PRESETS, Preset, preset_for
from recsys_core.provenance import data_checksum
from recsys_core.tuning.defaults import SCALED_DEFAULTS, scaled_defaults

#: Version of the saved-settings file layout.
TUNED_FORMAT_VERSION = 1

#: Where settings came from ("given": passed by the caller, e.g. ``TrainConfig.settings``).
Origin = Literal["tuned", "preset", "scaled defaults", "given"]


class TunedSettings(BaseModel):
    """One saved ``tune`` result (the JSON under ``$RECSYS_HOME/tuned/``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = Field(TUNED_FORMAT_VERSION, description="File layout version.")
    dataset: str = Field(description="The dataset's name.")
    data_sha256: str = Field(description="Checksum of the event log the search ran on.")
    created: str = Field(description="When the search finished (ISO 8601, UTC).")
    preset: Preset = Field(description="The chosen settings.")
    search: dict[str, Any] = Field(
        default_factory=dict,
        description="How they were chosen: models, trials, budget, seconds, seed, validation "
        "window, validation NDCG of the defaults and of the chosen settings.",
    )
    validation_window: dict[str, str | None] | None = Field(
        None,
        description="The window the settings were chosen on: 'start' (validation cutoff) and "
        "'end' (the first instant the search did not see: the tune run's test cutoff). "
        "None without timestamps.",
    )

    def seen_until(self) -> pd.Timestamp | None:
        """The first instant the search did not see (``None``: unknown, no timestamps).

        Files written before ``validation_window`` existed are read from ``search``.
        """
        window = self.validation_window or {}
        end = window.get("end") or (self.search.get("split") or {}).get("test_cutoff")
        if end is None:
            end = (self.search.get("validation") or {}).get("end")
        return None if end is None else pd.Timestamp(end)

    @property
    def label(self) -> str:
        """``tuned on <date>``."""
        return f"tuned on {self.created[:10]}"


@dataclass(frozen=True)
class ResolvedSettings:
    """The settings that apply to a log, and where they came from."""

    preset: Preset
    origin: Origin
    label: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    path: Path | None = None

    @property
    def repeat_reason(self) -> str | None:
        """Why these settings keep or remove the items a shopper has already bought
        (``None`` when they leave it to the repeat rate, :mod:`recsys_core.repeats`)."""
        if self.preset.filter_seen is None:
            return None
        if self.origin == "tuned":
            return f"chosen by tune on its validation window ({self.label})"
        return self.label

    def line(self) -> str:
        """One line for outputs: ``settings: tuned on 2026-11-29 (...)``."""
        where = f" ({self.path})" if self.path is not None else ""
        return f"settings: {self.label}{where}"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"


def tuned_dir(home: Path | None = None) -> Path:
    """``$RECSYS_HOME/tuned``."""
    return (home or recsys_home()) / "tuned"


def tuned_path(dataset: str, home: Path | None = None) -> Path:
    """Where the saved settings of ``dataset`` live."""
    return tuned_dir(home) / f"{_safe_name(dataset)}.json"


def save_tuned(settings: TunedSettings, home: Path | None = None) -> Path:
    """Write ``settings`` (replacing an earlier result of the same dataset)."""
    path = tuned_path(settings.dataset, home)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, settings.model_dump_json(indent=2) + "\n")
    return path


def load_tuned(path: Path) -> TunedSettings | None:
    """A saved result, or ``None`` when the file is missing or not a valid result."""
    try:
        return TunedSettings.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError):
        return None


def _find_tuned(
    dataset: Dataset,
    checksum: str | None,
    home: Path | None,
    test_cutoff: pd.Timestamp | str | None = None,
) -> tuple[TunedSettings | None, Path | None, list[str]]:
    folder = tuned_dir(home)
    if not folder.is_dir():
        return None, None, []
    own = tuned_path(dataset.name, home)
    files = sorted(folder.glob("*.json"))
    if not files:
        return None, None, []
    if checksum is None:
        checksum = data_checksum(dataset.events)
    notes: list[str] = []
    # the dataset's own file first, then any other result for exactly this data
    for path in sorted(files, key=lambda p: p != own):
        saved = load_tuned(path)
        if saved is None:
            if path == own:
                notes.append(f"saved settings {path} are unreadable and were ignored")
            continue
        if saved.data_sha256 == checksum:
            seen_until = saved.seen_until()
            if test_cutoff is not None and (
                seen_until is None or seen_until > pd.Timestamp(test_cutoff)
            ):
                seen = "an unknown window" if seen_until is None else f"events up to {seen_until}"
                notes.append(
                    f"saved settings {path} ({saved.label}) were chosen on {seen}, which "
                    f"reaches this test window (from {pd.Timestamp(test_cutoff)}): ignored, so "
                    "no setting is chosen on the data it is measured on; tune with "
                    f"--cutoff {pd.Timestamp(test_cutoff).date()} or earlier to use tuned "
                    "settings here"
                )
                continue
            return saved, path, notes
        if path == own:
            notes.append(
                f"saved settings {path} ({saved.label}) were tuned on other data (the log has "
                "changed since) and were ignored; run `python -m recsys_core tune` again"
            )
    return None, None, notes


def settings_for(
    dataset: Dataset,
    *,
    checksum: str | None = None,
    home: Path | None = None,
    scale_on: pd.DataFrame | None = None,
    test_cutoff: pd.Timestamp | str | None = None,
) -> ResolvedSettings:
    """The settings that apply to ``dataset``: tuned, else preset, else scaled defaults.

    Parameters
    ----------
    dataset:
        The log (its name picks the preset and the saved file).
    checksum:
        The log's :func:`~recsys_core.provenance.data_checksum` if already known (computed
        here only when saved settings exist).
    home:
        The state folder (default ``$RECSYS_HOME``).
    scale_on:
        The events the scaled defaults are computed from (default: the whole log; evaluation
        passes its training part so no test-period count shapes the settings).
    test_cutoff:
        Start of the test window the settings will be measured on (evaluation passes its
        cutoff). A saved result whose search saw events from this instant on is ignored,
        and a note says so.
    """
    saved, path, notes = _find_tuned(dataset, checksum, home, test_cutoff)
    builtin = preset_for(dataset.name) if dataset.name in PRESETS else None
    if saved is not None:
        preset = saved.preset
        if builtin is not None:  # models the search does not tune keep the preset's settings
            kept = {m: p for m, p in builtin.model_params.items() if m not in preset.model_params}
            preset = preset.model_copy(update={"model_params": {**preset.model_params, **kept}})
        return ResolvedSettings(preset, "tuned", saved.label, tuple(notes), path)
    if builtin is not None:
        return ResolvedSettings(builtin, "preset", "preset", tuple(notes))
    events = dataset.events if scale_on is None else scale_on
    return ResolvedSettings(
        scaled_defaults(events), "scaled defaults", SCALED_DEFAULTS, tuple(notes)
    )
