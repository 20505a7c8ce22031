"""Profile ``evaluate`` (cProfile) and print where the time goes.

    python bench/profile_evaluate.py [--dataset online-retail] [--models ranker] [--top 25]

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
    ("evaluate (all)", "evaluation.py", "evaluate"),
    ("ranker fit", "ranking/ranker.py", "fit"),
    (
        "  training rows (stage one + features, every window)",
        "ranking/ranker.py",
        "build_training_frame",
    ),
    ("    stage one fit (ALS + item-kNN), every window", "ranking/candidates.py", "fit"),
    ("    candidate generation, every window", "ranking/candidates.py", "candidates"),
    ("    behaviour tables (features.py), every window", "ranking/features.py", "from_events"),
    ("    pair features (features.py), every window", "ranking/features.py", "features"),
    ("  classifier fit (ranker + order model)", "ranking/purchase_model.py", "fit"),
    ("    LightGBM training (main thread)", "ranking/purchase_model.py", "_train"),
    ("    LightGBM prediction (all margins)", "ranking/purchase_model.py", "_margin"),
    ("    calibrator choice", "ranking/purchase_model.py", "_fit_calibrator"),
    ("ranker test candidates scored", "ranking/ranker.py", "candidate_frame"),
    ("order model (fit + score)", "ranking/order_model.py", "evaluate_order_model"),
    ("bootstrap intervals", "evaluation.py", "bootstrap_intervals"),
    ("segments", "segments.py", "evaluation_segments"),
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
    stats = pstats.Stats(profiler, stream=out)
    total = max(wall, 1e-9)
    print("where the time goes (cumulative, main thread):")
    for label, seconds in breakdown(stats):
        print(f"  {label:<52} {seconds:7.1f} s  {100 * seconds / total:5.1f} %")
    stats.sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
