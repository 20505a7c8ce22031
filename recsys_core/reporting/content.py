"""The report as a format-neutral document: sections of paragraphs, tables and charts.

:func:`build_sections` decides *what* a report says, once; the HTML and PDF renderers only
decide how it looks. Every table cell is already a string made by
:func:`~recsys_core.reporting.formatting.format_value`, so both formats show the same text.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from recsys_core.reporting import shop_sections
from recsys_core.reporting.baseline import MetricChange, baseline_warnings
from recsys_core.reporting.data import ReportData, display_user_id
from recsys_core.reporting.document import Block, Chart, Section, Table, Text, key_value_table
from recsys_core.reporting.formatting import (
    ACCURACY_METRICS,
    CLASSIFIER_METRICS,
    COST_COLUMNS,
    COUNT_LABEL,
    MONEY_METRICS,
    format_change,
    format_interval,
    format_money,
    format_threshold,
    format_value,
    metric_name,
    number_or_none,
)

#: Version of the report layout and of the JSON ``report`` block.
REPORT_FORMAT_VERSION = 1

#: SHAP features shown in the chart and table.
TOP_FEATURES = 15


def _models(evaluation: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(k): dict(v) for k, v in (evaluation.get("models") or {}).items()}


def metric_columns(evaluation: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The comparison table's columns: ``(accuracy metrics, beyond-accuracy and cost)``.

    Every numeric key of any model appears in exactly one of the two lists, so the tables
    show every metric the evaluation produced.
    """
    k = evaluation.get("k")
    models = _models(evaluation)
    keys: list[str] = []
    for entry in models.values():
        keys += [key for key, value in entry.items() if number_or_none(value) is not None]
    keys = list(dict.fromkeys(keys))
    accuracy = [f"{m}@{k}" for m in ACCURACY_METRICS if f"{m}@{k}" in keys]
    accuracy += [
        key for key in keys if key.split("@")[0] in ACCURACY_METRICS and key not in accuracy
    ]
    accuracy += [key for key in (f"revenue@{k}", f"revenue_total@{k}") if key in keys]
    cost = [key for key in COST_COLUMNS if key in keys]
    beyond = [key for key in keys if key not in accuracy and key not in cost]
    return accuracy, beyond + cost


def model_table(evaluation: Mapping[str, Any], title: str, columns: Sequence[str]) -> Table:
    """One row per model with ``columns`` from the evaluate JSON, under their plain names
    (:func:`~recsys_core.reporting.formatting.metric_name`); amounts of money with the
    dataset's currency and thousands separators."""
    from recsys_core.business import currency_symbol

    currency = currency_symbol(str(evaluation.get("dataset", "")))

    def cell(entry: Mapping[str, Any], column: str) -> str:
        if column.split("@")[0] in MONEY_METRICS:
            return format_money(entry.get(column), currency)
        return format_value(entry.get(column))

    rows = [
        [name, *(cell(entry, c) for c in columns)] for name, entry in _models(evaluation).items()
    ]
    header = ["model", *(metric_name(c, currency) for c in columns)]
    return Table(title, header, rows, [False] + [True] * len(columns))


#: Sections other reporting modules add after the model comparison (e.g. the per-fold
#: chart of :mod:`recsys_core.reporting.folds`); each returns ``None`` when it has nothing.
EXTRA_SECTIONS: list[Callable[[ReportData], Section | None]] = []


def build_sections(data: ReportData) -> list[Section]:
    """The whole report, section by section."""
    sections = [
        shop_sections.plain_summary_section(data),
        _summary_section(data),
        _protocol_section(data),
        _comparison_section(data),
        *(extra(data) for extra in EXTRA_SECTIONS),
        shop_sections.segments_section(data),
        _purchase_section(data),
        shop_sections.order_model_section(data),
        _examples_section(data),
        _baseline_section(data),
        _reproducibility_section(data),
    ]
    return [s for s in sections if s is not None]


def report_title(data: ReportData) -> str:
    """The report's title."""
    return f"Evaluation report: {data.evaluation.get('dataset', 'unknown dataset')}"


def _best(evaluation: Mapping[str, Any], metric: str) -> tuple[str, float] | None:
    scored = [
        (name, value)
        for name, entry in _models(evaluation).items()
        if (value := number_or_none(entry.get(metric))) is not None
    ]
    return max(scored, key=lambda pair: pair[1]) if scored else None


