"""``python -m recsys_core tune`` and ``settings``: search settings for a log, show which apply.

Thin: parses options, calls :mod:`recsys_core.tuning`, prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from recsys_core.cli.app import (
    DataOption,
    DatasetOption,
    EventMapOption,
    FormatOption,
    MapOption,
    app,
    echo_json,
    load_input,
)
from recsys_core.errors import ConfigError
from recsys_core.models.registry import cold_start_model


def _clock(seconds: float) -> str:
    seconds = max(int(round(seconds)), 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _progress_line(status: Any) -> None:
    """One stderr line per trial: trials done, best so far, time left."""
    best = "-" if status.best_ndcg is None else f"{status.best_ndcg:.4f} ({status.best_model})"
    last = status.last
    if last is None:
        head = status.message
    else:
        score = "" if last.ndcg is None else f" ndcg {last.ndcg:.4f}"
        head = f"{last.model} trial {last.number}: {last.state}{score} in {last.seconds:.1f}s"
    typer.echo(
        f"[{status.trials_done:>3} trials | best {best} | {_clock(status.seconds_left)} left] "
        f"{head}",
        err=True,
    )


def _parse_tunable(models: str) -> list[str]:
    from recsys_core.tuning.search import TUNABLE_MODELS

    names = [m.strip() for m in models.split(",") if m.strip()]
    if names == ["all"]:
        return list(TUNABLE_MODELS)
    unknown = [m for m in names if m not in TUNABLE_MODELS]
    if unknown or not names:
        raise ConfigError(
            f"--models {models!r}: can tune {', '.join(TUNABLE_MODELS)} (comma-separated)"
        )
    return names


def _settings_lines(preset: Any, repeat_reason: str | None) -> list[str]:
    lines = [f"  event weights: {_weights(preset.weights)}"]
    for name, params in preset.model_params.items():
        shown = ", ".join(f"{k}={_value(v)}" for k, v in params.items())
        lines.append(f"  {name}: {shown}")
        if name in preset.model_weights:
            lines.append(f"  {name} event weights: {_weights(preset.model_weights[name])}")
    if preset.filter_seen is None:
        lines.append("  items the shopper already has: the training data's repeat rate decides")
    else:
        what = "left out of" if preset.filter_seen else "kept in"
        lines.append(f"  items the shopper already has: {what} the lists ({repeat_reason})")
    return lines


def _weights(weights: Any) -> str:
    parts = [f"{e} {getattr(weights, e):.3g}" for e in ("view", "cart", "favorite", "purchase")]
    if weights.log_scale:
        parts.append("log-damped")
    if weights.use_quantity:
        parts.append("x quantity")
    return ", ".join(parts)


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@app.command()
def tune(
    dataset: DatasetOption = None,
    data: DataOption = None,
    models: Annotated[
        str, typer.Option(help="Comma-separated models to tune: als,itemknn,bpr.")
    ] = "als,itemknn,bpr",
    budget_minutes: Annotated[
        float, typer.Option("--budget-minutes", min=0.05, help="Wall-clock budget.")
    ] = 5.0,
    trials: Annotated[
        int | None, typer.Option(min=1, help="At most this many trials per model.")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the search, models and splits.")] = 42,
    k: Annotated[int, typer.Option("--k", min=1, max=200, help="NDCG@k is maximised.")] = 10,
    test_days: Annotated[float, typer.Option(help="The test period evaluate holds out.")] = 30,
    cutoff: Annotated[str | None, typer.Option(help="Explicit test-period start.")] = None,
    validation_days: Annotated[
        float, typer.Option(help="Validation window length, before the test period.")
    ] = 30,
    save: Annotated[
        bool, typer.Option(help="Save the chosen settings for this data under $RECSYS_HOME.")
    ] = True,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result (settings, trials) here.")
    ] = None,
    fmt: FormatOption = "auto",
    column_map: MapOption = None,
    event_map: EventMapOption = None,
) -> None:
    """Search event weights and model settings on a validation window before the test period.

    The test period is never read. The chosen settings are saved for this data (keyed by its
    checksum) and then used by evaluate, train, the app and the Model lab.
    """
    from recsys_core.tuning.search import TuneConfig, tune_dataset
    from recsys_core.tuning.settings import tuned_path

    config = TuneConfig(
        models=_parse_tunable(models),
        budget_minutes=budget_minutes,
        trials=trials,
        seed=seed,
        k=k,
        test_days=test_days,
        cutoff=cutoff,
        validation_days=validation_days,
    )
    ds = load_input(dataset, data, fmt=fmt, column_map=column_map, event_map=event_map)
    typer.echo(
        f"tuning {', '.join(config.models)} on {ds.name} for at most "
        f"{_clock(config.budget_minutes * 60)} (validation window before the test period)",
        err=True,
    )
    result, tuned = tune_dataset(ds, config, progress=_progress_line, save=save)
    validation = result.validation
    where = (
        f"{validation['method']} validation window"
        + (f" from {validation['cutoff']}" if validation.get("cutoff") else "")
        + f", {validation['users']:,} shoppers"
    )
    typer.echo(
        f"{ds.name}: {len(result.trials)} trials in {result.seconds:.0f} s "
        f"(budget {result.budget_seconds:.0f} s); {where}"
    )
    baseline = cold_start_model()
    typer.echo(f"{'model':<10}{baseline:>12}{'defaults':>12}{'tuned':>12}   NDCG@{k}")
    for name in config.models:
        default = result.default_ndcg.get(name, float("nan"))
        best = result.best_ndcg.get(name, float("nan"))
        typer.echo(f"{name:<10}{result.popularity_ndcg:>12.4f}{default:>12.4f}{best:>12.4f}")
    for name, check in result.guard.items():
        typer.echo(f"{name}: {check['kept']} kept: {check['why']}")
    if tuned.validation_window:
        window = tuned.validation_window
        typer.echo(
            f"validation window: {window.get('start')} .. {window.get('end')} (evaluate ignores "
            "these settings for a test window that starts before its end)"
        )
    typer.echo(f"settings: {tuned.label}")
    reason = f"chosen by tune on its validation window ({tuned.label})"
    for line in _settings_lines(result.preset, reason):
        typer.echo(line)
    if save:
        typer.echo(
            f"saved to {tuned_path(ds.name)}; evaluate, train, the app and the Model lab use "
            "these settings for this data until it changes"
        )
    if json_out is not None:
        payload = tuned.model_dump(mode="json")
        payload["trials"] = result.trials_frame().to_dict(orient="records")
        echo_json(payload, json_out)


@app.command()
def settings(
    dataset: DatasetOption = None,
    data: DataOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    fmt: FormatOption = "auto",
    column_map: MapOption = None,
    event_map: EventMapOption = None,
) -> None:
    """Show which settings apply to a log and where they came from (tuned, preset, scaled)."""
    from recsys_core.tuning import settings_for

    ds = load_input(dataset, data, fmt=fmt, column_map=column_map, event_map=event_map)
    resolved = settings_for(ds)
    if as_json:
        echo_json(
            {
                "dataset": ds.name,
                "origin": resolved.origin,
                "label": resolved.label,
                "path": None if resolved.path is None else str(resolved.path),
                "notes": list(resolved.notes),
                "repeat_reason": resolved.repeat_reason,
                "settings": resolved.preset.model_dump(mode="json"),
            }
        )
        return
    for note in resolved.notes:
        typer.echo(f"note: {note}")
    typer.echo(resolved.line())
    for line in _settings_lines(resolved.preset, resolved.repeat_reason):
        typer.echo(line)
