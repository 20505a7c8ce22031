"""Report sections written for the shop: the plain-language opening, segments, order model.

Kept apart from :mod:`recsys_core.reporting.content` (the engineer's sections) so the two
grow without stepping on each other; :func:`recsys_core.reporting.content.build_sections`
places these where they belong.
"""

from __future__ import annotations

from typing import Any

from recsys_core.business import currency_symbol, format_money
from recsys_core.errors import ConfigError
from recsys_core.models import model_class
from recsys_core.models.registry import labels
from recsys_core.reporting.data import ReportData
from recsys_core.reporting.document import Block, Section, Table, Text, key_value_table
from recsys_core.reporting.formatting import format_value

#: Order-model metrics, with their names in the report.
ORDER_METRICS: tuple[tuple[str, str], ...] = (
    ("auc", "AUC"),
    ("logloss", "log loss"),
    ("brier", "Brier score"),
    ("ece", "ECE"),
    ("shoppers", "shoppers scored"),
    ("order_rate", "share who ordered in the test period"),
    ("mean_predicted", "mean predicted order probability"),
)


def order_model_section(data: ReportData) -> Section | None:
    """How well the shopper-level order probability is ranked and calibrated (or ``None``)."""
    order = data.evaluation.get("order_classifier") or {}
    if not order:
        return None
    pairs: list[tuple[str, object]] = []
    for key, label in ORDER_METRICS:
        value = order.get(key)
        if value is None:
            continue
        pairs.append((label, int(value) if key == "shoppers" else value))
    blocks: list[Block] = [
        Text(
            "The purchase probability is conditional: the chance the item is in the shopper's "
            "order if they place one in the next period. The order model gives the chance "
            "that they order at all (LightGBM on recency, frequency, spend and activity before "
            "the cutoff, calibrated). The overall chance of a purchase is the product: e.g. "
            "orders 4 %, item in the order 36 %, overall 1.4 %. It is scored on every shopper "
            f"with history before the cutoff (AUC {format_value(order.get('auc'))}, ECE "
            f"{format_value(order.get('ece'))})."
        ),
        key_value_table("Order model (does the shopper order at all?)", pairs),
    ]
    return Section("order-model", "Order model: will the shopper order at all?", blocks)


#: Model names in a product manager's words.
MODEL_WORDS: dict[str, str] = dict(labels())


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _interval(entry: dict[str, Any], metric: str, percent: bool) -> str:
    """`` (95 % interval 84-89 %)`` from the entry's ``ci95`` when there is one."""
    bounds = (entry.get("ci95") or {}).get(metric)
    if not bounds or len(bounds) != 2:
        return ""
    low, high = (_number(b) for b in bounds)
    if low is None or high is None:
        return ""
    if percent:
        return f" (95 % interval {low:.0%} to {high:.0%})"
    return f" (95 % interval {low:.3f} to {high:.3f})"


def _overlaps(a: dict[str, Any], b: dict[str, Any], metric: str) -> bool | None:
    """Whether two models' 95 % intervals of ``metric`` overlap (``None``: no intervals)."""
    ia = (a.get("ci95") or {}).get(metric)
    ib = (b.get("ci95") or {}).get(metric)
    if not ia or not ib:
        return None
    return bool(float(ia[0]) <= float(ib[1]) and float(ib[0]) <= float(ia[1]))


