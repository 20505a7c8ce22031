"""Commands about logs: ``datasets`` and ``validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recsys_core.cli.app import (
    EventMapOption,
    MapOption,
    app,
    echo_json,
    parse_pairs,
)


@app.command()
def datasets(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the built-in datasets with their event, user and item counts."""
    from recsys_core.data.builtin import BUILTIN_DATASETS, load_dataset

    rows = []
    for name, entry in BUILTIN_DATASETS.items():
        summary = load_dataset(name).summary()
        rows.append(
            {
                "name": name,
                "kind": entry.kind,
                "description": entry.description,
                "licence": entry.licence,
                "events": summary["events"],
                "users": summary["users"],
                "items": summary["items"],
                "events_by_type": summary["events_by_type"],
                "first_event": summary.get("first_event"),
                "last_event": summary.get("last_event"),
            }
        )
    if as_json:
        echo_json(rows)
        return
    typer.echo(f"{'name':<15}{'kind':<11}{'events':>11}{'users':>9}{'items':>8}  description")
    for r in rows:
        typer.echo(
            f"{r['name']:<15}{r['kind']:<11}{r['events']:>11,}{r['users']:>9,}{r['items']:>8,}"
            f"  {r['description']}"
        )


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="CSV or Parquet event log.")],
    fmt: Annotated[
        str,
        typer.Option("--format", help="auto | events | online-retail | retailrocket"),
    ] = "auto",
    column_map: MapOption = None,
    event_map: EventMapOption = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of a CSV file.")] = "utf-8",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Check that an event log can be used; exit 2 with one clear message when it cannot."""
    from recsys_core.data.loaders import load_event_file

    ds = load_event_file(
        path,
        fmt=fmt,
        column_map=parse_pairs(column_map, "column mapping"),
        event_map=parse_pairs(event_map, "event mapping"),
        encoding=encoding,
    )
    summary = ds.summary()
    summary["notes"] = list(ds.notes)
    if as_json:
        echo_json(summary)
        return
    typer.echo(
        f"OK: {path} is usable: {summary['events']:,} events, {summary['users']:,} users, "
        f"{summary['items']:,} items."
    )
    by_type = ", ".join(f"{k} {v:,}" for k, v in summary["events_by_type"].items())
    typer.echo(f"events by type: {by_type}")
    if ds.has_timestamps:
        typer.echo(f"period: {summary['first_event']} .. {summary['last_event']}")
    for note in ds.notes:
        typer.echo(f"note: {note}")
