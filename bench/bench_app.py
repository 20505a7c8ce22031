"""Benchmark the web app in a real browser (Playwright driving Debian's Chromium).

Usage::

    python bench/bench_app.py [--home bench/results/home] [--switches 5] [--retrain]

(a) **Start-up** on the default data (``online-retail``; ``$RECSYS_APP_DATA`` and
``$RECSYS_APP_DATASET`` are removed from the server's environment): the wall time from
launching ``streamlit run app.py`` to the Overview page in Chromium. Two figures per start:

- *title*: the Overview ``<h1>`` is visible;
- *ready*: the title is visible and the page's script run has finished (no running
  indicator, spinner or progress bar for a while), i.e. the page is fully rendered.

When ``--home`` holds no trained version yet (or with ``--retrain``, which empties it first),
the first start trains and saves the models: that is the *first-ever start*. Its *ready* time
is the first useful page (the single-stage models, trained in seconds); the purchase model
then trains in the background, and the time until its version is saved and the server's
peak memory (``VmHWM``) are printed too. Then a second, cold start (a new server process)
loads them. Targets (issue 24): first useful page <= 10 s, second start <= 10 s. The server's
CPU seconds at the moment the page is ready are printed too: on a loaded machine they vary
far less than the wall times, so old and new code compare on them.

(b) **Switching shopper** on the warm app (the server of the second start): on the Shopper
page, pick another shopper in the shopper selectbox through the UI and time, inside the
page, from the mouse press on the option to the first animation frame in which the
recommendations table (the ``st.dataframe`` whose column headers include ``--rec-header``)
paints different rows, checked to be the table's final image. The median over
``--switches`` switches is printed, with two later moments: the table's hidden
accessibility text changing (glide-data-grid refreshes it 0.2-0.6 s after painting) and
the script run finishing (what is open below the table). Target (issue 24): <= 0.3 s.

Needs ``/usr/bin/chromium``. It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from tests.app.live_app import (  # noqa: E402
    BUSY_SELECTOR,
    CHROMIUM,
    CHROMIUM_ARGS,
    wait_healthy,
)
from tests.app.live_app import streamlit_server as _live_server  # noqa: E402

#: A progress bar (training on the first start). Not "busy": a finished one stays on the page.
PROGRESS_SELECTOR = '[data-testid="stProgress"]'
#: How long the page must stay idle before it counts as rendered (s).
SETTLE_S = 1.5

#: In-page helper: the recommendations dataframe, i.e. the first ``st.dataframe`` whose
#: column headers include ``h`` (null when there is none).
_FIND_TABLE_JS = """
(h) => {
  for (const df of document.querySelectorAll('[data-testid="stDataFrame"]')) {
    const heads = [...df.querySelectorAll('[role="columnheader"]')].map(e => e.textContent);
    if (heads.some(t => t.toLowerCase().includes(h.toLowerCase()))) return df;
  }
  return null;
}
"""
#: In-page helper: the text of the cells of that table (its accessibility grid).
_TABLE_TEXT_JS = (
    "(h) => { const df = ("
    + _FIND_TABLE_JS.strip()
    + """)(h);
  return df === null ? null
    : [...df.querySelectorAll('[role="gridcell"]')].map(e => e.textContent).join('|'); }"""
)
#: In-page probe, armed before a switch. It records the time of the next mouse press
#: (``__t0``) and two moments after it:
#:
#: - ``__painted``: the first animation frame in which the table's canvas shows other pixels
#:   than before the press (``__paintedImage`` keeps that frame, to check it is the final
#:   table and not an intermediate one). This is what the shopper sees.
#: - ``__seen``: the first DOM change after which the table's accessibility cells hold other
#:   text. glide-data-grid (behind ``st.dataframe``) refreshes that hidden copy on its own
#:   schedule, 0.2-0.6 s after it has painted the new rows, so it is reported but is not the
#:   figure the target is about.
_ARM_PROBE_JS = (
    """
