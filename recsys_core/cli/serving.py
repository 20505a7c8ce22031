"""Serving commands: ``serve`` (the REST API on uvicorn) and ``batch`` (every shopper's list).

Registered on the main CLI by one import line in :mod:`recsys_core.cli`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from recsys_core.cli.app import (
    CategoryOption,
    FilterBoughtOption,
    FilterSeenOption,
    HideBoughtDaysOption,
    MaxPriceOption,
    MinPriceOption,
    TrainedDatasetOption,
    app,
    business_filters,
    stderr_progress,
)
from recsys_core.errors import ConfigError
from recsys_core.models.registry import ALS, recommendable_models
from recsys_core.settings import set_environment

VersionOption = Annotated[
    str | None, typer.Option("--version", help="A trained version (default: the active one).")
]


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback only without API keys).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (uvicorn).")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    batch_table: Annotated[
        Path | None,
        typer.Option(
            "--batch", help="A table from `batch`: answer the questions it covers from it."
        ),
    ] = None,
    dataset: TrainedDatasetOption = None,
    version: VersionOption = None,
) -> None:
    """Serve the REST API (FastAPI on uvicorn); OpenAPI schema at /openapi.json, docs at /docs."""
    import threadpoolctl
    import uvicorn

    from recsys_core.serving.api import check_bind_address
    from recsys_core.serving.api_http import one_write_protocol
    from recsys_core.serving.lab import resolve_version
    from recsys_core.serving.registry import clean_leftovers

    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if not 0 < port < 65536:
        raise ConfigError("--port must be between 1 and 65535")
    check_bind_address(host)
    folder = resolve_version(dataset, version)  # a clear error when nothing is trained
    for leftover in clean_leftovers():
        typer.echo(f"removed {leftover.name}, left behind by a killed run", err=True)
    # the dataset announced below is the one served until told otherwise: a later training
    # of another dataset moves models/LAST, never this server (issue 23)
    dataset = folder.parent.name
    set_environment({"RECSYS_SERVE_DATASET": dataset, "RECSYS_SERVE_VERSION": version or ""})
    if batch_table is not None:
        from recsys_core.serving.batch import BatchTable

        table = BatchTable.read(batch_table)  # a clear error now, not in every worker
        typer.echo(
            f"batch table: {table.model} top-{table.k} of {len(table):,} shoppers, computed "
            f"{table.computed_at} by {table.model_version}",
            err=True,
        )
        set_environment({"RECSYS_SERVE_BATCH": str(batch_table.resolve())})
    # one BLAS thread per process: requests run side by side, a thread pool per call only
    # makes them wait for each other on two cores
    threads = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    set_environment(dict.fromkeys(threads, "1"), only_if_unset=True)
    threadpoolctl.threadpool_limits(1)
    metrics_dir = None
    if workers > 1:  # Prometheus multiprocess mode: every worker writes, /metrics adds up
        metrics_dir = tempfile.mkdtemp(prefix="recsys-metrics-")
        set_environment({"PROMETHEUS_MULTIPROC_DIR": metrics_dir})
    typer.echo(
        f"serving {folder.parent.name} {folder.name} on http://{host}:{port} "
        f"({workers} worker{'s' if workers > 1 else ''}); docs at /docs",
        err=True,
    )
    try:
        uvicorn.run(
            "recsys_core.serving.api:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            # no access log (one line per request is a measurable share of a ~1 ms answer;
            # /metrics counts requests); uvicorn picks uvloop and httptools when installed
            access_log=False,
            # httptools, each answer's head and body in one write (one wake-up of the client)
            http=one_write_protocol() or "auto",
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@app.command()
def batch(
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    model: Annotated[str, typer.Option(help=" | ".join(recommendable_models()))] = ALS,
    k: Annotated[int, typer.Option("--k", help="Items per shopper.")] = 10,
    users: Annotated[
        Path | None,
        typer.Option(
            "--users",
            help="Only these shoppers: a text file (one id a line) or a CSV/Parquet "
            "with a user_id column (default: every shopper the model knows).",
        ),
    ] = None,
    chunk_size: Annotated[
        int | None,
        typer.Option(
            help="Shoppers per chunk (default: 512 for the ranker, up to 65,536 per batch "
            "call for the single-stage models)."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Chunks scored at once (0: one per core).")] = 0,
    filter_bought: FilterBoughtOption = None,
    filter_seen: FilterSeenOption = False,
    category: CategoryOption = None,
    min_price: MinPriceOption = None,
    max_price: MaxPriceOption = None,
    hide_bought_days: HideBoughtDaysOption = 0,
    dataset: TrainedDatasetOption = None,
    version: VersionOption = None,
) -> None:
    """Score every shopper (or a list) in parallel chunks, with progress, to Parquet, under
    the same list policy as `recommend` (named in the file's metadata)."""
    from recsys_core.cli.answers import list_policy
    from recsys_core.serving.batch import read_user_ids, score_batch, write_batch
    from recsys_core.serving.lab import load_lab, resolve_version
    from recsys_core.serving.service import RecommendationService

    if out.suffix.lower() != ".parquet":
        raise ConfigError(f"--out must be a .parquet file, got {out}")
    lab = load_lab(resolve_version(dataset, version))
    ids = read_user_ids(users) if users is not None else None
    service = RecommendationService(lab)
    filters = business_filters(category, min_price, max_price, hide_bought_days)
    policy = service.resolve_policy(list_policy(filter_bought, filter_seen, filters, service))
    result = score_batch(
        lab,
        model,
        k,
        ids,
        policy=policy,
        chunk_size=chunk_size,
        workers=workers or None,
        progress=stderr_progress,
    )
    write_batch(result, out)
    typer.echo(
        f"scored {result.users:,} shoppers with {model} ({lab.dataset} {lab.version}) under "
        f"list policy {policy.name} in {result.seconds:.2f} s: {len(result.frame):,} rows "
        f"written to {out}"
    )


api_key_app = typer.Typer(help="API keys of the REST API (one or more per user).")
app.add_typer(api_key_app, name="api-key")


@api_key_app.command("create")
def api_key_create(
    user: Annotated[str, typer.Option("--user", help="The user the key acts as.")],
    label: Annotated[str, typer.Option(help="What the key is for.")] = "",
) -> None:
    """Create a key (printed once: store it now; only its hash is kept)."""
    from recsys_core.security import audit
    from recsys_core.serving.api_keys import create_key

    token, record = create_key(user, label)
    audit.record(audit.cli_actor(), "api-key-create", {"user": user, "key_id": record.key_id})
    typer.echo(token)
    typer.echo(f"key {record.key_id} for {user}: shown once, keep it secret", err=True)


@api_key_app.command("list")
def api_key_list() -> None:
    """Stored keys (ids, owners and labels; never the keys)."""
    from datetime import datetime, timezone

    from recsys_core.serving.api_keys import list_keys

    for key in list_keys():
        created = datetime.fromtimestamp(key.created, timezone.utc).isoformat(timespec="seconds")
        typer.echo(f"{key.key_id}  {key.username:<20} {created}  {key.label}")


@api_key_app.command("revoke")
def api_key_revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Delete a key: requests with it get 401 at once."""
    from recsys_core.security import audit
    from recsys_core.serving.api_keys import revoke_key

    revoke_key(key_id)
    audit.record(audit.cli_actor(), "api-key-revoke", {"key_id": key_id})
    typer.echo(f"revoked {key_id}")
