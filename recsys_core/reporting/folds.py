"""The report's model-selection section: quality per fold (a chart and a table), the mean
with its spread, and the overall (order x purchase) probability with its reliability chart.

Registered in :data:`recsys_core.reporting.content.EXTRA_SECTIONS` by the reporting package,
so the HTML and PDF reports show it after the model comparison (nothing for a one-fold
evaluation without a probability model).
"""

from __future__ import annotations

from typing import Any

from recsys_core.evaluation.result import fold_label
from recsys_core.reporting.content import Block, Chart, Section, Table, Text, key_value_table
from recsys_core.reporting.data import ReportData
from recsys_core.reporting.formatting import PROBABILITY_METRICS, format_value

#: Overall-probability metrics, with their names in the report.
OVERALL_METRICS: tuple[tuple[str, str], ...] = (
    *PROBABILITY_METRICS,
    ("positive_rate", "observed purchase rate"),
    ("pairs", "shopper-item pairs scored"),
    ("shoppers", "known shoppers"),
)


def fold_chart(evaluation: dict[str, Any]) -> Chart | None:
    """Grouped bars: NDCG@k of each model in each fold (``None`` with one fold)."""
    folds = evaluation.get("folds") or []
    if not folds:
        return None
    metric = f"ndcg@{evaluation.get('k')}"
    names = list(evaluation.get("summary") or {})
    return Chart(
        "bars",
        f"{metric} per fold (test window start)",
        {
            "categories": [fold_label(f) for f in folds],
            "series": {n: [f["models"].get(n, {}).get(metric) for f in folds] for n in names},
            "y_label": metric,
        },
    )


def folds_blocks(evaluation: dict[str, Any]) -> list[Block]:
    """The per-fold chart, the per-fold table and the mean [min, max] table."""
    chart = fold_chart(evaluation)
    if chart is None:
        return []
    folds = evaluation["folds"]
    metric = f"ndcg@{evaluation.get('k')}"
    names = list(evaluation.get("summary") or {})
    rows = []
    for fold in folds:
        ratio = (fold.get("ranker_vs_best_single_stage") or {}).get("ratio")
        rows.append(
            [
                fold_label(fold),
                format_value(fold.get("test_users")),
                *(format_value(fold["models"].get(n, {}).get(metric)) for n in names),
                "" if ratio is None else f"{ratio:.3f}x",
            ]
        )
    summary_rows = []
    for name in names:
        s = evaluation["summary"][name].get(metric) or {}
        summary_rows.append(
            [
                name,
                format_value(s.get("mean")),
                format_value(s.get("min")),
                format_value(s.get("max")),
            ]
        )
    return [
        Text(
            f"{len(folds)} consecutive test windows, each model trained on everything before "
            "each window; the comparison tables above are the last (most recent) window's."
        ),
        chart,
        Table(
            f"{metric} per fold",
            ["test window from (or seed)", "test shoppers", *names, "ranker / best"],
            rows,
            [False, True, *([True] * len(names)), True],
        ),
        Table(
            f"{metric} over {len(folds)} folds",
            ["model", "mean", "min", "max"],
            summary_rows,
            [False, True, True, True],
        ),
    ]


def overall_blocks(evaluation: dict[str, Any]) -> list[Block]:
    """The overall probability's metrics and reliability chart (or why it was not scored)."""
    overall = evaluation.get("overall_probability")
    if not overall:
        return []
    if "refused" in overall:
        return [Text(f"Overall probability not evaluated: {overall['refused']}", "muted")]
    blocks: list[Block] = [
        Text(
            "The probability a product manager acts on, order x purchase, scored for every "
            "known shopper's served list; a shopper who does not order makes each item a 0."
        ),
        key_value_table(
            "Overall probability (order x purchase)",
            [(label, overall.get(key)) for key, label in OVERALL_METRICS],
        ),
    ]
    for binning, key in (("equal-width", "reliability"), ("equal-mass", "reliability_quantile")):
        table = overall.get(key) or []
        if table:
            blocks.append(
                Chart(
                    "calibration",
                    f"Overall probability: predicted against observed ({binning} bins)",
                    {
                        "mean_predicted": [r.get("mean_predicted") for r in table],
                        "fraction_positive": [r.get("fraction_positive") for r in table],
                        "count": [r.get("count") for r in table],
                    },
                )
            )
    return blocks


def model_selection_section(data: ReportData) -> Section | None:
    """The section, or ``None`` when there is nothing to show."""
    blocks = [*folds_blocks(data.evaluation), *overall_blocks(data.evaluation)]
    if not blocks:
        return None
    return Section("model-selection", "Model selection over time and overall probability", blocks)
