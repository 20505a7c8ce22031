"""The sequence transformer (``sasrec``) on Online Retail: training, quality, compression, serving.

Protocol as ``evaluate``: the events before the last 30 days train every model
(``recsys_core.split.temporal_split``), the purchases of the last 30 days are the relevant
items (``recsys_core.evaluation.relevant_items``), NDCG@10 by
``recsys_core.metrics.ranking_metrics`` with already-bought items kept in the lists
(Online Retail is repurchase-heavy; the lab's default there). Printed:

1. train time (wall clock) and the process's peak resident memory after training;
2. NDCG@10 / recall@10 of sasrec next to popularity, buy-again (the shopper's own items by
   purchase count, then recency, padded with popularity) and ALS (the dataset's preset);
3. fp32 vs int8 (``quantize_dynamic`` on every Linear + int8 item table) TorchScript
   encoders: size on disk, NDCG@10, p50/p99 per uncached answer (one thread, one shopper:
   build the window, encode, add repeat logits, top 10), batch throughput over every shopper
   (``--threads``), and the cached answer (one dot product per item) and one incremental step
   (:class:`~recsys_core.models.sequence.serving.SequenceCache`) against a full pass.

Run: ``OMP_NUM_THREADS=2 python bench/bench_sasrec.py [--max-epochs 8] [--threads 2]``
(``--device cuda`` on a GPU machine; ``--save-model DIR`` keeps the trained model, e.g. for
``bench/bench_sasrec_onnx.py --model DIR``). Figures on a shared machine are noisy: note the load.

``--folds N`` prints only the quality table over N rolling 30-day test windows (fold ``f``
ends where fold ``f - 1``'s test window starts; fold 0 is the evaluate split) and the mean.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.columns import Columns  # noqa: E402
from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.evaluation import relevant_items  # noqa: E402
from recsys_core.interactions import InteractionMatrix  # noqa: E402
from recsys_core.metrics import ranking_metrics  # noqa: E402
from recsys_core.models import create_model  # noqa: E402
from recsys_core.models.interface import recommendation_frame  # noqa: E402
from recsys_core.models.sasrec import SASRecRecommender  # noqa: E402
from recsys_core.presets import preset_for  # noqa: E402
from recsys_core.split import temporal_split  # noqa: E402

K = 10


def ndcg(reco: pd.DataFrame, relevant: pd.DataFrame) -> dict[str, float]:
    m = ranking_metrics(reco, relevant, K)
    return {"ndcg": round(m[f"ndcg@{K}"], 4), "recall": round(m[f"recall@{K}"], 4)}


def buy_again(train: pd.DataFrame, users: list[str]) -> pd.DataFrame:
    """Each shopper's own purchased items by count, then recency; popularity pads."""
    bought = train[train[Columns.EVENT] == "purchase"]
    popular = bought.groupby(Columns.ITEM)[Columns.USER].nunique().sort_values(ascending=False)
    stats = bought.groupby([Columns.USER, Columns.ITEM]).agg(
        n=(Columns.TIMESTAMP, "size"), last=(Columns.TIMESTAMP, "max")
    )
    stats = stats.reset_index().sort_values(
        [Columns.USER, "n", "last"], ascending=[True, False, False]
    )
    own = stats.groupby(Columns.USER)[Columns.ITEM].apply(list).to_dict()
    rows_u, rows_i = [], []
    for user in users:
        items = own.get(user, [])[:K]
        for item in popular.index:
            if len(items) >= K:
                break
            if item not in items:
                items.append(item)
        rows_u += [user] * len(items)
        rows_i += items
    ranks = pd.Series(rows_u).groupby(rows_u).cumcount().to_numpy() + 1
    return recommendation_frame(
        np.array(rows_u), np.array(rows_i), K + 1.0 - ranks, ranks, cold_start=False
    )