def _summary_section(data: ReportData) -> Section:
    ev = data.evaluation
    k = ev.get("k")
    split = ev.get("split") or {}
    blocks: list[Block] = [
        Text(
            f"{len(_models(ev))} models compared on the dataset {ev.get('dataset')} with "
            f"lists of k={k} items, on {format_value(split.get('test_users'))} test users "
            f"({split.get('method', 'unknown')} split"
            + (f" at {split['cutoff']}" if split.get("cutoff") else "")
            + f"). Report generated {data.generated}."
        )
    ]
    best = _best(ev, f"ndcg@{k}")
    if best is not None:
        interval = (_models(ev)[best[0]].get("ci95") or {}).get(f"ndcg@{k}")
        blocks.append(
            Text(
                f"Best {metric_name(f'ndcg@{k}')}: {best[0]} ({format_value(best[1])}"
                + (f", 95 % interval {_interval(interval)}" if interval else "")
                + ")."
            )
        )
    ratio = (ev.get("comparisons") or {}).get("ranker_vs_best_single_stage")
    if ratio:
        blocks.append(Text(_ratio_text(ratio)))
    classifier = ev.get("classifier") or {}
    if classifier:
        blocks.append(
            Text(
                f"Purchase model: AUC {format_value(classifier.get('auc'))}, "
                f"ECE {format_value(classifier.get('ece'))} (10 equal-width bins), "
                f"{format_value(classifier.get('ece_quantile'))} (10 equal-mass bins)."
            )
        )
    for name, why in (ev.get("skipped") or {}).items():
        blocks.append(Text(f"Not evaluated: {name} ({why}).", "warning"))
    if data.baseline is not None:
        blocks.append(_baseline_verdict(data))
    return Section("summary", "Summary", blocks)


def _interval(values: object, digits: int = 4) -> str:
    """``[low, high]`` as text that never breaks between its numbers ("n/a" when missing)."""
    if not isinstance(values, Sequence) or len(values) != 2:
        return "n/a"
    return format_interval(values[0], values[1], digits)


def _ratio_text(ratio: Mapping[str, Any]) -> str:
    return (
        f"The ranker's {metric_name(str(ratio.get('metric')))} is "
        f"{format_value(ratio.get('ratio'), 3)}x the best "
        f"single-stage model's ({ratio.get('best_single_stage')}), 95 % interval "
        f"{_interval(ratio.get('ci95'), 3)}; difference {format_value(ratio.get('difference'))} "
        f"{_interval(ratio.get('difference_ci95'))} (paired bootstrap over test shoppers)."
    )


def _days(value: object) -> str:
    number = number_or_none(value)
    return "n/a" if number is None else f"{number:g}"


def _protocol_section(data: ReportData) -> Section:
    ev = data.evaluation
    k = ev.get("k")
    split = ev.get("split") or {}
    config = ev.get("config") or {}
    info = data.dataset_info
    blocks: list[Block] = []
    if info:
        by_type = info.get("events_by_type") or {}
        pairs: list[tuple[str, object]] = [
            ("name", info.get("name", ev.get("dataset"))),
            ("source", info.get("source") or "n/a"),
            ("events", info.get("events")),
            ("shoppers", info.get("users")),
            ("items", info.get("items")),
            ("events by type", ", ".join(f"{e} {v:,}" for e, v in by_type.items())),
        ]
        if info.get("first_event"):
            pairs.append(("period", f"{info['first_event']} to {info.get('last_event')}"))
        blocks.append(key_value_table("Dataset", pairs))
    else:
        blocks.append(Text(f"Dataset: {ev.get('dataset')}."))
    method = split.get("method")
    method_text = {
        "temporal": "temporal: train on events before the cutoff, test on the period after it",
        "random": "seeded per-user random split (the log has no timestamps)",
    }.get(str(method), str(method))
    seen_rule = split.get("already_bought") or {}
    filter_seen = bool(seen_rule.get("filter_seen", config.get("filter_seen") or False))
    seen_text = {
        "seen": "removed, with every item the shopper interacted with",
        "bought": "removed (purchases before the cutoff; viewed items stay in the lists)",
    }.get(str(seen_rule.get("removes")), "removed")
    if not filter_seen:
        seen_text = "kept (repurchases count as hits)"
    variant_computed = config.get("new_items_variant", True) and not seen_rule.get(
        "lists_without_seen", filter_seen
    )
    if seen_rule.get("why"):
        seen_text += f" — {seen_rule['why']}"
    protocol: list[tuple[str, object]] = [
        ("split", method_text),
        ("cutoff (test period start)", split.get("cutoff") or "n/a"),
        ("test period (days)", _days(split.get("test_days"))),
        ("training events", split.get("train_events")),
        ("test events", split.get("test_events")),
        ("test users", split.get("test_users")),
        ("relevant items", split.get("relevant", "n/a")),
        ("list length k", k),
        (
            "already-bought items in the lists",
            seen_text,
        ),
        (
            '"new items only" variant',
            "items the shopper interacted with before the cutoff removed from the lists and "
            "from the relevant items"
            if variant_computed
            else "not computed",
        ),
    ]
    blocks.append(key_value_table("Evaluation protocol", protocol))
    notes = [*info.get("notes", []), *ev.get("notes", [])]
    for note in dict.fromkeys(notes):
        blocks.append(Text(f"Note: {note}", "muted"))
    return Section("protocol", "Dataset and protocol", blocks)


