"""Every group registered in column order, the frozen registry, and the column lists.

The imports below register the groups (pair, user, item, lookup; stage one last); the
registry is frozen once they are declared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

# Importing a group module registers its groups (pair, user, item, lookup).
import recsys_core.ranking.features.affinity
import recsys_core.ranking.features.item_groups
import recsys_core.ranking.features.pair_groups
import recsys_core.ranking.features.user_groups  # noqa: F401
from recsys_core.ranking.features.labels import _missing, _stage_one_label
from recsys_core.ranking.features.registry import REGISTRY, Feature, FeatureGroup, Level
from recsys_core.ranking.features.sequence import SEQUENCE_GROUP

#: The levels a :class:`~recsys_core.ranking.features.snapshot.BehaviourSnapshot` computes
#: (stage one comes from the candidates).
_BEHAVIOUR_LEVELS: Final[tuple[Level, ...]] = ("pair", "user", "item", "lookup")

#: Scores of the candidate generators: computed by
#: :class:`~recsys_core.ranking.candidates.CandidateGenerator`, declared here for the labels.
REGISTRY.add(
    FeatureGroup(
        "stage_one",
        "stage_one",
        (
            Feature(
                "als_score",
                "ALS score",
                _stage_one_label("ALS", "als_score", "als_rank", rank_first=False),
            ),
            Feature(
                "als_rank",
                "rank in ALS",
                _stage_one_label("ALS", "als_score", "als_rank", rank_first=True),
            ),
            Feature(
                "itemknn_score",
                "item-kNN score",
                _stage_one_label("item-kNN", "itemknn_score", "itemknn_rank", rank_first=False),
            ),
            Feature(
                "itemknn_rank",
                "rank in item-kNN",
                _stage_one_label("item-kNN", "itemknn_score", "itemknn_rank", rank_first=True),
            ),
        ),
    )
)
REGISTRY.freeze()

#: :data:`REGISTRY` plus the optional groups, which are off by default and never in
#: :data:`FEATURE_NAMES` (the ``sequence`` group: needs PyTorch, see its module); it gives
#: their names and value labels.
OPTIONAL_REGISTRY: Final = REGISTRY.copy()
OPTIONAL_REGISTRY.add(SEQUENCE_GROUP)
OPTIONAL_REGISTRY.freeze()

#: User-item features, in the column order of :attr:`BehaviourSnapshot.pair_values`.
PAIR_FEATURES: Final[tuple[str, ...]] = REGISTRY.names("pair")
#: User features, in the column order of :attr:`BehaviourSnapshot.user_values`.
USER_FEATURES: Final[tuple[str, ...]] = REGISTRY.names("user")
#: Item features, in the column order of :attr:`BehaviourSnapshot.item_values`.
ITEM_FEATURES: Final[tuple[str, ...]] = REGISTRY.names("item")
#: Category, brand and price affinity of the user for the item (computed at lookup).
AFFINITY_FEATURES: Final[tuple[str, ...]] = REGISTRY.names("lookup")
#: Everything a :class:`BehaviourSnapshot` computes, in the order of its features.
BEHAVIOUR_FEATURES: Final[tuple[str, ...]] = REGISTRY.names(*_BEHAVIOUR_LEVELS)
#: Scores of the candidate generators (see :mod:`recsys_core.ranking.candidates`).
STAGE_ONE_FEATURES: Final[tuple[str, ...]] = REGISTRY.names("stage_one")
#: All classifier features, in the classifier's column order.
FEATURE_NAMES: Final[tuple[str, ...]] = REGISTRY.names()
#: Features whose sum above 0 says the shopper already interacted with the item.
SEEN_FEATURES: Final[tuple[str, ...]] = tuple(f.name for f in REGISTRY.features() if f.marks_seen)


# --------------------------------------------------------------------------------------
# Feature names in the shop's words (declared with each feature above)
# --------------------------------------------------------------------------------------


def feature_description(name: str) -> str:
    """What a feature measures, in the shop's words, without a value (for global views)."""
    feature = OPTIONAL_REGISTRY.feature(name)
    return feature.description if feature else name


def describe_feature(name: str, row: Mapping[str, float]) -> str:
    """A feature and its value in the shop's words, e.g. ``"bought this item 3 times"``.

    Parameters
    ----------
    name:
        A feature of :data:`FEATURE_NAMES`.
    row:
        The pair's feature values by name (stage-one labels read score and rank together).
    """
    feature = OPTIONAL_REGISTRY.feature(name)
    value = float(row.get(name, math.nan))
    if feature is None:
        return f"{name} = {value:g}"
    try:
        label = feature.label(value, row)
    except (ValueError, OverflowError):
        label = "nan"
    if _missing(value) and "nan" in label:
        return f"{feature.description}: unknown"
    return label
