"""gRPC over `RecommendationService`: the servicer of `cinerec.proto` and its server.

The operations, defaults, API-key rule and refusals are those of the REST layer
(`cinerec.serving.rest`); only the encoding differs (rpc -> route: Recommend and
RecommendBatch -> /v1/recommendations[/batch], Similar, Search, Item, Explain -> /v1/items
and /v1/explain, Rate -> POST /v1/ratings, Reload -> /v1/admin/reload, Health -> /readyz,
Models -> /v1/models, Ping -> /ping). A `ServiceError` becomes the gRPC
code of its HTTP status (`STATUS_CODES`), any other `CinerecError` INVALID_ARGUMENT, and
anything unexpected INTERNAL with the traceback logged; the server never lets an error
escape a handler. The trailing metadata carries the service's short error code
(``cinerec-error-code``) and the request id (``x-request-id``, taken from the request
when it sends one).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent import futures
from typing import Any

import grpc

from cinerec._util import validate
from cinerec.errors import CinerecError, ConfigError, ServiceError
from cinerec.serving.grpc import cinerec_pb2 as pb
from cinerec.serving.grpc import cinerec_pb2_grpc as pb_grpc
from cinerec.serving.service import (
    FeedbackRow,
    HistoryEntry,
    RecommendationService,
    RecommendRequest,
    check_api_key,
    configured_api_key,
    new_request_id,
)

log = logging.getLogger("cinerec.serving")

#: HTTP status of a ServiceError -> gRPC code (other 4xx: INVALID_ARGUMENT, 5xx: INTERNAL).
STATUS_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
ERROR_CODE_KEY = "cinerec-error-code"
REQUEST_ID_KEY = "x-request-id"


def grpc_code(status: int) -> grpc.StatusCode:
    """The gRPC code a transport answers a `ServiceError` of HTTP ``status`` with."""
    if status in STATUS_CODES:
        return STATUS_CODES[status]
    return grpc.StatusCode.INVALID_ARGUMENT if status < 500 else grpc.StatusCode.INTERNAL


def start_grpc_server(
    service: RecommendationService,
    host: str = "127.0.0.1",
    port: int = 50051,
    api_key: str | None = None,
    max_workers: int = 8,
    max_message_bytes: int = 1 << 20,
) -> GrpcServer:
    """Serve ``service`` over gRPC on ``host:port`` and return the started server.

    ``port`` 0 picks a free port; the bound one is ``server.cinerec_port``. ``api_key``
    None reads ``CINEREC_API_KEY``; with neither set, Rate and Reload are refused.
    Requests over ``max_message_bytes`` are refused with RESOURCE_EXHAUSTED (the REST
    body limit); answers are not limited. ``max_workers`` threads run the calls that
    block (ratings, reloads, batches, search); Recommend waits on the service's
    coalescer. Stop it with ``server.stop(grace).wait()``.
    """
    port = validate.integer("--grpc-port", port, lo=0, hi=65535)
    max_workers = validate.integer("gRPC max_workers", max_workers, lo=1, hi=1024)
    max_message_bytes = validate.integer("gRPC max_message_bytes", max_message_bytes, lo=1024)
    key = configured_api_key(api_key)
    address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    servicer = RecommenderServicer(service, key or None,
                                   futures.ThreadPoolExecutor(max_workers, thread_name_prefix="cinerec-grpc"))
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", -1),
        # without this, Linux lets a second server bind the same port silently
        ("grpc.so_reuseport", 0),
    ]
    return GrpcServer(servicer, address, options)


class GrpcServer:
    """A `grpc.aio` server on its own thread and event loop (the main thread runs the
    REST server's). One event loop answers every call: no thread per call, and the
    answers to Recommend are encoded on the service's compute thread."""

    def __init__(self, servicer: RecommenderServicer, address: str, options: list[tuple[str, Any]]):
        self._servicer = servicer
        self._loop = asyncio.new_event_loop()
        self._server: grpc.aio.Server | None = None
        self.cinerec_port = 0
        error: list[BaseException] = []
        started = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._start(address, options))
            except BaseException as e:  # noqa: BLE001 - raised again in the caller
                error.append(e)
                started.set()
                self._loop.close()
                return
            started.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=main, name="cinerec-grpc-loop", daemon=True)
        self._thread.start()
        started.wait()
        if error:
            self._thread.join()
            servicer.pool.shutdown(wait=False)
            raise error[0]

    async def _start(self, address: str, options: list[tuple[str, Any]]) -> None:
        server = grpc.aio.server(options=options)
        pb_grpc.add_RecommenderServicer_to_server(self._servicer, server)
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        if bound == 0:
            await server.stop(None)
            raise ConfigError(
                f"--grpc-port {address.rpartition(':')[2]}: cannot listen on {address} (in use, or not an "
                "address of this host); pick another port, or 0 for a free one"
            )
        await server.start()
        self._server, self.cinerec_port = server, bound

    def stop(self, grace: float | None = None) -> _Stopping:
        """Refuse new calls, let those in flight finish for ``grace`` seconds (None: cancel
        them), then stop the loop; ``.wait()`` on the answer blocks until it is done."""
        return _Stopping(self, asyncio.run_coroutine_threadsafe(self._stop(grace), self._loop))

    async def _stop(self, grace: float | None) -> None:
        if self._server is not None:
            await self._server.stop(grace)
        self._loop.call_soon(self._loop.stop)


