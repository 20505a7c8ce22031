"""The two-stage purchase model: candidates, behaviour features, calibrated classifier.

>>> from recsys_core.ranking import TwoStageRanker
>>> ranker = TwoStageRanker().fit(events, catalog)              # doctest: +SKIP
>>> ranker.recommend(["12347"], k=10)                           # doctest: +SKIP
>>> ranker.purchase_probability("12347", ["85123A", "22423"])   # doctest: +SKIP
>>> score_all_shoppers(ranker, k=10, chunk_size=2000)          # doctest: +SKIP
"""

from __future__ import annotations

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