def _comparison_section(data: ReportData) -> Section:
    ev = data.evaluation
    k = ev.get("k")
    models = _models(ev)
    accuracy, beyond = metric_columns(ev)
    blocks: list[Block] = [
        model_table(ev, "Model comparison: ranking accuracy", accuracy),
        model_table(ev, "Model comparison: beyond accuracy and cost", beyond),
    ]
    with_ci = {n: dict(e["ci95"]) for n, e in models.items() if e.get("ci95")}
    if with_ci:
        keys = [c for c in [*accuracy, *beyond] if any(c in ci for ci in with_ci.values())]
        rows = [[n, *(_interval(ci.get(c)) for c in keys)] for n, ci in with_ci.items()]
        blocks.append(
            Table(
                "95 % intervals (bootstrap over test shoppers)",
                ["model", *(metric_name(c) for c in keys)],
                rows,
                [False] + [True] * len(keys),
            )
        )
        comparisons = ev.get("comparisons") or {}
        if comparisons.get("method"):
            blocks.append(Text(f"Intervals: {comparisons['method']}.", "muted"))
        metric = f"ndcg@{k}"
        diff_rows = [
            [
                pair.replace("-", " − ", 1),
                format_value(d[metric].get("difference")),
                _interval(d[metric].get("ci95")),
            ]
            for pair, d in (comparisons.get("differences") or {}).items()
            if metric in d
        ]
        if diff_rows:
            blocks.append(
                Table(
                    f"Paired differences in {metric_name(metric)}",
                    ["models", "difference", "95 % interval"],
                    diff_rows,
                    [False, True, True],
                )
            )
        ratio = comparisons.get("ranker_vs_best_single_stage")
        if ratio:
            blocks.append(Text(_ratio_text(ratio)))
    for name, why in (ev.get("skipped") or {}).items():
        blocks.append(Text(f"Not evaluated on this log: {name} ({why}).", "warning"))
    new_items: dict[str, dict[str, Any]] = {
        n: dict(e["new_items_only"]) for n, e in models.items() if e.get("new_items_only")
    }
    if new_items:
        keys = list(dict.fromkeys(key for entry in new_items.values() for key in entry))
        rows = [[n, *(format_value(e.get(c)) for c in keys)] for n, e in new_items.items()]
        header = ["model", *(metric_name(c) for c in keys)]
        blocks.append(Table("New items only", header, rows, [False] + [True] * len(keys)))
    overlap = ev.get("overlap") or {}
    if overlap:
        rows = [[pair.replace("~", " / "), format_value(v)] for pair, v in overlap.items()]
        blocks.append(
            Table(
                f"Overlap of the top-{k} lists (Jaccard)",
                ["models", "overlap"],
                rows,
                [False, True],
            )
        )
    names = list(models)
    bar_metrics = list(accuracy)
    bar_metrics += [c for c in (f"coverage@{k}", f"diversity@{k}") if c in beyond]
    blocks.append(
        Chart(
            "bars",
            f"Metrics by model (k={k})",
            {
                "categories": names,
                "series": {
                    m: [number_or_none(models[n].get(m)) for n in names] for m in bar_metrics
                },
                "y_label": "value",
            },
        )
    )
    y_metric = f"ndcg@{k}"
    panels = [
        {"x_metric": x, "x": [number_or_none(models[n].get(x)) for n in names]}
        for x in (f"novelty@{k}", f"coverage@{k}")
        if any(x in e for e in models.values())
    ]
    if panels:
        blocks.append(
            Chart(
                "scatter",
                "Accuracy against novelty and catalogue coverage",
                {
                    "labels": names,
                    "y_metric": y_metric,
                    "y": [number_or_none(models[n].get(y_metric)) for n in names],
                    "panels": panels,
                },
            )
        )
    return Section("models", "Model comparison", blocks)


