"""HTML, PDF and JSON reports of one small, seeded evaluation: same numbers, offline HTML."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pypdf
import pytest

from recsys_core.data.demo_store import generate_demo_store
from recsys_core.data.schema import Dataset
from recsys_core.errors import ConfigError
from recsys_core.evaluation import EvaluationConfig, EvaluationResult, evaluate
from recsys_core.metrics import reliability_table
from recsys_core.reporting import (
    ReportData,
    describe_dataset,
    display_user_id,
    format_for_path,
    format_value,
    load_baseline,
    pdf_bytes,
    render_html,
    render_json,
    render_pdf,
    report_bytes,
)
from recsys_core.reporting.content import metric_columns
from recsys_core.reporting.explanations import (
    build_examples,
    ranker_explanations,
    reasons_of,
    select_example_users,
)
from recsys_core.reporting.formatting import (
    MONEY_METRICS,
    format_interval,
    format_money,
    metric_name,
)

MODELS = ["popularity", "itemknn", "als"]
TABLE_HEADINGS = (
    "Model comparison: ranking accuracy",
    "Model comparison: beyond accuracy and cost",
    "Evaluation protocol",
    "Library versions",
)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    events, catalog = generate_demo_store(n_users=300, n_items=150, n_events=20_000, seed=1)
    return Dataset("demo-small", events, catalog)


@pytest.fixture(scope="module")
def result(dataset: Dataset) -> EvaluationResult:
    return evaluate(dataset, EvaluationConfig(models=[*MODELS, "ranker"], k=10, seed=7))


@pytest.fixture(scope="module")
def plain(result: EvaluationResult, dataset: Dataset) -> ReportData:
    """A report without the optional parts (no SHAP, no examples, no classifier)."""
    evaluation = result.to_json()
    evaluation["classifier"] = None
    evaluation["overall_probability"] = None
    evaluation.pop("reliability", None)
    evaluation.pop("reliability_quantile", None)
    return ReportData.from_evaluation(
        evaluation,
        dataset_info=describe_dataset(dataset),
        unavailable={"shap": "no ranker here", "examples": "no ranker here"},
    )


def _fake_classifier(evaluation: dict[str, Any]) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    prob = rng.uniform(size=2_000)
    y = (rng.uniform(size=2_000) < prob).astype(int)
    evaluation["classifier"] = {"auc": 0.8312, "logloss": 0.4123, "brier": 0.1234, "ece": 0.0091}
    evaluation["reliability"] = reliability_table(y, prob).to_dict(orient="records")
    return evaluation


@pytest.fixture(scope="module")
def full(result: EvaluationResult, dataset: Dataset) -> ReportData:
    """A report with every optional part filled (as the ranker and explain would)."""
    importance = pd.DataFrame(
        {
            "feature": ["n_purchase", "days_since_view", "als_score"],
            "label": ["times bought this item", "days since last viewed", "ALS score"],
            "mean_abs_shap": [0.81234, 0.41, 0.1],
        }
    )
    examples = [
        {
            "user_id": "U007",
            "model": "ranker",
            "items": [
                {
                    "item_id": "P001",
                    "title": "Studio Ceramic Chef's Knife <b>",
                    "purchase_probability": 0.43219,
                    "score": 1.5,
                    "rank": 1,
                    "reasons": [
                        "because you bought Arctic Vanilla Body Lotion",
                        "viewed it 2 days ago",
                    ],
                }
            ],
        }
    ]
    return ReportData.from_evaluation(
        _fake_classifier(result.to_json()),
        shap_importance=importance,
        examples=examples,
        dataset_info=describe_dataset(dataset),
    )


class _Collector(HTMLParser):
    """Links, script bodies and tables (as lists of rows of cell texts) of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []
        self.scripts: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._in_script = False
        self._caption: str | None = None
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href"):
                self.links.append((tag, name, value or ""))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        elif tag == "table":
            self._rows = []
        elif tag == "caption":
            self._text = []
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        elif tag == "caption":
            self._caption = "".join(self._text)
        elif tag in ("td", "th") and self._cell is not None and self._rows is not None:
            self._rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table" and self._rows is not None:
            self.tables[self._caption or f"table {len(self.tables)}"] = self._rows
            self._rows = None

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        elif self._cell is not None:
            self._cell.append(data)
        else:
            self._text.append(data)


def _parse(html: str) -> _Collector:
    parser = _Collector()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def full_html(full: ReportData) -> _Collector:
    return _parse(render_html(full))


@pytest.fixture(scope="module")
def full_pdf_text(full: ReportData) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf_bytes(full)))
    return "\n".join(page.extract_text() for page in reader.pages)


