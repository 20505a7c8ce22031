"""Plotly figures of the pages: pure functions from frames (or explain dicts) to figures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from recsys_core.columns import EVENT_TYPES

#: One colour per event type, the same on every chart.
EVENT_COLOURS: dict[str, str] = {
    "view": "#8aa4c8",
    "cart": "#f2a541",
    "favorite": "#c77dba",
    "purchase": "#2e8b57",
}
_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def _layout(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=_MARGIN, legend_title_text="")
    return fig


def funnel_figure(funnel: pd.DataFrame, title: str = "Funnel: events per stage") -> go.Figure:
    """Views -> carts -> purchases as a plotly funnel (``stage``, ``events`` columns)."""
    fig = go.Figure(
        go.Funnel(
            y=funnel["stage"],
            x=funnel["events"],
            textinfo="value+percent initial",
            marker={"color": [EVENT_COLOURS.get(e, "#888") for e in funnel["event"]]},
        )
    )
    return _layout(fig, title)


def activity_figure(weekly: pd.DataFrame) -> go.Figure:
    """Events per week, stacked by event type (``week, event, events``)."""
    fig = px.bar(
        weekly,
        x="week",
        y="events",
        color="event",
        color_discrete_map=EVENT_COLOURS,
        category_orders={"event": list(EVENT_TYPES)},
        labels={"week": "week starting", "events": "events"},
    )
    fig.update_layout(bargap=0.05)
    return _layout(fig, "Activity over time: events per week by type")


def long_tail_figure(popularity: pd.DataFrame) -> go.Figure:
    """Item popularity by rank on log-log axes: the long tail (``rank, shoppers, title``)."""
    fig = px.scatter(
        popularity,
        x="rank",
        y="shoppers",
        hover_data={"title": True, "item_id": True, "events": True},
        log_x=True,
        log_y=True,
        labels={"rank": "product rank (most popular first)", "shoppers": "shoppers"},
    )
    fig.update_traces(marker={"size": 4})
    return _layout(fig, "Item popularity: the long tail (log-log)")


def user_activity_figure(activity: pd.DataFrame) -> go.Figure:
    """Histogram of events per shopper on a log-scaled count axis."""
    fig = px.histogram(
        activity,
        x="events",
        nbins=60,
        log_y=True,
        labels={"events": "events per shopper"},
    )
    # one label per power of ten (1, 10, 100, ...): minor labels read "5 2 1000 5 2 100"
    fig.update_yaxes(title="shoppers (log scale)", dtick=1, tickformat=",")
    return _layout(fig, "Shopper activity: events per shopper")


def timeline_days(history: pd.DataFrame, titles_shown: int = 3) -> pd.DataFrame:
    """A shopper's history as one row per (day, event type).

    Returns ``day``, ``event``, ``events`` (how many) and ``titles`` (the first
    ``titles_shown`` distinct titles of the day, and how many more).
    """
    days = history.assign(
        day=history["timestamp"].dt.floor("D"), title=history["title"].astype(str)
    )
    grouped = days.groupby(["day", "event"], observed=True, sort=True)["title"]

    def summary(titles: pd.Series) -> str:
        distinct = list(dict.fromkeys(titles))
        text = "<br>".join(distinct[:titles_shown])
        more = len(distinct) - titles_shown
        return text + (f"<br>... and {more} more" if more > 0 else "")

    return pd.DataFrame({"events": grouped.size(), "titles": grouped.agg(summary)}).reset_index()


def timeline_figure(history: pd.DataFrame) -> go.Figure:
    """A shopper's events over time: one marker per day and event type, sized by count.

    Days rather than single events: a wholesaler's history has thousands of events, and
    one marker each made a ~0.5 MB chart that every shopper switch re-sent and redrew.
    Built with graph objects rather than plotly express, which is slower to build.
    """
    days = timeline_days(history)
    fig = go.Figure()
    for event in EVENT_TYPES:
        rows = days[days["event"].astype(str) == event]
        if rows.empty:
            continue
        counts = rows["events"].to_numpy()
        fig.add_trace(
            go.Scatter(
                x=rows["day"],
                y=np.full(len(rows), event),
                mode="markers",
                name=event,
                marker={
                    "size": 6 + 1.5 * np.sqrt(np.minimum(counts, 100)),
                    "opacity": 0.75,
                    "color": EVENT_COLOURS[event],
                },
                customdata=np.stack(
                    [
                        np.array([f"{n:,} {event}" + ("" if n == 1 else "s") for n in counts]),
                        rows["titles"].to_numpy(),
                    ],
                    axis=-1,
                ),
                hovertemplate="%{x|%d %b %Y}: %{customdata[0]}<br>%{customdata[1]}<extra></extra>",
            )
        )
    xaxis: dict[str, Any] = {"tickformat": "%d %b %Y", "title": ""}  # days, never clock times
    if len(days) and days["day"].nunique() == 1:  # one day: a week around it, not 1 ms
        day = pd.Timestamp(days["day"].iloc[0])
        xaxis["range"] = [day - pd.Timedelta(days=3), day + pd.Timedelta(days=3)]
        xaxis["dtick"] = 86_400_000  # one tick per day
    fig.update_layout(
        showlegend=False,
        xaxis=xaxis,
        yaxis={
            "categoryorder": "array",
            "categoryarray": [e for e in EVENT_TYPES if (days["event"].astype(str) == e).any()],
            "title": "",
        },
    )
    return _layout(fig, "History (one marker per day; larger: more events)", height=280)


def waterfall_frame(
    explanation: Mapping[str, Any], top: int = 10
) -> tuple[pd.DataFrame, float, float]:
    """The waterfall's steps: the ``top`` largest contributions plus one "other" step.

    ``explanation`` is the ``explain`` JSON (``base_value``, ``raw_score``, ``contributions``
    of ``{feature, value, contribution}``; ``feature`` already reads in the shop's words).

    Returns
    -------
    (steps, base_value, raw_score)
        ``steps`` has ``label, value, contribution`` in drawing order: "other" first, then
        the shown features from the smallest to the largest effect (next to the total).
        ``base_value + steps.contribution.sum() == raw_score`` up to rounding.
    """
    contributions = pd.DataFrame(list(explanation.get("contributions") or []))
    base = float(explanation.get("base_value") or 0.0)
    raw = explanation.get("raw_score")
    if contributions.empty:
        empty = pd.DataFrame({"label": [], "value": [], "contribution": []})
        return empty, base, float(raw if raw is not None else base)
    contributions["label"] = contributions["feature"].astype(str)
    repeated = contributions["label"].duplicated(keep=False)
    if repeated.any():  # two features described alike (e.g. a score and its rank): name them
        names = contributions.get("name", pd.Series(contributions.index.astype(str)))
        contributions.loc[repeated, "label"] += " [" + names[repeated].astype(str) + "]"
    if "value" not in contributions.columns:
        contributions["value"] = None
    contributions["contribution"] = contributions["contribution"].astype(float)
    order = contributions["contribution"].abs().sort_values(ascending=False, kind="stable").index
    ranked = contributions.loc[order]
    shown = ranked.head(top)[["label", "value", "contribution"]].iloc[::-1]
    rest = ranked.iloc[top:]
    steps = shown.reset_index(drop=True)
    if len(rest):
        other = pd.DataFrame(
            {
                "label": [f"other ({len(rest)} features)"],
                "value": [None],
                "contribution": [float(rest["contribution"].sum())],
            }
        )
        steps = pd.concat([other, steps], ignore_index=True)
    total = base + float(contributions["contribution"].sum())
    return steps, base, float(raw) if raw is not None else total


def waterfall_figure(explanation: Mapping[str, Any], top: int = 10) -> go.Figure:
    """SHAP waterfall in plotly: from the base value through each contribution to the score.

    Bars are on the classifier's margin (log-odds) scale, where SHAP values add up exactly;
    the title gives the calibrated purchase probability.
    """
    steps, base, raw = waterfall_frame(explanation, top)
    # The numbers go into the axis labels, not onto the bars: text beside a bar was clipped
    # or overlapped the labels whenever a bar reached the plot's edge.
    labels = [
        "starting point: the average shopper and item",
        *[
            f"{label} ({'raises' if c > 0 else 'lowers'} it)"
            for label, c in zip(steps["label"], steps["contribution"], strict=True)
        ],
        "this shopper and item",
    ]
    values = [None, *steps["value"], None]
    fig = go.Figure(
        go.Waterfall(
            orientation="h",
            measure=["absolute", *["relative"] * len(steps), "total"],
            y=labels,
            x=[base, *steps["contribution"].tolist(), raw],
            text=[f"{base:+.3f}", *[f"{c:+.3f}" for c in steps["contribution"]], f"{raw:+.3f}"],
            textposition="none",
            customdata=["" if v is None or v != v else f"feature value {v:.4g}" for v in values],
            hovertemplate="%{y}<br>%{customdata}<extra>%{text}</extra>",
            increasing={"marker": {"color": "#2e8b57"}},
            decreasing={"marker": {"color": "#c0392b"}},
            totals={"marker": {"color": "#1f6feb"}},
            connector={"line": {"color": "#bbb"}},
        )
    )
    probability = explanation.get("probability")
    order = explanation.get("order_probability")
    title = "Why this probability (SHAP, log-odds)"
    if probability is not None:
        title += f": if they order, {float(probability):.1%}"
    elif order is not None:
        title = f"Why this order chance (SHAP, log-odds): {float(order):.1%}"
    fig.update_layout(
        xaxis_title="contribution (log-odds)",
        # base value at the top, the score at the bottom; labels widen the left margin
        yaxis={"autorange": "reversed", "automargin": True},
    )
    return _layout(fig, title, height=120 + 32 * len(labels))


def tradeoff_figure(metrics: pd.DataFrame, k: int, beyond: str = "novelty") -> go.Figure:
    """Accuracy (NDCG@k) against novelty or coverage, one point per model."""
    x_col, y_col = f"{beyond}@{k}", f"ndcg@{k}"
    frame = metrics.reset_index()
    fig = px.scatter(
        frame,
        x=x_col,
        y=y_col,
        text="model",
        size=np.full(len(frame), 14.0),
        color="model",
        labels={x_col: f"{beyond} @{k} (higher: less obvious items)", y_col: f"NDCG @{k}"},
    )
    fig.update_traces(textposition="top center")
    fig.update_layout(showlegend=False)
    return _layout(fig, f"Accuracy vs {beyond}")


def reliability_figure(reliability: pd.DataFrame) -> go.Figure:
    """Calibration: mean predicted probability against the observed purchase rate per bin."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dash", "color": "#999"}
        )
    )
    sizes = np.sqrt(reliability["count"].to_numpy(dtype=float))
    sizes = 8 + 22 * sizes / sizes.max() if len(sizes) and sizes.max() > 0 else 10
    fig.add_trace(
        go.Scatter(
            x=reliability["mean_predicted"],
            y=reliability["fraction_positive"],
            mode="lines+markers",
            name="purchase model",
            marker={"size": sizes, "color": "#1f6feb"},
            customdata=reliability["count"],
            hovertemplate="predicted %{x:.3f}<br>observed %{y:.3f}<br>%{customdata} pairs",
        )
    )
    fig.update_layout(
        xaxis_title="predicted purchase probability",
        yaxis_title="observed purchase rate",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1],
    )
    return _layout(fig, "Calibration (reliability)")


