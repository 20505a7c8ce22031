"""Do shoppers buy the same item again? The repeat-purchase rate and the "filter bought" lists.

When shoppers rarely re-buy (:data:`RARE_REPEAT_RATE`), an item they already bought is a wasted
slot in their list, so the scaled defaults leave bought items out (``filter_bought``). This is
narrower than ``filter_seen``, which also drops items the shopper only viewed — and a viewed
item is often the one a shopper comes back to buy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys_core.columns import Columns

#: Below this repeat-purchase rate shoppers "rarely re-buy": already-bought items are filtered.
RARE_REPEAT_RATE = 0.05
#: At most this many extra items are asked for to fill a list after bought items are removed.
MAX_EXTRA = 200


def pair_codes(events: pd.DataFrame) -> np.ndarray:
    """One integer per (user, item) pair of ``events`` (equal pairs get equal codes)."""
    users = pd.factorize(events[Columns.USER].astype(str))[0].astype(np.int64)
    items = pd.factorize(events[Columns.ITEM].astype(str))[0].astype(np.int64)
    return users * (int(items.max()) + 1 if len(items) else 1) + items


def repeat_purchase_rate(events: pd.DataFrame) -> float:
    """Share of bought (shopper, item) pairs that were bought on more than one occasion.

    An occasion is a distinct timestamp when the log has timestamps (several order lines of
    one item in one order count once), else a purchase row. ``nan`` without purchases.

    (Measured here: no shared repeat-detection function exists in
    :mod:`recsys_core.evaluation` or :mod:`recsys_core.metrics` yet.)
    """
    bought = events[(events[Columns.EVENT] == "purchase").to_numpy()]
    if bought.empty:
        return float("nan")
    frame = pd.DataFrame({"pair": pair_codes(bought)})
    if Columns.TIMESTAMP in bought.columns:
        frame["when"] = bought[Columns.TIMESTAMP].to_numpy()
        occasions = frame.drop_duplicates().groupby("pair").size()
    else:
        occasions = frame.groupby("pair").size()
    return float((occasions > 1).mean())


def bought_pairs(events: pd.DataFrame) -> pd.DataFrame:
    """Distinct ``user_id, item_id`` pairs (strings) with a purchase in ``events``."""
    bought = events[(events[Columns.EVENT] == "purchase").to_numpy()]
    return pd.DataFrame(
        {
            Columns.USER: bought[Columns.USER].astype(str).to_numpy(),
            Columns.ITEM: bought[Columns.ITEM].astype(str).to_numpy(),
        }
    ).drop_duplicates(ignore_index=True)


def recommend_lists(
    model: Any,
    users: Sequence[str],
    k: int,
    *,
    filter_bought: bool = False,
    bought: pd.DataFrame | None = None,
    filter_seen: bool = False,
) -> pd.DataFrame:
    """Top-``k`` lists of ``model`` for ``users``, without already-bought items if asked.

    With ``filter_bought`` the model is asked for ``k`` plus the most items any of these users
    bought (at most :data:`MAX_EXTRA` more), the user's ``bought`` pairs are removed and the
    ranks renumbered; a user who bought more than that may get fewer than ``k`` items.
    """
    if not filter_bought or bought is None or bought.empty or filter_seen:
        return model.recommend(list(users), k, filter_seen=filter_seen)
    wanted = pd.Index(pd.Series(list(users), dtype=object).astype(str))
    mine = bought[bought[Columns.USER].isin(wanted)]
    extra = int(mine.groupby(Columns.USER).size().max()) if len(mine) else 0
    reco = model.recommend(list(users), k + min(extra, MAX_EXTRA), filter_seen=False)
    if extra == 0:
        return reco
    keys = [Columns.USER, Columns.ITEM]
    left = pd.MultiIndex.from_arrays([reco[c].astype(str) for c in keys])
    drop = left.isin(pd.MultiIndex.from_frame(mine[keys]))
    reco = reco[~drop].copy()
    reco[Columns.RANK] = reco.groupby(Columns.USER, sort=False).cumcount() + 1
    return reco[reco[Columns.RANK] <= k].reset_index(drop=True)