def plain_summary_section(data: ReportData) -> Section | None:
    """The opening a product manager can forward: what to ship, why in shop terms, caveats."""
    ev = data.evaluation
    models: dict[str, dict[str, Any]] = ev.get("models") or {}
    k = ev.get("k", 10)
    ndcg = f"ndcg@{k}"
    scored = [(n, _number(e.get(ndcg))) for n, e in models.items()]
    ranked = sorted(((n, v) for n, v in scored if v is not None), key=lambda p: -p[1])
    if not ranked:
        return None
    currency = currency_symbol(str(ev.get("dataset", "")))
    best, best_ndcg = ranked[0]
    entry = models[best]
    split = ev.get("split") or {}
    lines: list[Block] = []
    lines.append(
        Text(f"Recommendation: ship {MODEL_WORDS.get(best, best)}.", "ok"),
    )
    hit = _number(entry.get(f"hit_rate@{k}"))
    if hit is not None:
        lines.append(
            Text(
                f"For {hit:.0%} of the test shoppers at least one of the {k} suggestions was "
                f"bought in the next {_days_words(split)}"
                f"{_interval(entry, f'hit_rate@{k}', True)}."
            )
        )
    revenue = _number(entry.get(f"revenue@{k}"))
    if revenue is not None:
        lines.append(
            Text(
                f"These lists hold {format_money(revenue, currency)} of what shoppers went on "
                f"to buy (revenue per shopper @{k}, see the comparison table for how it is "
                "counted)."
            )
        )
    if len(ranked) > 1:
        runner, runner_ndcg = ranked[1]
        gain = best_ndcg / runner_ndcg - 1 if runner_ndcg else float("nan")
        runner_hit = _number(models[runner].get(f"hit_rate@{k}"))
        text = (
            f"It ranks what shoppers buy higher than the next best, "
            f"{MODEL_WORDS.get(runner, runner)}: ranking quality (NDCG@{k}) {best_ndcg:.3f} "
            f"against {runner_ndcg:.3f} ({gain:+.0%})"
            f"{_interval(entry, ndcg, False)}"
        )
        if runner_hit is not None and hit is not None:
            text += f"; at least one suggestion bought: {hit:.0%} against {runner_hit:.0%}"
        lines.append(Text(text + "."))
        overlap = _overlaps(entry, models[runner], ndcg)
        if overlap:
            lines.append(
                Text(
                    "The two models' 95 % intervals overlap: the difference is within the "
                    "uncertainty of one test period; prefer the cheaper one if cost matters.",
                    "warning",
                )
            )
    classifier = ev.get("classifier") or {}
    ece = _number(classifier.get("ece"))
    if _scores_are_probabilities(best) and ece is not None:
        lines.append(
            Text(
                "Its purchase probabilities can be read as chances: predicted and observed "
                f"purchase rates differ by {ece * 100:.1f} points on average (ECE). They are "
                "conditional on the shopper ordering in the period."
            )
        )
    order = ev.get("order_classifier") or {}
    if order:
        lines.append(
            Text(
                "Whether a shopper orders at all is a separate model: AUC "
                f"{format_value(order.get('auc'), 3)}; {_number(order.get('order_rate')) or 0:.0%} "
                "of the known shoppers ordered in the test period. The overall chance of a "
                "purchase is that chance times the item's probability."
            )
        )
    caveats = [
        f"Measured on one test period ({_period_words(split)}), so seasonality matters",
        f"test shoppers ({format_value(split.get('test_users'))}) are those who had bought "
        "before and bought again in that period; shoppers without history are not counted",
        "repurchases count as hits",
    ]
    lines.append(Text("Caveats: " + "; ".join(caveats) + ".", "muted"))
    return Section("plain-summary", "In short (for the product team)", lines)


def _days_words(split: dict[str, Any]) -> str:
    days = _number(split.get("test_days"))
    return f"{days:g} days" if days else "test period"


def _period_words(split: dict[str, Any]) -> str:
    cutoff = split.get("cutoff")
    if split.get("method") == "temporal" and cutoff:
        return f"from {str(cutoff)[:10]}, {_days_words(split)}"
    return "a seeded random hold-out: no dates"


def segments_section(data: ReportData) -> Section | None:
    """Ranking quality by shopper segment (new vs returning, light vs heavy, country)."""
    records = data.evaluation.get("segments") or []
    if not records:
        return None
    k = data.evaluation.get("k", 10)
    metric = f"ndcg@{k}"
    models = list(dict.fromkeys(str(r["model"]) for r in records))
    names = {"tenure": "new vs returning", "volume": "light vs heavy buyers", "country": "country"}
    blocks: list[Block] = [
        Text(
            f"NDCG@{k} of each model within shopper segments, from each test shopper's events "
            "before the test period: new = first event less than 90 days before it; heavy = "
            "the 20 % of buyers with the most orders; countries beyond the 5 largest are "
            "'other'."
        )
    ]
    for kind, title in names.items():
        rows_of = [r for r in records if r["segment"] == kind]
        if not rows_of:
            continue
        values = list(dict.fromkeys(str(r["value"]) for r in rows_of))
        rows = []
        for value in values:
            cells = {str(r["model"]): r.get(metric) for r in rows_of if str(r["value"]) == value}
            shoppers = next(r["shoppers"] for r in rows_of if str(r["value"]) == value)
            rows.append(
                [value, format_value(int(shoppers))] + [format_value(cells.get(m)) for m in models]
            )
        blocks.append(
            Table(
                f"By {title} (NDCG@{k})",
                [title, "shoppers", *models],
                rows,
                [False, True, *[True] * len(models)],
            )
        )
    return Section("segments", "By shopper segment", blocks)


def _scores_are_probabilities(model: str) -> bool:
    """Whether the model's scores are calibrated probabilities (False for an unknown name,
    e.g. from a result saved by another version)."""
    try:
        return model_class(model).scores_are_probabilities
    except (ConfigError, ImportError):
        return False
