"""The REST API's per-request path made cheap (issue 23's throughput and tail targets) keeps
every behaviour: the plain ``/recommend`` path answers as the declared route does and leaves
every other request to FastAPI's validation; the audit writer's queue loses nothing; the
access check's caches give the same answers; settings follow the environment.

In-process (``httpx.ASGITransport``) over a small trained lab; no timing is asserted.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from recsys_core.serving import save_lab
from recsys_core.training import TrainConfig, train_lab

Get = Callable[..., httpx.Response]


@pytest.fixture(scope="module")
def small_lab(small_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("request_path_home")
    save_lab(train_lab(small_store, TrainConfig(models=["popularity", "als"])), home=home)
    return home


@pytest.fixture()
def lab_home(small_lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    shutil.copytree(small_lab, home, ignore=shutil.ignore_patterns("security.db*", "audit.*"))
    monkeypatch.setenv("RECSYS_HOME", str(home))
    return home


def _in_process() -> tuple[Any, Get]:
    from recsys_core.serving.api import create_app
    from recsys_core.serving.live import LiveService

    app = create_app(LiveService(check_interval=0).service)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))

    def get(url: str, key: str | None = None, header: str = "X-API-Key") -> httpx.Response:
        async def one() -> httpx.Response:
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                return await c.get(url, headers={header: key} if key else {})

        return asyncio.run(one())

    return app, get


@pytest.fixture()
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of the requests FastAPI resolved parameters and dependencies for."""
    import fastapi.routing

    seen: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["request"].url.path)
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", spy)
    return seen


# ---------------------------------------------------------------------- the plain path


def test_plain_requests_answer_as_the_declared_route(lab_home: Path, resolved: list[str]) -> None:
    """``user_id``, ``k`` and ``model`` alone skip FastAPI's parameter resolution, and the
    answer is the declared route's (an extra parameter with its default value sends the same
    question through FastAPI)."""
    _, get = _in_process()
    for query in ("user_id=U001", "user_id=U002&k=3&model=als", "k=20&user_id=nobody"):
        resolved.clear()
        plain = get(f"/recommend?{query}")
        assert plain.status_code == 200 and resolved == []
        declared = get(f"/recommend?{query}&hide_bought_days=0")
        assert resolved == ["/recommend"]
        assert plain.json() == declared.json()
        assert plain.headers["content-type"] == declared.headers["content-type"]
    assert get("/recommend?user_id=nobody&k=2").json()["degraded"] is True


@pytest.mark.parametrize(
    ("query", "status", "problem"),
    [
        ("user_id=U001&k=0", 422, "k:"),
        ("user_id=U001&k=101", 422, "k:"),
        ("user_id=U001&k=abc", 422, "k:"),
        ("user_id=U001&k=", 422, "k:"),
        ("user_id=U001&k=1e3", 422, "k:"),
        ("user_id=", 422, "user_id:"),
        (f"user_id={'9' * 101}", 422, "user_id:"),
        ("k=3", 422, "user_id:"),
        ("user_id=U001&model=nope", 422, "model:"),
        ("user_id=U001&model=ALS", 422, "model:"),
        ("user_id=U001&k=3&repeats=nonsense", 422, "repeats:"),
        ("user_id=U001&k=07", 200, None),  # FastAPI's to judge: it takes 7
        ("user_id=U001&user_id=U002&k=3", 200, None),  # repeated: FastAPI picks one
        ("user_id=U001&k=3&unknown=1", 200, None),  # unknown parameters are ignored
    ],
)
def test_anything_but_a_plain_request_is_fastapis(
    lab_home: Path, resolved: list[str], query: str, status: int, problem: str | None
) -> None:
    _, get = _in_process()
    answer = get(f"/recommend?{query}")
    assert answer.status_code == status, answer.text
    assert resolved == ["/recommend"]  # FastAPI validated it, with its own wording
    if problem is not None:
        assert answer.json()["detail"].startswith(problem)


def test_fastapi_reads_k_07_as_the_plain_path_reads_k_7(lab_home: Path) -> None:
    _, get = _in_process()
    assert get("/recommend?user_id=U001&k=07").json() == get("/recommend?user_id=U001&k=7").json()