def _cell(value: object, column: str) -> str:
    """A model table's cell as the reports show it (money with separators, no currency on
    the demo store)."""
    if column.split("@")[0] in MONEY_METRICS:
        return format_money(value, "")
    return format_value(value)


def _expected_model_rows(result: EvaluationResult, columns: list[str]) -> list[list[str]]:
    evaluation = result.to_json()["models"]
    return [[name, *(_cell(evaluation[name][c], c) for c in columns)] for name in result.models]


def test_html_links_nothing_outside_the_file(full_html: _Collector) -> None:
    outside = [link for link in full_html.links if not link[2].startswith(("#", "data:"))]
    assert outside == []
    assert any(link[2] == "#models" for link in full_html.links)  # the table of contents


def test_html_inlines_plotly_once_for_several_charts(full: ReportData) -> None:
    html = render_html(full)
    bundles = [s for s in _parse(html).scripts if len(s) > 1_000_000]
    assert len(bundles) == 1
    assert len(re.findall(r"plotly\.js v\d", html)) == 1
    # bars, scatter, calibration with equal-width and with equal-mass bins, SHAP, and the
    # overall probability's two reliability charts (recsys_core.reporting.folds)
    assert html.count('class="plotly-graph-div"') == 7


def test_html_tables_hold_every_metric_as_in_the_result(
    result: EvaluationResult, full_html: _Collector
) -> None:
    accuracy, beyond = metric_columns(result.to_json())
    assert {"ndcg@10", "precision@10"} <= set(accuracy)
    assert {"coverage@10", "novelty@10", "fit_seconds"} <= set(beyond)
    for title, columns in (
        ("Model comparison: ranking accuracy", accuracy),
        ("Model comparison: beyond accuracy and cost", beyond),
    ):
        rows = full_html.tables[title]
        assert rows[0] == ["model", *(metric_name(c) for c in columns)]
        assert rows[1:] == _expected_model_rows(result, columns)
    # every metric the evaluation measured is shown
    for res in result.models.values():
        assert set(res.metrics) <= set(accuracy) | set(beyond)


def test_html_protocol_and_reproducibility(result: EvaluationResult, full_html: _Collector) -> None:
    protocol = dict(map(tuple, full_html.tables["Evaluation protocol"][1:]))
    assert protocol["test users"] == format_value(result.split["test_users"])
    assert protocol["cutoff (test period start)"] == result.split["cutoff"]
    assert "purchase" in protocol["relevant items"]
    assert "removed" in protocol['"new items only" variant']
    run = dict(map(tuple, full_html.tables["Run"][1:]))
    assert run["data checksum (SHA-256)"] == result.provenance["data_sha256"]
    assert run["seed"] == "7"
    versions = dict(map(tuple, full_html.tables["Library versions"][1:]))
    assert versions == result.provenance["library_versions"]


def test_html_optional_parts_when_given(full_html: _Collector) -> None:
    classifier = dict(map(tuple, full_html.tables["Purchase classifier"][1:]))
    assert classifier["AUC"] == "0.8312"
    assert classifier["ECE (10 equal-width bins)"] == "0.0091"
    shap_rows = full_html.tables["Global SHAP importance"]
    assert shap_rows[1] == ["n_purchase", "times bought this item", "0.8123"]
    shopper = full_html.tables[f"Shopper {display_user_id('U007')} (ranker)"]
    assert shopper[1][2] == "Studio Ceramic Chef's Knife <b>"  # escaped, shown as text
    assert shopper[1][3] == "0.4322"
    assert "viewed it 2 days ago" in shopper[1][5]
    assert "Reliability table (10 equal-width bins)" in full_html.tables
    assert "Reliability table (10 equal-mass bins)" in full_html.tables


def test_html_says_what_is_not_available(plain: ReportData) -> None:
    html = render_html(plain)
    assert "Global SHAP importance of the purchase model: not available (no ranker here)" in html
    assert "Example recommendations: not available" in html
    assert "No baseline given" in html
    assert html.count('class="plotly-graph-div"') == 2


def test_pdf_has_the_headings_and_the_same_numbers(
    result: EvaluationResult, full_pdf_text: str
) -> None:
    text = " ".join(full_pdf_text.split())
    for heading in (*TABLE_HEADINGS, "Global SHAP importance", "Reliability table"):
        assert heading in text
    tokens = set(text.split())
    evaluation = result.to_json()["models"]
    for name in result.models:
        for metric in (*result.models[name].metrics, "fit_seconds"):
            assert _cell(evaluation[name][metric], metric) in tokens, (name, metric)
    assert result.provenance["data_sha256"] in tokens


