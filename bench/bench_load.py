"""Load test of the REST API on loopback, and the naive "load the model per call" pattern.

1. Starts ``python -m recsys_core serve`` on 127.0.0.1 (a free port) over the saved lab and
   sends ``--requests`` (2,000) ``GET /recommend`` requests for ``--users`` (500+) different
   known shoppers, ``--concurrency`` (16) at a time, from one asyncio process with
   ``--concurrency`` keep-alive connections (every request has a 30 s timeout; the run stops
   after ``--max-seconds``). ``--client raw``, the default, sends prepared HTTP/1.1 requests
   on asyncio protocols over uvloop and reads each answer by its content-length (about
   0.1 ms of client CPU per request); ``--client aiohttp`` (the default before; about 0.3 ms)
   or ``httpx`` use those libraries' clients on the standard event loop. The client runs on
   the same cores as the server, so its own CPU time per request is printed too. Per model
   (ALS and the ranker): throughput, p50, p99, errors, and
   whether ``/metrics`` counted exactly the requests sent. Cold caches: the server is
   restarted for each model and each shopper is asked once per k (k cycles 5, 10, 20), so
   the first 3 x ``--users`` requests are cache misses and the rest repeat earlier questions.
   The server's CPU time (every worker, from ``/proc``) per request is printed too: unlike
   the wall-clock figures it hardly depends on what else the machine is running.
   ``--distinct`` asks every request for a different shopper at k=10 (all cache misses).
   ``--logins`` runs every model twice: without users (local mode) and with log-ins on (a
   user and an API key in a private ``$RECSYS_HOME`` that links the same models; every
   request sends the key and is audited through the batched writer), and prints the ratio
   of the two throughputs and how many audit events were written. ``--kill`` then ends the
   audited server with ``kill -9`` one second after the last answer (longer than the audit
   writer's 0.2 s window) and counts the audit events that survived. ``--rollbacks N``
   rolls the dataset back and forth N times during each run (needs two versions): reloads
   happen off the event loop, so errors stay 0.
2. In one process, the seed's pattern (load the saved ALS model inside every prediction
   call) against the service's answer for the same shoppers, as a ratio of mean latencies.

Run after ``python -m recsys_core train --dataset online-retail``::

    python bench/bench_load.py [--requests 2000] [--users 600] [--concurrency 16] [--workers 2]
                               [--client raw|aiohttp|httpx] [--distinct] [--models als,ranker]
                               [--logins] [--kill] [--rollbacks 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

import contextlib

from recsys_core.models import load_model  # noqa: E402
from recsys_core.serving import RecommendationService, load_lab, resolve_version  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(
    workers: int, dataset: str, home: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "recsys_core", "serve", "--port", str(port)]
    cmd += ["--workers", str(workers), "--dataset", dataset]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if home is not None:
        env["RECSYS_HOME"] = str(home)
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


def _login_home() -> tuple[Path, str]:
    """A private ``$RECSYS_HOME`` with a user and an API key, linking the real models."""
    from recsys_core.paths import recsys_home
    from recsys_core.security.users import add_user
    from recsys_core.serving.api_keys import create_key

    home = Path(tempfile.mkdtemp(prefix="recsys-bench-logins-"))
    (home / "models").symlink_to(recsys_home().resolve() / "models")
    add_user("bench", "correct horse battery staple", "analyst", home)
    token, _ = create_key("bench", "bench_load", home)
    return home, token


def _audit_events(home: Path) -> int:
    """API requests recorded in the audit log of ``home`` (events in grouped rows)."""
    import json

    from recsys_core.security import audit

    rows = audit.read(action="api-request", limit=1_000_000, home=home)
    return sum(json.loads(r["detail"]).get("count", 1) for r in rows)


def _rollbacks(
    dataset: str, times: int, seconds: float, stop: threading.Event, done: list[float]
) -> None:
    """Roll ``dataset`` back and forth ``times`` times, spread over ``seconds``; the time of
    each rollback goes into ``done`` (the run says how many fell inside the load)."""
    from recsys_core.serving import registry

    first = registry.active_version(dataset)
    second = registry.version_names(dataset)[1]
    for i in range(times):
        if stop.wait(seconds / (times + 1)):
            return
        registry.rollback(dataset, second if i % 2 == 0 else first)
        done.append(time.perf_counter())
    if times % 2:
        registry.rollback(dataset, first)


def _count(url: str, headers: dict[str, str] | None = None) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10, headers=headers).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('recsys_requests_total{endpoint="/recommend"')
    )


class _RawConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that sends prepared ``GET`` requests and reads
    answers with a ``content-length`` (all this API sends): a few microseconds of client CPU
    per request, where an HTTP library's client costs a few hundred."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        length = -1
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and b"close" in value.lower():
                self.closed = True
        if length < 0:
            self.waiter.set_exception(ValueError("an answer without content-length"))
            return
        if len(self.buffer) < end + 4 + length:
            return  # the rest of the body is on its way
        del self.buffer[: end + 4 + length]
        self.waiter.set_result(int(lines[0].split(b" ", 2)[1]))

    async def get(self, request: bytes, timeout: float) -> int:
        """Send one prepared request; the answer's HTTP status."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await asyncio.wait_for(self.waiter, timeout)


