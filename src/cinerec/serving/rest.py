"""REST over `RecommendationService` (FastAPI): the routes, their JSON, and operations.

``create_app(service)`` gives an ASGI app with:

- ``GET /v1/recommendations`` (a known user), ``POST /v1/recommendations`` (a history,
  a user, or both), ``POST /v1/recommendations/batch``;
- ``GET /v1/items?search=``, ``GET /v1/items/{movieId}``, ``GET /v1/items/{movieId}/similar``,
  ``GET /v1/explain?user=&item=``, ``GET /v1/models``;
- ``POST /v1/ratings`` and ``POST /v1/admin/reload`` (both need the API key, header
  ``X-API-Key`` or ``Authorization: Bearer``);
- ``GET /healthz``, ``GET /readyz``, ``GET /metrics`` (Prometheus text), ``GET /ping``
  (the trivial endpoint load tests measure as the ceiling), ``/docs`` and
  ``/openapi.json``; the web page at ``/``.

One ASGI middleware (plain ASGI: no per-request task or body copy) gives every
request an id (``X-Request-ID``, taken from the request when it has one), refuses
bodies over ``max_body_bytes`` with a 413, counts and times requests per route for
``/metrics``, and writes one JSON log line per request. Every refusal is a JSON body
``{"error": {"code", "message"}, "request_id"}`` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import Body, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from cinerec.errors import CinerecError, ServiceError
from cinerec.serving.service import (
    MAX_K,
    FeedbackRow,
    HistoryEntry,
    RecommendationService,
    RecommendRequest,
    check_api_key,
    configured_api_key,
    new_request_id,
)

WEB_DIR = Path(__file__).parent / "web"
DEFAULT_MAX_BODY = 1 << 20  # 1 MiB: a 5,000-rating history is ~150 kB
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

log = logging.getLogger("cinerec.serving")


# ---- request bodies ---------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RatedMovie(_Body):
    movieId: int
    rating: float
    timestamp: int | None = None


class RecommendBody(_Body):
    user: int | None = Field(None, description="a raw user id (known, or one with stored feedback)")
    history: list[RatedMovie] = Field(default_factory=list, description="ratings of a visitor: folded in")
    k: int = 10
    risk_aversion: float = 0.0
    exclude: list[int] = Field(default_factory=list)
    candidates: list[int] | None = None
    exclude_seen: bool = True
    model: str | None = None
    explain: bool = True

    def request(self) -> RecommendRequest:
        return RecommendRequest(
            user=self.user,
            history=tuple(HistoryEntry(h.movieId, h.rating, h.timestamp) for h in self.history),
            k=self.k,
            risk_aversion=self.risk_aversion,
            exclude=tuple(self.exclude),
            candidates=None if self.candidates is None else tuple(self.candidates),
            exclude_seen=self.exclude_seen,
            model=self.model,
            explain=self.explain,
        )


class BatchBody(_Body):
    requests: list[RecommendBody]


class RatingIn(_Body):
    user: int
    movieId: int
    rating: float
    timestamp: int | None = Field(None, description="unix seconds; (user, movieId, timestamp) is the idempotency key")


class RatingsBody(_Body):
    ratings: list[RatingIn]


# ---- the app ----------------------------------------------------------------------------
def create_app(
    service: RecommendationService,
    *,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    web_dir: Path | None = WEB_DIR,
    access_log: bool = True,
    threads: int | None = None,
) -> FastAPI:
    """The REST app over ``service``; ``api_key`` None: read ``CINEREC_API_KEY``; when
    neither is set, write endpoints are refused (there is no open-write mode)."""
    api_key = configured_api_key(api_key)
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if threads is not None:  # sync routes run in anyio's pool: size it to the load
            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="cinerec",
        version=_version(),
        description="Movie recommendations with explanations, from saved cinerec models.",
    )
    metrics = _Metrics(service)
    app.state.service = service
    app.state.metrics = metrics

    def require_key(x_api_key: str | None, authorization: str | None) -> None:
        check_api_key(api_key, x_api_key, authorization)

    # -- errors: one JSON shape for every refusal --
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return _error(request, exc.status, exc.code, str(exc))

    @app.exception_handler(CinerecError)
    async def _cinerec_error(request: Request, exc: CinerecError) -> JSONResponse:
        return _error(request, 400, type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
            for e in exc.errors()[:10]
        ]
        return _error(request, 422, "invalid_request", "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", extra={"request_id": _rid(request)})
        return _error(request, 500, "internal", "internal error (logged with this request id)")

    # -- recommendations --
    # single requests are awaited on the service's coalescer (one compute thread that
    # batches whatever is waiting), not run in the thread pool; the query string is
    # read here and validated by the service (FastAPI's per-parameter machinery was a
    # fifth of this route's time on the event loop), and documented by _RECOMMEND_QUERY
    @app.get("/v1/recommendations", tags=["recommendations"], openapi_extra={"parameters": _RECOMMEND_QUERY})
    async def get_recommendations(request: Request) -> JSONResponse:
        """Top-k for a known user (stored feedback folded in; unknown users get the
        explained fallback)."""
        q = request.query_params
        if "user" not in q:
            raise ServiceError("the query parameter user is required", code="bad_value")
        req = RecommendRequest(user=q["user"], k=q.get("k", 10), risk_aversion=q.get("risk_aversion", 0.0),
                               exclude=_id_list(q.get("exclude"), "exclude"), model=q.get("model"),
                               explain=_flag(q.get("explain", "true"), "explain"))
        return await asyncio.wrap_future(service.recommend_future(req, _answer))

    @app.post("/v1/recommendations", tags=["recommendations"])
    async def post_recommendations(body: RecommendBody) -> JSONResponse:
        """Top-k for a history (a visitor the model has never seen: fold-in, no
        retraining), a user, or a user plus fresh ratings."""
        return await asyncio.wrap_future(service.recommend_future(body.request(), _answer))

    @app.post("/v1/recommendations/batch", tags=["recommendations"])
    def post_batch(body: BatchBody) -> JSONResponse:
        """Many requests in one call (scored together per model)."""
        return _answer({"results": service.recommend_many([b.request() for b in body.requests])})

    # -- items --
    @app.get("/v1/items", tags=["items"])
    def search_items(search: str = "", limit: int = 20, model: str | None = None) -> JSONResponse:
        """Movies whose title contains ``search`` (exact, then prefix, then substring)."""
        return _answer(service.search(search, limit, model))

    @app.get("/v1/items/{movie_id}", tags=["items"])
    def get_item(movie_id: int, model: str | None = None) -> JSONResponse:
        return _answer(service.item(movie_id, model))

    @app.get("/v1/items/{movie_id}/similar", tags=["items"])
    def similar(movie_id: int, k: int = 10, model: str | None = None) -> JSONResponse:
        return _answer(service.similar(movie_id, k, model))

    @app.get("/v1/explain", tags=["recommendations"])
    def explain(user: int, item: int, model: str | None = None) -> JSONResponse:
        """Why the model scores movie ``item`` for ``user`` as it does."""
        return _answer(service.explain(user, item, model))

    @app.get("/v1/models", tags=["operations"])
    def models() -> JSONResponse:
        return _answer({"default": service.default_model, "models": service.models()})

    # -- writes --
    @app.post("/v1/ratings", tags=["feedback"], status_code=201)
    def post_ratings(
        body: Annotated[RatingsBody | RatingIn, Body()],
        x_api_key: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        """Store ratings (one, or ``{"ratings": [...]}``); acknowledged once durable,
        idempotent on (user, movieId, timestamp), visible to the next recommendation."""
        require_key(x_api_key, authorization)
        rows = body.ratings if isinstance(body, RatingsBody) else [body]
        return service.rate([FeedbackRow(r.user, r.movieId, r.rating, r.timestamp) for r in rows])

    @app.post("/v1/admin/reload", tags=["operations"])
    def reload(
        x_api_key: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        """Load every artifact again and swap them in; in-flight requests finish on the
        old models, a failed reload keeps them."""
        require_key(x_api_key, authorization)
        return service.reload()

    # -- operations --
    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        state = service.ready()
        return JSONResponse(state, status_code=200 if state["ready"] else 503)

    @app.get("/ping", tags=["operations"], include_in_schema=False)
    async def ping() -> dict[str, Any]:
        return {"pong": True}

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    if web_dir is not None and (web_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=web_dir, html=True), name="web")

    app.add_middleware(_Operations, metrics=metrics, max_body=max_body_bytes, access_log=access_log)
    return app


def _version() -> str:
    import cinerec

    return cinerec.__version__


def _rid(request: Request) -> str:
    return request.scope.get("state", {}).get("request_id", "")


def _error(request: Request, status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}, "request_id": _rid(request)}, status_code=status
    )


class _FastJSON(JSONResponse):
    """JSON by orjson (measured: the stdlib encoder took a fifth of a recommendation's
    time); NaN and infinity cannot reach it (the service sends None for them)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _answer(content: dict[str, Any]) -> JSONResponse:
    """The service's dicts are plain JSON already: skip FastAPI's encoder walk."""
    return _FastJSON(content)


