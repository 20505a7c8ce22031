"""The PDF report: the same content as the HTML one, with static charts.

Route: **ReportLab** (``reportlab`` on PyPI, BSD licence, pure Python wheels) with its
Platypus layout engine. Platypus flows paragraphs, tables and images over A4 pages and
splits a long table between rows, repeating the header row on every page
(``Table(repeatRows=1)``), which is what a long baseline comparison or parameter table
needs. Charts are drawn by matplotlib (Agg canvas) into PNGs kept in memory and embedded as
images, so nothing is written to disk but the finished PDF (atomically). Text is set in
DejaVu Sans, the TrueType font that ships inside matplotlib, embedded as a subset, so any
Unicode in product titles prints and the text can be extracted (e.g. with ``pypdf``).
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

import matplotlib
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    Image,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
)
from reportlab.platypus import Table as PdfTable

from recsys_core.io_utils import atomic_write_bytes
from recsys_core.reporting.charts import matplotlib_png
from recsys_core.reporting.content import Block, Chart, Table, Text, build_sections, report_title
from recsys_core.reporting.data import ReportData

FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"
TABLE_FONT_SIZE = 7.5
CELL_PADDING = 4.0
CHART_ASPECT = 3.4 / 7.0
#: Tables up to this height (points) are never split; longer ones split between rows.
KEEP_TOGETHER_UP_TO = 320.0  # no lone row of a split table at a page's top
CAPTION_HEIGHT = 24.0
#: Room (points) a section needs left on the page to start there.
SECTION_START_ROOM = 120.0


@cache
def _register_fonts() -> None:
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont(FONT, str(folder / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(folder / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(
        FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD
    )


@cache
def _styles() -> dict[str, ParagraphStyle]:
    _register_fonts()
    base = getSampleStyleSheet()

    def style(name: str, parent: str, **kw: object) -> ParagraphStyle:
        kw.setdefault("fontName", FONT)
        return ParagraphStyle(name, parent=base[parent], **kw)

    return {
        "title": style("ReportTitle", "Title", fontName=FONT_BOLD, fontSize=18),
        "h2": style("Section", "Heading2", fontName=FONT_BOLD, spaceBefore=12, keepWithNext=1),
        "caption": style("Caption", "Heading4", fontName=FONT_BOLD, fontSize=9, spaceBefore=6),
        "normal": style("Body", "BodyText", fontSize=9, leading=12),
        "muted": style("Muted", "BodyText", fontSize=9, leading=12, textColor=colors.grey),
        "warning": style(
            "Warning",
            "BodyText",
            fontName=FONT_BOLD,
            fontSize=9,
            leading=12,
            textColor=colors.HexColor("#9b1c1c"),
        ),
        "ok": style(
            "Ok",
            "BodyText",
            fontName=FONT_BOLD,
            fontSize=9,
            leading=12,
            textColor=colors.HexColor("#1f6f3b"),
        ),
        # splitLongWords=0: a word (a number, "popularity") is never cut in two; the
        # column widths leave room for the longest one (column_widths, split_columns)
        "cell": style("Cell", "BodyText", fontSize=TABLE_FONT_SIZE, leading=9.5, splitLongWords=0),
        "cell_num": style(
            "CellNum",
            "BodyText",
            fontSize=TABLE_FONT_SIZE,
            leading=9.5,
            alignment=TA_RIGHT,
            splitLongWords=0,
        ),
        "head": style(
            "Head",
            "BodyText",
            fontName=FONT_BOLD,
            fontSize=TABLE_FONT_SIZE,
            leading=9.5,
            splitLongWords=0,
        ),
    }


def _width(text: str, font: str = FONT) -> float:
    return pdfmetrics.stringWidth(text, font, TABLE_FONT_SIZE) + 2 * CELL_PADDING


def column_widths(table: Table, available: float) -> list[float]:
    """Column widths that fit ``available`` points: natural widths, or wrapped text columns.

    Columns keep their natural width when everything fits; otherwise every column gets at
    least its longest word and the rest of the space goes to the columns with the most
    text to wrap.
    """
    columns = list(zip(table.header, *table.rows, strict=True))
    natural = [max(_width(str(c)) for c in col) for col in columns]
    natural = [max(n, _width(h, FONT_BOLD)) for n, h in zip(natural, table.header, strict=True)]
    if sum(natural) <= available:
        return natural
    minimum = [
        max(_minimum_width(list(col[1:]) or [""]), _minimum_width([col[0]], FONT_BOLD))
        for col in columns
    ]
    spare = available - sum(minimum)
    if spare <= 0:
        return [m * available / sum(minimum) for m in minimum]
    wrap = [n - m for n, m in zip(natural, minimum, strict=True)]
    return [m + spare * w / sum(wrap) for m, w in zip(minimum, wrap, strict=True)]


def _words(text: str) -> list[str]:
    """The unbreakable pieces of a cell (a no-break space joins an interval's numbers)."""
    return text.split() or [""]


def _minimum_width(cells: list[str], font: str = FONT) -> float:
    return max(_width(word, font) for cell in cells for word in _words(str(cell)))


def split_columns(table: Table, available: float) -> list[Table]:
    """``table``, or several tables with its first column repeated, so that every column
    is at least as wide as its longest word: a table too wide for the page is cut between
    columns, never through a number or a word."""
    columns = list(zip(table.header, *table.rows, strict=True))
    needs = [
        max(_minimum_width(list(col[1:]) or [""]), _minimum_width([col[0]], FONT_BOLD))
        for col in columns
    ]
    if sum(needs) <= available or len(columns) <= 2:
        return [table]
    parts: list[list[int]] = [[]]
    used = needs[0]
    for j in range(1, len(columns)):
        if parts[-1] and used + needs[j] > available:
            parts.append([])
            used = needs[0]
        parts[-1].append(j)
        used += needs[j]
    out = []
    for n, part in enumerate(parts):
        keep = [0, *part]
        title = table.title if n == 0 else f"{table.title} (continued)"
        out.append(
            Table(
                title,
                [table.header[j] for j in keep],
                [[row[j] for j in keep] for row in table.rows],
                [table.is_numeric(j) for j in keep],
                flagged_rows=table.flagged_rows,
            )
        )
    return out


def _table_flowables(table: Table, available: float) -> list[Flowable]:
    parts = split_columns(table, available)
    if len(parts) > 1:
        return [f for part in parts for f in _single_table_flowables(part, available)]
    return _single_table_flowables(table, available)


def _single_table_flowables(table: Table, available: float) -> list[Flowable]:
    styles = _styles()
    head = [Paragraph(escape(h), styles["head"]) for h in table.header]
    rows = [
        [
            Paragraph(escape(cell), styles["cell_num" if table.is_numeric(j) else "cell"])
            for j, cell in enumerate(row)
        ]
        for row in table.rows
    ]
    commands: list[tuple[object, ...]] = [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#bbbbbb")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef0f3")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING),
        ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    for i in table.flagged_rows:
        commands.append(("BACKGROUND", (0, i + 1), (-1, i + 1), colors.HexColor("#fde2e1")))
    pdf_table = PdfTable(
        [head, *rows],
        colWidths=column_widths(table, available),
        repeatRows=1,
        hAlign="LEFT",
        style=commands,
    )
    # Short tables stay whole; a long one starts on this page when a few rows fit, and
    # splits between rows with its header repeated.
    height = pdf_table.wrap(available, 10**6)[1] + CAPTION_HEIGHT
    return [
        CondPageBreak(min(height, KEEP_TOGETHER_UP_TO)),
        Paragraph(escape(table.title), styles["caption"]),
        pdf_table,
        Spacer(1, 6),
    ]


def _block_flowables(block: Block, available: float) -> list[Flowable]:
    styles = _styles()
    if isinstance(block, Text):
        return [Paragraph(escape(block.text), styles[block.tone])]
    if isinstance(block, Table):
        return _table_flowables(block, available)
    assert isinstance(block, Chart)
    png = matplotlib_png(block)
    return [Image(io.BytesIO(png), width=available, height=available * CHART_ASPECT), Spacer(1, 6)]


def pdf_bytes(data: ReportData) -> bytes:
    """The report as PDF bytes (A4, static charts, tables split with repeated headers).

    Parameters
    ----------
    data:
        What the report shows.
    """
    styles = _styles()
    title = report_title(data)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=18 * mm,
        title=title,
        author="recommendation lab",
    )

    def footer(canvas: Canvas, document: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(colors.grey)
        canvas.drawString(15 * mm, 10 * mm, f"{title} · generated {data.generated}")
        canvas.drawRightString(A4[0] - 15 * mm, 10 * mm, f"page {document.page}")
        canvas.restoreState()

    story: list[Flowable] = [Paragraph(escape(title), styles["title"])]
    for section in build_sections(data):
        story.append(CondPageBreak(SECTION_START_ROOM))  # no heading alone at a page foot
        story.append(Paragraph(escape(section.title), styles["h2"]))
        for block in section.blocks:
            story.extend(_block_flowables(block, doc.width))
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def render_pdf(data: ReportData, path: str | Path) -> Path:
    """Write the PDF report to ``path`` atomically and return the path."""
    path = Path(path)
    atomic_write_bytes(path, pdf_bytes(data))
    return path
