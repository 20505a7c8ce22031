"""Profile ``evaluate`` (cProfile) and print where the time goes.

    python bench/profile_evaluate.py [--dataset online-retail] [--models ranker|all]
        [--folds 4] [--cpu-timer] [--top 25]

Prints wall and CPU time, a breakdown of the ranker's parts (cumulative time of the named
functions and their share of ``evaluate``; parts overlap: the purchase model's fit contains
its LightGBM training and prediction) and the functions with the largest cumulative time.
It measures the machine as much as the code: on shared cores quote shares of the total, not
seconds. cProfile sees only the main thread: fold models trained in worker threads show as
lock waits (``fold_workers=1`` puts them in the breakdown).
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

#: (label, file name ending, function name) of the parts worth watching.
PARTS = (
    ("evaluate (all)", "evaluation/runner.py", "evaluate"),
    ("validation pass (first fold's single-stage models)", "runner.py", "_best_on_validation"),
    ("ranker fit", "ranking/ranker.py", "fit"),
    ("  training rows (every window)", "ranking/training_frame.py", "build_training_frame"),
    ("  stage one + behaviour tables (per stage)", "ranking/training_frame.py", "fitted_stage"),
    ("    stage one fit (ALS + item-kNN)", "ranking/candidates.py", "fit"),
    ("    behaviour tables", "features/snapshot.py", "from_events"),
    ("  candidates + pair features (training)", "training_frame.py", "_chunked_candidate_features"),
    ("  classifier fit (ranker + order model)", "ranking/purchase_model.py", "fit"),
    ("    LightGBM training (main thread)", "ranking/purchase_model.py", "_train"),
    ("    LightGBM prediction (all margins)", "ranking/purchase_model.py", "_margin"),
    ("    calibrator choice", "ranking/calibration.py", "choose_calibrator"),
    ("    shopper ids to rank codes", "ranking/purchase_model.py", "group_codes"),
    ("candidates scored (lists, every path)", "candidate_scoring.py", "compact_scored_candidates"),
    ("  candidate generation (every path)", "ranking/candidates.py", "candidates"),
    ("  pair features (every path)", "features/snapshot.py", "features"),
    ("order model (fit + score)", "evaluation/probability.py", "order_block"),
    ("  shopper tables (built, not reused)", "ranking/order_features.py", "shopper_features"),
    ("overall probability metrics", "evaluation/probability.py", "overall_probability_block"),
    ("beyond-accuracy metrics", "metrics.py", "beyond_accuracy_metrics"),
    ("per-user beyond-accuracy", "metrics.py", "per_user_beyond_accuracy"),
    ("bootstrap intervals", "evaluation/intervals.py", "bootstrap_intervals"),
    ("segments", "segments.py", "evaluation_segments"),
    ("model save (size on disk)", "evaluation/protocol.py", "folder_mb"),
)


def breakdown(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Cumulative seconds of each of :data:`PARTS`.

    Of same-named functions in one file the largest is taken (``Calibrator.fit`` runs inside
    ``PurchaseModel.fit``; one function called from two places is one entry).
    """
    table = stats.stats  # type: ignore[attr-defined]
    rows = []
    for label, file_end, name in PARTS:
        seconds = max(
            (
                ct
                for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in table.items()
                if func == name and file.replace("\\", "/").endswith(file_end)
            ),
            default=0.0,
        )
        rows.append((label, seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--models", default="ranker", help="comma-separated, or 'all'")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--folds", type=int, default=1)
    parser.add_argument(
        "--cpu-timer",
        action="store_true",
        help="profile CPU time (time.process_time) instead of wall time: on busy shared "
        "cores the wall time of a function measures the machine more than the code",
    )
    args = parser.parse_args()

    from recsys_core.evaluation.config import ALL_MODELS

    data = load_dataset(args.dataset)
    models = (
        list(ALL_MODELS)
        if args.models == "all"
        else [m.strip() for m in args.models.split(",") if m.strip()]
    )
    config = EvaluationConfig(models=models, bootstrap_resamples=args.resamples, folds=args.folds)
    profiler = cProfile.Profile(time.process_time) if args.cpu_timer else cProfile.Profile()
    wall, cpu = time.perf_counter(), time.process_time()
    profiler.enable()
    result = evaluate(data, config)
    profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    label = f"{args.dataset} {','.join(models)}, {args.folds} fold(s)"
    print(f"{label}: {wall:.1f} s wall, {cpu:.1f} s CPU")
    for name, res in result.models.items():
        print(f"  {name}: fit {res.fit_seconds:.1f} s, recommend {res.recommend_seconds:.1f} s")
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    total = max(cpu if args.cpu_timer else wall, 1e-9)
    unit = "CPU s" if args.cpu_timer else "s"
    print(f"where the time goes (cumulative {unit}, main thread):")
    for label, seconds in breakdown(stats):
        print(f"  {label:<56} {seconds:7.1f} {unit}  {100 * seconds / total:5.1f} %")
    stats.sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
