"""Operations figures on a trained lab: backup, restore, rollback, damage-to-degraded, heal.

Usage::

    RECSYS_HOME=.recsys python -m recsys_core train --dataset online-retail   # once
    python bench/bench_ops.py [--home .recsys] [--dataset online-retail]

Works on a copy of the registry in a temporary folder (the original is only read). Prints:

* verify time (SHA-256 of every file of the active version);
* backup time and archive size (tar + zstd), restore time into an empty home and restore time
  healing one damaged version in place;
* rollback time between two versions (a second version is a copy of the active one);
* with a :class:`~recsys_core.serving.live.LiveService` (check interval 1 s) answering ALS
  requests in a loop: time from one changed byte in the ALS factors to the first degraded
  answer, and from the end of a restore to the first healthy answer (no restart).

Timings are of one run on whatever machine runs it; it asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys_core.serving import backup, registry  # noqa: E402
from recsys_core.serving.live import LiveService  # noqa: E402


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _until(live: LiveService, user: str, degraded: bool, limit: float = 120.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if bool(live.recommend(user, 10, "als", policy="lab-rule")["degraded"]) == degraded:
            return time.perf_counter() - start
        time.sleep(0.01)
    raise TimeoutError("no change seen")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(".recsys"))
    parser.add_argument("--dataset", default="online-retail")
    args = parser.parse_args()
    source = registry.resolve_version(args.dataset, None, args.home)
    with tempfile.TemporaryDirectory(prefix="bench_ops_") as tmp:
        home = Path(tmp) / "home"
        ds_folder = registry.models_root(home) / source.parent.name
        shutil.copytree(source, ds_folder / source.name)
        registry.activate_version(args.dataset, source.name, home, why="activate")
        active = ds_folder / source.name
        size = sum(p.stat().st_size for p in active.rglob("*") if p.is_file())
        print(f"version {args.dataset}/{source.name}: {size / 1e6:.1f} MB")

        start = time.perf_counter()
        check = registry.verify_version(active)
        print(f"verify: {time.perf_counter() - start:.2f} s ({check.files} files, {check.state})")

        archive = Path(tmp) / "backup.tar.zst"
        result = backup.backup(archive, home)
        print(
            f"backup: {result.seconds:.2f} s, archive {result.size / 1e6:.1f} MB "
            f"({result.size / size:.0%} of the files)"
        )

        empty = Path(tmp) / "empty"
        restored = backup.restore(archive, empty)
        print(f"restore into an empty home: {restored.seconds:.2f} s")

        second = f"{source.name[:15]}-9"
        shutil.copytree(active, ds_folder / second)
        registry.activate_version(args.dataset, second, home)
        start = time.perf_counter()
        registry.rollback(args.dataset, None, home)
        print(f"rollback (verifies the target first): {time.perf_counter() - start:.2f} s")
        shutil.rmtree(ds_folder / second)

        import os

        os.environ["RECSYS_HOME"] = str(home)
        live = LiveService(args.dataset, home=home, check_interval=1.0)
        start = time.perf_counter()
        live.service()
        loaded = time.perf_counter() - start
        print(f"live service first load (verify + load every model): {loaded:.2f} s")
        user = next(iter(live.service().lab.models["als"].users_.external_ids))
        for _ in range(20):
            live.recommend(user, 10, "als", policy="lab-rule")
        _flip(active / "als" / "arrays.npz")
        waited = _until(live, user, degraded=True)
        print(f"one changed byte in the ALS factors -> first degraded answer: {waited:.2f} s")
        start = time.perf_counter()
        healed = backup.restore(archive, home)
        restore_s = time.perf_counter() - start
        waited = _until(live, user, degraded=False)
        print(
            f"restore healing it in place: {restore_s:.2f} s ({len(healed.healed)} healed); "
            f"then first healthy answer: {waited:.2f} s (no restart)"
        )
        stats = live.stats()
        print(
            f"answers {stats['answers']}, degraded share {stats['degraded_share']:.1%}, latency "
            f"p50 {stats['latency_ms']['p50']:.2f} ms, p99 {stats['latency_ms']['p99']:.2f} ms"
        )


if __name__ == "__main__":
    main()
