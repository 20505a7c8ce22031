"""Column names and event vocabulary, defined once (RecTools' ``Columns`` habit)."""

from __future__ import annotations

from typing import Final


class Columns:
    """Canonical column names of event logs, catalogs and recommendation frames."""

    USER: Final = "user_id"
    ITEM: Final = "item_id"
    EVENT: Final = "event"
    TIMESTAMP: Final = "timestamp"
    QUANTITY: Final = "quantity"
    PRICE: Final = "price"

    TITLE: Final = "title"
    CATEGORY: Final = "category"
    BRAND: Final = "brand"

    SCORE: Final = "score"
    RANK: Final = "rank"


#: The behaviours the lab understands, in funnel order.
EVENT_TYPES: Final[tuple[str, ...]] = ("view", "cart", "favorite", "purchase")

#: Columns every event log must have.
REQUIRED_EVENT_COLUMNS: Final[tuple[str, ...]] = (Columns.USER, Columns.ITEM, Columns.EVENT)

#: Columns an event log may have.
OPTIONAL_EVENT_COLUMNS: Final[tuple[str, ...]] = (
    Columns.TIMESTAMP,
    Columns.QUANTITY,
    Columns.PRICE,
)

#: Columns of a recommendation frame, in order.
RECO_COLUMNS: Final[tuple[str, ...]] = (Columns.USER, Columns.ITEM, Columns.SCORE, Columns.RANK)
