"""The HTML report: one self-contained file that works offline.

plotly's JavaScript is inlined once, by the first chart; later charts reuse it. There is no
``src``/``href`` to the network (only ``#`` anchors), the styles are inline, and every number
is in a plain ``<table>``, so the report reads fine with JavaScript off or in a mail client
that strips scripts (the charts then show a short note instead).
"""

from __future__ import annotations

from html import escape

from recsys_core.reporting.charts import plotly_figure
from recsys_core.reporting.content import (
    Block,
    Chart,
    Table,
    Text,
    build_sections,
    report_title,
)
from recsys_core.reporting.data import ReportData

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; font-size: 0.9em; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f0f2f5; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.flagged td { background: #fde2e1; }
p.muted { color: #666; }
p.warning { color: #9b1c1c; font-weight: 600; }
p.ok { color: #1f6f3b; font-weight: 600; }
figure { margin: 1em 0; }
.noscript { color: #666; font-style: italic; }
"""

_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


class _ChartWriter:
    """Turns charts into HTML, inlining plotly's JavaScript with the first one only."""

    def __init__(self) -> None:
        self.script_included = False

    def __call__(self, chart: Chart) -> str:
        figure = plotly_figure(chart)
        div = figure.to_html(
            full_html=False,
            include_plotlyjs=not self.script_included,
            config=_PLOTLY_CONFIG,
            default_height="420px",
        )
        self.script_included = True
        return (
            f'<figure aria-label="{escape(chart.title)}">{div}'
            f'<noscript><p class="noscript">Chart "{escape(chart.title)}": needs JavaScript; '
            "the tables carry every number.</p></noscript></figure>"
        )


def table_html(table: Table) -> str:
    """A :class:`Table` as a plain HTML ``<table>``."""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in table.header)
    body = []
    for i, row in enumerate(table.rows):
        cells = "".join(
            f'<td class="{"num" if table.is_numeric(j) else "text"}">{escape(cell)}</td>'
            for j, cell in enumerate(row)
        )
        flagged = ' class="flagged"' if i in table.flagged_rows else ""
        body.append(f"<tr{flagged}>{cells}</tr>")
    return (
        f"<table><caption>{escape(table.title)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _block_html(block: Block, charts: _ChartWriter) -> str:
    if isinstance(block, Text):
        return f'<p class="{block.tone}">{escape(block.text)}</p>'
    if isinstance(block, Table):
        return table_html(block)
    return charts(block)


def render_html(data: ReportData) -> str:
    """The report as one self-contained HTML page.

    Parameters
    ----------
    data:
        What the report shows.

    Returns
    -------
    str
        A complete HTML document (UTF-8), about 5 MB because plotly's JavaScript is inlined.
    """
    sections = build_sections(data)
    charts = _ChartWriter()
    title = report_title(data)
    nav = "".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<header><h1>{escape(title)}</h1>",
        f'<p class="muted">Generated {escape(data.generated)} by the recommendation lab.</p>',
        f"<nav>{nav}</nav></header>",
    ]
    for section in sections:
        parts.append(f'<section id="{section.anchor}"><h2>{escape(section.title)}</h2>')
        parts.extend(_block_html(block, charts) for block in section.blocks)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
