"""Benchmark: ``diversity@k`` on a grocery-shaped log, before and after the pair method.

Usage::

    OMP_NUM_THREADS=1 python bench/bench_diversity.py [--data /tmp/grocery_1m.parquet]
        [--lines 1000000] [--shoppers 30000] [--items 25000] [--test-days 14] [--k 10]
        [--repeat 3]

The item vectors are what an evaluation uses: the items' columns of the training matrix
(``InteractionMatrix.from_events(train).matrix.T.tocsr()``; the last ``--test-days`` days are
the test period). Top-``k`` lists for every shopper with a training history (~30k):

* ``best-sellers``: the same most-bought ``k`` items for everyone (the popularity model);
* ``own-staples``: each shopper's own most-bought items (the buy-again model);
* ``mixed``: half of each, the shape of an ALS or ranker list (staples plus best sellers).

For each, in one process: the CPU seconds (``time.process_time``, best of ``--repeat``) of
the code before this change (a copy below, ``_old_per_user``: one sparse product
``membership @ unit`` per block of users), of the ``summed`` and ``pairs`` methods of
:mod:`recsys_core.diversity` and of ``auto`` (what ``diversity@k`` now runs), the largest
absolute difference of the per-user values from the old code, and the work estimates that
``auto`` compares. ``--data`` reads a log (``bench/grocery_log.py --out``); without it the
log is generated.

``--in-evaluation`` instead runs the evaluation of ``bench/bench_grocery.py`` (``evaluate
--models all`` on the log; ``--models`` to choose) with every per-user diversity call made
twice, by the old copy and by the package, and prints per call (each model's
``beyond_accuracy_metrics`` and ``per_user_beyond_accuracy``) the users, both CPU seconds and
the largest absolute difference: the real models' lists. It prints figures; it asserts
nothing.

Measured (2-core machine shared with other jobs, so CPU seconds; 6 Dec 2026)::

    OMP_NUM_THREADS=1 python bench/bench_diversity.py --data /tmp/grocery_1m.parquet --repeat 1
    # 28,171 shoppers; old -> auto CPU s: best-sellers 15.2 -> 0.17, own-staples 3.4 -> 1.0,
    # mixed 11.8 -> 0.9; max |diff| 7e-16
    OMP_NUM_THREADS=1 python bench/bench_diversity.py --in-evaluation \
        --data /tmp/grocery_1m.parquet
    # 12 calls (6 models x 2), 13,485 test shoppers: old 29.9 CPU s, new 3.1; max |diff| 4e-16
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from grocery_log import generate_grocery_log  # noqa: E402

from recsys_core import diversity  # noqa: E402
from recsys_core.columns import Columns  # noqa: E402
from recsys_core.interactions import IdMap, InteractionMatrix  # noqa: E402

OLD_SUMMED_ENTRIES = 4_000_000


def _old_per_user(top: pd.DataFrame, vectors: sp.csr_matrix, index: IdMap) -> pd.Series:
    """The per-user ILD as computed before the pair method (sparse vectors only)."""
    rows = index.to_internal(top[Columns.ITEM])
    keep = rows >= 0
    users = top[Columns.USER].to_numpy()[keep]
    unique_rows, column = np.unique(rows[keep], return_inverse=True)
    unit = sp.csr_matrix(normalize(sp.csr_matrix(vectors, dtype=np.float64)[unique_rows]))
    user_codes, user_ids = pd.factorize(users)
    membership = sp.csr_matrix(
        (np.ones(len(users)), (user_codes, column.ravel())),
        shape=(len(user_ids), len(unique_rows)),
    )
    row_nnz = np.diff(unit.indptr).astype(np.float64)
    work = np.cumsum(membership @ row_nnz)
    summed_sq = np.empty(membership.shape[0], dtype=np.float64)
    start = 0
    while start < len(summed_sq):
        limit = (work[start - 1] if start else 0.0) + OLD_SUMMED_ENTRIES
        stop = max(start + 1, int(np.searchsorted(work, limit, side="right")))
        summed = membership[start:stop] @ unit
        summed_sq[start:stop] = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
        start = stop
    self_sq = membership @ np.asarray(unit.multiply(unit).sum(axis=1)).ravel()
    n_items = np.bincount(user_codes, minlength=len(user_ids)).astype(np.float64)
    n_pairs = n_items * (n_items - 1.0) / 2.0
    enough = n_pairs > 0
    mean_similarity = (summed_sq[enough] - self_sq[enough]) / 2.0 / n_pairs[enough]
    ild = np.clip(1.0 - mean_similarity, 0.0, 2.0)
    return pd.Series(ild, index=pd.Index(np.asarray(user_ids)[enough], name=Columns.USER))


def _cpu(fn: Callable[[], pd.Series], repeat: int) -> tuple[float, pd.Series]:
    best, out = float("inf"), pd.Series(dtype=np.float64)
    for _ in range(repeat):
        start = time.process_time()
        out = fn()
        best = min(best, time.process_time() - start)
    return best, out


def _lists(matrix: InteractionMatrix, k: int) -> dict[str, pd.DataFrame]:
    """Top-``k`` lists of every shopper: popularity, buy-again and half of each."""
    x = matrix.matrix.tocsr()
    items = np.asarray(matrix.items.external_ids, dtype=object)
    users = np.asarray(matrix.users.external_ids, dtype=object)
    best_sellers = np.argsort(-np.diff((x > 0).tocsc().indptr), kind="stable")[: 2 * k]
    coo = x.tocoo()
    own = pd.DataFrame({"u": coo.row, "i": coo.col, "v": coo.data})
    own = own.sort_values(["u", "v", "i"], ascending=[True, False, True], kind="stable")
    own["r"] = own.groupby("u").cumcount()

    def frame(u: np.ndarray, i: np.ndarray) -> pd.DataFrame:
        out = pd.DataFrame({Columns.USER: users[u], Columns.ITEM: items[i]})
        out = out.drop_duplicates().reset_index(drop=True)
        out[Columns.RANK] = out.groupby(Columns.USER).cumcount() + 1
        return out[out[Columns.RANK] <= k]

    n = len(users)
    popular = frame(np.repeat(np.arange(n), k), np.tile(best_sellers[:k], n))
    again = own[own["r"] < k]
    buy_again = frame(again["u"].to_numpy(), again["i"].to_numpy())
    half = own[own["r"] < k // 2]
    mixed = frame(
        np.concatenate([half["u"].to_numpy(), np.repeat(np.arange(n), k)]),
        np.concatenate([half["i"].to_numpy(), np.tile(best_sellers[:k], n)]),
    )
    mixed = mixed.sort_values([Columns.USER, Columns.RANK], kind="stable")
    return {"best-sellers": popular, "own-staples": buy_again, "mixed": mixed}


def _in_evaluation(path: Path, models: str) -> None:
    """Old and new per-user diversity on every call of a real evaluation (see the docstring)."""
    from recsys_core import metrics
    from recsys_core.data.loaders import load_event_file
    from recsys_core.evaluation import ALL_MODELS, EvaluationConfig, evaluate

    new_fn = metrics.per_user_intra_list_diversity
    calls: list[tuple[str, int, float, float, float]] = []
    stage = ["?"]

    def timed(top: pd.DataFrame, item_vectors: Any, item_index: Any) -> pd.Series:
        start = time.process_time()
        new = new_fn(top, item_vectors, item_index)
        new_s = time.process_time() - start
        start = time.process_time()
        old = _old_per_user(top, item_vectors, item_index)
        old_s = time.process_time() - start
        diff = float(np.max(np.abs(new.to_numpy() - old.reindex(new.index).to_numpy())))
        calls.append((stage[0], len(new), old_s, new_s, diff))
        return new

    def progress(message: str, fraction: float) -> None:
        stage[0] = message.removeprefix("recommending with ")

    metrics.per_user_intra_list_diversity = timed  # type: ignore[assignment]
    dataset = load_event_file(path)
    chosen = ALL_MODELS if models == "all" else tuple(models.split(","))
    evaluate(dataset, EvaluationConfig(models=chosen), progress=progress)
    print(f"{'model':<12} {'users':>6} {'old s':>7} {'new s':>7} {'old/new':>7} {'max |diff|':>10}")
    for model, users, old_s, new_s, diff in calls:
        ratio = old_s / max(new_s, 1e-9)
        print(f"{model:<12} {users:>6} {old_s:>7.3f} {new_s:>7.3f} {ratio:>7.1f} {diff:>10.2e}")
    old_total, new_total = sum(c[2] for c in calls), sum(c[3] for c in calls)
    print(
        f"{len(calls)} calls: old {old_total:.2f} CPU s, new {new_total:.2f} CPU s, "
        f"max |diff| {max((c[4] for c in calls), default=float('nan')):.2e}"
    )


def main() -> None:
    """Build the case, time old and new, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--shoppers", type=int, default=30_000)
    parser.add_argument("--items", type=int, default=25_000)
    parser.add_argument("--test-days", type=int, default=14)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--in-evaluation", action="store_true")
    parser.add_argument("--models", default="all")
    args = parser.parse_args()

    if args.data is not None:
        log = pd.read_parquet(args.data)
    else:
        log = generate_grocery_log(args.lines, args.shoppers, args.items)
    if args.in_evaluation:
        with tempfile.TemporaryDirectory() as tmp:
            path = args.data or Path(tmp) / "log.parquet"
            if args.data is None:
                log.to_parquet(path)
            _in_evaluation(path, args.models)
        return
    cutoff = log[Columns.TIMESTAMP].max() - pd.Timedelta(days=args.test_days)
    matrix = InteractionMatrix.from_events(log[log[Columns.TIMESTAMP] < cutoff])
    vectors = matrix.matrix.T.tocsr()
    print(
        f"train matrix {matrix.shape[0]} shoppers x {matrix.shape[1]} items, "
        f"{matrix.nnz} non-zeros; k={args.k}; CPU s best of {args.repeat}"
    )
    print(
        f"{'lists':<12} {'users':>6} {'pairs':>9} {'distinct':>9} {'summed work':>12} "
        f"{'pairs work':>11} {'old s':>7} {'summed s':>9} {'pairs s':>8} {'auto s':>7} "
        f"{'old/auto':>8} {'max |diff|':>10}"
    )
    for name, top in _lists(matrix, args.k).items():
        old_s, old = _cpu(lambda top=top: _old_per_user(top, vectors, matrix.items), args.repeat)
        times, diffs = {}, []
        for method in ("summed", "pairs", "auto"):
            seconds, new = _cpu(
                lambda top=top, method=method: diversity.per_user_intra_list_diversity(
                    top, vectors, matrix.items, method=method
                ),
                args.repeat,
            )
            times[method] = seconds
            if not new.index.equals(old.index):
                raise SystemExit(f"{name}/{method}: the users differ from the old code's")
            diffs.append(float(np.max(np.abs(new.to_numpy() - old.to_numpy()))))
        # the work estimates auto compares
        rows = matrix.items.to_internal(top[Columns.ITEM])
        unique_rows, column = np.unique(rows, return_inverse=True)
        unit = sp.csr_matrix(normalize(vectors[unique_rows], norm="l2"))
        n_items = top.groupby(Columns.USER).size().to_numpy(dtype=np.float64)
        n_pairs = int(n_items @ (n_items - 1.0) / 2.0)
        codes = pd.factorize(top[Columns.USER])[0]
        _, keys = diversity._listed_pairs(codes, column.ravel(), len(unique_rows))
        summed_work = float(np.diff(unit.indptr)[column.ravel()].sum())
        pairs_work = diversity._pairs_cost(unit, n_pairs)
        print(
            f"{name:<12} {len(old):>6} {n_pairs:>9} {len(np.unique(keys)):>9} "
            f"{summed_work:>12.3g} {pairs_work:>11.3g} {old_s:>7.3f} {times['summed']:>9.3f} "
            f"{times['pairs']:>8.3f} {times['auto']:>7.3f} {old_s / times['auto']:>8.1f} "
            f"{max(diffs):>10.2e}"
        )


if __name__ == "__main__":
    main()
