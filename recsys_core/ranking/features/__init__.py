"""Behaviour features of (user, item) pairs, computed only from events before a cutoff.

A :class:`BehaviourSnapshot` aggregates an event log *as it was* at a cutoff: every event at
or after the cutoff is dropped before anything is counted, so features built from it cannot
see the future. It holds small lookup tables (one row per user, per item and per user-item
pair with history) so that the features of any batch of pairs are gathered with array
lookups, without a loop per user.

Features come in named groups. A group is one function that returns its columns by name,
registered in :data:`REGISTRY` together with its :class:`Feature` declarations (name, what
it measures, its value in the shop's words, its value for a pair without history). The
column order (:data:`FEATURE_NAMES`), the snapshot's tables and the labels the explanations
show are all derived from the registry, so adding a feature touches one place: its group.

Levels, in the classifier's column order ("days" are fractional days before the cutoff):

pair
    per user-item pair with history (counts, recency, reorder rhythm); gathered by key, and
    a pair without history gets each feature's ``no_history`` value;
user
    per user (activity, ordering habits);
item
    per item (popularity, reorders, age, price);
lookup
    computed when pairs are looked up, from tables the group builds from the past events
    (category, brand and price affinity of the user for the item);
stage_one
    ALS and item-kNN score and rank, filled by :mod:`recsys_core.ranking.candidates`;
    declared here for their names and labels.

Prices come only from events before the cutoff (:attr:`PastEvents.item_price`): the catalog
price is never used, because catalogs built from a log take the median over the whole log,
future included.

Missing values are NaN (e.g. "days since the last view" of an item never viewed); LightGBM
treats them as missing.

The package: :mod:`.registry` (declarations and the registry), :mod:`.past` (what the groups
read), :mod:`.labels` (value labels), one module per group family (:mod:`.pair_groups`,
:mod:`.user_groups`, :mod:`.item_groups`, :mod:`.affinity`), :mod:`.names` (registration order,
the frozen registry, the column lists, the descriptions), :mod:`.snapshot` and
:mod:`.persistence`. Every public name is importable from here.
"""

from __future__ import annotations

from recsys_core.ranking.features.names import (
    AFFINITY_FEATURES,
    BEHAVIOUR_FEATURES,
    FEATURE_NAMES,
    ITEM_FEATURES,
    PAIR_FEATURES,
    SEEN_FEATURES,
    STAGE_ONE_FEATURES,
    USER_FEATURES,
    describe_feature,
    feature_description,
)
from recsys_core.ranking.features.past import (
    PairLookup,
    PastEvents,
    events_before,
    require_timestamps,
)
from recsys_core.ranking.features.registry import (
    LEVELS,
    REGISTRY,
    Feature,
    FeatureGroup,
    FeatureRegistry,
)
from recsys_core.ranking.features.snapshot import BehaviourSnapshot

__all__ = [
    "AFFINITY_FEATURES",
    "BEHAVIOUR_FEATURES",
    "FEATURE_NAMES",
    "ITEM_FEATURES",
    "LEVELS",
    "PAIR_FEATURES",
    "REGISTRY",
    "SEEN_FEATURES",
    "STAGE_ONE_FEATURES",
    "USER_FEATURES",
    "BehaviourSnapshot",
    "Feature",
    "FeatureGroup",
    "FeatureRegistry",
    "PairLookup",
    "PastEvents",
    "describe_feature",
    "events_before",
    "feature_description",
    "require_timestamps",
]
