"""Settings scaled to a log, without a search ("scaled defaults").

``implicit``'s defaults (a few dozen factors, regularization 0.01, every event weighted alike)
are tuned for nobody. :func:`scaled_defaults` derives each setting from a count of the log
(:class:`~recsys_core.tuning.profile.LogProfile`):

* **event weights** from the funnel: a purchase weighs 5; a view, cart or favourite weighs
  5 x the share of (shopper, item) pairs with that event that were bought (its conversion
  rate), at least 0.1. A cart that is bought half the time counts about half a purchase; a
  view that leads to a purchase one time in fifty counts 0.1.
* **ALS factors** grow with the interactions per row and column: the nearest power of two to
  8 x cells / (shoppers + items), between 16 and 256 (Online Retail: 33 cells per
  shopper-or-item, 256 factors; a 500-shopper store: 17, 128).
* **ALS alpha** makes the mean confidence of an observed cell about 1:
  alpha = 1 / mean cell weight.
* **ALS regularization** grows with what one shopper's solve sees: 0.1 x mean items per
  shopper x alpha x mean cell weight (= 0.1 x mean items per shopper).
* **item-kNN**: BM25 weighting with 4000 / items neighbours, between 5 and 50 (many items:
  few, sharp neighbours; a small catalog: more of them).
* **BPR**: half the ALS factors (32 to 128), learning rate 0.01, regularization 0.001.
* **items the shopper already bought**: the training data's repeat rate decides
  (:func:`recsys_core.repeats.repeat_profile`): when shoppers rarely re-buy, lists leave out
  the items each shopper *bought* (purchase events only; items they viewed, carted or
  favourited stay, :func:`recsys_core.policy.recommend_with_policy`). Removing every *seen*
  item instead also removes the items shoppers view before buying them: on the validation
  window of the no-repurchases variant that cut ALS's NDCG@10 from 0.23 to 0.06
  (``bench/bench_seen_filter.py`` prints both filters).

The constants were chosen on validation windows (the 30 days before each log's test period)
of Online Retail and 500-shopper demo-store variants; never on a test period.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from recsys_core.interactions import EventWeights, InteractionMatrix
from recsys_core.models.registry import ALS, BPR, ITEMKNN
from recsys_core.presets import Preset
from recsys_core.tuning.profile import LogProfile, profile_log

#: Where these settings come from, as every output names it.
SCALED_DEFAULTS = "scaled defaults"
#: The weight of one purchase; other events are weighted relative to it.
PURCHASE_WEIGHT = 5.0
#: The smallest weight a present event gets (views in a shop that rarely converts).
MIN_WEIGHT = 0.1


def funnel_weights(profile: LogProfile) -> EventWeights:
    """Event weights from the funnel's conversion rates (see the module docstring)."""
    if profile.events_by_type.get("purchase", 0) == 0:
        return EventWeights()  # nothing converts: no rate to scale by
    values: dict[str, float] = {"purchase": PURCHASE_WEIGHT}
    for event in ("view", "cart", "favorite"):
        if event in profile.conversion:
            rate = profile.conversion[event]
            values[event] = round(max(PURCHASE_WEIGHT * rate, MIN_WEIGHT), 2)
    return EventWeights(**values)


def _power_of_two(value: float, low: int, high: int) -> int:
    return int(np.clip(2 ** round(math.log2(max(value, 1.0))), low, high))


def scaled_preset(profile: LogProfile, mean_cell_weight: float) -> Preset:
    """The scaled defaults of a profiled log whose weighted cells average ``mean_cell_weight``."""
    weights = funnel_weights(profile)
    per_line = profile.cells / max(profile.users + profile.items, 1)
    factors = _power_of_two(8 * per_line, 16, 256)
    alpha = 1.0 / max(mean_cell_weight, 1e-6)
    regularization = 0.1 * profile.cells_per_user * alpha * mean_cell_weight
    neighbours = int(np.clip(round(4000 / max(profile.items, 1)), 5, 50))
    return Preset(
        weights=weights,
        model_params={
            ALS: {
                "factors": factors,
                "regularization": round(float(regularization), 4),
                "alpha": round(float(alpha), 4),
                "iterations": 15,
            },
            ITEMKNN: {"weighting": "bm25", "neighbours": neighbours, "b": 0.75},
            BPR: {
                "factors": int(np.clip(factors // 2, 32, 128)),
                "learning_rate": 0.01,
                "regularization": 0.001,
            },
        },
        # the repeat rate decides whether already-bought items leave (recsys_core.repeats)
        filter_seen=None,
        source=SCALED_DEFAULTS,
    )


def scaled_defaults(events: pd.DataFrame) -> Preset:
    """Settings scaled to ``events`` (see the module docstring); no model is fitted."""
    profile = profile_log(events)
    weights = funnel_weights(profile)
    matrix = InteractionMatrix.from_events(events, weights)
    mean = float(matrix.matrix.data.mean()) if matrix.nnz else 1.0
    return scaled_preset(profile, mean)
