"""The Model lab's pieces that are not widgets: settings, the selection table, headline metrics,
and the report export (when :mod:`recsys_core.reporting` is installed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from pydantic import BaseModel

from recsys_core.data.schema import Dataset
from recsys_core.evaluation import EvaluationConfig, EvaluationResult
from recsys_core.models import ALSConfig, BPRConfig, ItemKNNConfig
from recsys_core.presets import Preset
from recsys_core.training import headline_metrics  # noqa: F401  (re-exported)

#: How each model's recommendations can be explained to a shopper or a product manager.
INTERPRETABILITY: dict[str, str] = {
    "popularity": "trivially explainable: the best sellers",
    "itemknn": "because similar to items you bought (item-item similarity)",
    "bpr": "latent factors: hard to explain",
    "als": "latent factors; because-you-bought via ALS explain",
    "als-spark": "ALS trained on Spark; served and explained like ALS",
    "ranker": "SHAP per feature, plus because-you-bought",
}


@dataclass(frozen=True)
class LabSettings:
    """What the user chose on the Model lab page."""

    models: tuple[str, ...]
    k: int = 10
    #: Rolling-origin folds (consecutive 30-day test windows); 1 is the single split.
    folds: int = 1
    als_factors: int = 64
    als_regularization: float = 0.01
    als_alpha: float = 1.0
    als_iterations: int = 15
    knn_neighbours: int = 20
    knn_weighting: str = "bm25"
    bpr_factors: int = 64
    ranker_windows: int = 6
    ranker_folds: int = 4
    ranker_trees: int = 300

    @classmethod
    def defaults(cls, settings: Preset, models: tuple[str, ...]) -> LabSettings:
        """The settings the lab would use anyway: those that apply to the dataset
        (:func:`recsys_core.tuning.settings_for`: tuned, preset or scaled defaults), else the
        models' own defaults (so an untouched form reproduces ``evaluate``)."""
        preset = settings.model_params

        def value(model: str, config: type[BaseModel], name: str) -> Any:
            return preset.get(model, {}).get(name, config.model_fields[name].default)

        ranker: dict[str, int] = {}
        try:  # the ranker's own defaults (the page offers it only when it is installed)
            from recsys_core.ranking.ranker import PurchaseModelConfig, RankerConfig
        except ImportError:
            pass
        else:
            ranker = {
                "ranker_windows": int(RankerConfig.model_fields["training_windows"].default),
                "ranker_folds": int(PurchaseModelConfig.model_fields["cross_fit_folds"].default),
                "ranker_trees": int(PurchaseModelConfig.model_fields["n_estimators"].default),
            }
        return cls(
            models=models,
            als_factors=int(value("als", ALSConfig, "factors")),
            als_regularization=float(value("als", ALSConfig, "regularization")),
            als_alpha=float(value("als", ALSConfig, "alpha")),
            als_iterations=int(value("als", ALSConfig, "iterations")),
            knn_neighbours=int(value("itemknn", ItemKNNConfig, "neighbours")),
            knn_weighting=str(value("itemknn", ItemKNNConfig, "weighting")),
            bpr_factors=int(value("bpr", BPRConfig, "factors")),
            **ranker,
        )

    def config(self) -> EvaluationConfig:
        """The evaluation configuration of these settings (they override the dataset's
        settings; event weights, other hyperparameters and the repeat default stay theirs)."""
        params: dict[str, dict[str, Any]] = {}
        if "als" in self.models:
            params["als"] = {
                "factors": self.als_factors,
                "regularization": self.als_regularization,
                "alpha": self.als_alpha,
                "iterations": self.als_iterations,
            }
        if "itemknn" in self.models:
            params["itemknn"] = {
                "neighbours": self.knn_neighbours,
                "weighting": self.knn_weighting,
            }
        if "bpr" in self.models:
            params["bpr"] = {"factors": self.bpr_factors}
        if "ranker" in self.models:
            params["ranker"] = {
                "training_windows": self.ranker_windows,
                "classifier": {
                    "cross_fit_folds": self.ranker_folds,
                    "n_estimators": self.ranker_trees,
                },
            }
        return EvaluationConfig(
            models=list(self.models), k=self.k, folds=self.folds, model_params=params
        )


def selection_table(result: EvaluationResult) -> pd.DataFrame:
    """One row per model: quality, fit time, latency per shopper, size, interpretability."""
    k = result.k
    test_users = max(int(result.split.get("test_users") or 0), 1)
    rows = []
    for name, res in result.models.items():
        rows.append(
            {
                "model": name,
                f"quality (ndcg@{k})": res.metrics.get(f"ndcg@{k}", np.nan),
                "95% interval": interval_text(res.ci95.get(f"ndcg@{k}")),
                f"hit rate@{k}": res.metrics.get(f"hit_rate@{k}", np.nan),
                "fit time (s)": res.fit_seconds,
                "latency (ms per shopper)": 1000.0 * res.recommend_seconds / test_users,
                "training memory (MB)": res.fit_memory_mb,
                "size on disk (MB)": res.model_mb,
                "interpretability": INTERPRETABILITY.get(name, ""),
            }
        )
    return pd.DataFrame(rows)


