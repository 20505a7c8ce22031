"""The command line: ``python -m recsys_core COMMAND`` (thin: parse, call services, print).

Errors a user can cause (:class:`~recsys_core.errors.RecsysError`) end with exit code 2 and
one plain message on stderr, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from recsys_core.errors import ConfigError

app = typer.Typer(
    name="recsys_core",
    help="E-commerce recommendation lab: datasets, validation, training and evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="Column mapping CANONICAL=FILE_COLUMN, e.g. --map user_id=CustomerID (repeatable).",
    ),
]
EventMapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--event-map",
        help="Event-name mapping FILE_NAME=CANONICAL, e.g. --event-map buy=purchase (repeatable).",
    ),
]


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, str]:
    """Turn ``["a=b", ...]`` into a dict, with a clear error for malformed pairs."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{what} {pair!r} must look like NAME=VALUE")
        out[key.strip()] = value.strip()
    return out


def echo_json(payload: Any, out: Path | None = None) -> None:
    """Print JSON to stdout, or write it to ``out`` atomically."""
    text = json.dumps(payload, indent=2, default=str, allow_nan=True)
    if out is None:
        typer.echo(text)
        return
    from recsys_core.io_utils import atomic_write_text

    atomic_write_text(out, text + "\n")
    typer.echo(f"wrote {out}", err=True)


DatasetOption = Annotated[
    str | None, typer.Option("--dataset", help="Built-in dataset: online-retail | demo-store.")
]
DataOption = Annotated[
    Path | None, typer.Option("--data", help="Your own CSV / Parquet event log.")
]
FormatOption = Annotated[
    str,
    typer.Option("--format", help="Format of --data: auto | events | online-retail | retailrocket"),
]


def load_input(
    dataset: str | None,
    data: Path | None,
    *,
    fmt: str = "auto",
    column_map: list[str] | None = None,
    event_map: list[str] | None = None,
    encoding: str = "utf-8",
) -> Any:
    """The dataset named by ``--dataset`` or read from ``--data`` (exactly one of them)."""
    if (dataset is None) == (data is None):
        raise ConfigError("give exactly one of --dataset NAME or --data PATH")
    if dataset is not None:
        from recsys_core.data.builtin import load_dataset

        return load_dataset(dataset)
    from recsys_core.data.loaders import load_event_file

    assert data is not None
    return load_event_file(
        data,
        fmt=fmt,
        column_map=parse_pairs(column_map, "column mapping"),
        event_map=parse_pairs(event_map, "event mapping"),
        encoding=encoding,
    )


def stderr_progress(message: str, fraction: float) -> None:
    """Progress lines on stderr (stdout stays clean for JSON)."""
    typer.echo(f"[{fraction:4.0%}] {message}", err=True)


def parse_models(models: str) -> list[str]:
    """``"als,itemknn"`` -> ``["als", "itemknn"]`` (``all`` means every model)."""
    from recsys_core.evaluation import ALL_MODELS

    names = [m.strip() for m in models.split(",") if m.strip()]
    if names == ["all"]:
        return list(ALL_MODELS)
    return names


ModelVersionOption = Annotated[
    str | None, typer.Option("--version", help="A trained version (default: the active one).")
]
TrainedDatasetOption = Annotated[
    str | None,
    typer.Option("--dataset", help="Dataset whose active model to use (default: last trained)."),
]

# the list policy's repeat rule, the same flags on `recommend` and `batch`
FilterBoughtOption = Annotated[
    bool | None,
    typer.Option(
        "--filter-bought/--keep-bought",
        help="Leave out / keep the items the shopper already bought (viewed items stay; "
        "default: the lab's rule: its settings, else the training data's repeat rate, as "
        "evaluate's --filter-bought/--keep-bought default).",
    ),
]
FilterSeenOption = Annotated[
    bool,
    typer.Option(
        "--filter-seen",
        help="Leave out every item the shopper interacted with (viewed, carted, "
        "favourited or bought), not only the bought ones.",
    ),
]

# the list policy's business filters (the Shopper page's "Business filters"), on every path
CategoryOption = Annotated[
    list[str] | None,
    typer.Option("--category", help="Keep only items of this catalog category (repeatable)."),
]
MinPriceOption = Annotated[
    float | None, typer.Option("--min-price", min=0.0, help="Keep only items priced at least this.")
]
MaxPriceOption = Annotated[
    float | None, typer.Option("--max-price", min=0.0, help="Keep only items priced at most this.")
]
HideBoughtDaysOption = Annotated[
    int,
    typer.Option(
        "--hide-bought-days",
        min=0,
        max=3650,
        help="Leave out items the shopper bought in the last N days (0: keep them).",
    ),
]


def business_filters(
    categories: list[str] | None,
    min_price: float | None,
    max_price: float | None,
    hide_bought_days: int,
) -> Any:
    """The :class:`~recsys_core.policy.BusinessFilters` of the filter options."""
    from recsys_core.policy import BusinessFilters

    return BusinessFilters(
        categories=tuple(categories or ()),
        min_price=min_price,
        max_price=max_price,
        exclude_bought_days=hide_bought_days,
    )


def to_json(kind: str, answer: dict[str, Any]) -> dict[str, Any]:
    """An answer through its pydantic model (the REST API's response model too)."""
    from recsys_core.serving.schemas import to_json as checked

    return checked(kind, answer)


def _service(dataset: str | None, version: str | None) -> Any:
    from recsys_core.serving import RecommendationService, load_lab, resolve_version

    # tolerant: a damaged model is left out and the fallback chain answers (issue 10)
    return RecommendationService(load_lab(resolve_version(dataset, version), tolerant=True))