async def _load_raw(
    url: str, paths: list[str], concurrency: int, max_seconds: float, headers: dict[str, str]
) -> tuple[list[float], int, float]:
    loop = asyncio.get_running_loop()
    host, port = url.removeprefix("http://").rsplit(":", 1)
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode("ascii")
        for path in paths
    ]
    latencies: list[float] = []
    errors = 0
    queue = iter(requests)
    deadline = time.monotonic() + max_seconds

    async def connect() -> _RawConnection:
        _, protocol = await loop.create_connection(_RawConnection, host, int(port))
        return protocol

    async def worker() -> None:
        nonlocal errors
        connection = await connect()
        for request in queue:
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            try:
                if connection.closed:
                    connection = await connect()
                ok = await connection.get(request, 30.0) == 200
            except (OSError, ValueError, asyncio.TimeoutError):
                ok = False
                if connection.transport is not None:
                    connection.transport.close()
                connection.closed = True
            latencies.append((time.perf_counter() - start) * 1000)
            errors += not ok
        if connection.transport is not None:
            connection.transport.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


async def _load_aiohttp(
    url: str, paths: list[str], concurrency: int, max_seconds: float, headers: dict[str, str]
) -> tuple[list[float], int, float]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    queue = iter(paths)
    deadline = time.monotonic() + max_seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        url, connector=connector, timeout=timeout, headers=headers
    ) as client:

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
    url: str, paths: list[str], concurrency: int, max_seconds: float, headers: dict[str, str]
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    queue = iter(paths)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    deadline = time.monotonic() + max_seconds

    async with httpx.AsyncClient(
        base_url=url, timeout=30, limits=limits, headers=headers
    ) as client:

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


