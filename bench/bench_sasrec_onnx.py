"""``sasrec`` served by TorchScript or by ONNX Runtime, fp32 and int8, in one run.

The issue leaves the export format open ("TorchScript or ONNX Runtime, your call,
measured"); this bench measures both on the same trained model:

* **TorchScript** fp32 / int8: :func:`recsys_core.models.sequence.serving.export_encoder`
  (what the lab ships; int8 = ``torch.ao.quantization.quantize_dynamic`` on every Linear and
  an int8 item table with one scale per row);
* **ONNX Runtime** fp32: the same encoder exported with ``torch.onnx.export`` (the legacy
  TorchScript-based exporter by default, ``--exporter dynamo`` for the ``torch.export`` one;
  the step's item bag is a gather + sum, because ``embedding_bag`` with ``padding_idx`` does
  not export: equal to the lab's encoder within 1e-6, checked below);
  int8: ``onnxruntime.quantization.quantize_dynamic`` (int8 weights of MatMul/Gemm/Gather,
  activations quantised on the fly).

For each: size on disk, NDCG@10 of the test shoppers (the evaluate split of Online Retail,
already-bought items kept, as ``bench_sasrec.py``), every shopper in batch (``--threads``
threads), and p50/p99 per uncached answer (one thread, one shopper per call: build the
window, encode, add the repeat logits, top 10), after a few warm-up calls of each runtime.
The answers of the four runtimes are timed **interleaved** (each sampled shopper answered
by each runtime in turn), so a load change on the shared machine hits all of them alike;
the answering thread's CPU time is printed too (blind to scheduler stalls).

Needs ``onnxruntime``, ``onnx`` and (for ``--exporter dynamo``) ``onnxscript``; they are
not requirements of the lab (``pip install onnxruntime onnx onnxscript``).

Run::

    OMP_NUM_THREADS=2 python bench/bench_sasrec.py --save-model /tmp/sasrec-bench
    OMP_NUM_THREADS=2 python bench/bench_sasrec_onnx.py --model /tmp/sasrec-bench

(without ``--model`` a model is trained first with ``--max-epochs`` epochs.)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sasrec import K, frame_from_scores, ndcg, serving_inputs  # noqa: E402

from recsys_core.columns import Columns  # noqa: E402
from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.evaluation import relevant_items  # noqa: E402
from recsys_core.models.sasrec import SASRecRecommender  # noqa: E402
from recsys_core.split import temporal_split  # noqa: E402

#: ``(items, events, gaps, last)`` as numpy -> ``(scores (b, n_items), gate (b,))``.
Runtime = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
INPUTS = ("items", "events", "gaps", "last")


def gather_encoder(net: object) -> object:
    """The lab's fp32 inference encoder with the step bag as gather + sum (exportable)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    from recsys_core.models.sequence.serving import InferenceEncoder

    class GatherEncoder(InferenceEncoder):
        def forward(self, items, events, gaps, last):  # type: ignore[no-untyped-def]
            table = self.item_table()
            b, t, _ = items.shape
            # row 0 of both tables is the (zero) padding row, so a plain sum equals the bag
            summed = F.embedding(items, table).sum(2) + F.embedding(events, self.event.weight).sum(
                2
            )
            count = (items > 0).sum(2, keepdim=True).clamp(min=1).to(summed.dtype)
            positions = torch.arange(t, device=items.device)
            x = summed / count + self.gap(gaps) + self.position(positions)[None]
            for block in self.blocks:
                x = block(x)[0]
            hidden = self.norm(x)[torch.arange(b, device=items.device), last]
            return hidden @ table[1:].T + self.item_bias, self.repeat_gate(hidden).squeeze(-1)

    return GatherEncoder(net).eval()  # type: ignore[arg-type]


