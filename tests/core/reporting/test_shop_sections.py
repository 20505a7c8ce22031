"""The report's shop-facing sections: plain-language opening, segments, order model."""

from __future__ import annotations

from recsys_core.reporting import ReportData, render_html
from recsys_core.reporting.content import Table, Text, build_sections

EVALUATION = {
    "dataset": "online-retail",
    "k": 10,
    "split": {
        "method": "temporal",
        "cutoff": "2011-11-09 00:00:00",
        "test_users": 1395,
        "test_days": 30,
    },
    "models": {
        "itemknn": {
            "ndcg@10": 0.3177,
            "hit_rate@10": 0.8029,
            "revenue@10": 51234.5,
            "ci95": {"ndcg@10": [0.30, 0.33]},
        },
        "ranker": {
            "ndcg@10": 0.3974,
            "hit_rate@10": 0.8681,
            "revenue@10": 70123.25,
            "ci95": {"ndcg@10": [0.38, 0.41], "hit_rate@10": [0.85, 0.89]},
        },
    },
    "classifier": {"auc": 0.8385, "ece": 0.0081},
    "order_classifier": {"auc": 0.7408, "ece": 0.0441, "shoppers": 4063.0, "order_rate": 0.34},
    "segments": [
        {"model": "ranker", "segment": "tenure", "value": "new", "shoppers": 100, "ndcg@10": 0.2},
        {"model": "itemknn", "segment": "tenure", "value": "new", "shoppers": 100, "ndcg@10": 0.1},
        {
            "model": "ranker",
            "segment": "tenure",
            "value": "returning",
            "shoppers": 1295,
            "ndcg@10": 0.41,
        },
        {
            "model": "itemknn",
            "segment": "tenure",
            "value": "returning",
            "shoppers": 1295,
            "ndcg@10": 0.33,
        },
    ],
}


def _texts(section) -> str:
    return " ".join(b.text for b in section.blocks if isinstance(b, Text))


def test_the_report_opens_with_a_plain_summary_in_shop_terms() -> None:
    sections = build_sections(ReportData(evaluation=EVALUATION))
    first = sections[0]
    assert first.anchor == "plain-summary"
    text = _texts(first)
    assert "ship the two-stage purchase model" in text
    assert "For 87% of the test shoppers" in text.replace(" %", "%")
    assert "(95 % interval 85% to 89%)" in text
    assert "£70,123.25" in text
    assert "+25%" in text and "item-kNN" in text
    assert "Caveats:" in text and "2011-11-09" in text and "1,395" in text
    assert "overlap" not in text  # the intervals do not overlap here


def test_segments_and_order_model_sections() -> None:
    sections = {s.anchor: s for s in build_sections(ReportData(evaluation=EVALUATION))}
    tables = [b for b in sections["segments"].blocks if isinstance(b, Table)]
    assert tables[0].header == ["new vs returning", "shoppers", "ranker", "itemknn"]
    assert tables[0].rows[0] == ["new", "100", "0.2000", "0.1000"]
    assert "AUC 0.7408" in _texts(sections["order-model"])
    html = render_html(ReportData(evaluation=EVALUATION))
    assert html.index("In short (for the product team)") < html.index("By shopper segment")


def test_overlapping_intervals_are_called_out() -> None:
    close = {**EVALUATION, "models": {**EVALUATION["models"]}}
    close["models"]["itemknn"] = {**close["models"]["itemknn"], "ci95": {"ndcg@10": [0.3, 0.39]}}
    text = _texts(build_sections(ReportData(evaluation=close))[0])
    assert "within the uncertainty" in text
