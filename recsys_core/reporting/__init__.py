"""Evaluation reports a product manager can forward: HTML, PDF and JSON.

Build the data once, render it in any format::

    from recsys_core.reporting import build_report_data, render_html, render_pdf, render_json

    data = build_report_data(dataset, EvaluationConfig(models=["itemknn", "als"], k=10))
    html = render_html(data)                      # one self-contained, offline HTML file
    render_pdf(data, "report.pdf")                # same content, static charts (ReportLab)
    payload = render_json(data)                   # evaluate JSON + a "report" block
    changes = compare_to_baseline(payload, old_payload, threshold=0.05)

Modules: :mod:`.data` (what a report shows), :mod:`.content` (the format-neutral document),
:mod:`.formatting` (how values read), :mod:`.baseline` (the regression view),
:mod:`.charts`, :mod:`.html`, :mod:`.pdf`, :mod:`.export` (formats and bytes) and
:mod:`.explanations` (SHAP and example shoppers from the ranker, when available).
"""

from __future__ import annotations

from recsys_core.reporting.baseline import (
    DEFAULT_THRESHOLD,
    MetricChange,
    baseline_warnings,
    compare_to_baseline,
    load_baseline,
)
from recsys_core.reporting.content import EXTRA_SECTIONS, REPORT_FORMAT_VERSION, build_sections
from recsys_core.reporting.data import (
    ReportData,
    build_report_data,
    default_models,
    describe_dataset,
    display_user_id,
)
from recsys_core.reporting.export import (
    FORMATS_BY_EXTENSION,
    MIME_TYPES,
    format_for_path,
    render_json,
    report_bytes,
    summary_lines,
    write_report,
)
from recsys_core.reporting.folds import model_selection_section
from recsys_core.reporting.formatting import format_change, format_value
from recsys_core.reporting.html import render_html
from recsys_core.reporting.pdf import pdf_bytes, render_pdf

EXTRA_SECTIONS.append(model_selection_section)  # per-fold chart, overall probability

__all__ = [
    "DEFAULT_THRESHOLD",
    "FORMATS_BY_EXTENSION",
    "MIME_TYPES",
    "REPORT_FORMAT_VERSION",
    "MetricChange",
    "ReportData",
    "baseline_warnings",
    "build_report_data",
    "build_sections",
    "compare_to_baseline",
    "default_models",
    "describe_dataset",
    "display_user_id",
    "format_change",
    "format_for_path",
    "format_value",
    "load_baseline",
    "pdf_bytes",
    "render_html",
    "render_json",
    "render_pdf",
    "report_bytes",
    "summary_lines",
    "write_report",
]