def _not_available(what: str, data: ReportData, key: str) -> Text:
    reason = data.unavailable.get(key)
    return Text(f"{what}: not available" + (f" ({reason})." if reason else "."), "muted")


def _purchase_section(data: ReportData) -> Section:
    ev = data.evaluation
    classifier = ev.get("classifier") or {}
    blocks: list[Block] = []
    if classifier:
        pairs = [(label, classifier.get(key)) for key, label in CLASSIFIER_METRICS]
        # a count stored as a float in the JSON still reads as a count
        pairs = [(lab, int(v) if lab == COUNT_LABEL and v is not None else v) for lab, v in pairs]
        blocks.append(
            key_value_table(
                "Purchase classifier", [(label, v) for label, v in pairs if v is not None]
            )
        )
    else:
        blocks.append(
            Text(
                "Purchase classifier metrics: not available (the two-stage purchase model, "
                "ranker, was not evaluated).",
                "muted",
            )
        )
    tables = [
        ("10 equal-width bins", ev.get("reliability") or []),
        ("10 equal-mass bins", ev.get("reliability_quantile") or []),
    ]
    for binning, reliability in tables:
        if not reliability:
            continue
        blocks.append(
            Chart(
                "calibration",
                f"Calibration: predicted against observed purchase rate ({binning})",
                {
                    "mean_predicted": [r.get("mean_predicted") for r in reliability],
                    "fraction_positive": [r.get("fraction_positive") for r in reliability],
                    "count": [r.get("count") for r in reliability],
                },
            )
        )
        rows = [
            [
                f"{format_value(r.get('bin_lower'), 3)} to {format_value(r.get('bin_upper'), 3)}",
                format_value(r.get("count")),
                format_value(r.get("mean_predicted")),
                format_value(r.get("fraction_positive")),
            ]
            for r in reliability
        ]
        blocks.append(
            Table(
                f"Reliability table ({binning})",
                ["predicted probability", "candidates", "mean predicted", "observed rate"],
                rows,
                [False, True, True, True],
            )
        )
    if classifier and not any(table for _, table in tables):
        blocks.append(Text("Calibration chart: not available (no reliability table).", "muted"))
    importance = data.shap_importance
    if importance is not None and len(importance):
        top = importance.head(TOP_FEATURES)
        labels = [
            str(lab) if isinstance(lab, str) and lab else str(feat)
            for feat, lab in zip(top["feature"], top["label"], strict=True)
        ]
        blocks.append(
            Chart(
                "importance",
                "What drives the purchase probability (mean |SHAP|)",
                {"labels": labels, "values": [float(v) for v in top["mean_abs_shap"]]},
            )
        )
        rows = [
            [str(f), str(lab) if isinstance(lab, str) else "", format_value(v)]
            for f, lab, v in zip(
                importance["feature"], importance["label"], importance["mean_abs_shap"], strict=True
            )
        ]
        blocks.append(
            Table(
                "Global SHAP importance",
                ["feature", "meaning", "mean |SHAP|"],
                rows,
                [False, False, True],
            )
        )
    else:
        blocks.append(_not_available("Global SHAP importance of the purchase model", data, "shap"))
    return Section("purchase", "Purchase model", blocks)


def _examples_section(data: ReportData) -> Section:
    if not data.examples:
        blocks: list[Block] = [_not_available("Example recommendations", data, "examples")]
        return Section("examples", "Example recommendations", blocks)
    blocks = [
        Text(
            "Recommendations for a few shoppers drawn at random (seeded), with the purchase "
            "probability and the strongest reasons behind it."
        )
    ]
    for example in data.examples:
        rows = [
            [
                format_value(item.get("rank")),
                str(item.get("item_id", "")),
                str(item.get("title", "")),
                format_value(item.get("purchase_probability")),
                format_value(item.get("score")),
                "; ".join(item.get("reasons") or []) or "n/a",
            ]
            for item in example.get("items", [])
        ]
        model = example.get("model")
        blocks.append(
            Table(
                f"Shopper {display_user_id(example.get('user_id'))}"
                + (f" ({model})" if model else ""),
                ["rank", "item", "title", "purchase probability", "score", "top reasons"],
                rows,
                [True, False, False, True, True, False],
            )
        )
    return Section("examples", "Example recommendations", blocks)


