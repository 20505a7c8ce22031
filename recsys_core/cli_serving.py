"""Serving commands: ``serve`` (the REST API on uvicorn) and ``batch`` (every shopper's list).

Registered on the main CLI by one import line in :mod:`recsys_core.cli`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Annotated

import typer

from recsys_core.cli import TrainedDatasetOption, app
from recsys_core.errors import ConfigError

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
    dataset: TrainedDatasetOption = None,
    version: VersionOption = None,
) -> None:
    """Serve the REST API (FastAPI on uvicorn); OpenAPI schema at /openapi.json, docs at /docs."""
    import threadpoolctl
    import uvicorn

    from recsys_core.serving.api import check_bind_address
    from recsys_core.serving.lab import resolve_version

    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if not 0 < port < 65536:
        raise ConfigError("--port must be between 1 and 65535")
    check_bind_address(host)
    folder = resolve_version(dataset, version)  # a clear error when nothing is trained
    os.environ["RECSYS_SERVE_DATASET"] = dataset or ""
    os.environ["RECSYS_SERVE_VERSION"] = version or ""
    # one BLAS thread per process: requests run side by side, a thread pool per call only
    # makes them wait for each other on two cores
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    threadpoolctl.threadpool_limits(1)
    metrics_dir = None
    if workers > 1:  # Prometheus multiprocess mode: every worker writes, /metrics adds up
        metrics_dir = tempfile.mkdtemp(prefix="recsys-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
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
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
