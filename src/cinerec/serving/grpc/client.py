"""A small client of the cinerec gRPC service: plain dicts shaped like the REST JSON.

``RecommenderClient("127.0.0.1:50051")`` has one method per rpc; each answers what the
matching REST route answers (keys ``movieId``, ``predicted_rating`` ... with None where
the REST JSON has null). Explanations travel as one typed message per kind and come
back as the REST JSON's dicts.

A refusal raises the `ServiceError` family the service itself raises (`NotFound`,
`Unauthorized`, else `ServiceError`) with ``status`` the HTTP status, ``code`` the
service's short code, and ``grpc_code`` the `grpc.StatusCode` that came over the wire.
The client imports only the generated code: no models, no numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc

from cinerec.errors import NotFound, ServiceError, Unauthorized
from cinerec.serving.grpc import cinerec_pb2 as pb
from cinerec.serving.grpc import cinerec_pb2_grpc as pb_grpc

#: gRPC code -> the HTTP status REST would have answered with.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

History = Iterable[Mapping[str, Any] | Sequence[Any]]


class RecommenderClient:
    """A connection to a cinerec gRPC server at ``target`` (``host:port``).

    ``api_key`` is sent (metadata ``x-api-key``) with `rate` and `reload`; ``timeout``
    is each call's deadline in seconds. Use as a context manager, or call `close`.
    """

    def __init__(self, target: str, *, api_key: str | None = None, timeout: float | None = 30.0,
                 max_message_bytes: int = 256 << 20):
        self.target = target
        self.api_key = api_key
        self.timeout = timeout
        # answers are not size-limited on the server: a 256-request batch can be large
        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", -1),
        ])
        self._stub = pb_grpc.RecommenderStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> RecommenderClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- rpcs ---------------------------------------------------------------------------
    def recommend(
        self,
        user: int | None = None,
        history: History = (),
        k: int | None = None,
        *,
        risk_aversion: float = 0.0,
        exclude: Iterable[int] = (),
        candidates: Iterable[int] | None = None,
        exclude_seen: bool | None = None,
        model: str | None = None,
        explain: bool | None = None,
    ) -> dict[str, Any]:
        """Top-k for a known ``user``, a visitor's ``history`` (mappings with ``movieId``,
        ``rating``, optional ``timestamp``, or ``(movie_id, rating[, timestamp])``), or both;
        None leaves a value at the server's default."""
        req = self._build(_recommend_request, dict(
            user=user, history=history, k=k, risk_aversion=risk_aversion, exclude=exclude,
            candidates=candidates, exclude_seen=exclude_seen, model=model, explain=explain))
        return _recommendations(self._call("Recommend", req))

    def recommend_batch(self, requests: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """Many requests (each a mapping of `recommend`'s keywords, i.e. the REST body)."""
        req = self._build(lambda rs: pb.RecommendBatchRequest(requests=[_recommend_request(r) for r in rs]),
                          list(requests))
        return {"results": [_recommendations(r) for r in self._call("RecommendBatch", req).results]}

    def similar(self, movie_id: int, k: int | None = None, model: str | None = None) -> dict[str, Any]:
        req = self._build(lambda _: pb.SimilarRequest(movie_id=movie_id, k=k, model=model or ""), None)
        ans = self._call("Similar", req)
        return {
            "model": ans.model, "movie": _movie(ans.movie), "measure": ans.measure,
            "items": [{"rank": x.rank, "movieId": x.movie_id, "title": x.title, "genres": list(x.genres),
                       "similarity": _opt(x, "similarity")} for x in ans.items],
        }

    def search(self, text: str, limit: int | None = None, model: str | None = None) -> dict[str, Any]:
        req = self._build(lambda _: pb.SearchRequest(query=text, limit=limit, model=model or ""), None)
        ans = self._call("Search", req)
        return {"query": ans.query, "items": [_movie(x) for x in ans.items]}

    def item(self, movie_id: int, model: str | None = None) -> dict[str, Any]:
        req = self._build(lambda _: pb.ItemRequest(movie_id=movie_id, model=model or ""), None)
        return _movie(self._call("Item", req))

    def explain(self, user: int, movie_id: int, model: str | None = None) -> dict[str, Any]:
        req = self._build(lambda _: pb.ExplainRequest(user=user, movie_id=movie_id, model=model or ""), None)
        ans = self._call("Explain", req)
        item = _scored(ans.scored) if ans.WhichOneof("item") == "scored" else _movie(ans.movie)
        return {"model": ans.model, "user": ans.user, "basis": ans.basis,
                "fallback": _explanation(ans, "fallback"), "item": item}

    def rate(self, ratings: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """Store one rating or many (mappings with ``user``, ``movieId``, ``rating``,
        optional ``timestamp``), as REST's ``POST /v1/ratings``."""
        rows = [ratings] if isinstance(ratings, Mapping) else list(ratings)
        req = self._build(lambda rs: pb.RateRequest(ratings=[
            pb.Rating(user=r["user"], movie_id=r["movieId"], rating=r["rating"], timestamp=r.get("timestamp"))
            for r in rs]), rows)
        ans = self._call("Rate", req, write=True)
        return {"stored": ans.stored, "duplicates": ans.duplicates}

    def reload(self) -> dict[str, Any]:
        ans = self._call("Reload", pb.ReloadRequest(), write=True)
        return {"models": [_model_info(m) for m in ans.models], "reloads": ans.reloads}

    def health(self) -> dict[str, Any]:
        ans = self._call("Health", pb.HealthRequest())
        return {"status": ans.status, "ready": ans.ready, "models": list(ans.models), "store": ans.store}

    def models(self) -> dict[str, Any]:
        ans = self._call("Models", pb.ModelsRequest())
        return {"default": ans.default_model, "models": [_model_info(m) for m in ans.models]}

    def ping(self) -> dict[str, Any]:
        return {"pong": self._call("Ping", pb.PingRequest()).pong}

    # ---- plumbing -----------------------------------------------------------------------
    def _build(self, make: Any, arg: Any) -> Any:
        """A request message; a value protobuf cannot hold (an id beyond int64, a string
        for a number) is the 400 the server would have answered."""
        try:
            return make(arg)
        except (TypeError, ValueError, KeyError) as e:
            raise ServiceError(f"request not sent: {e}", code="bad_value") from e

    def _call(self, method: str, request: Any, write: bool = False) -> Any:
        metadata = (("x-api-key", self.api_key),) if write and self.api_key is not None else None
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout, metadata=metadata)
        except grpc.RpcError as e:
            raise _error(e, self.target) from None


def _error(e: grpc.RpcError, target: str) -> ServiceError:
    code: grpc.StatusCode = e.code()  # type: ignore[attr-defined]
    details = e.details() or code.name  # type: ignore[attr-defined]
    trailing = dict(e.trailing_metadata() or ())  # type: ignore[attr-defined]
    short = trailing.get("cinerec-error-code") or code.name.lower()
    status = HTTP_STATUS.get(code, 500)
    if code == grpc.StatusCode.UNAVAILABLE and "cinerec-error-code" not in trailing:
        details = (f"cannot reach the cinerec gRPC server at {target} ({details}); start it with "
                   "`cinerec serve --grpc-port PORT`, or check the address")
    cls = {404: NotFound, 401: Unauthorized}.get(status, ServiceError)
    err = cls(details, status=status, code=short)
    err.grpc_code = code  # type: ignore[attr-defined]
    err.request_id = trailing.get("x-request-id")  # type: ignore[attr-defined]
    return err


def _recommend_request(r: Mapping[str, Any]) -> pb.RecommendRequest:
    unknown = set(r) - _RECOMMEND_KEYS
    if unknown:
        raise KeyError(f"unknown request keys {sorted(unknown)} (use {sorted(_RECOMMEND_KEYS)})")
    candidates = r.get("candidates")
    return pb.RecommendRequest(
        user=r.get("user"),
        history=[_rated(h) for h in r.get("history") or ()],
        k=r.get("k"),
        risk_aversion=r.get("risk_aversion") or 0.0,
        exclude=list(r.get("exclude") or ()),
        candidates=None if candidates is None else pb.MovieIds(ids=list(candidates)),
        exclude_seen=r.get("exclude_seen"),
        model=r.get("model") or "",
        explain=r.get("explain"),
    )


_RECOMMEND_KEYS = {"user", "history", "k", "risk_aversion", "exclude", "candidates", "exclude_seen",
                   "model", "explain"}


def _rated(h: Mapping[str, Any] | Sequence[Any]) -> pb.RatedMovie:
    if isinstance(h, Mapping):
        return pb.RatedMovie(movie_id=h["movieId"], rating=h["rating"], timestamp=h.get("timestamp"))
    return pb.RatedMovie(movie_id=h[0], rating=h[1], timestamp=h[2] if len(h) > 2 else None)


def _opt(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def _explanation(message: Any, name: str) -> dict[str, Any] | None:
    if not message.HasField(name):
        return None
    e = getattr(message, name)
    which = e.WhichOneof("detail")
    return {"kind": e.kind, "text": e.text, **(_fields(getattr(e, which)) if which else {})}


def _fields(m: Any) -> dict[str, Any]:
    """A message as the REST JSON has it: every field by name, None for an unset
    optional one, nested messages as dicts (ints stay ints, unlike json_format)."""
    out: dict[str, Any] = {}
    for f in m.DESCRIPTOR.fields:
        v = getattr(m, f.name)
        if f.is_repeated:
            out[f.name] = [_fields(x) for x in v] if f.message_type is not None else list(v)
        elif f.has_presence and not m.HasField(f.name):
            out[f.name] = None
        else:
            out[f.name] = _fields(v) if f.message_type is not None else v
    return out


def _scored(x: pb.RecommendedItem) -> dict[str, Any]:
    return {
        "rank": x.rank, "movieId": x.movie_id, "title": x.title, "genres": list(x.genres),
        "score": _opt(x, "score"), "predicted_rating": _opt(x, "predicted_rating"),
        "confidence": _opt(x, "confidence"), "sigma": _opt(x, "sigma"),
        "explanation": _explanation(x, "explanation"),
    }


def _recommendations(r: pb.Recommendations) -> dict[str, Any]:
    return {
        "model": r.model, "user": _opt(r, "user"), "basis": r.basis,
        "fallback": _explanation(r, "fallback"), "retrieval": r.retrieval, "k": r.k,
        "items": [_scored(x) for x in r.items],
    }


def _movie(x: pb.Movie) -> dict[str, Any]:
    return {
        "movieId": x.movie_id, "title": x.title, "genres": list(x.genres), "n_ratings": x.n_ratings,
        "mean_rating": _opt(x, "mean_rating"), "sigma": _opt(x, "sigma"), "confidence": _opt(x, "confidence"),
    }


def _model_info(m: pb.ModelInfo) -> dict[str, Any]:
    return {
        "name": m.name, "model": m.model, "path": m.path, "n_users": m.n_users, "n_items": m.n_items,
        "rating_scale": list(m.rating_scale), "predicts_ratings": m.predicts_ratings,
        "folds_in": m.folds_in, "similar_items": m.similar_items, "compressed": m.compressed,
        "retrieval": m.retrieval,
        "first_stage": ({"model": m.first_stage.model, "candidates": m.first_stage.candidates}
                        if m.HasField("first_stage") else None),
        "load_seconds": m.load_seconds, "created": _opt(m, "created"),
    }