def export_onnx(net: object, path: Path, sample: tuple[object, ...], exporter: str) -> None:
    """Write the fp32 ONNX encoder with dynamic batch, steps and basket width."""
    import torch

    encoder = gather_encoder(net)
    names = {"input_names": list(INPUTS), "output_names": ["scores", "gate"]}
    with torch.no_grad():
        if exporter == "dynamo":
            from torch.export import Dim

            b, t, s = Dim("b"), Dim("t", max=1024), Dim("s", max=1024)
            shapes = {"items": {0: b, 1: t, 2: s}, "events": {0: b, 1: t, 2: s}}
            shapes.update({"gaps": {0: b, 1: t}, "last": {0: b}})
            torch.onnx.export(
                encoder, sample, str(path), dynamo=True, dynamic_shapes=shapes,
                external_data=False, **names,
            )  # fmt: skip
        else:
            axes = {"items": {0: "b", 1: "t", 2: "s"}, "events": {0: "b", 1: "t", 2: "s"}}
            axes.update({"gaps": {0: "b", 1: "t"}, "last": {0: "b"}})
            axes.update({"scores": {0: "b"}, "gate": {0: "b"}})
            torch.onnx.export(
                encoder, sample, str(path), dynamo=False, dynamic_axes=axes, opset_version=18,
                **names,
            )  # fmt: skip


