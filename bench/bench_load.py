"""Load test of the REST API on loopback, and the naive "load the model per call" pattern.

1. Starts ``python -m recsys_core serve`` on 127.0.0.1 (a free port) over the saved lab and
   sends ``--requests`` (2,000) ``GET /recommend`` requests for ``--users`` (500+) different
   known shoppers, ``--concurrency`` (16) at a time, from a bounded asyncio client
   (``--client aiohttp``, the default, or ``httpx``: one connection pool of ``--concurrency``
   keep-alive connections; every request has a 30 s timeout; the run stops after
   ``--max-seconds``). The client runs on the same cores as the server, so its own CPU time
   per request is printed too. Per model (ALS and the ranker): throughput, p50, p99, errors, and
   whether ``/metrics`` counted exactly the requests sent. Cold caches: the server is
   restarted for each model and each shopper is asked once per k (k cycles 5, 10, 20), so
   the first 3 x ``--users`` requests are cache misses and the rest repeat earlier questions.
   The server's CPU time (every worker, from ``/proc``) per request is printed too: unlike
   the wall-clock figures it hardly depends on what else the machine is running.
   ``--distinct`` asks every request for a different shopper at k=10 (all cache misses).
2. In one process, the seed's pattern (load the saved ALS model inside every prediction
   call) against the service's answer for the same shoppers, as a ratio of mean latencies.

Run after ``python -m recsys_core train --dataset online-retail``::

    python bench/bench_load.py [--requests 2000] [--users 600] [--concurrency 16] [--workers 2]
                               [--client aiohttp|httpx] [--distinct] [--models als,ranker]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.models import load_model  # noqa: E402
from recsys_core.serving import RecommendationService, load_lab, resolve_version  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(workers: int, dataset: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "recsys_core", "serve", "--port", str(port)]
    cmd += ["--workers", str(workers), "--dataset", dataset]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                time.sleep(2.0)  # let every worker finish its warm-up
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
        if proc.poll() is not None:
            break
    proc.terminate()
    raise SystemExit("the server did not start")


def _tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of a process and its descendants (Linux ``/proc``)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        frontier = [pid for pid in children if pid not in tree]
        tree.update(frontier)
    return sum(times.get(pid, 0.0) for pid in tree)


def _count(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('recsys_requests_total{endpoint="/recommend"')
    )


async def _load_aiohttp(
    url: str, paths: list[str], concurrency: int, max_seconds: float
) -> tuple[list[float], int, float]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    queue = iter(paths)
    deadline = time.monotonic() + max_seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as client:

        async def worker() -> None:
            nonlocal errors
            for path in queue:
                if time.monotonic() > deadline:
                    return
                start = time.perf_counter()
                try:
                    async with client.get(path) as response:
                        await response.read()
                        ok = response.status == 200
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    ok = False
                latencies.append((time.perf_counter() - start) * 1000)
                errors += not ok

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


async def _load_httpx(
    url: str, paths: list[str], concurrency: int, max_seconds: float
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    queue = iter(paths)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    deadline = time.monotonic() + max_seconds

    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors
            for path in queue:
                if time.monotonic() > deadline:
                    return
                start = time.perf_counter()
                try:
                    response = await client.get(path)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - start) * 1000)
                errors += not ok

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--models", default="als,ranker")
    parser.add_argument("--max-seconds", type=float, default=120)
    parser.add_argument("--naive-calls", type=int, default=20)
    parser.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp")
    parser.add_argument(
        "--distinct", action="store_true", help="a different shopper per request, k=10"
    )
    args = parser.parse_args()
    load = _load_aiohttp if args.client == "aiohttp" else _load_httpx

    folder = resolve_version(args.dataset)
    lab = load_lab(folder)
    known = np.intersect1d(
        lab.models["als"].users_.external_ids, lab.ranker.generator_.users_.external_ids
    )
    rng = np.random.default_rng(0)
    n_users = min(args.requests, len(known)) if args.distinct else args.users
    users = [str(u) for u in rng.choice(known, size=n_users, replace=False)]
    asked = "each a different shopper, k=10" if args.distinct else "k cycling 5, 10, 20"
    print(
        f"{args.requests} GET /recommend over {len(users)} shoppers ({asked}), "
        f"{args.concurrency} concurrent clients (asyncio + {args.client}), {args.workers} "
        "uvicorn workers, loopback; client and server on the same cores; machine shared "
        "with other jobs\n"
    )
    print(
        "| model | requests | req/s | p50 ms | p99 ms | errors | /metrics counted | "
        "server CPU ms per request | client CPU ms per request | client share of CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        if args.distinct:
            paths = [
                f"/recommend?user_id={users[i % len(users)]}&k=10&model={model}"
                for i in range(args.requests)
            ]
        else:
            paths = [
                f"/recommend?user_id={users[i % len(users)]}"
                f"&k={(5, 10, 20)[(i // len(users)) % 3]}&model={model}"
                for i in range(args.requests)
            ]
        proc, url = _start_server(args.workers, args.dataset)
        try:
            before = _count(url)
            cpu_before = _tree_cpu_seconds(proc.pid)
            client_before = time.process_time()
            latencies, errors, elapsed = asyncio.run(
                load(url, paths, args.concurrency, args.max_seconds)
            )
            client_cpu = time.process_time() - client_before
            cpu = _tree_cpu_seconds(proc.pid) - cpu_before
            counted = _count(url) - before
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        sent = len(latencies)
        print(
            f"| {model} | {sent} | {sent / elapsed:.0f} | {np.percentile(latencies, 50):.1f} | "
            f"{np.percentile(latencies, 99):.1f} | {errors} | {counted:.0f} of {sent} | "
            f"{cpu / max(sent, 1) * 1000:.2f} | {client_cpu / max(sent, 1) * 1000:.2f} | "
            f"{client_cpu / max(client_cpu + cpu, 1e-9):.0%} |",
            flush=True,
        )

    # the seed's pattern: load the model inside every prediction call
    service = RecommendationService(lab)
    service.recommend(users[-1], 10, "als", policy="lab-rule")
    calls = users[: args.naive_calls]
    start = time.perf_counter()
    for user in calls:
        model = load_model(folder / "als")
        model.recommend([user], 10, filter_seen=False)
    naive = (time.perf_counter() - start) / len(calls)
    start = time.perf_counter()
    for user in calls:
        service.recommend(user, 11, "als", policy="lab-rule")  # k=11: not in the cache
    served = (time.perf_counter() - start) / len(calls)
    print(
        f"\nnaive (load the ALS model per call, no titles or probabilities): "
        f"{naive * 1000:.1f} ms per call; service (titles + purchase probabilities): "
        f"{served * 1000:.2f} ms per call; ratio {naive / served:.0f}x"
    )


if __name__ == "__main__":
    main()
