"""Commands that train and compare: ``evaluate``, ``report`` and ``train``."""

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
    parse_models,
    stderr_progress,
)
from recsys_core.errors import ConfigError


@app.command()
def evaluate(
    dataset: DatasetOption = None,
    data: DataOption = None,
    models: Annotated[
        str,
        typer.Option(
            help="Comma-separated models: popularity,buy-again,itemknn,ease,bpr,als,ranker "
            "(or 'all')."
        ),
    ] = "popularity,buy-again,itemknn,ease,bpr,als",
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
    folds: Annotated[
        int,
        typer.Option(
            min=1,
            max=24,
            help="Rolling-origin folds: N consecutive test windows of --test-days each, the "
            "last ending at the log's end, each trained on everything before it (N seeded "
            "random hold-outs without timestamps). Reports each fold and the mean, min and "
            "max.",
        ),
    ] = 1,
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
        folds=folds,
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
        if ratio.get("chosen_on"):
            lines.append(f"  best single-stage model {ratio['chosen_on']}")
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
    overall = getattr(result, "overall_probability", None)
    if overall:
        if "refused" in overall:
            lines.append(
                f"overall probability (order x purchase): not scored: {overall['refused']}"
            )
        else:
            lines.append(
                f"overall probability (order x purchase, {overall['shoppers']:,.0f} known "
                f"shoppers' lists): AUC {overall['auc']:.4f}  log loss {overall['logloss']:.4f}  "
                f"Brier {overall['brier']:.4f}  ECE {overall['ece']:.4f} (equal-width), "
                f"{overall['ece_quantile']:.4f} (equal-mass)"
            )
    lines.extend(format_folds(result))
    selection = getattr(result, "selection", None)
    if selection:
        lines.append(f"the lab's recommendation: {selection['recommendation']}")
    for name, why in getattr(result, "skipped", {}).items():
        lines.append(f"skipped {name}: {why}")
    for note in result.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def format_folds(result: Any) -> list[str]:
    """The per-fold NDCG table and the mean [min, max] over folds (nothing with one fold)."""
    from recsys_core.evaluation.result import fold_label

    folds = getattr(result, "folds", None)
    if not folds:
        return []
    metric = f"ndcg@{result.k}"
    names = list(result.summary)
    lines = [f"{metric} per fold (test window start or seed, test shoppers):"]
    lines.append(f"{'fold':<24}" + "".join(f"{n:>12}" for n in names) + f"{'ratio':>9}")
    for fold in folds:
        cells = "".join(
            f"{fold['models'].get(n, {}).get(metric) or float('nan'):>12.4f}" for n in names
        )
        ratio = (fold.get("ranker_vs_best_single_stage") or {}).get("ratio")
        shown = f"{ratio:>8.3f}x" if ratio is not None else f"{'':>9}"
        label = f"{fold_label(fold)} ({fold['test_users']})"
        lines.append(f"{label:<24}{cells}{shown}")
    lines.append(f"mean [min, max] of {metric} over {len(folds)} folds:")
    for name in names:
        s = result.summary[name].get(metric)
        if s:
            lines.append(f"  {name:<11} {s['mean']:.4f} [{s['min']:.4f}, {s['max']:.4f}]")
    return lines


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
        str,
        typer.Option(
            help="Comma-separated models to train (buy-again and ease too; 'all' for every one)."
        ),
    ] = "popularity,itemknn,bpr,als,ranker",
    engine: Annotated[
        str,
        typer.Option(
            help="Training engine of the served ALS and of the ranker's features: implicit "
            "(this machine) or spark (needs `pip install -r requirements-spark.txt` and Java)."
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
    from recsys_core.serving.lab import save_lab
    from recsys_core.training import TrainConfig, train_lab

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