def test_plain_requests_need_a_key_once_users_exist_and_are_audited(
    lab_home: Path, resolved: list[str]
) -> None:
    from recsys_core.security import audit
    from recsys_core.security.pseudonyms import pseudonym
    from recsys_core.security.users import add_user
    from recsys_core.serving.api_keys import create_key

    add_user("gus", "correct horse battery", "analyst")
    add_user("viv", "correct horse battery", "viewer")
    key, _ = create_key("gus")
    viewer, _ = create_key("viv")
    app, get = _in_process()
    assert get("/recommend?user_id=U001&k=2").status_code == 401
    assert get("/recommend?user_id=U001&k=2", "rk_dead_beef").status_code == 401
    assert get("/recommend?user_id=U001&k=2", key, header="x-api-key").status_code == 200
    # a viewer's key: pseudonyms in and out, raw ids refused, on the plain path too
    alias = pseudonym("U001")
    assert get("/recommend?user_id=U001&k=2", viewer).status_code == 400
    mine = get(f"/recommend?user_id={alias}&k=2&model=als", viewer).json()
    theirs = get("/recommend?user_id=U001&k=2&model=als", key).json()
    assert mine["user_id"] == alias and mine["items"] == theirs["items"]
    assert resolved == []  # every one of them took the plain path
    assert app.state.access.writer.flush(10)
    rows = audit.read(action="api-request")
    events = [e for row in rows for e in json.loads(row["detail"])["events"]]
    assert [e["shopper"] for e in events] == [alias] * 4
    assert all(e["endpoint"] == "/recommend" for e in events)
    failed = audit.read(action="api-key-failed")
    assert sum(json.loads(r["detail"])["count"] for r in failed) == 2
    assert audit.verify().ok


def test_fastapis_own_telemetry_is_not_consulted_per_request(
    lab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lab times requests itself (/metrics): FastAPI's native OpenTelemetry check, which
    looked up the global providers on every request, is off."""
    trace = pytest.importorskip("opentelemetry.trace")
    import fastapi

    if not hasattr(fastapi, "telemetry"):
        pytest.skip("this FastAPI has no native telemetry")
    calls: list[int] = []
    original = trace.get_tracer_provider

    def counted() -> Any:
        calls.append(1)
        return original()

    monkeypatch.setattr(trace, "get_tracer_provider", counted)
    _, get = _in_process()
    for query in ("user_id=U001&k=2", "user_id=U001&k=2&hide_bought_days=0"):
        assert get(f"/recommend?{query}").status_code == 200
    assert get("/similar?item_id=P001&k=2&model=als").status_code == 200
    assert calls == []


# ---------------------------------------------------------------------- the access check


def test_cached_pseudonyms_and_loopback_checks_are_the_computed_ones(
    lab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recsys_core.security.pseudonyms import pseudonym
    from recsys_core.serving import access

    monkeypatch.setattr(access, "_MAX_CACHED_PSEUDONYMS", 3)
    checker = access.Access()
    shoppers = [f"U{i:03d}" for i in range(7)] * 3
    assert [checker.pseudonym(s) for s in shoppers] == [pseudonym(s) for s in shoppers]
    assert len(checker._pseudonyms) <= 3
    addresses = ["127.0.0.1", "127.8.9.10", "::1", "localhost", "10.0.0.1", "203.0.113.5"]
    addresses += ["::ffff:203.0.113.5", "fe80::1%eth0", "not an address", ""]
    expected = [True, True, True, True, False, False, False, False, False, False]
    for _ in range(2):  # computed, then remembered
        assert [access.is_loopback(a) for a in addresses] == expected


# ---------------------------------------------------------------------- the audit writer


def test_audit_writer_keeps_every_event_from_every_thread(lab_home: Path) -> None:
    """Events submitted from several threads at once are all written, each with its own
    time (ISO 8601, microseconds, in submit order per thread) and the detail as it was when
    submitted."""
    from recsys_core.security import audit
    from recsys_core.security.audit_writer import AuditWriter

    writer = AuditWriter(interval=0.01)

    def submit(thread: int) -> None:
        for i in range(300):
            detail = {"thread": thread, "i": i}
            writer.submit("api:t", "api-request", detail)
            detail["i"] = -1  # changed after submit: the log keeps what was submitted

    threads = [threading.Thread(target=submit, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.flush(20)
    writer.close()
    rows = sorted(audit.read(limit=100_000), key=lambda r: int(r["id"]))  # oldest first
    events = [e for r in rows for e in json.loads(r["detail"])["events"]]
    assert len(events) == 1200 and writer.events_written == 1200
    for thread in range(4):
        mine = [e for e in events if e["thread"] == thread]
        assert [e["i"] for e in mine] == list(range(300))
        times = [datetime.fromisoformat(e["ts"]) for e in mine]
        assert times == sorted(times) and all(t.tzinfo is not None for t in times)
        assert all(len(e["ts"].split(".")[1]) == len("123456+00:00") for e in mine)
    assert audit.verify().ok


def test_audit_writer_refuses_when_full_or_stopped(lab_home: Path) -> None:
    from recsys_core.security.audit_writer import AuditUnavailableError, AuditWriter

    writer = AuditWriter(interval=5.0, max_queue=3)  # gathers for 5 s: the queue fills
    for i in range(3):
        writer.submit("api:t", "api-request", {"i": i})
    with pytest.raises(AuditUnavailableError, match="refused rather than served unaudited"):
        writer.submit("api:t", "api-request", {"i": 3})
    writer.close()  # writes the three queued events first
    assert writer.events_written == 3
    with pytest.raises(AuditUnavailableError, match="stopped"):
        writer.submit("api:t", "api-request", {})


# ---------------------------------------------------------------------- settings


def test_settings_follow_the_environment_without_a_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lab_settings() is cached, but a variable set, changed or removed is seen at the
    next call (the cache's fingerprint reads the environment's own store)."""
    from recsys_core.settings import lab_settings

    monkeypatch.setenv("RECSYS_HOME", str(tmp_path / "a"))
    assert lab_settings().home == tmp_path / "a"
    assert lab_settings() is lab_settings()  # cached while nothing changes
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path / "b"))
    assert lab_settings().home == tmp_path / "b"
    monkeypatch.delenv("RECSYS_HOME")
    assert lab_settings().home != tmp_path / "b"