class _Stopping:
    def __init__(self, server: GrpcServer, fut: futures.Future):
        self._server, self._fut = server, fut

    def wait(self, timeout: float | None = None) -> bool:
        self._fut.result(timeout)
        self._server._thread.join(timeout)
        self._server._servicer.pool.shutdown(wait=True)
        return not self._server._thread.is_alive()


class RecommenderServicer(pb_grpc.RecommenderServicer):
    """`cinerec.v1.Recommender` over one `RecommendationService`."""

    def __init__(self, service: RecommendationService, api_key: str | None, pool: futures.Executor):
        self.service = service
        self.api_key = api_key
        #: Runs the calls that block (store writes, reloads, batches, search).
        self.pool = pool

    # ---- rpcs ---------------------------------------------------------------------------
    async def Recommend(self, request: pb.RecommendRequest, context: grpc.ServicerContext) -> pb.Recommendations:
        async def work() -> pb.Recommendations:  # coalesced with REST's; encoded on the compute thread
            return await asyncio.wrap_future(self.service.recommend_future(_request(request), _recommendations))

        return await self._run(context, "Recommend", work)

    async def RecommendBatch(self, request: pb.RecommendBatchRequest,
                       context: grpc.ServicerContext) -> pb.RecommendBatchResponse:
        def work() -> pb.RecommendBatchResponse:
            answers = self.service.recommend_many([_request(r) for r in request.requests])
            return pb.RecommendBatchResponse(results=[_recommendations(a) for a in answers])

        return await self._run(context, "RecommendBatch", work)

    async def Similar(self, request: pb.SimilarRequest, context: grpc.ServicerContext) -> pb.SimilarResponse:
        def work() -> pb.SimilarResponse:
            d = self.service.similar(request.movie_id, model=request.model or None,
                                     **_present(request, k="k"))
            return pb.SimilarResponse(
                model=d["model"], movie=_movie(d["movie"]), measure=d["measure"],
                items=[pb.SimilarItem(rank=x["rank"], movie_id=x["movieId"], title=x["title"],
                                      genres=x["genres"], similarity=x["similarity"]) for x in d["items"]],
            )

        return await self._run(context, "Similar", work)

    async def Search(self, request: pb.SearchRequest, context: grpc.ServicerContext) -> pb.SearchResponse:
        def work() -> pb.SearchResponse:
            d = self.service.search(request.query, model=request.model or None,
                                    **_present(request, limit="limit"))
            return pb.SearchResponse(query=d["query"], items=[_movie(x) for x in d["items"]])

        return await self._run(context, "Search", work)

    async def Item(self, request: pb.ItemRequest, context: grpc.ServicerContext) -> pb.Movie:
        return await self._run(context, "Item",
                         lambda: _movie(self.service.item(request.movie_id, request.model or None)))

    async def Explain(self, request: pb.ExplainRequest, context: grpc.ServicerContext) -> pb.ExplainResponse:
        def work() -> pb.ExplainResponse:
            d = self.service.explain(request.user, request.movie_id, request.model or None)
            item = d["item"]
            which = {"scored": _scored(item)} if "rank" in item else {"movie": _movie(item)}
            return pb.ExplainResponse(model=d["model"], user=d["user"], basis=d["basis"],
                                      fallback=_explanation(d["fallback"]), **which)

        return await self._run(context, "Explain", work)

    async def Rate(self, request: pb.RateRequest, context: grpc.ServicerContext) -> pb.RateResponse:
        def work() -> pb.RateResponse:
            rows = [FeedbackRow(r.user, r.movie_id, r.rating, r.timestamp if r.HasField("timestamp") else None)
                    for r in request.ratings]
            d = self.service.rate(rows)
            return pb.RateResponse(stored=d["stored"], duplicates=d["duplicates"])

        return await self._run(context, "Rate", work, write=True)

    async def Reload(self, request: pb.ReloadRequest, context: grpc.ServicerContext) -> pb.ReloadResponse:
        def work() -> pb.ReloadResponse:
            d = self.service.reload()
            return pb.ReloadResponse(models=[_model_info(m) for m in d["models"]], reloads=d["reloads"])

        return await self._run(context, "Reload", work, write=True)

    async def Health(self, request: pb.HealthRequest, context: grpc.ServicerContext) -> pb.HealthResponse:
        def work() -> pb.HealthResponse:
            d = self.service.ready()
            return pb.HealthResponse(status="ok" if d["ready"] else "not_ready", ready=d["ready"],
                                     models=d["models"], store=d["store"])

        return await self._run(context, "Health", work)

    async def Models(self, request: pb.ModelsRequest, context: grpc.ServicerContext) -> pb.ModelsResponse:
        return await self._run(context, "Models", lambda: pb.ModelsResponse(
            default_model=self.service.default_model,
            models=[_model_info(m) for m in self.service.models()],
        ), inline=True)

    async def Ping(self, request: pb.PingRequest, context: grpc.ServicerContext) -> pb.PingResponse:
        return pb.PingResponse(pong=True)  # no _run: nothing here can fail

    # ---- one place for keys, request ids and errors -------------------------------------
    async def _run(self, context: grpc.ServicerContext, method: str, work: Callable[[], Any],
                   write: bool = False, inline: bool = False) -> Any:
        """``work()`` with the key check, request id and error mapping: awaited when it is
        a coroutine function, called on the loop when ``inline`` (cheap, never blocks),
        else run on the pool."""
        meta = _metadata(context)
        rid = meta.get(REQUEST_ID_KEY, "")[:64] or new_request_id()
        context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
        try:
            if write:
                self._require_key(meta)
            if inspect.iscoroutinefunction(work):
                return await work()
            if inline:
                return work()
            return await asyncio.get_running_loop().run_in_executor(self.pool, work)
        except ServiceError as e:
            status, code, message = grpc_code(e.status), e.code, str(e)
        except CinerecError as e:
            status, code, message = grpc.StatusCode.INVALID_ARGUMENT, type(e).__name__, str(e)
        except Exception:
            log.exception(f"unexpected error in gRPC {method}", extra={"request_id": rid})
            status, code = grpc.StatusCode.INTERNAL, "internal"
            message = f"internal error (logged with request id {rid})"
        context.set_trailing_metadata(((REQUEST_ID_KEY, rid), (ERROR_CODE_KEY, code)))
        await context.abort(status, message)  # raises: grpc sends the status

    def _require_key(self, meta: Mapping[str, str]) -> None:
        check_api_key(self.api_key, meta.get("x-api-key"), meta.get("authorization"),
                      where="metadata x-api-key or authorization: Bearer")