def _loop_factory(client: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for the raw client (when installed: uvicorn[standard] brings it), the standard
    loop for the libraries' clients (as their earlier figures were measured)."""
    if client != "raw":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


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
    parser.add_argument(
        "--client",
        choices=("raw", "aiohttp", "httpx"),
        default="raw",
        help="raw: prepared requests on asyncio protocols over uvloop (the cheapest client: "
        "it shares the cores with the server); aiohttp/httpx: the HTTP libraries' clients "
        "on the standard event loop (earlier figures)",
    )
    parser.add_argument(
        "--distinct", action="store_true", help="a different shopper per request, k=10"
    )
    parser.add_argument("--logins", action="store_true", help="also run with log-ins on")
    parser.add_argument("--kill", action="store_true", help="kill -9 the audited server")
    parser.add_argument("--rollbacks", type=int, default=0, help="rollbacks during each run")
    parser.add_argument(
        "--rollback-seconds",
        type=float,
        default=1.0,
        help="the rollbacks are spread evenly over this many seconds from the load's start "
        "(keep it under the load's length: the run reports how many fell inside it)",
    )
    args = parser.parse_args()
    load = {"raw": _load_raw, "aiohttp": _load_aiohttp, "httpx": _load_httpx}[args.client]

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
        "| model | log-ins | requests | req/s | p50 ms | p99 ms | errors | /metrics counted | "
        "server CPU ms per request | client CPU ms per request | client share of CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    login_home, token = _login_home() if args.logins else (None, "")
    runs = [(m, False) for m in args.models.split(",")]
    if args.logins:
        runs = [(m, on) for m in args.models.split(",") for on in (False, True)]
    throughput: dict[tuple[str, bool], float] = {}
    notes: list[str] = []
    for model, logins in runs:
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
        headers = {"X-API-Key": token} if logins else {}
        proc, url = _start_server(args.workers, args.dataset, login_home if logins else None)
        stop = threading.Event()
        rolled: list[float] = []
        roller = threading.Thread(
            target=_rollbacks,
            args=(args.dataset, args.rollbacks, args.rollback_seconds, stop, rolled),
            daemon=True,
        )
        load_end = float("inf")
        killed = False
        audited_before = _audit_events(login_home) if logins and login_home else 0
        try:
            before = _count(url, headers)
            cpu_before = _tree_cpu_seconds(proc.pid)
            client_before = time.process_time()
            if args.rollbacks:
                roller.start()
            with asyncio.Runner(loop_factory=_loop_factory(args.client)) as runner:
                latencies, errors, elapsed = runner.run(
                    load(url, paths, args.concurrency, args.max_seconds, headers)
                )
            load_end = time.perf_counter()
            client_cpu = time.process_time() - client_before
            cpu = _tree_cpu_seconds(proc.pid) - cpu_before
            counted = _count(url, headers) - before
            if logins and args.kill:
                time.sleep(1.0)  # longer than the audit writer's 0.2 s window
                _kill9(proc.pid)
                killed = True
        finally:
            stop.set()
            if roller.is_alive():
                roller.join()
            if not killed:
                proc.terminate()
            proc.wait(timeout=30)
        sent = len(latencies)
        throughput[model, logins] = sent / elapsed
        if args.rollbacks:
            inside = sum(1 for t in rolled if t <= load_end)
            notes.append(
                f"{model}: {inside} of {args.rollbacks} rollbacks happened during the load "
                "(if fewer, lower --rollback-seconds or raise --requests)"
            )
        if logins and login_home is not None:
            audited = _audit_events(login_home) - audited_before
            how = "after kill -9" if killed else "after a normal stop"
            notes.append(f"{model}: {audited} audit events for {sent} requests {how}")
        print(
            f"| {model} | {'on' if logins else 'off'} | {sent} | {sent / elapsed:.0f} | "
            f"{np.percentile(latencies, 50):.1f} | "
            f"{np.percentile(latencies, 99):.1f} | {errors} | {counted:.0f} of {sent} | "
            f"{cpu / max(sent, 1) * 1000:.2f} | {client_cpu / max(sent, 1) * 1000:.2f} | "
            f"{client_cpu / max(client_cpu + cpu, 1e-9):.0%} |",
            flush=True,
        )

    for model in args.models.split(",") if args.logins else []:
        ratio = throughput[model, True] / throughput[model, False]
        print(f"\n{model}: throughput with log-ins on is {ratio:.0%} of the throughput without")
    for note in notes:
        print(note)

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


def _kill9(pid: int) -> None:
    """``kill -9`` a server and every worker it started."""
    children = [
        int(p.parent.name) for p in Path("/proc").glob("[0-9]*/stat") if _parent_of(p) == pid
    ]
    for child in [pid, *children]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def _parent_of(stat: Path) -> int:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


if __name__ == "__main__":
    main()
