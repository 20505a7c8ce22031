"""Report sections written for the shop: the order model (and, later, the plain summary).

Kept apart from :mod:`recsys_core.reporting.content` (the engineer's sections) so the two
grow without stepping on each other; :func:`recsys_core.reporting.content.build_sections`
places these where they belong.
"""

from __future__ import annotations

from recsys_core.reporting.content import Block, Section, Text, key_value_table
from recsys_core.reporting.data import ReportData
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