def test_pdf_repeats_the_header_of_a_table_that_spans_pages(
    result: EvaluationResult, tmp_path: Path
) -> None:
    n = 160
    importance = pd.DataFrame(
        {
            "feature": [f"feature_{i:03d}" for i in range(n)],
            "label": [f"a behaviour feature number {i}" for i in range(n)],
            "mean_abs_shap": np.linspace(1, 0.001, n),
        }
    )
    data = ReportData.from_evaluation(result, shap_importance=importance)
    path = render_pdf(data, tmp_path / "r.pdf")
    pages = [page.extract_text() for page in pypdf.PdfReader(path).pages]
    with_rows = [p for p in pages if "feature_" in p and "a behaviour feature" in p]
    assert len(with_rows) >= 2
    assert all("mean |SHAP|" in p for p in with_rows)  # the header on every page
    joined = "\n".join(pages)
    assert all(f"feature_{i:03d}" in joined for i in range(n))


def test_json_is_the_evaluate_json_plus_a_report_block(
    result: EvaluationResult, full: ReportData, tmp_path: Path
) -> None:
    payload = json.loads(report_bytes(full, "json"))
    evaluated = result.to_json()
    assert payload["models"] == evaluated["models"]
    assert payload["split"] == evaluated["split"]
    assert payload["provenance"] == evaluated["provenance"]
    block = payload["report"]
    assert block["format_version"] == 1 and block["baseline"] is None
    assert block["shap_importance"][0] == {
        "feature": "n_purchase",
        "label": "times bought this item",
        "mean_abs_shap": 0.81234,
    }
    assert block["examples"][0]["user_id"] == display_user_id("U007")
    assert block["dataset_description"]["events"] == 20_000
    # a report JSON serves as a later report's baseline
    path = tmp_path / "old.json"
    path.write_bytes(report_bytes(full, "json"))
    assert load_baseline(path)["models"] == evaluated["models"]


def test_json_without_optional_parts(plain: ReportData) -> None:
    block = render_json(plain)["report"]
    assert block["shap_importance"] is None and block["examples"] is None
    assert block["unavailable"]["shap"] == "no ranker here"


def test_a_report_json_renders_again_with_the_same_content(full: ReportData) -> None:
    saved = json.loads(report_bytes(full, "json"))
    again = ReportData.from_evaluation(saved)
    assert "report" not in again.evaluation
    again_json = render_json(again)
    for key in ("shap_importance", "examples", "dataset_description", "unavailable"):
        assert again_json["report"][key] == saved["report"][key]
    tables = _parse(render_html(again)).tables
    original = _parse(render_html(full)).tables
    assert tables.keys() == original.keys()
    assert (
        tables["Model comparison: ranking accuracy"]
        == original["Model comparison: ranking accuracy"]
    )


@pytest.mark.parametrize(
    ("name", "fmt"), [("a.html", "html"), ("b.HTM", "html"), ("c.pdf", "pdf"), ("d.json", "json")]
)
def test_format_follows_the_extension(name: str, fmt: str) -> None:
    assert format_for_path(name) == fmt


def test_unknown_extension_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"\.html, FILE\.pdf or FILE\.json"):
        format_for_path("report.docx")
    with pytest.raises(ConfigError):
        report_bytes(ReportData(evaluation={"models": {}}), "docx")


def test_explanations_missing_without_the_ranker(dataset: Dataset) -> None:
    res = evaluate(dataset, EvaluationConfig(models=["popularity"], k=5))
    explained = ranker_explanations(dataset, EvaluationConfig(models=["popularity"]), res)
    assert explained.importance is None and explained.examples is None
    assert "ranker" in explained.unavailable["shap"]


def test_examples_from_recommendations_and_explanations(
    result: EvaluationResult, dataset: Dataset
) -> None:
    reco = result.models["itemknn"].recommendations
    users = select_example_users(reco, 3, seed=1)
    assert users == select_example_users(reco, 3, seed=1) and len(set(users)) == 3

    def explain(user: str, item: str) -> dict[str, Any]:
        return {
            "probability": 0.25,
            "contributions": [
                {"feature": "n_view", "value": 3, "contribution": 0.2, "label": "viewed it 3x"},
                {"feature": "price", "value": 9.99, "contribution": 0.5},
                {"feature": "age", "value": 40, "contribution": -0.9},
            ],
            "because_you_bought": [{"item_id": "P002", "title": "Lotion", "contribution": 0.3}],
        }

    examples = build_examples(reco, dataset.catalog, users, explain, model="itemknn", n_items=4)
    assert [e["user_id"] for e in examples] == users
    first = examples[0]["items"]
    assert [i["rank"] for i in first] == [1, 2, 3, 4]
    catalog = dataset.catalog
    titles = dict(zip(catalog["item_id"].astype(str), catalog["title"], strict=True))
    assert first[0]["title"] == titles[first[0]["item_id"]]
    assert first[0]["purchase_probability"] == 0.25
    assert first[0]["reasons"] == [
        "because you bought Lotion",
        "price = 9.9900",
        "viewed it 3x",
    ]
    assert reasons_of({}) == []


