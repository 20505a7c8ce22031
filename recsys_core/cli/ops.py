"""Operations commands: ``registry list|verify|backup|restore|rollback|history|prune``,
``monitor`` and ``alerts``.

Exit codes: 0 when all is well; 1 when ``registry verify`` finds a bad or missing file or
``monitor`` leaves a critical alert open; 2 for errors a user can cause (a bad name, a
refused archive), as everywhere in the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from recsys_core.cli.app import DataOption, FormatOption, app, echo_json, load_input

registry_app = typer.Typer(
    help="Saved model versions: list, verify, back up, restore, roll back, history, prune.",
    no_args_is_help=True,
)
app.add_typer(registry_app, name="registry")

DatasetFilter = Annotated[
    str | None, typer.Option("--dataset", help="Only this dataset (default: every dataset).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


@registry_app.command("list")
def registry_list(
    dataset: DatasetFilter = None,
    as_json: JsonFlag = False,
    quick: Annotated[
        bool, typer.Option("--quick", help="Check file sizes only, not SHA-256 checksums.")
    ] = False,
) -> None:
    """Saved versions, newest first: created, models, data checksum, metrics, size, state."""
    from recsys_core.serving import registry

    for path in registry.clean_leftovers():
        typer.echo(f"removed {path.name}, left behind by a killed run", err=True)
    rows = registry.list_versions(dataset, verify=not quick)
    for problem in registry.pointer_problems().values():
        typer.echo(f"warning: {problem}", err=True)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("no saved versions yet: run `python -m recsys_core train ...`")
        return
    typer.echo(
        f"  {'dataset':<16}{'version':<19}{'created':<27}{'size':>10}  {'state':<11}"
        "models / headline ndcg@10"
    )
    for r in rows:
        mark = "*" if r["active"] else " "
        models = ", ".join(
            f"{m} {r['headline'][m]:.3f}" if m in r["headline"] else m for m in r["models"]
        )
        typer.echo(
            f"{mark} {r['registry_dataset']:<16}{r['version']:<19}{str(r['created']):<27}"
            f"{_size(r['size_bytes']):>10}  {r['verification']:<11}{models}"
        )
        if r["data_sha256"]:
            typer.echo(f"  {'':<16}data sha256 {str(r['data_sha256'])[:16]}, {r['events']} events")
    typer.echo("* = active")


@registry_app.command("verify")
def registry_verify(
    dataset: DatasetFilter = None,
    version: Annotated[str | None, typer.Option("--version", help="Only this version.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check every file of every version against its SHA-256; exit 1 naming each bad file."""
    from recsys_core.serving import registry

    if version is not None:
        if dataset is None:
            last = registry.last_pointer()
            dataset = last[0] if last else None
        if dataset is None:
            raise typer.BadParameter("--version needs --dataset")
        folders = [registry.version_folder(dataset, version)]
    else:
        names = [registry.dataset_folder(dataset).name] if dataset else registry.datasets()
        folders = [
            registry.models_root() / ds / v for ds in names for v in registry.version_names(ds)
        ]
    results = [registry.verify_version(f) for f in folders]
    bad = [r for r in results if r.state == "damaged"]
    if as_json:
        echo_json(
            [
                {
                    "dataset": r.folder.parent.name,
                    "version": r.folder.name,
                    "state": r.state,
                    "problems": r.problems,
                    "files": r.files,
                    "size_bytes": r.size,
                }
                for r in results
            ]
        )
    else:
        for r in results:
            typer.echo(f"{r.state:<11}{r.folder.parent.name}/{r.folder.name} ({r.files} files)")
            for name, problem in r.problems.items():
                typer.echo(f"    BAD {r.folder / name}: {problem}")
        if not results:
            typer.echo("no saved versions to verify")
    if bad:
        raise typer.Exit(code=1)


@registry_app.command("backup")
def registry_backup(
    path: Annotated[Path, typer.Argument(help="Archive to write: FILE.tar.zst or FILE.tar.gz.")],
) -> None:
    """Write every verified version and the ACTIVE pointers to one checksummed archive."""
    from recsys_core.serving.backup import backup

    result = backup(path)
    typer.echo(
        f"wrote {result.path}: {len(result.versions)} version(s), {result.files} files, "
        f"{_size(result.size)} in {result.seconds:.1f} s"
    )
    for name, why in result.skipped.items():
        typer.echo(f"skipped damaged version {name}: {why}", err=True)


@registry_app.command("restore")
def registry_restore(
    archive: Annotated[Path, typer.Argument(help="An archive written by `registry backup`.")],
) -> None:
    """Restore a backup; the whole archive is verified before anything changes.

    Damaged pointer files (``ACTIVE``, ``LAST``) are rewritten; exit 1 when something could
    not be put right (the message says what).
    """
    from recsys_core.serving.backup import restore

    result = restore(archive)
    typer.echo(
        f"restored from {archive} in {result.seconds:.1f} s: {len(result.added)} added, "
        f"{len(result.healed)} healed, {len(result.unchanged)} already intact"
    )
    for name in result.healed:
        typer.echo(f"healed {name}")
    for name in result.repaired:
        typer.echo(f"repaired the damaged pointer {name}")
    for ds, version in result.activated.items():
        typer.echo(f"active version of {ds}: {version}")
    for problem in result.problems:
        typer.echo(f"error: {problem}", err=True)
    if result.problems:
        raise typer.Exit(code=1)


