"""Time the ranker's behaviour features on Online Retail windows (prints figures only).

    python bench/bench_features.py [--repeats 5] [--baseline OTHER_FEATURES.py]

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
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--baseline", type=Path, default=None)
    args = parser.parse_args()

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
