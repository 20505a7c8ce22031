"""The command line: ``python -m recsys_core COMMAND`` (thin: parse, call services, print).

Errors a user can cause (:class:`~recsys_core.errors.RecsysError`) end with exit code 2 and
one plain message on stderr, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from recsys_core.errors import ConfigError, RecsysError

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


@app.command()
def evaluate(
    dataset: DatasetOption = None,
    data: DataOption = None,
    models: Annotated[
        str,
        typer.Option(help="Comma-separated models: popularity,itemknn,bpr,als,ranker (or 'all')."),
    ] = "popularity,itemknn,bpr,als",
    k: Annotated[int, typer.Option("--k", help="Length of each recommendation list.")] = 10,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result JSON to this file.")
    ] = None,
    test_days: Annotated[float, typer.Option(help="Length of the test period in days.")] = 30,
    cutoff: Annotated[str | None, typer.Option(help="Explicit test-period start.")] = None,
    filter_seen: Annotated[
        bool | None,
        typer.Option(
            "--filter-seen/--keep-seen",
            help="Remove every item the shopper interacted with (views, carts, favourites, "
            "purchases) from the main lists, or keep them all. Default: see --filter-bought.",
        ),
    ] = None,
    filter_bought: Annotated[
        bool | None,
        typer.Option(
            "--filter-bought/--keep-bought",
            help="Remove (or keep) the items the shopper already bought (purchases before "
            "the cutoff; viewed items stay). Default: decided by the training data's repeat "
            "rate (kept when shoppers re-buy, removed when they rarely do); the output says "
            "which applied and why.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every model and of the random split.")] = 42,
    fmt: FormatOption = "auto",
    column_map: MapOption = None,
    event_map: EventMapOption = None,
) -> None:
    """Fit models on a split of the log and compare them (ranking, beyond-accuracy, calibration)."""
    from recsys_core.evaluation import EvaluationConfig
    from recsys_core.evaluation import evaluate as run_evaluation

    ds = load_input(dataset, data, fmt=fmt, column_map=column_map, event_map=event_map)
    config = EvaluationConfig(
        models=parse_models(models),
        k=k,
        test_days=test_days,
        cutoff=cutoff,
        filter_seen=filter_seen,
        filter_bought=filter_bought,
        seed=seed,
    )
    result = run_evaluation(ds, config, progress=stderr_progress)
    typer.echo(format_result(result))
    if json_out is not None:
        echo_json(result.to_json(), json_out)


def format_result(result: Any) -> str:
    """A readable table of an :class:`~recsys_core.evaluation.EvaluationResult`."""
    k = result.k
    split = result.split
    lines = [
        f"dataset {result.dataset}: {split['method']} split"
        + (f" at {split['cutoff']}" if split.get("cutoff") else "")
        + f", {split['test_users']:,} test users, k={k}",
    ]
    cols = [f"{m}@{k}" for m in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")]
    cols += [f"coverage@{k}", f"novelty@{k}", f"diversity@{k}"]
    if any(f"revenue@{k}" in r.metrics for r in result.models.values()):
        cols.append(f"revenue@{k}")
    header = f"{'model':<11}" + "".join(f"{c:>13}" for c in cols) + f"{'fit s':>8}"
    lines.append(header)
    for name, res in result.models.items():
        vals = "".join(f"{res.metrics.get(c, float('nan')):>13.4f}" for c in cols)
        lines.append(f"{name:<11}{vals}{res.fit_seconds:>8.1f}")
    if any(r.ci95 for r in result.models.values()):
        shown = [c for c in (f"ndcg@{k}", f"hit_rate@{k}", f"recall@{k}", f"revenue@{k}")]
        lines.append(
            f"95% intervals ({result.comparisons.get('method', 'bootstrap over test shoppers')}):"
        )
        for name, res in result.models.items():
            parts = [
                f"{c} {res.metrics[c]:.4f} [{res.ci95[c][0]:.4f}, {res.ci95[c][1]:.4f}]"
                for c in shown
                if c in res.ci95 and c in res.metrics
            ]
            lines.append(f"  {name:<11}" + "  ".join(parts))
    ratio = result.comparisons.get("ranker_vs_best_single_stage")
    if ratio:
        lines.append(
            f"ranker / best single-stage ({ratio['best_single_stage']}) {ratio['metric']}: "
            f"{ratio['ratio']:.3f}x [{ratio['ci95'][0]:.3f}, {ratio['ci95'][1]:.3f}], "
            f"difference {ratio['difference']:+.4f} "
            f"[{ratio['difference_ci95'][0]:+.4f}, {ratio['difference_ci95'][1]:+.4f}] (paired)"
        )
    if any(r.new_items_metrics for r in result.models.values()):
        lines.append("new items only (seen items removed from lists and from relevant sets):")
        for name, res in result.models.items():
            if res.new_items_metrics:
                nd = res.new_items_metrics.get(f"ndcg@{k}", float("nan"))
                hr = res.new_items_metrics.get(f"hit_rate@{k}", float("nan"))
                lines.append(f"  {name:<11} ndcg@{k} {nd:.4f}  hit_rate@{k} {hr:.4f}")
    if result.classifier:
        c = result.classifier
        lines.append(
            f"purchase classifier: AUC {c['auc']:.4f}  log loss {c['logloss']:.4f}  "
            f"Brier {c['brier']:.4f}  ECE {c['ece']:.4f} (10 equal-width bins), "
            f"{c.get('ece_quantile', float('nan')):.4f} (10 equal-mass bins)"
        )
    for name, why in getattr(result, "skipped", {}).items():
        lines.append(f"skipped {name}: {why}")
    for note in result.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


@app.command()
def report(
    out: Annotated[
        list[Path],
        typer.Option(
            "--out",
            help="Report file: FILE.html, FILE.pdf or FILE.json (repeat --out to write "
            "several formats from one evaluation).",
        ),
    ],
    dataset: DatasetOption = None,
    data: DataOption = None,
    from_result: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Render a saved `evaluate --json` or `report --out x.json` file instead of "
            "evaluating again.",
        ),
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated models (default: popularity,itemknn,bpr,als, plus ranker "
            "when available)."
        ),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=200, help="List length.")] = 10,
    baseline: Annotated[
        Path | None,
        typer.Option(help="Earlier `report --out x.json` or `evaluate --json` file to compare."),
    ] = None,
    threshold: Annotated[
        float, typer.Option(min=0.0, help="Relative drop flagged against --baseline (0.05 = 5%).")
    ] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of every model and of the random split.")] = 42,
    fmt: FormatOption = "auto",
    column_map: MapOption = None,
    event_map: EventMapOption = None,
) -> None:
    """Export an evaluation report; each --out extension picks HTML, PDF or JSON.

    Exit code 0: report(s) written.

    Exit code 2: unusable input (unknown extension, missing or invalid baseline or saved
    result, bad data).

    Exit code 3: report(s) written, but a metric dropped by more than --threshold vs --baseline.
    """
    from recsys_core import reporting
    from recsys_core.evaluation import EvaluationConfig

    for path in out:
        reporting.format_for_path(path)  # fail fast on an unknown extension
    old = reporting.load_baseline(baseline) if baseline is not None else None
    if from_result is not None:
        if dataset is not None or data is not None:
            raise ConfigError(
                "give either --from RESULT.json (render a saved result) or --dataset/--data "
                "(evaluate now), not both"
            )
        saved = reporting.load_baseline(from_result, role="saved result")
        report_data = reporting.ReportData.from_evaluation(
            saved,
            baseline=old,
            baseline_source=str(baseline) if baseline is not None else None,
            threshold=threshold,
        )
        if "report" not in saved:  # an evaluate JSON: it never held the ranker's SHAP
            reason = (
                f"{from_result} is an `evaluate --json` result, which holds no SHAP importance "
                "or example shoppers; save a result with them by `report --out FILE.json`"
            )
            report_data.unavailable.setdefault("shap", reason)
            report_data.unavailable.setdefault("examples", reason)
        typer.echo(f"rendering the saved result {from_result} (not re-evaluated)", err=True)
        report_data.metric_changes()  # a bad threshold fails before anything is written
    else:
        ds = load_input(dataset, data, fmt=fmt, column_map=column_map, event_map=event_map)
        names = parse_models(models) if models else reporting.default_models()
        report_data = reporting.build_report_data(
            ds,
            EvaluationConfig(models=names, k=k, seed=seed),
            stderr_progress,
            baseline=old,
            baseline_source=str(baseline) if baseline is not None else None,
            threshold=threshold,
        )
    for path in out:
        reporting.write_report(report_data, path)
        typer.echo(f"wrote {path}", err=True)
    typer.echo("\n".join(reporting.summary_lines(report_data)))
    if report_data.regressions():
        raise typer.Exit(code=3)


@app.command()
def train(
    dataset: DatasetOption = None,
    data: DataOption = None,
    models: Annotated[
        str, typer.Option(help="Comma-separated models to train (default: all five).")
    ] = "popularity,itemknn,bpr,als,ranker",
    engine: Annotated[
        str,
        typer.Option(
            help="Training engine of the served ALS: implicit (this machine) or spark "
            "(Spark MLlib; needs `pip install -r requirements-spark.txt` and Java)."
        ),
    ] = "implicit",
    spark_master: Annotated[
        str | None,
        typer.Option(
            help="Spark master URL for --engine spark, e.g. spark://host:7077 "
            "(default: $RECSYS_SPARK_MASTER or local[*])."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every model.")] = 42,
    fmt: FormatOption = "auto",
    column_map: MapOption = None,
    event_map: EventMapOption = None,
) -> None:
    """Train models on every event and save them as a new active version under $RECSYS_HOME."""
    from recsys_core.serving.lab import TrainConfig, save_lab, train_lab

    if engine not in ("implicit", "spark"):
        raise ConfigError(f"unknown engine {engine!r}; use --engine implicit or --engine spark")
    if spark_master is not None and engine != "spark":
        raise ConfigError("--spark-master only applies with --engine spark")
    if engine == "spark":
        from recsys_core.models.als_spark import require_spark

        require_spark()  # fail before loading data when pyspark or Java is missing
    ds = load_input(dataset, data, fmt=fmt, column_map=column_map, event_map=event_map)
    config = TrainConfig(
        models=parse_models(models), seed=seed, engine=engine, spark_master=spark_master
    )
    lab = train_lab(ds, config, progress=stderr_progress)
    path = save_lab(lab)
    typer.echo(f"trained {', '.join(lab.model_names)} on {ds.name}: version {lab.version}")
    typer.echo(f"saved to {path}")
    for note in lab.manifest.get("notes", []):
        typer.echo(f"note: {note}")


ModelVersionOption = Annotated[
    str | None, typer.Option("--version", help="A trained version (default: the active one).")
]
TrainedDatasetOption = Annotated[
    str | None,
    typer.Option("--dataset", help="Dataset whose active model to use (default: last trained)."),
]


def to_json(kind: str, answer: dict[str, Any]) -> dict[str, Any]:
    """An answer through its pydantic model (the REST API's response model too)."""
    from recsys_core.serving.schemas import to_json as checked

    return checked(kind, answer)


def _service(dataset: str | None, version: str | None) -> Any:
    from recsys_core.serving import RecommendationService, load_lab, resolve_version

    # tolerant: a damaged model is left out and the fallback chain answers (issue 10)
    return RecommendationService(load_lab(resolve_version(dataset, version), tolerant=True))


@app.command()
def recommend(
    user: Annotated[str, typer.Option("--user", help="The shopper's id.")],
    k: Annotated[int, typer.Option("--k", help="Number of items.")] = 10,
    model: Annotated[str, typer.Option(help="ranker | als | itemknn | bpr | popularity")] = (
        "ranker"
    ),
    filter_seen: Annotated[
        bool | None,
        typer.Option(
            "--filter-bought/--keep-bought",
            help="Leave out / keep the items the shopper already bought (viewed items stay; "
            "default: the lab's rule: its settings, else the training data's repeat rate, as "
            "evaluate's --filter-bought/--keep-bought default).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    dataset: TrainedDatasetOption = None,
    version: ModelVersionOption = None,
) -> None:
    """Top-k items for a shopper with titles, scores and purchase probabilities."""
    if k < 1:
        raise ConfigError("--k must be at least 1")
    answer = _service(dataset, version).recommend(user, k, model, filter_seen=filter_seen)
    if as_json:
        echo_json(to_json("recommend", answer))
        return
    typer.echo(f"shopper {answer['user_id']} (model {answer['model']}, {answer['model_version']})")
    if answer["degraded"]:
        typer.echo(f"note: {answer['reason']}")
    rule = answer.get("already_bought")
    if rule:
        typer.echo(
            f"already-bought items {'left out' if rule['remove'] else 'kept'}: {rule['why']}"
        )
    order = answer.get("order_probability")
    if order is not None:
        typer.echo(f"orders in the next 30 days: {order:.1%}")
    typer.echo("rank  if they order  overall  item")

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    for item in answer["items"]:
        typer.echo(
            f"{item['rank']:>4}. {pct(item['purchase_probability']):>12}  "
            f"{pct(item.get('probability')):>7}  {item['item_id']:<10} {item['title']}"
        )


@app.command()
def similar(
    item: Annotated[str, typer.Option("--item", help="The product's id.")],
    k: Annotated[int, typer.Option("--k", help="Number of items.")] = 10,
    model: Annotated[str, typer.Option(help="als | itemknn | bpr | popularity")] = "als",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    dataset: TrainedDatasetOption = None,
    version: ModelVersionOption = None,
) -> None:
    """Items similar to a product."""
    answer = _service(dataset, version).similar(item, k, model)
    if as_json:
        echo_json(to_json("similar", answer))
        return
    typer.echo(f"similar to {answer['item_id']} {answer['title']} (model {model})")
    if answer.get("note"):
        typer.echo(f"note: {answer['note']}")
    for it in answer["items"]:
        typer.echo(
            f"{it['rank']:>3}. {it['score']:12.4g} {it['score_label']:<29} "
            f"support {it['support']:>4}  {it['item_id']:<10} {it['title']}"
        )


@app.command()
def explain(
    user: Annotated[str, typer.Option("--user", help="The shopper's id.")],
    item: Annotated[str, typer.Option("--item", help="The product's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    dataset: TrainedDatasetOption = None,
    version: ModelVersionOption = None,
) -> None:
    """Why the purchase model gives this probability: SHAP reasons and "because you bought".

    An unknown shopper gets the API's documented cold-start answer (the item's base rate,
    no reasons, ``degraded``): both go through :meth:`RecommendationService.explain_answer`.
    """
    answer = _service(dataset, version).explain_answer(user, item)
    if as_json:
        echo_json(to_json("explain", answer))
        return
    if answer.get("degraded"):
        typer.echo(f"note: {answer['reason']}")
    probability = answer["probability"]
    shown = "n/a" if probability is None else f"{probability:.1%}"
    margin = ""
    if answer.get("raw_score") is not None and answer.get("base_value") is not None:
        margin = f" (margin {answer['raw_score']:+.3f}, base {answer['base_value']:+.3f})"
    typer.echo(
        f"shopper {answer['user_id']} buys {answer['item_id']} with probability "
        f"{shown} if they order{margin}"
    )
    if answer.get("order_probability") is not None:
        typer.echo(
            f"orders in the next 30 days: {answer['order_probability']:.1%}; overall: "
            f"{answer['overall_probability']:.1%}"
        )
    for c in answer["contributions"][:8]:
        label = c.get("label") or c["feature"]
        typer.echo(f"  {c['contribution']:+.3f}  {label}")
    if answer["because_you_bought"]:
        typer.echo("because you bought:")
        for b in answer["because_you_bought"]:
            typer.echo(f"  {b['contribution']:+.3f}  {b['item_id']:<10} {b['title']}")


# Command groups owned by their own modules (recsys_core/cli_<area>.py) register themselves on
# ``app`` when imported; one import line each, kept below every shared helper they use.
# (imports at the bottom on purpose: the modules import ``app`` and helpers from this file)
# isort: off
from recsys_core import cli_ops  # noqa: E402,F401
from recsys_core import cli_serving  # noqa: E402,F401
from recsys_core import cli_security  # noqa: E402,F401
from recsys_core import cli_tune  # noqa: E402,F401
# isort: on


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (2 for errors a user can cause)."""
    try:
        cli_security.audit_command(sys.argv[1:] if argv is None else argv)  # audit log hook
        app(args=argv, standalone_mode=True)
    except RecsysError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
