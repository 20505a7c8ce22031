"""Time the ranker's behaviour features on Online Retail windows (prints figures only).

    python bench/bench_features.py [--repeats 5] [--baseline OTHER_FEATURES.py]
    python bench/bench_features.py --layers [--events 1000000] [--engines numpy,narwhals-pandas,...]

For the cutoffs the ranker uses (the test cutoff of a 30-day temporal split and its six
30-day training windows before it) it times :meth:`BehaviourSnapshot.from_events` (the
aggregation) and :meth:`BehaviourSnapshot.features` of every pair with history plus as many
random pairs (the lookup), in CPU time of this process (less sensitive than wall time to
other work on shared cores). Medians over ``--repeats``.

``--baseline`` loads another copy of ``recsys_core/ranking/features.py`` (e.g. the file at an
earlier commit: ``git show main:recsys_core/ranking/features.py > /tmp/old.py``), times it
interleaved with the current one (both on each cutoff, in alternating order), checks that
both give bit-identical feature matrices and prints the ratio current / baseline. On shared
cores quote the ratio, not the seconds.

``--layers`` is the measured prototype behind the choice of dataframe layer
(``docs/ranker-at-scale.md``): the ``user_activity`` and ``item_popularity`` groups on a
seeded demo store of ``--events`` events, written in Narwhals (the lab's definitions in
:mod:`recsys_core.ranking.features.frames`) and in Ibis (the prototype below), timed on each
engine of ``--engines`` (``numpy``: the array code before the port, from the single-file
``features.py`` given as ``--baseline``, e.g. ``git show 0fa2243:recsys_core/ranking/features.py
> /tmp/old.py``; ``narwhals-pandas``,
``narwhals-polars``, ``narwhals-spark``, ``ibis-duckdb``, ``ibis-spark``), in wall seconds
after the data is loaded into the engine (the load is printed apart), each checked equal to
the numpy values. Ibis needs ``pip install 'ibis-framework[duckdb]'``, Polars ``pip install
polars``; Spark runs ``local[2]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.ranking import features as current  # noqa: E402
from recsys_core.split import temporal_split  # noqa: E402


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("baseline_features", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_features"] = module
    spec.loader.exec_module(module)
    return module


def _time(
    module: ModuleType, events: pd.DataFrame, catalog: pd.DataFrame, cutoff: pd.Timestamp
) -> tuple[float, float, np.ndarray]:
    """CPU seconds of the build and of the lookup, and the looked-up matrix."""
    start = time.process_time()
    snap = module.BehaviourSnapshot.from_events(events, cutoff, catalog)
    built = time.process_time() - start
    n_items = len(snap.items)
    rng = np.random.default_rng(0)
    u = np.r_[snap.pair_keys // n_items, rng.integers(0, len(snap.users), len(snap.pair_keys))]
    i = np.r_[snap.pair_keys % n_items, rng.integers(0, n_items, len(snap.pair_keys))]
    start = time.process_time()
    matrix = snap.features(u.astype(np.int64), i.astype(np.int64))
    return built, time.process_time() - start, matrix


def _ibis_user_activity(t: Any) -> Any:
    """The user_activity group in Ibis (prototype)."""
    return t.group_by("u").aggregate(
        user_events=t.count(),
        user_items=t.i.nunique(),
        user_orders=t.day.nunique(where=t.buy),
        user_events_30d=(t.age < 30).sum(),
        user_days_since_last_event=t.age.min(),
        user_days_since_last_purchase=t.age.min(where=t.buy),
        user_tenure_days=t.age.max(),
    )


def _ibis_item_popularity(t: Any) -> tuple[Any, Any, Any]:
    """The item_popularity group's tables in Ibis (prototype)."""
    import ibis

    b = t.filter(t.buy)
    pairs = b.group_by(["i", "u"]).aggregate(
        w30=(b.age < 30).any(), w7=(b.age < 7).any(), before=((b.age >= 30) & (b.age < 90)).any()
    )
    per_item = pairs.group_by("i").aggregate(
        item_buyers=pairs.count(),
        item_buyers_30d=pairs.w30.sum(),
        item_buyers_7d=pairs.w7.sum(),
        buyers_before=pairs.before.sum(),
    )
    active = pairs.filter(pairs.w30).u.nunique()
    recent = t.filter(t.age < 30).group_by("i").aggregate(item_events_30d=ibis._.count())
    return per_item, recent, active


