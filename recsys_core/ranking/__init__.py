"""The two-stage purchase model: candidates, behaviour features, calibrated classifier.

>>> from recsys_core.ranking import TwoStageRanker
>>> ranker = TwoStageRanker().fit(events, catalog)              # doctest: +SKIP
>>> ranker.recommend(["12347"], k=10)                           # doctest: +SKIP
>>> ranker.purchase_probability("12347", ["85123A", "22423"])   # doctest: +SKIP
>>> score_all_shoppers(ranker, k=10, chunk_size=2000)          # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recsys_core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from recsys_core.ranking.batch_scoring import score_all_shoppers
    from recsys_core.ranking.candidates import CandidateGenerator
    from recsys_core.ranking.features import (
        BEHAVIOUR_FEATURES,
        FEATURE_NAMES,
        STAGE_ONE_FEATURES,
        BehaviourSnapshot,
        describe_feature,
        feature_description,
    )
    from recsys_core.ranking.purchase_model import Calibrator, PurchaseModel
    from recsys_core.ranking.ranker import (
        LABEL,
        PURCHASE_PROBABILITY,
        RAW_SCORE,
        PurchaseModelConfig,
        RankerConfig,
        TwoStageRanker,
        build_training_frame,
    )

# imported on first use: the purchase model's module imports LightGBM and scikit-learn,
# which a module such as ``ranking.features`` must not bring along (the app's first page)
__getattr__ = lazy_exports(
    __name__,
    {
        "batch_scoring": ["score_all_shoppers"],
        "candidates": ["CandidateGenerator"],
        "features": [
            "BEHAVIOUR_FEATURES",
            "FEATURE_NAMES",
            "STAGE_ONE_FEATURES",
            "BehaviourSnapshot",
            "describe_feature",
            "feature_description",
        ],
        "purchase_model": ["Calibrator", "PurchaseModel"],
        "ranker": [
            "LABEL",
            "PURCHASE_PROBABILITY",
            "RAW_SCORE",
            "PurchaseModelConfig",
            "RankerConfig",
            "TwoStageRanker",
            "build_training_frame",
        ],
    },
)

__all__ = [
    "BEHAVIOUR_FEATURES",
    "FEATURE_NAMES",
    "LABEL",
    "PURCHASE_PROBABILITY",
    "RAW_SCORE",
    "STAGE_ONE_FEATURES",
    "BehaviourSnapshot",
    "Calibrator",
    "CandidateGenerator",
    "PurchaseModel",
    "PurchaseModelConfig",
    "RankerConfig",
    "TwoStageRanker",
    "build_training_frame",
    "describe_feature",
    "feature_description",
    "score_all_shoppers",
]