@registry_app.command("rollback")
def registry_rollback(
    version: Annotated[
        str | None, typer.Argument(help="Version to activate (default: the previous one).")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Dataset (default: the last activated).")
    ] = None,
) -> None:
    """Activate the previous verified version (or the named one)."""
    from recsys_core.serving import registry

    before, after = registry.rollback(dataset, version)
    typer.echo(f"active version: {after} (was {before})")


@registry_app.command("history")
def registry_history(dataset: DatasetFilter = None, as_json: JsonFlag = False) -> None:
    """Every change of an active version: when, who, from, to and why."""
    from recsys_core.serving import registry

    rows = registry.activation_history(dataset)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("no activations recorded yet")
    for r in rows:
        note = f"  ({r['note']})" if r.get("note") else ""
        typer.echo(
            f"{r['time']}  {r['user']:<10} {r['dataset']:<16} {str(r['from']):<19} -> "
            f"{str(r['to']):<19} {r['why']}{note}"
        )


@registry_app.command("prune")
def registry_prune(
    keep: Annotated[int, typer.Option("--keep", help="Versions to keep per dataset.")],
    dataset: DatasetFilter = None,
) -> None:
    """Delete all but the newest N versions of each dataset; never an active version."""
    from recsys_core.serving import registry

    names = [registry.dataset_folder(dataset).name] if dataset else registry.datasets()
    for ds in names:
        removed = registry.prune(ds, keep)
        listed = f": {', '.join(removed)}" if removed else ""
        typer.echo(f"{ds}: removed {len(removed)} version(s){listed}")


@app.command()
def monitor(
    data: DataOption = None,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", help="Dataset whose active version to check (default: last)."),
    ] = None,
    quality: Annotated[
        bool, typer.Option(help="With --data: score the served models on it too.")
    ] = True,
    fmt: FormatOption = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Health, drift of a newer log (--data) and quality; exit 1 while a critical alert is open."""
    from recsys_core.monitoring import run_monitor

    events = load_input(None, data, fmt=fmt).events if data is not None else None
    result = run_monitor(dataset, events, quality=quality)
    if as_json:
        echo_json(result.to_dict())
    else:
        _print_monitor(result)
    if result.critical:
        raise typer.Exit(code=1)


def _print_monitor(result: Any) -> None:
    h = result.health
    if h.get("status") == "down":
        typer.echo(f"health: down ({h.get('error')})")
    else:
        typer.echo(
            f"health: {h['status']}  version {h['dataset']}/{h['version']}, "
            f"{h['age_hours']} h old, verification {h['verification']}"
        )
        for part, why in h["broken"].items():
            typer.echo(f"  broken {part}: {why}")
    if result.drift is not None:
        d = result.drift
        typer.echo(f"drift of {d.shoppers:,} shoppers / {d.events:,} events vs the training log:")
        for m in d.metrics:
            limit = "" if m.threshold is None else f" (threshold {m.threshold:.4f})"
            flag = "DRIFT " if m.drifted else "ok    "
            typer.echo(f"  {flag}{m.name:<18}{m.value:9.4f}{limit}  {m.detail}")
        for note in d.notes:
            typer.echo(f"  note: {note}")
    for name, q in (result.quality or {}).items():
        typer.echo(
            f"quality {name}: {q['metric']} {q['now']:.4f} now vs {q['recorded']:.4f} recorded "
            f"({q['change']:+.0%}, {q['shoppers']} shoppers)"
        )
    typer.echo(f"open alerts: {len(result.alerts)}")
    for a in result.alerts:
        typer.echo(f"  [{a['severity']}] #{a['id']} {a['what']}")
        typer.echo(f"      -> {a['action']}")


@app.command()
def alerts(
    show_all: Annotated[bool, typer.Option("--all", help="Include resolved alerts.")] = False,
    resolve: Annotated[
        int | None, typer.Option("--resolve", help="Acknowledge (resolve) the alert with this id.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Monitoring alerts (open ones by default)."""
    from recsys_core.errors import ConfigError
    from recsys_core.monitoring import AlertStore

    store = AlertStore()
    if resolve is not None:
        if not store.resolve_id(resolve):
            raise ConfigError(f"no open alert #{resolve}; see `python -m recsys_core alerts`")
        typer.echo(f"resolved alert #{resolve}")
        return
    rows = store.alerts(open_only=not show_all)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("no alerts")
    for a in rows:
        typer.echo(
            f"#{a['id']} [{a['severity']}] {a['status']} {a['last_seen']} (x{a['times']}) "
            f"{a['what']}\n    -> {a['action']}"
        )
