"""A real ``streamlit run app.py`` and Debian's Chromium, shared by the browser test and
``bench/bench_app.py``: launch flags, a free port, the server in its own process group,
its health check and its shutdown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
#: Launch flags for Debian's Chromium in a container (no sandbox, no GPU, no network chatter).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
#: Present while a script run is in progress or an element is still loading.
BUSY_SELECTOR = ", ".join(
    [
        # the app's script state: "initial", "running", "rerunRequested", "notRunning", ...
        '[data-testid="stApp"]:not([data-test-script-state="notRunning"])',
        '[data-testid="stSpinner"]',
        '[data-testid="stSkeleton"]',
        '[data-testid="stAppSkeleton"]',
    ]
)


class ServerFailed(RuntimeError):
    """The server exited or never became healthy (the message carries its log's tail)."""


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server and its children (it runs in its own process group)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def wait_healthy(proc: subprocess.Popen[bytes], base: str, log: Path, timeout: float) -> None:
    """Poll ``/_stcore/health`` until it answers ``ok``, else raise :class:`ServerFailed`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerFailed(f"streamlit exited with {proc.returncode}:\n{_tail(log)}")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as resp,
        ):
            if resp.read().decode().strip() == "ok":
                return
        time.sleep(0.05)
    raise ServerFailed(f"streamlit not healthy after {timeout:.0f} s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


@contextlib.contextmanager
def streamlit_server(
    env: Mapping[str, str], log: Path, extra_args: tuple[str, ...] = ()
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``streamlit run app.py`` on localhost with ``env``; yields (process, base URL).

    The server is always stopped, with its whole process group, when the block ends.
    """
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        *extra_args,
    ]
    full_env = {**env, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group, stopped as a whole
        )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        stop_group(proc)
