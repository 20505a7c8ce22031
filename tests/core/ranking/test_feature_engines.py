"""One feature definition, two engines: the groups written in Narwhals give the same features
on pandas (embedded) and on Spark.

The Spark tests start one local session (``local[2]``) for the module and stop it at the end.
Without pyspark or Java they are skipped with the reason; CI sets ``RECSYS_REQUIRE_SPARK=1``
so that a missing Spark fails the run instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from recsys_core.models.als_spark import spark_session, spark_unavailable_reason, stop_spark_session
from recsys_core.ranking import build_training_frame
from recsys_core.ranking.features import BehaviourSnapshot, PastEvents
from recsys_core.ranking.ranker import RankerConfig
from tests.conftest import SMALL_RANKER, SMALL_RANKER_CUTOFF

CUTOFF = SMALL_RANKER_CUTOFF


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    """One local Spark session for the module; skipped (or failed in CI) without Spark."""
    reason = spark_unavailable_reason()
    if reason is not None:
        if os.environ.get("RECSYS_REQUIRE_SPARK") == "1":
            pytest.fail(f"RECSYS_REQUIRE_SPARK=1 but {reason}")
        pytest.skip(reason)
    session = spark_session("local[2]")
    yield session
    stop_spark_session()


def test_an_unknown_engine_is_refused(small_store: object) -> None:
    events = small_store.events  # type: ignore[attr-defined]
    past = PastEvents(events, CUTOFF, engine="duckdb")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown feature engine 'duckdb'"):
        _ = past.table


@pytest.mark.spark
def test_spark_and_embedded_give_equal_features(spark: object, small_store: object) -> None:
    events, catalog = small_store.events, small_store.catalog  # type: ignore[attr-defined]
    embedded = BehaviourSnapshot.from_events(events, CUTOFF, catalog)
    on_spark = BehaviourSnapshot.from_events(
        events, CUTOFF, catalog, engine="spark", spark_master="local[2]"
    )
    for name in ("user_values", "item_values", "pair_values", "pair_keys"):
        np.testing.assert_array_equal(getattr(on_spark, name), getattr(embedded, name), name)
    rng = np.random.default_rng(3)
    users = rng.integers(0, len(embedded.users), 500)
    items = rng.integers(0, len(embedded.items), 500)
    np.testing.assert_array_equal(on_spark.features(users, items), embedded.features(users, items))


@pytest.mark.spark
def test_the_rankers_training_rows_are_equal_on_spark(spark: object, small_store: object) -> None:
    events, catalog = small_store.events, small_store.catalog  # type: ignore[attr-defined]
    settings = {**SMALL_RANKER, "training_windows": 1}
    embedded = build_training_frame(events, catalog, CUTOFF, RankerConfig(**settings))
    on_spark = build_training_frame(
        events,
        catalog,
        CUTOFF,
        RankerConfig(**settings, feature_engine="spark", spark_master="local[2]"),
    )
    pd.testing.assert_frame_equal(on_spark, embedded)


@pytest.mark.spark
def test_train_engine_spark_builds_the_rankers_features_on_spark(
    spark: object, small_store: object
) -> None:
    from recsys_core.training import TrainConfig, train_lab

    settings = {**SMALL_RANKER, "training_windows": 1}
    config = TrainConfig(
        models=["ranker"],
        model_params={"ranker": settings},
        engine="spark",
        spark_master="local[2]",
        headline_metrics=False,
    )
    lab = train_lab(small_store, config)  # type: ignore[arg-type]
    ranker = lab.models["ranker"]
    assert ranker.config.feature_engine == "spark"
    assert ranker.config.spark_master == "local[2]"
    embedded = BehaviourSnapshot.from_events(
        small_store.events,  # type: ignore[attr-defined]
        ranker.cutoff_,
        small_store.catalog,  # type: ignore[attr-defined]
    )
    np.testing.assert_array_equal(ranker.snapshot_.user_values, embedded.user_values)