def layers(n_events: int, engines: list[str], numpy_module: ModuleType | None) -> None:
    """Time the two groups on every engine and check them against the numpy arrays."""
    import narwhals as nw

    from recsys_core.data.demo_store import generate_demo_store
    from recsys_core.ranking.features import PastEvents, frames

    n_users, n_items = round(3000 * n_events / 200_000), round(800 * n_events / 200_000)
    events, catalog = generate_demo_store(n_users, n_items, n_events, seed=42)
    cutoff = events["timestamp"].max() - pd.Timedelta(days=30)
    past = PastEvents(events, cutoff, catalog)
    table = nw.to_native(past.table)
    users = past.user_order_days  # forces the numpy intermediates once, outside the timings
    expected_orders = users.copy()
    print(f"{n_events:,} events, {len(table):,} before the cutoff {cutoff}", flush=True)
    spark = None
    for engine in engines:
        load = 0.0
        if engine == "numpy":
            if numpy_module is None:
                print("LAYER numpy: pass --baseline with the single-file features.py", flush=True)
                continue
            fresh = numpy_module.PastEvents(events, cutoff, catalog)
            start = time.perf_counter()
            orders = numpy_module.user_activity(fresh)["user_orders"]
            numpy_module.item_popularity(fresh)
        elif engine.startswith("narwhals"):
            native: Any = table
            start = time.perf_counter()
            if engine == "narwhals-polars":
                import polars as pl

                native = pl.from_pandas(table)
            elif engine == "narwhals-spark":
                from recsys_core.models.als_spark import spark_session

                spark = spark or spark_session("local[2]")
                native = frames._spark_frame(table, "local[2]")
            load = time.perf_counter() - start
            start = time.perf_counter()
            frame = nw.from_native(native)
            user = frames.user_activity_table(frame)
            frames.item_popularity_table(frame)
            orders = frames.gather(user, "u", past.n_users, ["user_orders"])["user_orders"]
        else:
            import ibis

            start = time.perf_counter()
            if engine == "ibis-duckdb":
                con = ibis.duckdb.connect()
                con.con.register("ev", table)
            else:
                from recsys_core.models.als_spark import spark_session

                spark = spark or spark_session("local[2]")
                frames._spark_frame(table, "local[2]").createOrReplaceTempView("ev")
                con = ibis.pyspark.connect(spark)
            t = con.table("ev")
            load = time.perf_counter() - start
            start = time.perf_counter()
            user = _ibis_user_activity(t).to_pandas()
            per_item, recent, active = _ibis_item_popularity(t)
            per_item.to_pandas()
            recent.to_pandas()
            active.to_pandas()
            orders = frames.gather(user, "u", past.n_users, ["user_orders"])["user_orders"]
        seconds = time.perf_counter() - start
        equal = bool(np.array_equal(orders, expected_orders))
        print(
            f"LAYER {engine:16s} {seconds:7.2f} s  (load {load:5.1f} s)  equal to numpy: {equal}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", action="store_true", help="Time the dataframe layers.")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--engines",
        default="numpy,narwhals-pandas,narwhals-polars,ibis-duckdb,narwhals-spark,ibis-spark",
    )
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--baseline", type=Path, default=None)
    args = parser.parse_args()
    if args.layers:
        numpy_module = _load(args.baseline) if args.baseline is not None else None
        layers(args.events, args.engines.split(","), numpy_module)
        return

    data = load_dataset(args.dataset)
    split = temporal_split(data.events, test_days=30, test_events=("purchase",))
    cutoffs = [split.cutoff] + [
        split.cutoff - pd.Timedelta(days=30 * w) for w in range(1, args.windows + 1)
    ]
    modules = {"current": current}
    if args.baseline is not None:
        modules["baseline"] = _load(args.baseline)
    totals: dict[str, dict[str, list[float]]] = {
        name: {"build": [], "lookup": []} for name in modules
    }
    identical = True
    for repeat in range(args.repeats):
        build = dict.fromkeys(modules, 0.0)
        lookup = dict.fromkeys(modules, 0.0)
        for c, cutoff in enumerate(cutoffs):  # both versions on each cutoff, order alternating
            order = list(modules.items())
            if (repeat + c) % 2:
                order.reverse()
            matrices = {}
            for name, module in order:
                b, lk, matrices[name] = _time(module, split.train, data.catalog, cutoff)
                build[name] += b
                lookup[name] += lk
            if "baseline" in matrices:
                identical &= matrices["current"].tobytes() == matrices["baseline"].tobytes()
            del matrices
        for name in modules:
            totals[name]["build"].append(build[name])
            totals[name]["lookup"].append(lookup[name])
    if "baseline" in modules:
        print(f"feature matrices bit-identical to the baseline: {identical}")
    print(f"{args.dataset}: {len(cutoffs)} cutoffs, median of {args.repeats} repeats (CPU seconds)")
    for name, t in totals.items():
        print(
            f"  {name:8s} build {statistics.median(t['build']):.3f}  "
            f"lookup {statistics.median(t['lookup']):.3f}"
        )
    if "baseline" in modules:
        for part in ("build", "lookup"):
            ratio = statistics.median(totals["current"][part]) / statistics.median(
                totals["baseline"][part]
            )
            print(f"  {part}: current / baseline = {ratio:.3f}")


if __name__ == "__main__":
    main()