#: Metric families in view in the Model lab's two metric tables, in this order; the CSV under
#: them has every metric (MAP, MRR, the revenue over all shoppers, timings and sizes).
ACCURACY_SHOWN: tuple[str, ...] = ("ndcg", "precision", "recall", "hit_rate", "revenue")
BEYOND_SHOWN: tuple[str, ...] = ("coverage", "novelty", "diversity", "arp")
#: Columns in view in the model selection table (its CSV adds hit rate and interpretability,
#: which the page lists under the table).
SELECTION_SHOWN: tuple[str, ...] = (
    "quality",
    "95% interval",
    "fit time (s)",
    "latency (ms per shopper)",
    "training memory (MB)",
    "size on disk (MB)",
)
#: The calibration table's columns in words, narrow enough for half the page.
RELIABILITY_COLUMNS: dict[str, Any] = {
    "bin_lower": st.column_config.NumberColumn(
        "from", format="%.2f", help="Lower edge of the bin of predicted probabilities."
    ),
    "bin_upper": st.column_config.NumberColumn(
        "to", format="%.2f", help="Upper edge of the bin of predicted probabilities."
    ),
    "count": st.column_config.NumberColumn(
        "pairs", format="%d", help="Shopper-item pairs whose prediction falls in the bin."
    ),
    "mean_predicted": st.column_config.NumberColumn(
        "predicted",
        format="percent",
        help="Mean predicted purchase probability in the bin (if they order).",
    ),
    "fraction_positive": st.column_config.NumberColumn(
        "bought", format="percent", help="Share of the bin's pairs that were bought."
    ),
}


def shown_columns(columns: list[str], shown: tuple[str, ...]) -> list[str]:
    """The ``column_order`` of a table: ``model`` first, then the columns named in ``shown``
    or whose family (the name before ``@`` or `` (``) is, in the order of ``shown``."""
    family = {c: c.split("@")[0].split(" (")[0] for c in columns}
    return ["model"] + [
        c for want in shown for c in columns if c != "model" and want in (c, family[c])
    ]


def accuracy_columns(columns: list[str], currency: str) -> dict[str, Any]:
    """``column_config`` of the accuracy table: plain labels without " @10" (the heading
    says k). Money says its currency; without a known one, the header says only what it is
    and the hover help says the currency is not given (a header of 40 characters made the
    table scroll sideways at 1280 px)."""
    from ui.glossary import metric_columns

    config = metric_columns(columns, currency=currency, with_k=False)
    if not currency:
        for column in columns:
            if column.split("@")[0] in ("revenue", "revenue_total") and column in config:
                label = "revenue per shopper" if column.startswith("revenue@") else "revenue, all"
                config[column] = st.column_config.NumberColumn(
                    label,
                    format="accounting",
                    help=(config[column].get("help") or "")
                    + " In the log's own currency (not given).",
                )
    return config


def selection_columns(k: int) -> dict[str, Any]:
    """``column_config`` of the model selection table: short plain headers with units."""
    return {
        f"quality (ndcg@{k})": st.column_config.NumberColumn(
            "NDCG", format="%.4f", help=f"Ranking quality of the top-{k} lists (0 to 1)."
        ),
        "95% interval": st.column_config.TextColumn(
            "95% interval", help="Bootstrap interval of NDCG over the test shoppers."
        ),
        "fit time (s)": st.column_config.NumberColumn("fit (s)", format="%.2f"),
        "latency (ms per shopper)": st.column_config.NumberColumn(
            "ms / shopper", format="%.3f", help="Time to score one shopper's list."
        ),
        "training memory (MB)": st.column_config.NumberColumn(
            "memory (MB)", format="%.0f", help="Peak memory of the fit, in megabytes."
        ),
        "size on disk (MB)": st.column_config.NumberColumn(
            "disk (MB)", format="%.2f", help="Size of the saved model, in megabytes."
        ),
    }


def folds_frame(result: EvaluationResult, metric: str) -> pd.DataFrame:
    """``fold, model, <metric>``: one row per model and rolling-origin fold (empty without
    folds), for the per-fold chart."""
    from recsys_core.evaluation.result import fold_label

    rows = [
        {"fold": fold_label(fold), "model": name, metric: values.get(metric)}
        for fold in result.folds
        for name, values in fold["models"].items()
    ]
    return pd.DataFrame(rows, columns=["fold", "model", metric])


def interval_text(interval: list[float] | None, digits: int = 4) -> str:
    """``[low, high]`` of a bootstrap interval as text ("" when there is none)."""
    if not interval or any(v is None or not np.isfinite(v) for v in interval):
        return ""
    return f"[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def comparison_lines(result: EvaluationResult) -> list[str]:
    """Plain lines for the page: the ranker / best single-stage ratio and skipped models."""
    lines = []
    ratio = result.comparisons.get("ranker_vs_best_single_stage")
    if ratio:
        lines.append(
            f"Ranker / best single-stage ({ratio['best_single_stage']}) {ratio['metric']}: "
            f"{ratio['ratio']:.3f}x, 95% interval {interval_text(ratio['ci95'], 3)} "
            "(paired bootstrap over test shoppers)."
        )
    lines += [f"Not evaluated: {name} ({why})." for name, why in result.skipped.items()]
    return lines