([h, before]) => {
  const find = """
    + _FIND_TABLE_JS.strip()
    + """;
  const text = """
    + _TABLE_TEXT_JS
    + """;
  const pixels = () => {
    const df = find(h);
    const canvas = df === null ? null : df.querySelector('canvas');
    return canvas === null ? null : canvas.toDataURL();
  };
  const beforeImage = pixels();
  window.__t0 = null;
  window.__seen = null;
  window.__painted = null;
  window.__paintedImage = null;
  document.addEventListener('mousedown', () => {
    if (window.__t0 === null) window.__t0 = performance.now();
  }, {capture: true, once: true});
  const frame = () => {
    if (window.__t0 !== null) {
      const now = pixels();
      if (now !== null && now !== beforeImage) {
        window.__painted = performance.now();
        window.__paintedImage = now;
        return;
      }
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  const obs = new MutationObserver(() => {
    if (window.__seen !== null || window.__t0 === null) return;
    const now = text(h);
    if (now !== null && now !== '' && now !== before) {
      window.__seen = performance.now();
      obs.disconnect();
    }
  });
  obs.observe(document.body, {subtree: true, childList: true, characterData: true,
                              attributes: true});
}
"""
)
#: In-page check after the run has finished: the painted frame is the table's final image.
_PAINT_IS_FINAL_JS = (
    "(h) => { const df = ("
    + _FIND_TABLE_JS.strip()
    + """)(h);
  const canvas = df === null ? null : df.querySelector('canvas');
  return canvas !== null && canvas.toDataURL() === window.__paintedImage; }"""
)


@dataclass
class StartFigures:
    """Seconds from launching the server to the Overview title, and to the page being ready;
    the server's CPU seconds at that moment (a figure that depends little on other load)."""

    title_s: float
    ready_s: float
    cpu_s: float = float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def trained_versions(home: Path) -> int:
    """How many trained lab versions ``home`` holds."""
    from recsys_core.serving.lab import list_versions

    return len(list_versions(home=home))