# ---- proto <-> service ------------------------------------------------------------------
def _metadata(context: grpc.ServicerContext) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):  # "-bin" keys carry bytes: none of ours
            out.setdefault(key.lower(), value)
    return out


def _present(message: Any, **names: str) -> dict[str, Any]:
    """{keyword: value} for the optional fields the message sets, so an absent field
    takes the service's own default."""
    return {kw: getattr(message, f) for kw, f in names.items() if message.HasField(f)}


def _request(m: pb.RecommendRequest) -> RecommendRequest:
    kw = _present(m, user="user", k="k", exclude_seen="exclude_seen", explain="explain")
    if m.HasField("candidates"):
        kw["candidates"] = tuple(m.candidates.ids)
    return RecommendRequest(
        history=tuple(HistoryEntry(h.movie_id, h.rating, h.timestamp if h.HasField("timestamp") else None)
                      for h in m.history),
        risk_aversion=m.risk_aversion,
        exclude=tuple(m.exclude),
        model=m.model or None,
        **kw,
    )


#: Explanation kinds with a typed ``detail`` message in the proto.
_DETAIL_KINDS = frozenset(f.name for f in pb.Explanation.DESCRIPTOR.oneofs_by_name["detail"].fields)


def _explanation(d: Mapping[str, Any] | None) -> pb.Explanation | None:
    """The service's explanation dict as `pb.Explanation`: the dict's fields fill the
    typed message of its kind by name (protobuf builds nested messages from dicts)."""
    if d is None:
        return None
    kind = d["kind"]
    if kind not in _DETAIL_KINDS:
        return pb.Explanation(kind=kind, text=d["text"])
    detail = {k: v for k, v in d.items() if k != "kind" and k != "text"}
    return pb.Explanation(kind=kind, text=d["text"], **{kind: detail})


