"""The report's charts, drawn from one :class:`~recsys_core.reporting.content.Chart`.

Interactive plotly figures for the HTML report, static matplotlib PNGs for the PDF. Both
read the same chart data, so they show the same numbers. Matplotlib is used through
:class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot, no global state), so it
is safe in a server or a Streamlit session.
"""

from __future__ import annotations

import io
import math
from typing import Any

import plotly.graph_objects as go
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

from recsys_core.reporting.content import Chart


def _nan(values: list[Any]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def plotly_figure(chart: Chart) -> go.Figure:
    """An interactive plotly figure of ``chart``."""
    data = chart.data
    if chart.kind == "bars":
        fig = go.Figure(
            [
                go.Bar(name=metric, x=data["categories"], y=values)
                for metric, values in data["series"].items()
            ]
        )
        fig.update_layout(barmode="group", yaxis_title=data.get("y_label", ""))
    elif chart.kind == "scatter":
        panels = data["panels"]
        fig = make_subplots(rows=1, cols=len(panels))
        for col, panel in enumerate(panels, start=1):
            fig.add_trace(
                go.Scatter(
                    x=panel["x"],
                    y=data["y"],
                    text=data["labels"],
                    mode="markers+text",
                    textposition="top center",
                    marker={"size": 11},
                    name=panel["x_metric"],
                    showlegend=False,
                ),
                row=1,
                col=col,
            )
            fig.update_xaxes(title_text=panel["x_metric"], row=1, col=col)
            fig.update_yaxes(title_text=data["y_metric"], row=1, col=col)
    elif chart.kind == "calibration":
        fig = go.Figure(
            [
                go.Scatter(
                    x=[0, 1],
                    y=[0, 1],
                    mode="lines",
                    name="perfectly calibrated",
                    line={"dash": "dash", "color": "grey"},
                ),
                go.Scatter(
                    x=data["mean_predicted"],
                    y=data["fraction_positive"],
                    customdata=data["count"],
                    mode="lines+markers",
                    name="purchase model",
                    hovertemplate="predicted %{x:.4f}<br>observed %{y:.4f}"
                    "<br>%{customdata} candidates<extra></extra>",
                ),
            ]
        )
        fig.update_layout(
            xaxis_title="mean predicted probability", yaxis_title="observed purchase rate"
        )
    else:
        fig = go.Figure(go.Bar(x=data["values"][::-1], y=data["labels"][::-1], orientation="h"))
        fig.update_layout(xaxis_title="mean |SHAP| (log-odds)", margin={"l": 260})
    fig.update_layout(title=chart.title, template="plotly_white", height=420)
    return fig


def _bars(ax: Axes, data: dict[str, Any]) -> None:
    categories = data["categories"]
    series = data["series"]
    width = 0.8 / max(len(series), 1)
    for i, (metric, values) in enumerate(series.items()):
        xs = [c + (i - (len(series) - 1) / 2) * width for c in range(len(categories))]
        ax.bar(xs, _nan(values), width=width, label=metric)
    ax.set_xticks(range(len(categories)), categories)
    ax.set_ylabel(data.get("y_label", ""))
    ax.legend(fontsize=7, ncols=4, loc="upper left")


def _calibration(ax: Axes, data: dict[str, Any]) -> None:
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(
        _nan(data["mean_predicted"]),
        _nan(data["fraction_positive"]),
        marker="o",
        label="purchase model",
    )
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed purchase rate")
    ax.legend(fontsize=8)


def _importance(ax: Axes, data: dict[str, Any]) -> None:
    labels = data["labels"][::-1]
    ax.barh(range(len(labels)), data["values"][::-1])
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("mean |SHAP| (log-odds)")


def matplotlib_png(chart: Chart, width_inches: float = 7.0, dpi: int = 150) -> bytes:
    """A static PNG of ``chart`` (for the PDF report)."""
    data = chart.data
    panels = data["panels"] if chart.kind == "scatter" else [None]
    fig = Figure(figsize=(width_inches, 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    if chart.kind == "bars":
        _bars(axes[0], data)
    elif chart.kind == "scatter":
        for ax, panel in zip(axes, panels, strict=True):
            assert panel is not None
            xs, ys = _nan(panel["x"]), _nan(data["y"])
            ax.scatter(xs, ys)
            for label, x, y in zip(data["labels"], xs, ys, strict=True):
                ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
            ax.margins(0.15)
            ax.set_xlabel(panel["x_metric"])
            ax.set_ylabel(data["y_metric"])
    elif chart.kind == "calibration":
        _calibration(axes[0], data)
    else:
        _importance(axes[0], data)
    fig.suptitle(chart.title, fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
