"""Cost of the forgotten-shopper check every request pays (`refuse_forgotten`).

    OMP_NUM_THREADS=1 python bench/bench_denylist.py

Prints microseconds per check with no deny-list file, and with 1,000 forgotten shoppers.
"""

from __future__ import annotations

import os
import sys
import tempfile
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ["RECSYS_HOME"] = tempfile.mkdtemp(prefix="bench-denylist-")
os.environ.setdefault("RECSYS_PSEUDONYM_KEY", "bench-key")

from recsys_core.security.denylist import forget_shopper, refuse_forgotten  # noqa: E402

N = 50_000


def per_call() -> float:
    return timeit.timeit(lambda: refuse_forgotten("12346"), number=N) / N * 1e6


if __name__ == "__main__":
    print(f"no deny-list file:        {per_call():6.1f} us per check")
    for i in range(1000):
        forget_shopper(f"shopper-{i}")
    print(f"1,000 forgotten shoppers: {per_call():6.1f} us per check")