def overlap_table(result: EvaluationResult) -> pd.DataFrame:
    """Pairwise Jaccard overlap of the models' lists as a square table (1 on the diagonal)."""
    names = list(result.models)
    table = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for pair, value in result.overlap.items():
        a, _, b = pair.partition("~")
        if a in table.index and b in table.columns:
            table.loc[a, b] = table.loc[b, a] = value
    return table


def headline_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """The recorded headline metrics (a manifest's ``metrics``) as one row per model."""
    models = metrics.get("models") or {}
    if not models:
        return pd.DataFrame()
    k = metrics.get("k", 10)
    wanted = [f"ndcg@{k}", f"precision@{k}", f"recall@{k}", f"hit_rate@{k}", f"coverage@{k}"]
    frame = pd.DataFrame(models).T
    cols = [c for c in wanted if c in frame.columns]
    return frame[cols].astype(float).rename_axis("model").reset_index()


def report_module() -> Any | None:
    """:mod:`recsys_core.reporting` when installed, else ``None`` (export not available yet)."""
    try:
        import recsys_core.reporting as reporting
    except ImportError:
        return None
    return reporting


def build_report(result: EvaluationResult, dataset: Dataset, config: EvaluationConfig) -> Any:
    """The report of an evaluation already run (SHAP parts when the ranker was evaluated)."""
    reporting = report_module()
    if reporting is None:
        raise ImportError("recsys_core.reporting")
    from recsys_core.reporting.explanations import ranker_explanations

    explained = ranker_explanations(dataset, config, result)
    return reporting.ReportData.from_evaluation(
        result,
        shap_importance=explained.importance,
        examples=explained.examples,
        dataset_info=reporting.describe_dataset(dataset),
        unavailable=explained.unavailable,
    )


#: Session-state name of the last Tune result of this session.
TUNE_RESULT = "lab_tune_result"
#: Widget keys of the settings form, cleared after a search so it shows the new settings.
FORM_KEYS: tuple[str, ...] = (
    "lab_als_factors",
    "lab_als_reg",
    "lab_als_alpha",
    "lab_als_iter",
    "lab_knn_k",
    "lab_knn_w",
    "lab_bpr_factors",
)


def trials_table(records: list[Any], k: int = 10) -> pd.DataFrame:
    """The search's trials so far (:class:`recsys_core.tuning.search.TrialRecord`), one row
    each, with the best NDCG reached up to that trial."""
    rows = []
    best = np.nan
    for i, t in enumerate(records):
        if t.ndcg is not None:
            best = t.ndcg if np.isnan(best) else max(best, t.ndcg)
        rows.append(
            {
                "#": i + 1,
                "model": t.model,
                "state": t.state,
                f"ndcg@{k}": t.ndcg,
                "best so far": best,
                "seconds": round(t.seconds, 2),
                "already-bought removed": t.filter_seen,
                "settings": ", ".join(
                    f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"
                    for name, value in t.params.items()
                ),
            }
        )
    return pd.DataFrame(rows)


def trials_figure(table_frame: pd.DataFrame, k: int = 10) -> Any:
    """Each trial's validation NDCG (dots by model; pruned trials at the bottom) and the best
    so far (a step line), as a plotly figure."""
    import plotly.graph_objects as go

    fig = go.Figure()
    metric = f"ndcg@{k}"
    if len(table_frame):
        for model, part in table_frame.groupby("model", sort=False):
            done = part[part["state"] == "complete"]
            fig.add_trace(
                go.Scatter(
                    x=done["#"],
                    y=done[metric],
                    mode="markers",
                    name=str(model),
                    hovertext=done["settings"],
                )
            )
            pruned = part[part["state"] != "complete"]
            if len(pruned):
                fig.add_trace(
                    go.Scatter(
                        x=pruned["#"],
                        y=np.zeros(len(pruned)),
                        mode="markers",
                        marker={"symbol": "x", "color": "#999"},
                        name=f"{model} pruned",
                        hovertext=pruned["settings"],
                    )
                )
        fig.add_trace(
            go.Scatter(
                x=table_frame["#"],
                y=table_frame["best so far"],
                mode="lines",
                line={"shape": "hv", "color": "#2e8b57"},
                name="best so far",
            )
        )
    fig.update_layout(
        title=f"Validation NDCG@{k} per trial",
        xaxis_title="trial",
        yaxis_title=f"NDCG@{k}",
        height=340,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def tune_summary(result: Any) -> pd.DataFrame:
    """Validation NDCG of popularity, the defaults and the tuned settings per model."""
    rows = [
        {
            "model": name,
            "popularity": result.popularity_ndcg,
            "defaults": result.default_ndcg.get(name, np.nan),
            "tuned": best,
            "trials": sum(1 for t in result.trials if t.model == name),
        }
        for name, best in result.best_ndcg.items()
    ]
    return pd.DataFrame(rows)