def test_explanations_of_the_evaluated_ranker(result: EvaluationResult, dataset: Dataset) -> None:
    from recsys_core.ranking import FEATURE_NAMES

    config = EvaluationConfig(models=[*MODELS, "ranker"], seed=7)
    explained = ranker_explanations(dataset, config, result, n_examples=2)
    assert explained.unavailable == {}
    importance = explained.importance
    assert importance is not None and set(importance["feature"]) == set(FEATURE_NAMES)
    assert importance["mean_abs_shap"].is_monotonic_decreasing
    assert explained.examples is not None and len(explained.examples) == 2
    item = explained.examples[0]["items"][0]
    assert 0 <= item["purchase_probability"] <= 1 and item["reasons"]
    data = ReportData.from_evaluation(result, shap_importance=importance)
    assert data.shap_importance is not None


def test_reports_show_intervals_the_ranker_ratio_and_skipped_models(
    result: EvaluationResult, full: ReportData, full_html: _Collector
) -> None:
    k = result.k
    table = full_html.tables["95 % intervals (bootstrap over test shoppers)"]
    column = table[0].index(metric_name(f"ndcg@{k}"))
    rows = {row[0]: row for row in table[1:]}
    for name, res in result.models.items():
        low, high = res.ci95[f"ndcg@{k}"]
        assert rows[name][column] == format_interval(low, high)
    ratio = result.comparisons["ranker_vs_best_single_stage"]
    html = render_html(full)
    assert f"{ratio['ci95'][0]:.3f},\u00a0{ratio['ci95'][1]:.3f}" in html
    assert f"Paired differences in {metric_name(f'ndcg@{k}')}" in full_html.tables
    evaluation = dict(full.evaluation, skipped={"bpr": "a reason the log gave"})
    skipped = render_html(ReportData.from_evaluation(evaluation))
    assert "Not evaluated on this log: bpr (a reason the log gave)." in skipped


def test_pdf_reads_in_plain_words_with_money_and_unbroken_numbers(result: EvaluationResult) -> None:
    """Issue 24 (11): pages 2-10 showed raw keys (``arp@10``, ``fit_seconds``), amounts
    without £ and intervals broken mid-number ("[0.074 4, 0.08 70]", "popular ity")."""
    evaluation = result.to_json()
    evaluation["dataset"] = "online-retail"  # a dataset whose currency is known (£)
    data = ReportData.from_evaluation(evaluation)
    pages = [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf_bytes(data))).pages]
    text = "\n".join(pages)
    for raw in ("ndcg@10", "arp@10", "fit_seconds", "revenue_total@10", "hit_rate@10"):
        assert raw not in text, raw
    assert "ranking quality (NDCG) @10" in " ".join(text.split())
    revenue = evaluation["models"]["popularity"]["revenue_total@10"]
    assert format_money(revenue, "£") in text
    lines = text.splitlines()
    # every interval the report prints stays on one line, whole
    intervals = [
        format_interval(*bounds).replace("\u00a0", " ")
        for entry in evaluation["models"].values()
        for bounds in (entry.get("ci95") or {}).values()
    ]
    flat = [" ".join(line.split()) for line in lines]
    printed = [i for i in intervals if i.split()[0] in text]  # its first number is shown
    assert printed, "no interval in the PDF"
    for interval in printed:  # ... then the whole interval is on one line
        assert any(interval in line for line in flat), interval
    words = set(" ".join(text.split()).split())
    assert not ({"popular", "ity"} <= words)


def test_a_table_too_wide_for_the_page_is_cut_between_columns() -> None:
    from recsys_core.reporting.content import Table
    from recsys_core.reporting.pdf import split_columns

    header = ["model", *(f"a rather long metric name {i}" for i in range(12))]
    rows = [["popularity", *(f"[0.{i:04d},\u00a00.{i + 1:04d}]" for i in range(12))]]
    parts = split_columns(Table("Wide", header, rows, [False] + [True] * 12), 500.0)
    assert len(parts) > 1
    assert all(part.header[0] == "model" for part in parts)
    assert sum(len(part.header) - 1 for part in parts) == 12