def ranker_saved(home: Path) -> bool:
    """Whether ``home`` holds a version with the purchase model (the background job's)."""
    from recsys_core.serving.lab import list_versions

    return any("ranker" in v["models"] for v in list_versions(home=home))


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process so far (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_ranker(home: Path, start: float, timeout: float) -> float:
    """Seconds from ``start`` until the background training has saved the ranker."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if ranker_saved(home):
            return time.perf_counter() - start
        time.sleep(0.5)
    raise TimeoutError("the purchase model was not saved in time")


@contextlib.contextmanager
def streamlit_server(home: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``streamlit run app.py`` on the default data; yields (process, base URL); always stops it."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("RECSYS_APP_DATA", "RECSYS_APP_DATASET")
    }
    env["RECSYS_HOME"] = str(home)
    with _live_server(env, log) as server:
        yield server


def wait_ready(page: Page, start: float, timeout: float) -> tuple[float, float | None]:
    """Wait until nothing on the page is busy for :data:`SETTLE_S`.

    Returns ``time.perf_counter()`` at the moment the page last became idle, and the
    moment a progress bar was first seen (``None`` if none was).
    """
    deadline = time.perf_counter() + timeout
    idle_since: float | None = None
    progress_at: float | None = None
    busy = page.locator(BUSY_SELECTOR)
    progress = page.locator(PROGRESS_SELECTOR)
    while time.perf_counter() < deadline:
        now = time.perf_counter()
        if progress_at is None and progress.count() > 0:
            progress_at = now
        if busy.count() == 0:
            idle_since = idle_since or now
            if now - idle_since >= SETTLE_S:
                return idle_since, progress_at
        else:
            idle_since = None
        page.wait_for_timeout(50)
    raise TimeoutError(f"page still busy {time.perf_counter() - start:.0f} s after the start")


def time_start(
    browser: Browser,
    proc: subprocess.Popen[bytes],
    base: str,
    log: Path,
    label: str,
    timeout: float,
) -> StartFigures:
    """Open the Overview page of a server just launched; return the start-up figures."""
    start = time.perf_counter()
    wait_healthy(proc, base, log, timeout)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/", wait_until="domcontentloaded")
    page.locator("h1").filter(has_text="Overview").first.wait_for(timeout=timeout * 1000)
    title = time.perf_counter() - start
    idle, progress_at = wait_ready(page, start, timeout)
    ready = idle - start
    cpu = cpu_seconds(proc.pid)  # SETTLE_S after the page became idle: little is left to run
    page.close()
    shown = "" if progress_at is None else f"   progress bar shown at {progress_at - start:.1f} s"
    print(
        f"  {label}: Overview title {title:6.1f} s   page ready {ready:6.1f} s   server CPU "
        f"{cpu:5.1f} s{shown}",
        flush=True,
    )
    return StartFigures(title, ready, cpu)


def switch_shoppers(page: Page, label: str, header: str, switches: int) -> None:
    """Pick ``switches`` other shoppers in the selectbox whose label starts with ``label``."""
    select = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    select.wait_for(timeout=120_000)
    painted: list[float] = []
    seen: list[float] = []
    finished: list[float] = []
    for i in range(1, switches + 1):
        before = page.evaluate(_TABLE_TEXT_JS, header)
        if before is None:
            raise RuntimeError(f"no table with a column header containing {header!r}")
        select.click()
        option = page.locator('[role="option"]').nth(i)
        option.wait_for(timeout=10_000)
        choice = option.inner_text()
        page.evaluate(_ARM_PROBE_JS, [header, before])
        start = time.perf_counter()
        option.click()
        page.wait_for_function(
            "window.__seen !== null && window.__painted !== null", timeout=60_000, polling="raf"
        )
        idle = wait_ready(page, start, 60)[0] - start
        paint_s, text_s = page.evaluate(
            "[(window.__painted - window.__t0) / 1000, (window.__seen - window.__t0) / 1000]"
        )
        final = page.evaluate(_PAINT_IS_FINAL_JS, header)
        if not final:  # an intermediate frame: the shopper saw the new rows only later
            paint_s = text_s
        painted.append(paint_s)
        seen.append(text_s)
        finished.append(idle)
        print(
            f"  switch {i} -> {choice}: new recommendations painted {paint_s:.3f} s"
            f"{'' if final else ' (first new frame was not final: DOM time used)'}, "
            f"in the DOM text {text_s:.3f} s, run finished {idle:.3f} s",
            flush=True,
        )
    print(
        f"(b) switching shopper: median new recommendations painted "
        f"{statistics.median(painted):.3f} s (min {min(painted):.3f}, max {max(painted):.3f})"
        "  [target <= 0.3 s]"
    )
    print(
        f"    medians: table text in the DOM {statistics.median(seen):.3f} s, "
        f"script run finished {statistics.median(finished):.3f} s"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--home",
        type=Path,
        default=REPO_ROOT / "bench" / "results" / "home",
        help="RECSYS_HOME of the benchmarked app (kept between runs)",
    )
    parser.add_argument("--retrain", action="store_true", help="empty --home first")
    parser.add_argument("--switches", type=int, default=5, help="shopper switches to time")
    parser.add_argument(
        "--rec-header",
        default="overall",
        help="text in a column header of the recommendations table on the Shopper page",
    )
    parser.add_argument("--shopper-label", default="Shopper", help="label of the shopper selectbox")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="longest wait for a start (s)"
    )
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    home: Path = args.home.resolve()
    if args.retrain and home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    log = Path(tempfile.mkdtemp(prefix="bench_app_")) / "streamlit.log"
    print(f"RECSYS_HOME={home}  server log: {log}  cpus: {os.cpu_count()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            print("(a) start-up on the default data (online-retail):")
            first: StartFigures | None = None
            if trained_versions(home) == 0:
                with streamlit_server(home, log) as (proc, base):
                    launched = time.perf_counter()
                    first = time_start(
                        browser, proc, base, log, "first-ever start (trains)", args.timeout
                    )
                    useful_mb = peak_rss_mb(proc.pid)
                    ranker_s = wait_ranker(home, launched, args.timeout)
                    print(
                        f"  first-ever start: first useful page {first.ready_s:.1f} s "
                        f"(server CPU {first.cpu_s:.1f} s, peak memory so far {useful_mb:,.0f} "
                        "MB); purchase model trained in "
                        f"the background and saved at {ranker_s:.1f} s; server peak memory "
                        f"{peak_rss_mb(proc.pid):,.0f} MB  [target: useful page <= 10 s]",
                        flush=True,
                    )
                print(f"      trained versions now: {trained_versions(home)}")
            else:
                print("  first-ever start: skipped, --home is already trained (use --retrain)")
            with streamlit_server(home, log) as (proc, base):
                second = time_start(
                    browser, proc, base, log, "second start (loads)    ", args.timeout
                )
                print(
                    f"(a) first-ever start: "
                    f"{'n/a' if first is None else f'{first.ready_s:.1f} s'}; "
                    f"second start: title {second.title_s:.1f} s, ready {second.ready_s:.1f} s  "
                    "[target <= 10 s]"
                )
                print("(b) switching shopper on the warm app (same server):")
                page = browser.new_page(viewport={"width": 1400, "height": 1400})
                page.goto(f"{base}/shopper", wait_until="domcontentloaded")
                page.locator("h1").filter(has_text="Shopper").first.wait_for(timeout=600_000)
                wait_ready(page, time.perf_counter(), args.timeout)
                switch_shoppers(page, args.shopper_label, args.rec_header, args.switches)
                page.close()
        finally:
            browser.close()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
