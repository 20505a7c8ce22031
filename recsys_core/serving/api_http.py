"""The HTTP plumbing of the REST API (:mod:`recsys_core.serving.api`): Prometheus metrics,
the counting middleware, orjson answers, and the cheap paths of the busiest endpoints.

Kept apart from the endpoints so each module stays readable; nothing here knows the lab.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from recsys_core.settings import lab_settings

#: What the request being answered found out (``degraded``, ``error``), for the health window:
#: set by the ``count`` middleware, filled in by the endpoint (a shared dict, so it is seen
#: from the thread pool too).
ANSWER_NOTE: ContextVar[dict[str, Any] | None] = ContextVar("recsys_answer_note", default=None)


class Metrics:
    """The Prometheus metrics of the API (multiprocess-aware)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess = lab_settings().prometheus_multiproc_dir is not None
        # in multiprocess mode values live in files; the registry only names them
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "recsys_requests",
            "API requests by endpoint and HTTP status (scrapes of /metrics not counted).",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "recsys_request_seconds",
            "API request latency in seconds, by endpoint.",
            ["endpoint"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.degraded = Counter(
            "recsys_degraded_answers",
            "Answers served degraded (fallback model or cold start), by endpoint.",
            ["endpoint"],
            registry=self.registry,
        )
        self.cache = Counter(
            "recsys_answer_cache",
            "Recommendation answers by cache outcome (hit or miss).",
            ["outcome"],
            registry=self.registry,
        )

        # labelled children, looked up once (``labels()`` takes a lock and a dict per call)
        self._latency: dict[str, Any] = {}
        self._requests: dict[tuple[str, int], Any] = {}
        self._cache = {True: self.cache.labels("hit"), False: self.cache.labels("miss")}

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one request and its latency."""
        latency = self._latency.get(endpoint)
        if latency is None:
            latency = self._latency[endpoint] = self.latency.labels(endpoint)
        counter = self._requests.get((endpoint, status))
        if counter is None:
            counter = self._requests[endpoint, status] = self.requests.labels(endpoint, str(status))
        latency.observe(seconds)
        counter.inc()

    def cache_outcome(self, hit: bool) -> None:
        """Count one recommendation answer as a cache hit or miss."""
        self._cache[bool(hit)].inc()

    def exposition(self) -> bytes:
        """The Prometheus text of every worker (multiprocess) or of this process."""
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))


def native_telemetry_off() -> dict[str, Any]:
    """``FastAPI(telemetry=...)`` turning off FastAPI's own OpenTelemetry spans, metrics and
    logs, where this FastAPI has them: the lab counts and times requests itself
    (:class:`Metrics`), and the check alone asked OpenTelemetry for its providers (reading
    environment variables) on every request."""
    import inspect

    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}  # an older FastAPI: no native telemetry
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


NO_NATIVE_TELEMETRY = native_telemetry_off()


#: Endpoints whose answers go into the health window.
ANSWER_PATHS = frozenset(["/recommend", "/similar", "/purchase-probability", "/explain", "/search"])
KNOWN_PATHS = ANSWER_PATHS | {"/health"}


def json_answer(answer: dict[str, Any]) -> Response:
    """An answer written with orjson (NumPy numbers included)."""
    import orjson

    return Response(
        orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
    )


class CountMiddleware:
    """Times every HTTP request but ``/metrics`` and hands ``(endpoint, status, seconds,
    note)`` to ``observe``; ``note`` is what the endpoint found out (``degraded``, ``error``),
    shared through :data:`ANSWER_NOTE` (a dict, so the thread pool's copy of the context
    fills the same one)."""

    def __init__(
        self, app: Any, observe: Callable[[str, int, float, dict[str, Any]], None]
    ) -> None:
        self.app = app
        self.observe = observe

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path == "/metrics":
            await self.app(scope, receive, send)
            return
        endpoint = path if path in KNOWN_PATHS else "other"
        note: dict[str, Any] = {}
        token = ANSWER_NOTE.set(note)
        start = time.perf_counter()
        status = 500

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            note["error"] = exc
            status = 500
            raise
        finally:
            ANSWER_NOTE.reset(token)
            self.observe(endpoint, status, time.perf_counter() - start, note)


# ---------------------------------------------------------------------- the plain requests' path

#: A parameter's check on the plain path: the value, or ``None`` to leave the request to FastAPI.
ParamCheck = Callable[[str], Any]
FastHandler = Callable[[Request], Awaitable[Response | None]]


def plain_query(
    request: Request, checks: dict[str, ParamCheck], required: frozenset[str]
) -> dict[str, Any] | None:
    """The query's values when the request is a plain one: every parameter one of ``checks``,
    given once and accepted by its check, and the ``required`` ones there; else ``None``.

    A check accepts only what FastAPI's own validation surely accepts with the same value, so
    anything else (a filter, a repeated or unknown parameter, a value out of range, any
    mistake) goes through FastAPI as before, with its validation and its ``422`` wording.
    """
    items = request.query_params.multi_items()
    if len(items) > len(checks):
        return None
    values: dict[str, Any] = {}
    for key, raw in items:
        check = checks.get(key)
        if check is None or key in values:
            return None
        value = check(raw)
        if value is None:
            return None
        values[key] = value
    return values if required <= values.keys() else None


def text_check(max_length: int) -> ParamCheck:
    """A text of 1..``max_length`` characters (FastAPI's ``min_length=1, max_length=...``)."""
    return lambda raw: raw if 0 < len(raw) <= max_length else None


def count_check(high: int) -> ParamCheck:
    """A whole number 1..``high`` written plainly (``7``, not ``07``, ``+7`` or ``7.0``: those
    are FastAPI's to judge)."""

    def check(raw: str) -> int | None:
        if not (0 < len(raw) <= len(str(high)) and raw.isascii() and raw.isdigit()):
            return None
        value = int(raw)
        return value if raw[0] != "0" and value <= high else None

    return check


def choice_check(choices: tuple[str, ...]) -> ParamCheck:
    """One of ``choices``, exactly (FastAPI's ``Literal``)."""
    allowed = frozenset(choices)
    return lambda raw: raw if raw in allowed else None


def with_plain_path(fast: FastHandler) -> type[APIRoute]:
    """A route class that first offers each request to ``fast`` (which answers plain requests
    without FastAPI's per-parameter validation and dependency resolution: two thirds of a
    cached answer's CPU) and hands the rest to the route as FastAPI declared it.

    ``fast`` runs inside the route, so its exceptions (``HTTPException`` from the access
    check, the lab's errors) reach the same exception handlers as the endpoint's; the route
    keeps its declaration, so the OpenAPI schema and every non-plain request are unchanged.
    """

    class PlainPathRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Any]:
            declared = super().get_route_handler()

            async def handler(request: Request) -> Response:
                response = await fast(request)
                return response if response is not None else await declared(request)

            return handler

    return PlainPathRoute


# ---------------------------------------------------------------------- one write per answer


def one_write_protocol() -> str | None:
    """The uvicorn HTTP protocol for ``serve`` (``--http``): :class:`OneWriteProtocol` where
    httptools is installed (uvicorn[standard]), else ``None`` (uvicorn's default)."""
    import importlib.util

    if importlib.util.find_spec("httptools") is None:  # pragma: no cover - uvicorn[standard]
        return None
    return f"{__name__}:OneWriteProtocol"


class _HeldHead:
    """A transport that holds an answer's status line and headers until its body comes, so
    both leave in one ``write`` (one system call and one wake-up of the client, not two).

    An interim ``100 Continue`` goes out at once; the held head goes out with the first body
    part, or alone when the answer ends without one (``HEAD``), or before the connection is
    closed.
    """

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._head: bytes | None = None
        self._sent = False

    def write(self, data: bytes) -> None:
        if not self._sent and self._head is None:
            if data.startswith(b"HTTP/1.1 1"):  # interim (100 Continue): at once, not held
                self._transport.write(data)
            else:
                self._head = bytes(data)
            return
        if self._head is not None:
            data, self._head = self._head + data, None
        self._sent = True
        self._transport.write(data)

    def flush(self) -> None:
        """Send a held head (an answer that ended without a body part)."""
        if self._head is not None:
            self.write(b"")

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, ...
        return getattr(self._transport, name)


@functools.cache
def _one_write_protocol_class() -> type:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class OneWriteProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, writing each answer's head and body at once."""

        def on_headers_complete(self) -> None:
            before = self.cycle
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is None or cycle is before:  # an upgrade: no answer cycle
                return
            if not (hasattr(cycle, "transport") and hasattr(cycle, "on_response")):
                return  # another uvicorn's cycle: answer as uvicorn does (two writes)
            held = _HeldHead(cycle.transport)
            cycle.transport = held  # type: ignore[assignment]
            finished = cycle.on_response

            def on_response() -> None:  # this answer's end (pipelined ones have their own)
                held.flush()
                finished()

            cycle.on_response = on_response

    return OneWriteProtocol


def __getattr__(name: str) -> Any:  # uvicorn imports the protocol by name, only when serving
    if name == "OneWriteProtocol":
        return _one_write_protocol_class()
    raise AttributeError(name)
