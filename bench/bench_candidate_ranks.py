"""Benchmark: stage one's candidates with ranks counted where needed vs every cell ranked.

    OMP_NUM_THREADS=1 python bench/bench_candidate_ranks.py [--lines 1000000] [--shoppers 30000]
        [--items 25000] [--users 4000]

Fits the ranker's stage one (ALS 64 factors + item-kNN, the ranker's defaults) on the
grocery-shaped log of ``bench/grocery_log.py`` and builds the candidates of ``--users``
shoppers twice: with :meth:`CandidateGenerator.candidates` (ranks of the candidate cells
only) and the way it was built before (a stable argsort of every cell of the score
matrix, ``_score_block``). Prints CPU seconds of each and checks the two frames are equal.
It asserts nothing else.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from grocery_log import generate_grocery_log  # noqa: E402

from recsys_core.columns import Columns  # noqa: E402
from recsys_core.ranking.candidates import CandidateGenerator  # noqa: E402
from recsys_core.ranking.config import RankerConfig  # noqa: E402
from recsys_core.ranking.training_frame import make_generator  # noqa: E402


def every_cell_ranked(generator: CandidateGenerator, users: list[str]) -> pd.DataFrame:
    """The candidates as built before this change: every cell ranked, then chosen."""
    rows = generator.users_.to_internal(users)
    parts = []
    step = generator._block_size()
    for start in range(0, len(rows), step):
        block = rows[start : start + step]
        als, als_rank, knn, knn_rank = generator._score_block(block)
        chosen = (als_rank <= generator.n_als) | (knn_rank <= generator.n_itemknn)
        hist_rows, hist_items = generator._history_cells(block)
        chosen[hist_rows, hist_items] = True
        r, i = np.nonzero(chosen)
        parts.append(
            pd.DataFrame(
                {
                    Columns.USER: np.asarray(users, dtype=object)[start + r],
                    Columns.ITEM: generator.items_.to_external(i),
                    "als_score": als[r, i],
                    "als_rank": als_rank[r, i],
                    "itemknn_score": knn[r, i],
                    "itemknn_rank": knn_rank[r, i],
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--shoppers", type=int, default=30_000)
    parser.add_argument("--items", type=int, default=25_000)
    parser.add_argument("--users", type=int, default=4_000)
    args = parser.parse_args()
    events = generate_grocery_log(n_lines=args.lines, n_shoppers=args.shoppers, n_items=args.items)
    cutoff = events[Columns.TIMESTAMP].max() - pd.Timedelta(days=30)
    cpu = time.process_time()
    generator = make_generator(RankerConfig()).fit(events, cutoff)
    print(
        f"stage one fitted: {len(generator.users_)} shoppers x {len(generator.items_)} items, "
        f"{time.process_time() - cpu:.1f} CPU s"
    )
    users = [str(u) for u in generator.users_.external_ids[: args.users]]
    cpu = time.process_time()
    new = generator.candidates(users)
    new_cpu = time.process_time() - cpu
    cpu = time.process_time()
    old = every_cell_ranked(generator, users)
    old_cpu = time.process_time() - cpu
    pd.testing.assert_frame_equal(new, old, check_dtype=False)
    print(
        f"candidates of {len(users)} shoppers ({len(new):,} rows, equal frames): "
        f"every cell ranked {old_cpu:.1f} CPU s, ranks where needed {new_cpu:.1f} CPU s "
        f"({old_cpu / max(new_cpu, 1e-9):.1f}x)"
    )


if __name__ == "__main__":
    main()