def _scored(x: Mapping[str, Any]) -> pb.RecommendedItem:
    return pb.RecommendedItem(
        rank=x["rank"], movie_id=x["movieId"], title=x["title"], genres=x["genres"],
        score=x["score"], predicted_rating=x["predicted_rating"], confidence=x["confidence"],
        sigma=x["sigma"], explanation=_explanation(x.get("explanation")),
    )


def _recommendations(d: Mapping[str, Any]) -> pb.Recommendations:
    return pb.Recommendations(
        model=d["model"], user=d["user"], basis=d["basis"], fallback=_explanation(d["fallback"]),
        retrieval=d["retrieval"], k=d["k"], items=[_scored(x) for x in d["items"]],
    )


def _movie(x: Mapping[str, Any]) -> pb.Movie:
    return pb.Movie(
        movie_id=x["movieId"], title=x["title"], genres=x["genres"], n_ratings=x["n_ratings"],
        mean_rating=x["mean_rating"], sigma=x["sigma"], confidence=x["confidence"],
    )


def _model_info(m: Mapping[str, Any]) -> pb.ModelInfo:
    first = m.get("first_stage")
    return pb.ModelInfo(
        name=m["name"], model=m["model"], path=m["path"], n_users=m["n_users"], n_items=m["n_items"],
        rating_scale=m["rating_scale"], predicts_ratings=m["predicts_ratings"], folds_in=m["folds_in"],
        similar_items=m["similar_items"], compressed=m["compressed"], retrieval=m["retrieval"],
        first_stage=None if first is None else pb.FirstStage(model=first["model"], candidates=first["candidates"]),
        load_seconds=m["load_seconds"], created=m.get("created"),
    )
