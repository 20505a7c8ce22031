"""Benchmark: generate a demo store of N events, then build its interaction matrix.

Usage::

    python bench/bench_demo_store.py [--events 10000000] [--users N] [--items N] [--seed 42]

Shoppers and items scale with the events like the default store (3000 shoppers and 800 items
per 200k events) unless given. For every step it prints the wall time, the resident memory
after the step and the process's peak resident memory so far (``ru_maxrss``). Target on a
2-core machine: 10M events + matrix in under 2 minutes and under 4 GB peak. It prints
figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys_core.data.demo_store import generate_demo_store  # noqa: E402
from recsys_core.interactions import InteractionMatrix  # noqa: E402

T = TypeVar("T")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def current_rss_mb() -> float:
    """Current resident memory in MB (``/proc/self/statm``; 0 where unavailable)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * resource.getpagesize() / 2**20


def timed(label: str, step: Callable[[], T]) -> T:
    """Run ``step``, print its wall time and memory, return its result."""
    gc.collect()
    t0 = time.perf_counter()
    out = step()
    seconds = time.perf_counter() - t0
    print(
        f"{label:<30} {seconds:8.2f} s   rss {current_rss_mb():8.0f} MB"
        f"   peak rss {peak_rss_mb():8.0f} MB",
        flush=True,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the steps, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events to generate")
    parser.add_argument("--users", type=int, default=None, help="shoppers (default: scaled)")
    parser.add_argument("--items", type=int, default=None, help="items (default: scaled)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    n_events: int = args.events
    n_users: int = args.users or max(1, round(3000 * n_events / 200_000))
    n_items: int = args.items or max(1, round(800 * n_events / 200_000))

    print(f"demo store: {n_events:,} events, {n_users:,} shoppers, {n_items:,} items")
    print(f"{'start':<30} {0:8.2f} s   rss {current_rss_mb():8.0f} MB   peak rss "
          f"{peak_rss_mb():8.0f} MB")  # fmt: skip
    t_total = time.perf_counter()
    events, catalog = timed(
        "generate_demo_store",
        lambda: generate_demo_store(n_users, n_items, n_events, seed=args.seed),
    )
    matrix = timed("InteractionMatrix.from_events", lambda: InteractionMatrix.from_events(events))
    total = time.perf_counter() - t_total

    counts = events["event"].value_counts()
    frame_mb = events.memory_usage(deep=False).sum() / 2**20
    print(
        f"events: {len(events):,} rows ({frame_mb:,.0f} MB), "
        + ", ".join(f"{k} {int(v):,}" for k, v in counts.items())
    )
    print(
        f"matrix: {matrix.shape[0]:,} x {matrix.shape[1]:,}, nnz {matrix.nnz:,}; "
        f"catalog: {len(catalog):,} items"
    )
    print(f"total {total:.2f} s, peak rss {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
