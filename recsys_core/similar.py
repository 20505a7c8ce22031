"""Similar items with k answers, labelled scores and support.

A model may return fewer than ``k`` neighbours (item-kNN keeps only its ``neighbours``
nearest items per item, 5 on Online Retail). :func:`similar_items_filled` fills the list up to
``k`` from the next source (:data:`FILL_ORDER`) and says so, labels each score by the model
that gave it (:data:`SCORE_LABELS`: the scales differ, an item-kNN co-purchase score of 1.5
million and an ALS cosine of 0.8 are not comparable) and adds each pair's **support**: how
many shoppers of the training log interacted with both items (bought both, on a
purchase-only log).

An item with no purchases yet (a **cold item**: in the catalog, unknown to the models) gets
its similar items from its title instead (:func:`similar_items_by_text`, source
:data:`TEXT_SOURCE`): text embeddings and n-grams learnt from the catalog
(:meth:`recsys_core.search.ProductSearch.similar_by_text`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_core.columns import Columns
from recsys_core.errors import ConfigError, RecsysError, UnknownItemError
from recsys_core.models.registry import all_specs

if TYPE_CHECKING:  # search imports scikit-learn (about a CPU second)
    from recsys_core.search import ProductSearch

#: What each model's similarity score is, in words (the registry's similarity labels).
SCORE_LABELS: Final[dict[str, str]] = {
    s.name: s.similarity_label for s in all_specs() if s.similarity_label is not None
}
#: Where a short list is filled from, per asked model (the first trained one with items).
FILL_ORDER: Final[dict[str, tuple[str, ...]]] = {
    s.name: s.similar_fill for s in all_specs() if s.similar_fill
}
SIMILAR_COLUMNS: Final = ("item_id", "score", "score_label", "source", "support", "rank")
#: The source of similar items found by title text (for items no model knows).
TEXT_SOURCE: Final = "title-text"
SCORE_LABELS[TEXT_SOURCE] = (
    "title similarity (TF-IDF, character n-gram and text-embedding cosines; the item has no "
    "purchases yet)"
)
#: The note of an answer found by title text.
TEXT_NOTE: Final = (
    "no model knows this item (no purchases yet): similar items by title text "
    f"(source {TEXT_SOURCE!r})"
)


def similar_items_by_text(search: ProductSearch, item_id: str, k: int) -> pd.DataFrame:
    """Up to ``k`` items similar to a cold item by its title, as :data:`SIMILAR_COLUMNS`.

    ``support`` is 0: no shopper has bought the cold item with anything.

    Raises
    ------
    UnknownItemError
        The item is not in the catalog either.
    """
    found = search.similar_by_text(str(item_id), k)
    if found.empty and str(item_id) not in set(search.catalog[Columns.ITEM]):  # canonical ids
        raise UnknownItemError(f"unknown item id {item_id!r}: it is not in the catalog")
    return pd.DataFrame(
        {
            "item_id": found["item_id"].to_numpy(),
            "score": found["relevance"].to_numpy(dtype=float),
            "score_label": SCORE_LABELS[TEXT_SOURCE],
            "source": TEXT_SOURCE,
            "support": np.zeros(len(found), dtype=np.int64),
            "rank": np.arange(1, len(found) + 1),
        }
    )


def support_counts(user_items: sp.spmatrix, item_row: int, rows: np.ndarray) -> np.ndarray:
    """Shoppers who interacted with item ``item_row`` and with each item of ``rows``."""
    matrix = sp.csc_matrix(user_items)
    shoppers = matrix[:, item_row].nonzero()[0]
    if not len(rows) or not len(shoppers):
        return np.zeros(len(rows), dtype=np.int64)
    both = matrix[shoppers][:, rows] > 0
    return np.asarray(both.sum(axis=0), dtype=np.int64).ravel()


def similar_items_filled(
    models: Mapping[str, Any], item_id: str, k: int, model: str
) -> tuple[pd.DataFrame, str | None]:
    """Up to ``k`` items similar to ``item_id``: ``model``'s, then filled from the next source.

    Returns
    -------
    (frame, note)
        ``frame`` has :data:`SIMILAR_COLUMNS` (``source`` is the model that gave the row,
        ``score_label`` what its score is); ``note`` says how the list was filled (``None``
        when ``model`` gave all ``k``).

    Raises
    ------
    ConfigError
        ``model`` is not trained.
    UnknownItemError
        ``model`` does not know the item.
    """
    if model not in models:
        raise ConfigError(f"model {model!r} is not trained; trained: {', '.join(models)}")
    item_id = str(item_id)
    parts = [models[model].similar_items([item_id], k).assign(source=model)]
    # the models' similar_items answer canonical ids (their IdMaps' ``str`` columns)
    have = set(parts[0]["similar_item_id"])
    filled: list[str] = []
    for name in FILL_ORDER.get(model, ()):
        if len(have) >= k:
            break
        if name not in models:
            continue
        try:
            extra = models[name].similar_items([item_id], k + len(have))
        except RecsysError:
            continue
        extra = extra[~extra["similar_item_id"].isin(have)].head(k - len(have))
        if extra.empty:
            continue
        parts.append(extra.assign(source=name))
        have.update(extra["similar_item_id"])
        filled.append(f"{len(extra)} from {name}")
    sim = pd.concat(parts, ignore_index=True).head(k)
    ids = sim["similar_item_id"].to_numpy()
    frame = pd.DataFrame(
        {
            "item_id": ids,
            "score": sim[Columns.SCORE].to_numpy(dtype=float),
            "score_label": [SCORE_LABELS.get(s, f"{s} score") for s in sim["source"]],
            "source": sim["source"].to_numpy(),
            "support": support_for(models, model, item_id, ids),
            "rank": np.arange(1, len(sim) + 1),
        }
    )
    note = None
    if filled:
        n_own = int((frame["source"] == model).sum())
        note = f"{model} has {n_own} similar items for this product; filled with " + ", ".join(
            filled
        )
    return frame, note


def support_for(
    models: Mapping[str, Any], model: str, item_id: str, ids: np.ndarray | list[str]
) -> np.ndarray:
    """Support from the training matrix of ``model`` (or of any model that has one)."""
    for name in (model, *models):
        engine = models[name]
        matrix = getattr(engine, "user_items_", None)
        items = getattr(engine, "items_", None)
        if matrix is None or items is None:
            continue
        row = int(items.to_internal([item_id])[0])
        if row < 0:
            continue
        rows = np.asarray(items.to_internal([str(i) for i in ids]), dtype=np.int64)
        out = np.zeros(len(ids), dtype=np.int64)
        known = rows >= 0
        out[known] = support_counts(matrix, row, rows[known])
        return out
    return np.zeros(len(ids), dtype=np.int64)
