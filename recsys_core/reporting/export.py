"""Report formats by file extension, the JSON report, and bytes for downloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from recsys_core.errors import ConfigError
from recsys_core.evaluation import json_safe  # the evaluate JSON's own NaN/numpy cleaner
from recsys_core.io_utils import atomic_write_bytes
from recsys_core.reporting.baseline import baseline_warnings
from recsys_core.reporting.content import REPORT_FORMAT_VERSION
from recsys_core.reporting.data import ReportData, display_user_id
from recsys_core.reporting.formatting import format_change, format_threshold

ReportFormat = Literal["html", "pdf", "json"]

#: File extensions and the report format each one means.
FORMATS_BY_EXTENSION: dict[str, ReportFormat] = {
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".json": "json",
}

#: MIME type of each format (for download buttons).
MIME_TYPES: dict[ReportFormat, str] = {
    "html": "text/html",
    "pdf": "application/pdf",
    "json": "application/json",
}


def format_for_path(path: str | Path) -> ReportFormat:
    """The report format a file name asks for (by its extension).

    Raises
    ------
    ConfigError
        An extension other than ``.html``/``.htm``, ``.pdf`` or ``.json``.
    """
    suffix = Path(path).suffix.lower()
    fmt = FORMATS_BY_EXTENSION.get(suffix)
    if fmt is None:
        raise ConfigError(
            f"cannot tell the report format of {str(path)!r} from its extension "
            f"{suffix or '(none)'!r}: name the file FILE.html, FILE.pdf or FILE.json"
        )
    return fmt


def render_json(data: ReportData) -> dict[str, Any]:
    """The evaluate JSON plus a ``report`` block with the report's own content.

    The ``report`` block holds ``format_version``, ``generated``, ``dataset_description``,
    ``shap_importance`` (records or ``None``), ``examples`` (shopper ids through
    :func:`display_user_id`, or ``None``), ``unavailable`` (why parts are missing) and
    ``baseline`` (the comparison, or ``None``). The result can be a later report's baseline.
    """
    out = {key: value for key, value in data.evaluation.items() if key != "report"}
    importance = data.shap_importance
    examples = None
    if data.examples is not None:
        examples = [
            {**example, "user_id": display_user_id(example.get("user_id"))}
            for example in data.examples
        ]
    baseline = None
    if data.baseline is not None:
        changes = data.metric_changes()
        provenance = data.baseline.get("provenance") or {}
        baseline = {
            "source": data.baseline_source,
            "dataset": data.baseline.get("dataset"),
            "created": provenance.get("created"),
            "threshold": data.threshold,
            "fit_seconds_gated": False,
            "compared": len(changes),
            "flagged": sum(change.flagged for change in changes),
            "warnings": baseline_warnings(data.evaluation, data.baseline),
            "changes": [change.to_dict() for change in changes],
        }
    out["report"] = {
        "format_version": REPORT_FORMAT_VERSION,
        "generated": data.generated,
        "dataset_description": data.dataset_info or None,
        "shap_importance": None if importance is None else importance.to_dict(orient="records"),
        "examples": examples,
        "unavailable": dict(data.unavailable),
        "baseline": baseline,
    }
    safe: dict[str, Any] = json_safe(out)
    return safe


def report_bytes(data: ReportData, fmt: ReportFormat | str) -> bytes:
    """The report as file content in ``fmt`` (``html``, ``pdf`` or ``json``).

    Used by the CLI and by the Model lab page's download buttons (see :data:`MIME_TYPES`).

    Raises
    ------
    ConfigError
        An unknown format.
    """
    if fmt == "html":
        from recsys_core.reporting.html import render_html

        return render_html(data).encode("utf-8")
    if fmt == "pdf":
        from recsys_core.reporting.pdf import pdf_bytes

        return pdf_bytes(data)
    if fmt == "json":
        return (json.dumps(render_json(data), indent=2, allow_nan=False) + "\n").encode("utf-8")
    raise ConfigError(f"unknown report format {fmt!r}: choose html, pdf or json")


def write_report(data: ReportData, path: str | Path) -> ReportFormat:
    """Write the report to ``path`` atomically, in the format its extension names."""
    fmt = format_for_path(path)
    atomic_write_bytes(path, report_bytes(data, fmt))
    return fmt


def summary_lines(data: ReportData) -> list[str]:
    """Plain-text lines for a terminal: the best model and the baseline verdict."""
    ev = data.evaluation
    k = ev.get("k")
    lines = [f"{ev.get('dataset')}: {len(ev.get('models') or {})} models, k={k}"]
    if data.baseline is not None:
        changes = data.metric_changes()
        flagged = [c for c in changes if c.flagged]
        limit = format_threshold(data.threshold)
        lines.append(
            f"baseline: {len(changes)} metrics compared, {len(flagged)} dropped by more than "
            f"{limit}"
        )
        lines += [
            f"  DROP {c.model} {c.metric}: {c.old:.4f} -> {c.new:.4f} "
            f"({format_change(c.relative_change)})"
            for c in flagged
        ]
    for part, reason in data.unavailable.items():
        lines.append(f"{part}: not available ({reason})")
    return lines