def frame_from_scores(users: np.ndarray, items: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    top_scores = np.take_along_axis(scores, top, axis=1)
    return recommendation_frame(
        np.repeat(users, K),
        items[top.ravel()],
        top_scores.ravel(),
        np.tile(np.arange(1, K + 1), len(users)),
        cold_start=False,
    )


def fold_quality(
    events: pd.DataFrame, cutoff: pd.Timestamp, args: argparse.Namespace
) -> dict[str, float]:
    """NDCG@10 of buy-again, ALS and sasrec on the 30 days from ``cutoff``."""
    window = events[events[Columns.TIMESTAMP] < cutoff + pd.Timedelta(days=30)]
    split = temporal_split(window, cutoff=cutoff, test_events=("purchase",))
    relevant = relevant_items(split, ("purchase",))
    users = sorted(relevant[Columns.USER].unique())
    preset = preset_for("online-retail")
    matrix = InteractionMatrix.from_events(split.train, preset.weights)
    als = create_model("als", **preset.model_params["als"], seed=42).fit(matrix)
    started = time.perf_counter()
    model = SASRecRecommender(
        max_epochs=args.max_epochs, threads=args.threads, device=args.device
    ).fit_log(split.train)
    print(f"  fold at {cutoff.date()}: sasrec fit {time.perf_counter() - started:.0f}s")
    return {
        "buy-again": ndcg(buy_again(split.train, users), relevant)["ndcg"],
        "als": ndcg(als.recommend(users, K, filter_seen=False), relevant)["ndcg"],
        "sasrec": ndcg(model.recommend(users, K, filter_seen=False), relevant)["ndcg"],
    }


def run_folds(args: argparse.Namespace) -> None:
    dataset = load_dataset("online-retail")
    first = temporal_split(dataset.events, test_days=30).cutoff
    assert first is not None
    rows = {}
    for fold in range(args.folds):
        cutoff = first - pd.Timedelta(days=30 * fold)
        rows[str(cutoff.date())] = fold_quality(dataset.events, cutoff, args)
        print(f"  {cutoff.date()}: {rows[str(cutoff.date())]}")
    table = pd.DataFrame(rows).T
    print(f"\nNDCG@10 per fold (already-bought items kept):\n{table.to_string()}")
    print(f"mean over {args.folds} folds:\n{table.mean().round(4).to_string()}")
    print(f"load average at the end: {os.getloadavg()}")


def serving_inputs(model: Any, test_users: Any) -> tuple[Any, ...]:
    """What serving a trained sasrec outside the lab needs (shared with bench_sasrec_onnx):
    the network, external item ids, test shoppers' rows and whether known, the step
    tensors, each shopper's window of steps, and the repeat matrix with its gate-free base."""
    import torch

    from recsys_core.models.sequence.training import StepTensors

    net = model.network()
    items_ext = model.items_.to_external(np.arange(model.n_items))
    rows = model.users_.to_internal(test_users)
    steps = model.steps_
    tensors = StepTensors.of(steps, torch.device("cpu"))
    windows = np.stack([steps.user_offsets[:-1], steps.user_offsets[1:]], axis=1)
    gate_w = model.weights_["repeat_gate.weight"][0].astype(np.float64)
    gate_b = float(model.weights_["repeat_gate.bias"][0])
    repeat = model.repeat_.tocoo()
    base = repeat.data - (model.user_state_[repeat.row] @ gate_w + gate_b)
    return net, items_ext, rows, rows >= 0, tensors, windows, repeat, base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--latency-users", type=int, default=300)
    parser.add_argument("--folds", type=int, default=0, help="quality over N folds only")
    parser.add_argument(
        "--save-model", default=None, help="also save the trained sasrec to this folder"
    )
    args = parser.parse_args()
    if args.folds:
        run_folds(args)
        return

    import torch

    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}")
    dataset = load_dataset("online-retail")
    split = temporal_split(dataset.events, test_days=30, test_events=("purchase",))
    relevant = relevant_items(split, ("purchase",))
    train = split.train
    test_users = sorted(relevant[Columns.USER].unique())
    print(f"train rows {len(train)}, cutoff {split.cutoff}, test shoppers {len(test_users)}")

    # ---------------------------------------------------------------- baselines
    preset = preset_for("online-retail")
    matrix = InteractionMatrix.from_events(train, preset.weights)
    table: dict[str, dict[str, float]] = {}
    popularity = create_model("popularity").fit(matrix)
    table["popularity"] = ndcg(popularity.recommend(test_users, K, filter_seen=False), relevant)
    table["buy-again"] = ndcg(buy_again(train, test_users), relevant)
    started = time.perf_counter()
    als = create_model("als", **preset.model_params["als"], seed=42).fit(matrix)
    table["als"] = ndcg(als.recommend(test_users, K, filter_seen=False), relevant)
    print(f"ALS fit + answer {time.perf_counter() - started:.1f}s")

    # ---------------------------------------------------------------- training
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    model = SASRecRecommender(
        max_epochs=args.max_epochs, threads=args.threads, device=args.device
    ).fit_log(
        train,
        progress=lambda msg, _f: print(f"  {time.perf_counter() - started:6.0f}s {msg}"),
    )
    fit_seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"sasrec fit {fit_seconds:.0f}s ({fit_seconds / 60:.1f} min) on {args.device} with "
        f"{args.threads} threads; best epoch {model.epochs_}; validation NDCG@10 per epoch "
        f"{np.round(model.validation_ndcg_, 4).tolist()}; peak RSS {peak:.0f} MB "
        f"(before training {before:.0f} MB); load average after: {os.getloadavg()}"
    )
    table["sasrec"] = ndcg(model.recommend(test_users, K, filter_seen=False), relevant)
    if args.save_model:  # e.g. for bench/bench_sasrec_onnx.py --model DIR
        model.save(args.save_model)
        print(f"saved the trained sasrec to {args.save_model}")

    # ---------------------------------------------------------------- compression
    from recsys_core.models.sequence.serving import (
        SequenceCache,
        export_encoder,
        save_encoder,
    )

    torch.set_num_threads(args.threads)
    net, items_ext, rows, known, tensors, windows, repeat, base = serving_inputs(model, test_users)
    with tempfile.TemporaryDirectory() as tmp:
        weights_mb = sum(v.nbytes for v in model.weights_.values()) / 1e6
        print(f"fp32 weights in arrays.npz: {weights_mb:.2f} MB")
        encoders = {}
        for name, quantize in (("fp32", False), ("int8", True)):
            encoder = export_encoder(net, quantize=quantize)
            size = save_encoder(encoder, Path(tmp) / f"{name}.pt") / 1e6
            encoders[name] = encoder
            # quality: every test shopper's scores from this encoder
            torch.set_num_threads(args.threads)
            started = time.perf_counter()
            scores_all = np.zeros((model.n_users, model.n_items))
            gates = np.zeros(model.n_users)
            with torch.no_grad():
                for b in range(0, model.n_users, 256):
                    win = windows[b : b + 256]
                    it, ev, gp = tensors.window_batch(win, model.config.max_len)
                    last = torch.from_numpy(np.maximum(win[:, 1] - win[:, 0] - 1, 0))
                    s, g = encoder(it, ev, gp, last)
                    scores_all[b : b + 256] = s.numpy()
                    gates[b : b + 256] = g.numpy()
            np.add.at(scores_all, (repeat.row, repeat.col), base + gates[repeat.row])
            batch_s = time.perf_counter() - started
            reco = frame_from_scores(
                np.asarray(test_users, dtype=object)[known], items_ext, scores_all[rows[known]]
            )
            quality = ndcg(reco, relevant)
            table[f"sasrec {name} TorchScript"] = quality
            # latency: one shopper per call, one thread
            torch.set_num_threads(1)
            rng = np.random.default_rng(0)
            sample = rng.choice(np.flatnonzero(windows[:, 1] > windows[:, 0]), args.latency_users)
            times = []
            with torch.no_grad():
                for user in sample:
                    t0 = time.perf_counter()
                    win = windows[user : user + 1]
                    it, ev, gp = tensors.window_batch(win, int(win[0, 1] - win[0, 0]))
                    s, g = encoder(it, ev, gp, torch.tensor([int(win[0, 1] - win[0, 0] - 1)]))
                    scores = s.numpy()[0]
                    lo, hi = model.repeat_.indptr[user], model.repeat_.indptr[user + 1]
                    scores[repeat.col[lo:hi]] += base[lo:hi] + float(g[0])
                    top = np.argpartition(-scores, K)[:K]
                    top[np.argsort(-scores[top])]
                    times.append(time.perf_counter() - t0)
            ms = np.array(times) * 1e3
            print(
                f"{name}: {size:.2f} MB on disk; NDCG@10 {quality['ndcg']}; uncached answer "
                f"p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms; "
                f"all {model.n_users} shoppers in batch {batch_s:.1f}s ({args.threads} threads)"
            )

    # ---------------------------------------------------------------- cached and incremental
    times = []
    for user in rows[known][: args.latency_users]:
        t0 = time.perf_counter()
        model._recommend_rows(np.array([user]), K, False)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    print(
        f"cached answer (stored state): p50 {np.percentile(ms, 50):.2f} ms, p99 "
        f"{np.percentile(ms, 99):.2f} ms"
    )
    torch.set_num_threads(1)
    longest = int(np.argmax(windows[:, 1] - windows[:, 0]))
    win = windows[longest : longest + 1]
    it, ev, gp = tensors.window_batch(win, int(win[0, 1] - win[0, 0]))
    cache = SequenceCache(net)
    full_t, step_t = [], []
    with torch.no_grad():
        for _ in range(50):
            t0 = time.perf_counter()
            net(it, ev, gp)
            full_t.append(time.perf_counter() - t0)
            cache.start("u", it[:, :-1], ev[:, :-1], gp[:, :-1])
            t0 = time.perf_counter()
            cache.append("u", it[:, -1:], ev[:, -1:], gp[:, -1:])
            step_t.append(time.perf_counter() - t0)
    print(
        f"new event for a shopper with {it.shape[1]} steps: full pass p50 "
        f"{np.median(full_t) * 1e3:.2f} ms, cached one step p50 {np.median(step_t) * 1e3:.2f} ms"
    )

    print("\nNDCG@10 / recall@10 on the test window (already-bought items kept):")
    for name, m in table.items():
        print(f"  {name:26s} {m['ndcg']:.4f}  {m['recall']:.4f}")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