def _baseline_verdict(data: ReportData) -> Text:
    changes = data.metric_changes()
    flagged = [c for c in changes if c.flagged]
    limit = format_threshold(data.threshold)
    if flagged:
        names = ", ".join(f"{c.model} {metric_name(c.metric)}" for c in flagged[:5])
        more = f" and {len(flagged) - 5} more" if len(flagged) > 5 else ""
        return Text(
            f"REGRESSION: {len(flagged)} of {len(changes)} metrics dropped by more than "
            f"{limit} against the baseline: {names}{more}.",
            "warning",
        )
    return Text(
        f"No metric dropped by more than {limit} against the baseline "
        f"({len(changes)} metrics compared).",
        "ok",
    )


def change_row(change: MetricChange) -> list[str]:
    """A row of the baseline table."""
    if change.flagged:
        verdict = "DROP"
    elif not change.gated:
        verdict = "not gated"
    elif change.new == change.old:
        verdict = "same"
    else:
        verdict = "worse" if change.worse else "better"
    return [
        change.model,
        metric_name(change.metric),
        format_value(change.old),
        format_value(change.new),
        format_change(change.relative_change),
        verdict,
    ]


def _baseline_section(data: ReportData) -> Section:
    if data.baseline is None:
        blocks: list[Block] = [
            Text(
                "No baseline given: run `report ... --baseline OLD.json` to compare every "
                "metric with an earlier report.",
                "muted",
            )
        ]
        return Section("baseline", "Change against a baseline", blocks)
    base = data.baseline
    created = (base.get("provenance") or {}).get("created", "unknown date")
    source = f" ({data.baseline_source})" if data.baseline_source else ""
    blocks = [
        Text(
            f"Baseline: {base.get('dataset')} evaluated {created}{source}. A metric is flagged "
            f"when it got worse by more than {format_threshold(data.threshold)} relative "
            "(lower for accuracy and beyond-accuracy metrics and AUC, higher for log loss, "
            "Brier score and ECE). Fit times are shown but never flagged: they depend on the "
            "machine and its load."
        ),
        _baseline_verdict(data),
    ]
    for warning in baseline_warnings(data.evaluation, base):
        blocks.append(Text(f"Caution: {warning}.", "warning"))
    changes = data.metric_changes()
    blocks.append(
        Table(
            "Metric changes against the baseline",
            ["model", "metric", "baseline", "now", "change", "verdict"],
            [change_row(c) for c in changes],
            [False, False, True, True, True, False],
            frozenset(i for i, c in enumerate(changes) if c.flagged),
        )
    )
    return Section("baseline", "Change against a baseline", blocks)


def _reproducibility_section(data: ReportData) -> Section:
    ev = data.evaluation
    prov = ev.get("provenance") or {}
    config = ev.get("config") or {}
    pairs: list[tuple[str, object]] = [
        ("evaluation run (UTC)", prov.get("created", "n/a")),
        ("report generated (UTC)", data.generated),
        ("report format version", REPORT_FORMAT_VERSION),
        ("seed", prov.get("seed", config.get("seed"))),
        ("data checksum (SHA-256)", prov.get("data_sha256", "n/a")),
        ("events in the log", prov.get("events")),
        ("python", prov.get("python", platform.python_version())),
    ]
    weights = config.get("weights")
    if isinstance(weights, Mapping):
        pairs.append(("event weights", ", ".join(f"{k} {v}" for k, v in weights.items())))
    versions = prov.get("library_versions") or {}
    blocks: list[Block] = [
        key_value_table("Run", pairs),
        Table(
            "Library versions",
            ["library", "version"],
            [[name, str(v)] for name, v in versions.items()],
            [False, False],
        ),
    ]
    params_rows = [
        [name, ", ".join(f"{k}={v}" for k, v in (entry.get("params") or {}).items()) or "-"]
        for name, entry in _models(ev).items()
    ]
    blocks.append(Table("Model parameters", ["model", "parameters"], params_rows, [False, False]))
    return Section("reproducibility", "Reproducibility", blocks)