def importance_figure(importance: pd.DataFrame, top: int = 20) -> go.Figure:
    """Global SHAP importance: mean |SHAP| per feature, largest at the top."""
    frame = importance.sort_values("mean_abs_shap", ascending=False).head(top).iloc[::-1]
    labels = frame["label"] if "label" in frame.columns else frame["feature"]
    fig = go.Figure(
        go.Bar(x=frame["mean_abs_shap"], y=labels, orientation="h", marker={"color": "#1f6feb"})
    )
    fig.update_layout(xaxis_title="mean |SHAP value| (log-odds)")
    return _layout(fig, "What drives the purchase probability", height=140 + 24 * len(frame))


def effect_figure(sample: pd.DataFrame, feature: str, label: str | None = None) -> go.Figure:
    """SHAP value against feature value for one feature (``value``, ``contribution`` columns)."""
    fig = px.scatter(
        sample,
        x="value",
        y="contribution",
        opacity=0.6,
        labels={"value": label or feature, "contribution": "SHAP value (log-odds)"},
        hover_data=[c for c in ("user_id", "item_id", "title") if c in sample.columns],
    )
    fig.add_hline(y=0, line_dash="dot", line_color="#999")
    return _layout(fig, f"Effect of {label or feature}")


def folds_figure(frame: pd.DataFrame, metric: str) -> go.Figure:
    """One line per model over the rolling-origin folds (``ui.model_lab.folds_frame``)."""
    fig = px.line(frame, x="fold", y=metric, color="model", markers=True)
    fig.update_xaxes(title="test window from", type="category")
    return _layout(fig, f"{metric} per time fold")


