"""The report's format-neutral document model: sections of paragraphs, tables and charts.

Its own module so that :mod:`recsys_core.reporting.content` (the engineer's sections) and
:mod:`recsys_core.reporting.shop_sections` (the shop-facing ones) both build on it without
importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from recsys_core.reporting.formatting import format_value

Tone = Literal["normal", "muted", "warning", "ok"]


@dataclass(frozen=True)
class Text:
    """A paragraph of plain text (renderers escape it)."""

    text: str
    tone: Tone = "normal"


@dataclass(frozen=True)
class Table:
    """A table of strings with a title; ``numeric`` columns are right-aligned."""

    title: str
    header: list[str]
    rows: list[list[str]]
    numeric: list[bool] = field(default_factory=list)
    flagged_rows: frozenset[int] = frozenset()

    def is_numeric(self, column: int) -> bool:
        """Whether column ``column`` holds numbers."""
        return column < len(self.numeric) and self.numeric[column]


@dataclass(frozen=True)
class Chart:
    """A chart drawn by both renderers from the same data.

    ``kind`` is one of ``"bars"`` (grouped bars: ``categories`` and ``series``),
    ``"scatter"`` (labelled points, one panel per ``panels`` entry), ``"calibration"``
    (reliability curve) and ``"importance"`` (horizontal bars).
    """

    kind: Literal["bars", "scatter", "calibration", "importance"]
    title: str
    data: dict[str, Any]


Block = Text | Table | Chart


@dataclass(frozen=True)
class Section:
    """A titled part of the report; ``anchor`` is its id in the HTML."""

    anchor: str
    title: str
    blocks: list[Block]


def key_value_table(title: str, pairs: Sequence[tuple[str, object]]) -> Table:
    """A two-column table of labels and values."""
    rows = [[label, format_value(value)] for label, value in pairs]
    return Table(title, ["field", "value"], rows, [False, False])