def onnx_runtime(path: Path, threads: int) -> Runtime:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(*arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores, gate = session.run(None, dict(zip(INPUTS, arrays, strict=True)))
        return scores, gate

    return run


def torchscript_runtime(encoder: object) -> Runtime:
    import torch

    def run(*arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            scores, gate = encoder(*(torch.from_numpy(a) for a in arrays))  # type: ignore[operator]
        return scores.numpy(), gate.numpy()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="a saved sasrec (bench_sasrec --save-model)")
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="threads of the batch pass")
    parser.add_argument("--latency-users", type=int, default=300)
    parser.add_argument("--exporter", choices=("legacy", "dynamo"), default="legacy")
    args = parser.parse_args()

    import onnxruntime
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from recsys_core.models.sequence.serving import export_encoder, save_encoder

    print(
        f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}; torch "
        f"{torch.__version__}, onnxruntime {onnxruntime.__version__}"
    )
    dataset = load_dataset("online-retail")
    split = temporal_split(dataset.events, test_days=30, test_events=("purchase",))
    relevant = relevant_items(split, ("purchase",))
    test_users = sorted(relevant[Columns.USER].unique())
    if args.model:
        model = SASRecRecommender.load(args.model)
    else:
        started = time.perf_counter()
        model = SASRecRecommender(max_epochs=args.max_epochs, threads=args.threads).fit_log(
            split.train
        )
        print(f"trained sasrec in {time.perf_counter() - started:.0f}s")
    net, items_ext, rows, known, tensors, windows, repeat, base = serving_inputs(model, test_users)
    max_len = model.config.max_len

    def window(users: np.ndarray, length: int) -> tuple[np.ndarray, ...]:
        win = windows[users]
        it, ev, gp = tensors.window_batch(win, length)
        last = np.clip(win[:, 1] - win[:, 0] - 1, 0, length - 1).astype(np.int64)
        return it.numpy(), ev.numpy(), gp.numpy(), last

    tmp = Path(tempfile.mkdtemp(prefix="sasrec-onnx-"))
    sizes: dict[str, float] = {}
    batch_rt: dict[str, Runtime] = {}
    single_rt: dict[str, Runtime] = {}
    for name, quantize in (("TorchScript fp32", False), ("TorchScript int8", True)):
        encoder = export_encoder(net, quantize=quantize)
        sizes[name] = save_encoder(encoder, tmp / f"{name[-4:]}.pt") / 1e6
        batch_rt[name] = single_rt[name] = torchscript_runtime(encoder)
    sample = tuple(torch.from_numpy(a) for a in window(np.arange(2), 3))
    started = time.perf_counter()
    export_onnx(net, tmp / "fp32.onnx", sample, args.exporter)
    print(f"ONNX export ({args.exporter}) {time.perf_counter() - started:.1f}s")
    quantize_dynamic(
        str(tmp / "fp32.onnx"),
        str(tmp / "int8.onnx"),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm", "Gather"],
    )
    for name, file in (("ONNX Runtime fp32", "fp32.onnx"), ("ONNX Runtime int8", "int8.onnx")):
        # the model and any external-data file next to it
        sizes[name] = sum(p.stat().st_size for p in tmp.glob(f"{file}*")) / 1e6
        batch_rt[name] = onnx_runtime(tmp / file, args.threads)
        single_rt[name] = onnx_runtime(tmp / file, 1)

    # warm-up: TorchScript optimises a graph on its first calls, ONNX Runtime allocates
    torch.set_num_threads(args.threads)
    for runtimes in (batch_rt, single_rt):
        for run in runtimes.values():
            for length in (1, 5, max_len):
                run(*window(np.arange(min(64, model.n_users)), length))
                run(*window(np.arange(1), length))

    # ------------------------------------------------------------ batch: quality, throughput
    reference: np.ndarray | None = None
    quality: dict[str, dict[str, float]] = {}
    batch_s: dict[str, float] = {}
    batch_cpu: dict[str, float] = {}
    torch.set_num_threads(args.threads)
    for name, run in batch_rt.items():
        started, cpu = time.perf_counter(), time.process_time()
        scores_all = np.zeros((model.n_users, model.n_items))
        gates = np.zeros(model.n_users)
        order = np.argsort(windows[:, 1] - windows[:, 0], kind="stable")
        for b in range(0, model.n_users, 256):
            chosen = order[b : b + 256]
            length = int(max(1, (windows[chosen, 1] - windows[chosen, 0]).max()))
            s, g = run(*window(chosen, min(length, max_len)))
            scores_all[chosen], gates[chosen] = s, g
        np.add.at(scores_all, (repeat.row, repeat.col), base + gates[repeat.row])
        batch_s[name] = time.perf_counter() - started
        batch_cpu[name] = time.process_time() - cpu
        if reference is None:
            reference = scores_all
        diff = float(np.abs(scores_all - reference).max())
        reco = frame_from_scores(
            np.asarray(test_users, dtype=object)[known], items_ext, scores_all[rows[known]]
        )
        quality[name] = ndcg(reco, relevant)
        print(
            f"{name}: batch {batch_s[name]:.1f}s, NDCG@10 {quality[name]['ndcg']}, "
            f"max |score - TorchScript fp32| {diff:.2e}",
            flush=True,
        )

    # ------------------------------------------------------------ one answer, interleaved
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    sample_users = rng.choice(np.flatnonzero(windows[:, 1] > windows[:, 0]), args.latency_users)
    times: dict[str, list[float]] = {name: [] for name in single_rt}
    cpu_times: dict[str, list[float]] = {name: [] for name in single_rt}
    for user in sample_users:
        for name, run in single_rt.items():
            t0, c0 = time.perf_counter(), time.thread_time()
            arrays = window(np.array([user]), int(windows[user, 1] - windows[user, 0]))
            s, g = run(*arrays)
            scores = s[0].astype(np.float64)
            lo, hi = model.repeat_.indptr[user], model.repeat_.indptr[user + 1]
            scores[repeat.col[lo:hi]] += base[lo:hi] + float(g[0])
            top = np.argpartition(-scores, K)[:K]
            top[np.argsort(-scores[top])]
            times[name].append(time.perf_counter() - t0)
            cpu_times[name].append(time.thread_time() - c0)

    ref_size = sizes["TorchScript fp32"]
    ref_ndcg = quality["TorchScript fp32"]["ndcg"]
    print(
        f"\n{model.n_users} shoppers, {model.n_items} items, dim {model.config.dim}, "
        f"{model.config.blocks} blocks; batch with {args.threads} threads, answers with 1"
    )
    print(
        "(answer CPU ms: CPU time of the answering thread, blind to the scheduler stalls "
        "of a shared machine; batch CPU s: every thread of the process)"
    )
    print(
        "| runtime | size on disk | vs TS fp32 | NDCG@10 | change | p50 ms | p99 ms | "
        "CPU p50 / p99 ms | batch s | batch CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in single_rt:
        ms = np.asarray(times[name]) * 1e3
        cpu_ms = np.asarray(cpu_times[name]) * 1e3
        print(
            f"| {name} | {sizes[name]:.2f} MB | {ref_size / sizes[name]:.2f}x smaller | "
            f"{quality[name]['ndcg']:.4f} | {quality[name]['ndcg'] - ref_ndcg:+.4f} | "
            f"{np.percentile(ms, 50):.2f} | {np.percentile(ms, 99):.2f} | "
            f"{np.percentile(cpu_ms, 50):.2f} / {np.percentile(cpu_ms, 99):.2f} | "
            f"{batch_s[name]:.1f} | {batch_cpu[name]:.1f} |"
        )
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
