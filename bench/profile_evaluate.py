"""Profile ``evaluate`` (cProfile) and print where the time goes.

    python bench/profile_evaluate.py [--dataset online-retail] [--models ranker] [--top 25]

Prints wall and CPU time and the functions with the largest cumulative time. It measures
the machine as much as the code: on shared cores quote shares of the total, not seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.evaluation import EvaluationConfig, evaluate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--models", default="ranker", help="comma-separated, or 'all'")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()

    data = load_dataset(args.dataset)
    models = (
        ["popularity", "itemknn", "bpr", "als", "ranker"]
        if args.models == "all"
        else [m.strip() for m in args.models.split(",") if m.strip()]
    )
    config = EvaluationConfig(models=models, bootstrap_resamples=args.resamples)
    profiler = cProfile.Profile()
    wall, cpu = time.perf_counter(), time.process_time()
    profiler.enable()
    result = evaluate(data, config)
    profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{args.dataset} {','.join(models)}: {wall:.1f} s wall, {cpu:.1f} s CPU")
    for name, res in result.models.items():
        print(f"  {name}: fit {res.fit_seconds:.1f} s, recommend {res.recommend_seconds:.1f} s")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