def _query_param(name: str, type_: str, description: str, required: bool = False,
                 default: Any = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": type_}
    if default is not None:
        schema["default"] = default
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


_RECOMMEND_QUERY = [
    _query_param("user", "integer", "raw user id (unknown ids get the explained fallback)", required=True),
    _query_param("k", "integer", f"list length, 1..{MAX_K}", default=10),
    _query_param("risk_aversion", "number", "lower an item by this many sigmas of its ratings", default=0.0),
    _query_param("exclude", "string", "comma-separated movie ids to leave out"),
    _query_param("model", "string", "served model name (default: the first one)"),
    _query_param("explain", "boolean", "include each item's explanation", default=True),
]


def _flag(text: str, what: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ServiceError(f"{what} must be true or false, got {text[:40]!r}", code="bad_value")


def _id_list(text: str | None, what: str) -> tuple[int, ...]:
    if not text:
        return ()
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise ServiceError(f"{what}: {part[:40]!r} is not a movie id", code="bad_value") from None
    return tuple(out)


# ---- metrics ----------------------------------------------------------------------------
class _Metrics:
    """Prometheus metrics of one app (its own registry: two apps in a process, as in the
    tests, do not share counters)."""

    def __init__(self, service: RecommendationService):
        self.registry = CollectorRegistry()
        self.requests = Counter("cinerec_requests", "HTTP requests", ["route", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("cinerec_request_seconds", "request latency", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.feedback = Gauge("cinerec_feedback_rows", "rows in the feedback store", registry=self.registry)
        self.feedback.set_function(lambda: service.feedback_rows)
        self.reloads = Gauge("cinerec_model_reloads", "model (re)loads since start", registry=self.registry)
        self.reloads.set_function(lambda: service.reloads)
        batched = Gauge("cinerec_coalesced_requests", "single recommendation requests answered "
                        "in coalesced batches", registry=self.registry)
        batched.set_function(lambda: service.coalescer.requests)
        batches = Gauge("cinerec_coalesced_batches", "batched calls those requests took",
                        registry=self.registry)
        batches.set_function(lambda: service.coalescer.batches)
        self.load = Gauge("cinerec_model_load_seconds", "time to load each served model", ["model"],
                          registry=self.registry)
        self.service = service

    def render(self) -> bytes:
        for m in self.service.models():
            self.load.labels(model=m["name"]).set(m["load_seconds"])
        return generate_latest(self.registry)


class _Operations:
    """Request id, body-size limit, metrics and the JSON access log, as plain ASGI."""

    def __init__(self, app: Any, metrics: _Metrics, max_body: int, access_log: bool):
        self.app, self.metrics, self.max_body, self.access_log = app, metrics, max_body, access_log

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        status = [500]

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self._handle(scope, receive, send_with_id, headers, rid)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            name = getattr(route, "path", None) or "other"
            self.metrics.requests.labels(route=name, method=scope["method"], status=str(status[0])).inc()
            self.metrics.latency.labels(route=name).observe(elapsed)
            if self.access_log:
                log.info(json.dumps({
                    "ts": round(time.time(), 3), "request_id": rid, "method": scope["method"],
                    "path": scope["path"], "route": name, "status": status[0],
                    "ms": round(elapsed * 1e3, 3),
                }))

    async def _handle(self, scope: dict, receive: Any, send: Any, headers: dict, rid: str) -> None:
        length = headers.get(b"content-length")
        try:
            too_big = length is not None and int(length) > self.max_body
        except ValueError:
            too_big = True
        seen = [0]

        async def limited_receive() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.max_body:
                    raise _BodyTooLarge
            return message

        if not too_big:
            try:
                await self.app(scope, limited_receive, send)
                return
            except _BodyTooLarge:
                pass
        await self._refuse(send, rid, 413, "body_too_large",
                           f"request bodies are limited to {self.max_body:,} bytes")

    @staticmethod
    async def _refuse(send: Any, rid: str, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": {"code": code, "message": message}, "request_id": rid}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the service's logger (the access log is already JSON)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if msg.startswith("{"):
            return msg
        out = {"ts": round(record.created, 3), "level": record.levelname.lower(), "message": msg}
        if getattr(record, "request_id", None):
            out["request_id"] = record.request_id  # type: ignore[attr-defined]
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out)