def test_the_deny_list_follows_recsys_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deny-list's path is worked out once per settings, and again when they change."""
    from recsys_core.security.denylist import forget_shopper, is_forgotten

    first, second = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("RECSYS_HOME", str(first))
    assert forget_shopper("U001") and is_forgotten("U001")
    monkeypatch.setenv("RECSYS_HOME", str(second))
    assert not is_forgotten("U001")
    monkeypatch.setenv("RECSYS_HOME", str(first))
    assert is_forgotten("U001")


# ---------------------------------------------------------------------- one write per answer


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_an_answers_head_and_body_leave_in_one_write() -> None:
    from recsys_core.serving.api_http import _HeldHead

    sent = _Recorder()
    held = _HeldHead(sent)
    held.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # interim: at once
    held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert sent.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    held.write(b"{}")
    held.flush()
    assert sent.writes[1:] == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    assert not held.is_closing()  # the rest is the transport's
    bodiless = _HeldHead(sent := _Recorder())  # HEAD: the head goes when the answer ends
    bodiless.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    bodiless.flush()
    assert sent.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"]
    closing = _HeldHead(sent := _Recorder())  # closed after the head: the head goes first
    closing.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    closing.close()
    assert sent.writes == [b"HTTP/1.1 500 Internal Server Error\r\n\r\n"] and sent.closed


def test_serve_answers_pipelined_and_bodiless_requests_whole(lab_home: Path) -> None:
    """``serve`` with the one-write protocol: three pipelined requests on one connection,
    the middle one a HEAD (a head and no body), come back whole and in order."""
    import os
    import socket
    import subprocess
    import sys
    import time

    from recsys_core.serving.api_http import one_write_protocol

    assert one_write_protocol() is not None  # httptools is there (uvicorn[standard])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "recsys_core", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, "no server"
                time.sleep(0.3)
        ask = "{} /recommend?user_id=U001&k=2 HTTP/1.1\r\nHost: t\r\n{}\r\n"
        pipelined = ask.format("GET", "") + ask.format("HEAD", "") + ask.format("GET", "")
        pipelined = pipelined[: -len("\r\n")] + "Connection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            conn.sendall(pipelined.encode())
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
    finally:
        proc.terminate()
        proc.wait(30)
    answers = []
    while received:
        head, _, rest = received.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        has_body = len(answers) != 1  # the HEAD's answer has none
        answers.append((head.split(b" ")[1], rest[:length] if has_body else b""))
        received = rest[length:] if has_body else rest
    assert [status for status, _ in answers] == [b"200", b"405", b"200"]
    assert answers[0][1] == answers[2][1] and json.loads(answers[0][1])["user_id"] == "U001"