def overlap_figure(overlap: pd.DataFrame) -> go.Figure:
    """Heatmap of pairwise Jaccard overlap between models' top-k lists (1 = same items)."""
    values = overlap.to_numpy(dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=list(overlap.columns),
            y=list(overlap.index),
            zmin=0,
            zmax=1,
            colorscale="Blues",
            text=np.vectorize(lambda v: "" if np.isnan(v) else f"{v:.2f}")(values),
            texttemplate="%{text}",
            colorbar={"title": "Jaccard"},
        )
    )
    fig.update_layout(yaxis={"autorange": "reversed"})
    return _layout(fig, "Overlap of the models' lists (Jaccard)", height=320)


def metric_history_figure(history: pd.DataFrame, currency: str = "") -> go.Figure:
    """NDCG, money per shopper and calibration error per trained version, one line per model
    (``ui.operations.metric_history``'s frame)."""
    from plotly.subplots import make_subplots

    panels = [
        ("ndcg", "ranking quality (NDCG)"),
        ("revenue_per_shopper", f"revenue per shopper{f' ({currency})' if currency else ''}"),
        ("calibration_error", "calibration error (ECE)"),
    ]
    panels = [(c, t) for c, t in panels if history[c].notna().any()]
    fig = make_subplots(rows=1, cols=max(len(panels), 1), subplot_titles=[t for _, t in panels])
    for i, (column, _) in enumerate(panels, start=1):
        for model, part in history.dropna(subset=[column]).groupby("model", sort=True):
            fig.add_trace(
                go.Scatter(
                    x=part["version"],
                    y=part[column],
                    mode="lines+markers",
                    name=str(model),
                    legendgroup=str(model),
                    showlegend=i == 1,
                ),
                row=1,
                col=i,
            )
    fig.update_xaxes(type="category", title="version")
    return _layout(fig, "Metric history: recorded metrics per trained version", height=360)
