"""The REST API: FastAPI over the same recommendation service as the app and the CLI.

``python -m recsys_core serve [--host 127.0.0.1] [--port 8000] [--workers N]`` runs it on
uvicorn. Endpoints (all ``GET``; the OpenAPI schema is at ``/openapi.json``, the docs at
``/docs``):

``/health``
    What is served (dataset, version, models) and whether it is whole; under ``monitoring``
    :func:`recsys_core.monitoring.health` of the served version with this process's window
    of recent answers (``answers``: count, degraded and error share, p50/p95/p99 latency in
    ms, last errors). Every answer of the five answer endpoints is recorded there (one place:
    the ``count`` middleware); ``4xx`` answers (the caller's mistakes) are not, ``5xx`` ones
    count as errors. With several workers each keeps its own window.
``/recommend?user_id=&k=&model=``
    A shopper's top ``k`` (1..100). An unknown shopper gets the documented cold-start answer:
    the most popular items, ``200`` with ``"degraded": true`` and the reason.
``/similar?item_id=&k=&model=``
    Similar items; an unknown item is ``404``.
``/purchase-probability?user_id=&item_id=``
    One calibrated probability; an unknown shopper gets the item's base rate (degraded), an
    unknown item ``404``.
``/explain?user_id=&item_id=``
    SHAP reasons and "because you bought"; unknown shopper: the base rate, no reasons
    (degraded); unknown item ``404``.
``/search?q=&user_id=&k=&method=``
    Search hits (query at most 200 characters; ``method`` hybrid, the default, or tfidf),
    re-ranked by purchase probability for a known shopper.
``/metrics``
    Prometheus text: requests by endpoint and status, a latency histogram, degraded answers
    and answer-cache hits. With several workers it uses the Prometheus client's
    multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``serve``), so the totals are
    those of every worker.

Errors: a bad or missing parameter is ``422`` (``{"detail": "<parameter>: <problem>"}``), a
request the lab cannot answer as asked ``400`` (e.g. a model not trained in this version),
an unknown item ``404``, nothing trained yet or unreadable files ``503``; input never causes
a ``500``. Answers use the pydantic models of :mod:`recsys_core.serving.schemas`, the same
ones the CLI's ``--json`` goes through.

Access (:mod:`recsys_core.serving.access`, the one place keys are checked and requests
audited): while the lab has no users the API is local-only (``serve`` refuses to bind anything
but a loopback address, and a request from off loopback is refused). Off loopback every path,
``/health``, ``/metrics``, ``/docs`` and ``/openapi.json`` included, needs an ``X-API-Key``.
Once users exist every answer needs a key of a user (``401`` otherwise) and is audited as
``api:<user>`` through one batched writer; wrong keys are audited and throttled per client
(``429``). A viewer's key sends and receives shopper pseudonyms only (``S-...``), as the app
shows them to viewers. A model this version does not have is ``400``; nothing served (nothing
trained, unreadable pointers before a first load) ``503``.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from recsys_core.errors import (
    ArtifactError,
    ConfigError,
    ModelNotTrainedError,
    RecsysError,
    UnknownItemError,
    UnknownUserError,
)
from recsys_core.models.registry import ALS, RANKER, recommendable_models, similar_item_models
from recsys_core.policy import LAB_RULE, BusinessFilters, ListPolicy, PolicyChoice, Repeats
from recsys_core.serving import schemas
from recsys_core.serving.access import Access, Caller
from recsys_core.serving.api_http import (
    ANSWER_NOTE,
    ANSWER_PATHS,
    NO_NATIVE_TELEMETRY,
    CountMiddleware,
    Metrics,
    choice_check,
    count_check,
    json_answer,
    plain_query,
    text_check,
    with_plain_path,
)
from recsys_core.serving.batch import BatchTable
from recsys_core.serving.service import RecommendationService
from recsys_core.settings import lab_settings

#: Largest ``k`` a request may ask for.
MAX_K = 100
#: Longest search query, in characters.
MAX_QUERY = 200
#: Longest id accepted.
MAX_ID = 100

ServiceProvider = Callable[[], RecommendationService]
if TYPE_CHECKING:
    RecommendModel = str
    SimilarModel = str
else:  # the registry's names, validated by FastAPI (and listed in the OpenAPI schema)
    RecommendModel = Literal[recommendable_models()]
    SimilarModel = Literal[similar_item_models()]

UserId = Annotated[str, Query(min_length=1, max_length=MAX_ID, description="The shopper's id.")]
ItemId = Annotated[str, Query(min_length=1, max_length=MAX_ID, description="The item's id.")]
K = Annotated[int, Query(ge=1, le=MAX_K, description=f"Number of items (1..{MAX_K}).")]


# ---------------------------------------------------------------------- access (one hook)


_API_KEY = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Required once the lab has users: create one with `api-key create --user NAME`.",
)


def api_keys_enabled() -> bool:
    """Whether the users database has at least one user (so API keys can exist).

    Used by ``serve`` before it binds; requests are checked by
    :class:`~recsys_core.serving.access.Access`.
    """
    from recsys_core.security.users import any_users

    return bool(any_users())


async def authorize(request: Request, api_key: str | None = Security(_API_KEY)) -> Caller | None:
    """The access hook of the answer endpoints (:meth:`Access.check`): the caller, or
    ``None`` in local mode; ``401``/``403``/``429``/``503`` otherwise. Audited."""
    access: Access = request.app.state.access
    return await access.check(request, api_key, answer=True)


async def guard(request: Request, api_key: str | None = Security(_API_KEY)) -> None:
    """The access hook of ``/health``, ``/metrics`` and the docs: a key off loopback."""
    access: Access = request.app.state.access
    await access.check(request, api_key, answer=False)


class NotServingError(ArtifactError):
    """Nothing can be served (nothing trained, or unreadable before a first load): ``503``."""


def check_bind_address(host: str) -> None:
    """Refuse a non-loopback address while requests are not authenticated.

    Raises
    ------
    ConfigError
        ``host`` is not a loopback address and API keys are not enabled.
    """
    import ipaddress

    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not api_keys_enabled():
        raise ConfigError(
            f"refusing to listen on {host!r}: without users (and so API keys) the API is "
            "local-only; use --host 127.0.0.1 (or ::1), or add users and API keys first"
        )


# ---------------------------------------------------------------------- service


def default_provider(dataset: str | None = None, version: str | None = None) -> ServiceProvider:
    """The active version's service, reloaded when the registry changes
    (:class:`~recsys_core.serving.live.LiveService`: restore, rollback, retrain, damage)."""
    from recsys_core.serving.live import LiveService

    # reloads in a background thread: the old version answers until the new one is ready
    return LiveService(dataset, version, background=True).service


def _problem(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, KeyError) and len(exc.args) == 1:  # KeyError's str() adds quotes
        text = str(exc.args[0])
    return text


def create_app(
    provider: ServiceProvider | None = None,
    *,
    dataset: str | None = None,
    version: str | None = None,
    batch: str | None = None,
) -> FastAPI:
    """The FastAPI application over ``provider()``'s service (default: the active version).

    ``dataset`` and ``version`` (or ``$RECSYS_SERVE_DATASET`` and ``$RECSYS_SERVE_VERSION``,
    which ``serve`` sets for its worker processes) choose what the default provider serves;
    ``batch`` (``$RECSYS_SERVE_BATCH``) a batch table answering the questions it covers.
    """
    dataset = dataset or lab_settings().serve_dataset or None
    version = version or lab_settings().serve_version or None
    batch_path = batch or lab_settings().serve_batch or None
    base_provider = provider or default_provider(dataset, version)
    table = BatchTable.read(Path(batch_path)) if batch_path else None

    def service_of() -> RecommendationService:
        try:
            service = base_provider()
        except ModelNotTrainedError as exc:  # nothing served at all: 503, not the caller's 400
            raise NotServingError(str(exc)) from exc
        if (
            table is not None
            and service.batch is not table
            and service.version == table.model_version
        ):
            service.attach_batch(table)  # a reloaded version gets it again if it matches
        return service

    metrics = Metrics()
    access = Access()
    from recsys_core.serving.live import LiveService

    # the LiveService behind the provider (the default one is) keeps the health window
    owner = getattr(base_provider, "__self__", None)
    live = owner if isinstance(owner, LiveService) else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # load and prepare before the first request; errors are answered per request
        with suppress(RecsysError):
            service_of().warm_up()
        # the loaded lab is millions of long-lived objects: move them out of the garbage
        # collector's reach so its full collections (tens of ms with the event loop
        # stopped, and more often under the audited requests' allocations) stop walking
        # them; refcounting still frees them when a reload replaces the version
        gc.collect()
        gc.freeze()
        yield
        access.close()  # write the queued audit events

    app = FastAPI(
        lifespan=lifespan,
        **NO_NATIVE_TELEMETRY,
        title="E-commerce recommendation lab",
        version="1",
        description=(__doc__ or "").split("\n\n")[0],
        # served below behind the access guard (a key off loopback)
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        responses={
            400: {"model": schemas.ErrorAnswer},
            401: {"model": schemas.ErrorAnswer},
            404: {"model": schemas.ErrorAnswer},
            422: {"model": schemas.ErrorAnswer},
            503: {"model": schemas.ErrorAnswer},
        },
    )
    app.state.metrics = metrics
    app.state.access = access
    caller = Depends(authorize)
    guarded = [Depends(guard)]

    def observe(endpoint: str, status: int, seconds: float, note: dict[str, Any]) -> None:
        metrics.observe(endpoint, status, seconds)
        if live is not None and endpoint in ANSWER_PATHS and not 400 <= status < 500:
            error = note.get("error") if status >= 500 else None
            if status >= 500 and error is None:
                error = RuntimeError(f"{endpoint} answered HTTP {status}")
            live.record(seconds, bool(note.get("degraded")), error)

    # the one place requests are counted and timed (a plain ASGI middleware: Starlette's
    # BaseHTTPMiddleware costs a task group and a stream per request)
    app.add_middleware(CountMiddleware, observe=observe)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "header"))
            problems.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    @app.exception_handler(RecsysError)
    async def lab_error(request: Request, exc: RecsysError) -> JSONResponse:
        status = 400  # a model this version does not have (ModelNotTrainedError) included
        if isinstance(exc, UnknownItemError | UnknownUserError):
            status = 404
        elif isinstance(exc, ArtifactError):  # nothing served, broken or unreadable files
            status = 503
        note = ANSWER_NOTE.get()
        if note is not None and status >= 500:
            note["error"] = exc
        return JSONResponse({"detail": _problem(exc)}, status_code=status)

    def degraded(endpoint: str, answer: dict[str, Any]) -> dict[str, Any]:
        problem = live.problem if live is not None else None
        if problem and "degraded" in answer:  # e.g. a damaged pointer: said in every answer
            why = answer.get("reason")
            answer = {**answer, "degraded": True, "reason": f"{why}; {problem}" if why else problem}
        if answer.get("degraded"):
            metrics.degraded.labels(endpoint).inc()
            note = ANSWER_NOTE.get()
            if note is not None:
                note["degraded"] = True
        return answer

    @app.get("/openapi.json", include_in_schema=False, dependencies=guarded)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guarded)
    async def docs() -> Response:
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

    @app.get("/health", response_model=schemas.HealthAnswer, tags=["service"], dependencies=guarded)
    async def health() -> Any:
        """What is served and whether it is whole (503 when nothing is trained), with the
        recent answers' health under ``monitoring``."""
        answer = service_of().health()
        if live is not None and live.problem:  # e.g. a damaged pointer: served, but degraded
            answer = {**answer, "status": "degraded", "degraded": True, "reason": live.problem}
        if live is not None:
            from recsys_core import monitoring

            # sizes only: the live service checks checksums whenever a file changes
            answer["monitoring"] = monitoring.health(live.dataset, live.home, live, deep=False)
        return answer

    # answers that take about a millisecond run on the event loop (a thread-pool hop costs
    # as much as the answer); explanations and search, slower, run in the thread pool
    # the answers of these three endpoints are built by the service in the shape of their
    # response model (the CLI's --json validates the same dicts through it, and the tests
    # check the two are equal), so they are written with orjson directly: FastAPI's
    # validate-then-serialise of every answer cost more than a cached answer itself
    async def recommend(
        user_id: UserId,
        k: K = 10,
        model: Annotated[RecommendModel, Query(description="Model to ask first.")] = RANKER,
        filter_seen: Annotated[
            bool | None,
            Query(
                description="Leave out (true) or keep (false) the items the shopper already "
                "bought; default: the lab's rule (its settings, else the training data's "
                "repeat rate, as evaluation uses), named in the answer's list_policy."
            ),
        ] = None,
        repeats: Annotated[
            Repeats | None,
            Query(description="The list policy's repeat rule (wins over filter_seen)."),
        ] = None,
        category: Annotated[
            list[str] | None,
            Query(max_length=MAX_ID, description="Keep only items of these categories."),
        ] = None,
        min_price: Annotated[
            float | None, Query(ge=0, description="Keep only items priced at least this.")
        ] = None,
        max_price: Annotated[
            float | None, Query(ge=0, description="Keep only items priced at most this.")
        ] = None,
        hide_bought_days: Annotated[
            int,
            Query(
                ge=0, le=3650, description="Leave out items bought in the last N days (0: keep)."
            ),
        ] = 0,
        user: Caller | None = caller,
    ) -> Any:
        """A shopper's top ``k`` items (unknown shopper: the popular items, degraded), under
        the list policy: the repeat rule and the business filters (as the Shopper page's)."""
        service = service_of()
        policy: PolicyChoice = LAB_RULE
        if repeats is not None:
            policy = ListPolicy(repeats)
        elif filter_seen is not None:
            policy = ListPolicy.from_flags(filter_seen)
        filters = BusinessFilters(
            categories=tuple(category or ()),
            min_price=min_price,
            max_price=max_price,
            exclude_bought_days=hide_bought_days,
        )
        if filters.active:
            policy = service.resolve_policy(policy).with_filters(filters)
        return await recommend_answer(service, user, user_id, k, model, policy)

    async def recommend_answer(
        service: RecommendationService,
        user: Caller | None,
        user_id: str,
        k: int,
        model: str,
        policy: PolicyChoice,
    ) -> Response:
        shopper = await access.shopper_in(user, user_id, service)
        answer = service.answer(shopper, k, model, policy=policy)
        metrics.cache_outcome(answer.cached)
        out = access.shopper_out(user, service.answer_json(shopper, answer), user_id, shopper)
        return json_answer(degraded("/recommend", out))

    # the plain request (user_id, k, model: what nearly every client sends) skips FastAPI's
    # parameter validation and dependency resolution; the rest goes through `recommend`
    plain_recommend = {
        "user_id": text_check(MAX_ID),
        "k": count_check(MAX_K),
        "model": choice_check(recommendable_models()),
    }
    required_recommend = frozenset({"user_id"})

    async def recommend_plain(request: Request) -> Response | None:
        values = plain_query(request, plain_recommend, required_recommend)
        if values is None:
            return None
        # the access check first, as the declared route's dependency runs before its body
        user = await access.check(request, request.headers.get("x-api-key") or None, answer=True)
        service = service_of()
        k, model = values.get("k", 10), values.get("model", RANKER)
        return await recommend_answer(service, user, values["user_id"], k, model, LAB_RULE)

    app.router.add_api_route(
        "/recommend",
        recommend,
        methods=["GET"],
        response_model=schemas.RecommendAnswer,
        tags=["answers"],
        route_class_override=with_plain_path(recommend_plain),
    )

    @app.get("/similar", response_model=schemas.SimilarAnswer, tags=["answers"])
    async def similar(
        item_id: ItemId,
        k: K = 10,
        model: Annotated[SimilarModel, Query(description="Model to ask.")] = ALS,
        user: Caller | None = caller,
    ) -> Any:
        """Items similar to one item (404 for an unknown item)."""
        return json_answer(degraded("/similar", service_of().similar(item_id, k, model)))

    @app.get("/purchase-probability", response_model=schemas.ProbabilityAnswer, tags=["answers"])
    async def purchase_probability(
        user_id: UserId, item_id: ItemId, user: Caller | None = caller
    ) -> Any:
        """How likely the shopper buys the item in the next period."""
        service = service_of()
        shopper = await access.shopper_in(user, user_id, service)
        answer = service.purchase_probability_answer(shopper, item_id)
        answer = access.shopper_out(user, answer, user_id, shopper)
        return json_answer(degraded("/purchase-probability", answer))

    @app.get("/explain", response_model=schemas.ExplainAnswer, tags=["answers"])
    async def explain(
        user_id: UserId,
        item_id: ItemId,
        model: Annotated[
            RecommendModel | None,
            Query(
                description="Explain the list this model serves, by this model (ALS: its "
                "factors; item-kNN: its neighbours; the ranker: SHAP plus its stage-one "
                "reasons). Default: the purchase model's probability (400 without one)."
            ),
        ] = None,
        user: Caller | None = caller,
    ) -> Any:
        """Why the purchase model gives this probability (400 when this version has none),
        or with ``model`` why that model put the item in the shopper's list."""
        service = service_of()
        shopper = await access.shopper_in(user, user_id, service)
        if model is None:
            answer = await run_in_threadpool(service.explain_answer, shopper, item_id)
        else:
            answer = await run_in_threadpool(service.explain_served, shopper, item_id, model)
        return degraded("/explain", access.shopper_out(user, answer, user_id, shopper))

    @app.get("/search", response_model=schemas.SearchAnswer, tags=["answers"])
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY, description="Query.")],
        user_id: Annotated[
            str | None, Query(min_length=1, max_length=MAX_ID, description="Shopper.")
        ] = None,
        k: K = 20,
        method: Annotated[
            Literal["hybrid", "tfidf"],
            Query(description="hybrid (TF-IDF + text embeddings) or tfidf (lexical only)."),
        ] = "hybrid",
        user: Caller | None = caller,
    ) -> Any:
        """Product search, personalised for a known shopper."""
        service = service_of()
        shopper = await access.shopper_in(user, user_id, service) if user_id else None
        answer = await run_in_threadpool(service.search_answer, q, shopper, k, method)
        return degraded("/search", access.shopper_out(user, answer, user_id, shopper))

    @app.get("/metrics", response_class=PlainTextResponse, tags=["service"], dependencies=guarded)
    def prometheus() -> Response:
        """Prometheus text format."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app
