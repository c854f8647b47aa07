"""The recommendation service with no transport: what REST, gRPC and the web page share.

`RecommendationService` loads one or more saved artifacts (never the raw data), each
under a name, and answers in raw ids and titles as plain JSON-ready dicts:

- `recommend` / `recommend_many`: top-k for a known user, for a *history* of a visitor
  the model has never seen (fold-in, no retraining), or both; a user's stored feedback
  (`FeedbackStore`) is folded in at once, so a rating shows in the very next list;
- `similar`, `search`, `explain`, `item`;
- `rate`: validated feedback rows, stored durably before the call returns;
- `reload`: loads every artifact again and swaps them in at once; requests in flight
  finish on the models they started with, a failed reload keeps the old ones.

Retrieval per model is exact by default (the model scores the whole catalogue, through
its compressed tables when it has them). ``index="hnsw"`` (or ``"ivfpq"``, ``"flat"``)
puts a faiss index in front of the models that have a retrieval space; the model
re-scores the index's candidates exactly. A *pipeline* ``ranker=retriever:N`` lets a
model that scores pair by pair (ncf) rank the top N of another model (svd, ease).

Every refusal is a `ServiceError` with the HTTP status a transport should answer with.
"""

from __future__ import annotations

import dataclasses
import hmac
import itertools
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cinerec import artifacts
from cinerec._util import validate
from cinerec.data.catalogue import Catalogue
from cinerec.errors import CinerecError, ConfigError, NotFound, ServiceError, Unauthorized
from cinerec.models.base import Recommender
from cinerec.models.query import History, Query, Recommendations
from cinerec.serving.coalesce import Coalescer

#: Largest list one request may ask for (a k beyond it is a 400, not a slow answer).
MAX_K = 1000
#: Most entries in one history, one batch of queries or one batch of ratings.
MAX_HISTORY = 5000
MAX_BATCH = 256
MAX_RATINGS = 1000
#: Most characters of a title search.
MAX_SEARCH = 200


@dataclass(frozen=True)
class HistoryEntry:
    """One rating of a visitor, in raw ids."""

    movie_id: int
    rating: float
    timestamp: int | None = None


@dataclass(frozen=True)
class RecommendRequest:
    """One recommendation request in raw ids (what REST and gRPC parse into)."""

    user: int | None = None
    history: tuple[HistoryEntry, ...] = ()
    k: int = 10
    risk_aversion: float = 0.0
    exclude: tuple[int, ...] = ()
    candidates: tuple[int, ...] | None = None
    exclude_seen: bool = True
    model: str | None = None
    explain: bool = True


@dataclass(frozen=True)
class FeedbackRow:
    """One rating sent to the service (raw ids; timestamp: unix seconds, None = now)."""

    user: int
    movie_id: int
    rating: float
    timestamp: int | None = None


@dataclass(eq=False)
class ServedModel:
    """One artifact as served: the model, its catalogue and how it retrieves."""

    name: str
    path: Path
    model: Recommender
    catalogue: Catalogue
    manifest: dict[str, Any]
    load_seconds: float
    retriever: Any = None  # a cinerec.serving.index.Retriever, or None (exact)
    first_stage: tuple[str, int] | None = None  # (retriever model name, candidates)
    #: Per item index: {"movieId", "title", "genres"}, built once at load (every answer
    #: that lists movies starts from these; never mutate one).
    cards: list[dict[str, Any]] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        compression = (self.manifest.get("compression") or {}) if isinstance(self.manifest, dict) else {}
        return {
            "name": self.name,
            "model": self.model.name,
            "path": str(self.path),
            "n_users": int(self.model.n_users_),
            "n_items": int(self.model.n_items_),
            "rating_scale": list(self.model.rating_scale_),
            "predicts_ratings": bool(self.model.predicts_ratings),
            "folds_in": bool(self.model.folds_in),
            "similar_items": bool(self.model.has_similar_items),
            "compressed": bool(compression) or bool(self.model.artifact_extra().get("compression")),
            "retrieval": self.retriever.kind if self.retriever is not None else "exact",
            "first_stage": None if self.first_stage is None else
            {"model": self.first_stage[0], "candidates": self.first_stage[1]},
            "load_seconds": round(self.load_seconds, 4),
            "created": self.manifest.get("created"),
        }


@dataclass
class ServiceConfig:
    """How to serve: which artifacts under which names, retrieval, pipelines, limits."""

    artifacts: Mapping[str, Path]
    index: str = "exact"
    index_params: dict[str, Any] = field(default_factory=dict)
    #: ranker name -> (retriever name, number of candidates)
    pipelines: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    default_model: str | None = None
    verify_checksums: bool = True
    #: Most single requests answered by one batched call (`Coalescer`); 1: never batch.
    coalesce: int = 64


def parse_artifact_args(values: Sequence[str]) -> dict[str, Path]:
    """``RUN_DIR`` or ``NAME=RUN_DIR`` arguments -> {name: path}; the name defaults to
    the folder's name. Duplicate names are a `ConfigError`."""
    out: dict[str, Path] = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep:
            name, path = Path(v).name, v
        name = name.strip()
        if not name or not path:
            raise ConfigError(f"{v!r}: give RUN_DIR or NAME=RUN_DIR")
        if name in out:
            raise ConfigError(f"two artifacts are served as {name!r}; name them NAME=RUN_DIR")
        out[name] = Path(path)
    if not out:
        raise ConfigError("give at least one model folder to serve")
    return out


def parse_pipeline(text: str) -> tuple[str, tuple[str, int]]:
    """``"ranker=retriever:N"`` -> (ranker, (retriever, N))."""
    ranker, sep, rest = text.partition("=")
    retriever, sep2, n = rest.partition(":")
    if not sep or not ranker.strip() or not retriever.strip():
        raise ConfigError(f"--pipeline {text!r}: write RANKER=RETRIEVER:N, e.g. ncf=svd:500")
    count = validate.integer(f"--pipeline {text!r} candidates", n if sep2 else 500, lo=1, hi=100_000)
    return ranker.strip(), (retriever.strip(), count)


class RecommendationService:
    """See the module docstring. Thread-safe: requests only read the current models."""

    def __init__(self, config: ServiceConfig, store: Any = None):
        self.config = config
        self.store = store
        self._reload_lock = threading.Lock()
        self._models: dict[str, ServedModel] = {}
        self._default = ""
        self.loaded_at = 0.0
        self.reloads = 0
        self.feedback_rows = store.count() if store is not None else 0
        self._feedback_users: set[int] = (
            set(int(u) for u in store.users_with_feedback()) if store is not None else set()
        )
        self._feedback_lock = threading.Lock()
        self.coalescer = Coalescer(self.recommend_many, max_batch=config.coalesce)
        self.reload()

    # ---- models ----------------------------------------------------------------------
    def reload(self) -> dict[str, Any]:
        """Load every artifact again and swap them in together; on any failure the
        models being served stay, and the error says which artifact failed."""
        with self._reload_lock:
            models = {name: self._load(name, path) for name, path in self.config.artifacts.items()}
            self._connect_pipelines(models)
            default = self.config.default_model or next(iter(models))
            if default not in models:
                raise ConfigError(f"--default-model {default!r} is not served (have {sorted(models)})")
            self._models, self._default = models, default
            self.loaded_at = time.time()
            self.reloads += 1
            return {"models": [m.info() for m in models.values()], "reloads": self.reloads}

    def _load(self, name: str, path: Path) -> ServedModel:
        start = time.perf_counter()
        try:
            model = artifacts.load_model(path, verify=self.config.verify_checksums)
            manifest = artifacts.read_manifest(path)
        except CinerecError as e:
            raise type(e)(f"model {name!r}: {e}") from e
        if model.catalogue is None:
            raise ConfigError(
                f"model {name!r} ({path}) is a format-1 artifact without ids; "
                f"run `cinerec upgrade {path}` once, then serve it"
            )
        served = ServedModel(name, Path(path), model, model.catalogue, manifest, 0.0,
                             cards=_item_cards(model.catalogue))
        if self.config.index != "exact":
            served.retriever = self._build_index(served)
        served.load_seconds = time.perf_counter() - start
        return served

    def _build_index(self, served: ServedModel) -> Any:
        from cinerec.serving import index

        space = served.model.retrieval_space()
        if space is None:
            return None  # scored exactly (EASE, KNN, NCF): said in info()["retrieval"]
        return index.build_index(space, self.config.index, **self.config.index_params)

    def _connect_pipelines(self, models: dict[str, ServedModel]) -> None:
        for ranker, (retriever, n) in self.config.pipelines.items():
            for role, name in (("ranker", ranker), ("retriever", retriever)):
                if name not in models:
                    raise ConfigError(f"pipeline {ranker}={retriever}:{n}: the {role} {name!r} is not served")
            a, b = models[ranker].catalogue.item_ids.ids, models[retriever].catalogue.item_ids.ids
            if a.shape != b.shape or not np.array_equal(a, b):
                raise ConfigError(
                    f"pipeline {ranker}={retriever}:{n}: the two models were trained on different "
                    "catalogues (their movie ids differ)"
                )
            models[ranker].first_stage = (retriever, n)

    def served(self, name: str | None = None) -> ServedModel:
        models = self._models
        if name is None or name == "":
            return models[self._default]
        if name not in models:
            raise NotFound(f"no model named {name!r} is served (have {', '.join(sorted(models))})",
                           code="unknown_model")
        return models[name]

    def models(self) -> list[dict[str, Any]]:
        return [m.info() for m in self._models.values()]

    @property
    def default_model(self) -> str:
        return self._default

    # ---- recommendations ---------------------------------------------------------------
    def recommend(self, request: RecommendRequest) -> dict[str, Any]:
        """One answer; concurrent calls are computed together (`Coalescer`), each still
        gets its own answer or its own error."""
        return self.coalescer.submit(request)

    def recommend_future(self, request: RecommendRequest, finish: Any = None) -> Future:
        """`recommend` as a `concurrent.futures.Future` (asyncio: `asyncio.wrap_future`);
        ``finish(answer)``, when given, runs on the compute thread (a transport's encoding)."""
        return self.coalescer.submit_future(request, finish)

    def close(self) -> None:
        """Answer the queued requests, stop the coalescer, close the store."""
        self.coalescer.close()
        if self.store is not None:
            self.store.close()

    def recommend_many(self, requests: Sequence[RecommendRequest]) -> list[dict[str, Any]]:
        """Answers to many requests; requests to the same model are scored together."""
        if len(requests) > MAX_BATCH:
            raise ServiceError(f"a batch holds at most {MAX_BATCH} requests, got {len(requests)}",
                               code="batch_too_large")
        by_model: dict[str, list[int]] = {}
        served = [self.served(r.model) for r in requests]
        for j, s in enumerate(served):
            by_model.setdefault(s.name, []).append(j)
        out: list[dict[str, Any] | None] = [None] * len(requests)
        for idx in by_model.values():
            s = served[idx[0]]
            for j, rec in zip(idx, self._recommend_on(s, [requests[j] for j in idx]), strict=True):
                out[j] = rec
        return out  # type: ignore[return-value]

    def _recommend_on(self, s: ServedModel, requests: list[RecommendRequest]) -> list[dict[str, Any]]:
        requests = [r if r.user is None or type(r.user) is int else
                    dataclasses.replace(r, user=_user_id(r.user)) for r in requests]
        queries = [self._query(s, r) for r in requests]
        ks = [self._k(r.k) for r in requests]
        k = max(ks)
        if s.first_stage is not None:
            queries = self._first_stage(s, queries, requests)
        elif s.retriever is not None:
            queries = self._ann_candidates(s, queries, k)
        explain = any(r.explain for r in requests)
        try:
            recs = s.model.recommend_batch(queries, k, explain=explain)
        except ConfigError as e:
            raise ServiceError(str(e), code="bad_query") from e
        return [
            self._render(s, r, rec, kk) for r, rec, kk in zip(requests, recs, ks, strict=True)
        ]

    def _k(self, k: Any) -> int:
        k = _checked(validate.integer, "k", k, lo=1)
        if k > MAX_K:
            raise ServiceError(f"k must be <= {MAX_K}, got {k}", code="bad_k")
        return k

    def _query(self, s: ServedModel, r: RecommendRequest) -> Query:
        cat = s.catalogue
        user = user_index = None
        if r.user is not None:
            user = _user_id(r.user)
            user_index = cat.user_index(user)  # -1: unknown (the model explains its fallback)
        history = self._history(s, r, user)
        risk = _checked(validate.risk_aversion, r.risk_aversion)
        return Query(
            user=user_index,
            history=history,
            candidates=None if r.candidates is None else self._movies(cat, r.candidates, "candidates"),
            exclude=self._movies(cat, r.exclude, "exclude") if r.exclude else None,
            exclude_seen=bool(r.exclude_seen),
            risk_aversion=risk,
        )

    def _history(self, s: ServedModel, r: RecommendRequest, user: int | None) -> History | None:
        """The request's history over the user's stored feedback (the request wins)."""
        if len(r.history) > MAX_HISTORY:
            raise ServiceError(f"a history holds at most {MAX_HISTORY} ratings, got {len(r.history)}",
                               code="history_too_long")
        lo, hi = s.model.rating_scale_
        given = None
        if r.history:
            items = self._movies(s.catalogue, [h.movie_id for h in r.history], "history")
            ratings = np.array([_rating(h.rating, lo, hi, f"rating of movie {h.movie_id}") for h in r.history])
            given = History(items, ratings)
        stored = self._stored_history(s, user)
        if stored is None:
            return given
        return stored if given is None else given.merged_over(stored.items, stored.ratings)

    def _stored_history(self, s: ServedModel, user: int | None) -> History | None:
        if self.store is None or user is None or user not in self._feedback_users:
            return None
        movies, ratings, _ = self.store.history(int(user))
        items = s.catalogue.item_indices(movies.tolist())
        keep = items >= 0  # a movie another served model knows, this one does not
        if not keep.any():
            return None
        return History(items[keep], np.clip(ratings[keep], *s.model.rating_scale_))

    def _movies(self, cat: Catalogue, raw: Sequence[Any], what: str) -> np.ndarray:
        ids = [_checked(validate.integer, f"{what} movie id", m) for m in raw]
        idx = cat.item_indices(ids)
        if (idx < 0).any():
            bad = [m for m, i in zip(ids, idx, strict=True) if i < 0][:5]
            raise ServiceError(f"{what}: movie ids {bad} are not in the catalogue", code="unknown_movie")
        return idx

    def _ann_candidates(self, s: ServedModel, queries: list[Query], k: int) -> list[Query]:
        from cinerec.serving import index

        n = max(k * 10, 100)
        todo = [j for j, q in enumerate(queries) if q.candidates is None]
        if not todo:
            return queries
        found = index.candidates(s.model, [queries[j] for j in todo], s.retriever, n)
        out = list(queries)
        for j, cand in zip(todo, found, strict=True):
            if cand is not None:
                out[j] = dataclasses.replace(queries[j], candidates=cand)
        return out

    def _first_stage(self, s: ServedModel, queries: list[Query], requests: list[RecommendRequest]) -> list[Query]:
        name, n = s.first_stage  # type: ignore[misc]
        first = self.served(name)
        todo = [j for j, q in enumerate(queries) if q.candidates is None]
        sub = [dataclasses.replace(queries[j], risk_aversion=0.0) for j in todo]
        if first.retriever is not None:
            sub = self._ann_candidates(first, sub, n)
        recs = first.model.recommend_batch(sub, n, explain=False)
        out = list(queries)
        for j, rec in zip(todo, recs, strict=True):
            out[j] = dataclasses.replace(queries[j], candidates=rec.items.astype(np.int64))
        return out

    def _render(self, s: ServedModel, r: RecommendRequest, rec: Recommendations, k: int) -> dict[str, Any]:
        cat = s.catalogue
        n = min(k, len(rec))
        idx = rec.items[:n].tolist()
        scores = _finite_list(rec.scores[:n])
        predicted = [None] * n if rec.predicted_ratings is None else _finite_list(rec.predicted_ratings[:n])
        confidence, sigma = _finite_list(rec.confidence[:n]), _finite_list(rec.sigma[:n])
        whys = rec.explanations if r.explain else ()
        items = [
            {"rank": j + 1, **s.cards[i], "score": scores[j], "predicted_rating": predicted[j],
             "confidence": confidence[j], "sigma": sigma[j],
             "explanation": whys[j].to_dict(cat) if j < len(whys) and whys[j] is not None else None}
            for j, i in enumerate(idx)
        ]
        return {
            "model": s.name,
            "user": r.user,
            "basis": rec.basis,
            "fallback": None if rec.fallback is None else rec.fallback.to_dict(cat),
            "retrieval": "pipeline" if s.first_stage else (s.retriever.kind if s.retriever is not None else "exact"),
            "k": k,
            "items": items,
        }

    # ---- items -------------------------------------------------------------------------
    def item(self, movie_id: Any, model: str | None = None) -> dict[str, Any]:
        s = self.served(model)
        return self._item_record(s, self._known_movie(s, movie_id))

    def _item_record(self, s: ServedModel, i: int) -> dict[str, Any]:
        m = s.model
        return {
            **s.cards[i],
            "n_ratings": int(m.item_counts_[i]),
            "mean_rating": _finite(m.item_baseline_[i]),
            "sigma": _finite(m.item_sigma_[i]),
            "confidence": _finite(m.item_confidence_[i]),
        }

    def _known_movie(self, s: ServedModel, movie_id: Any) -> int:
        mid = _checked(validate.integer, "movie id", movie_id)
        i = s.catalogue.item_index(mid)
        if i < 0:
            raise NotFound(f"movie {mid} is not in the catalogue of model {s.name!r}", code="unknown_movie")
        return i

    def similar(self, movie_id: Any, k: Any = 10, model: str | None = None) -> dict[str, Any]:
        s = self.served(model)
        i = self._known_movie(s, movie_id)
        k = self._k(k)
        if not s.model.has_similar_items:
            raise ServiceError(f"model {s.name!r} ({s.model.name}) has no item vectors to compare",
                               code="unsupported")
        sim = s.model.similar_items(i, k)
        return {
            "model": s.name,
            "movie": self._item_record(s, i),
            "measure": sim.measure,
            "items": [
                {"rank": j + 1, **s.cards[x], "similarity": v}
                for j, (x, v) in enumerate(zip(sim.items.tolist(), _finite_list(sim.scores), strict=True))
            ],
        }

    def search(self, text: Any, limit: Any = 20, model: str | None = None) -> dict[str, Any]:
        s = self.served(model)
        text = "" if text is None else str(text)
        if len(text) > MAX_SEARCH:
            raise ServiceError(f"a search holds at most {MAX_SEARCH} characters", code="search_too_long")
        limit = _checked(validate.integer, "limit", limit, lo=1, hi=100)
        hits = s.catalogue.search(text, limit)
        return {"query": text, "items": [self._item_record(s, int(i)) for i in hits]}

    def explain(self, user: Any, movie_id: Any, model: str | None = None) -> dict[str, Any]:
        """Why ``model`` scores ``movie_id`` as it does for ``user`` (stored feedback
        included): the same path as a recommendation restricted to that one movie."""
        s = self.served(model)
        i = self._known_movie(s, movie_id)
        user = _user_id(user)
        raw = s.catalogue.item_ids.raw(i)
        req = RecommendRequest(user=user, k=1, candidates=(_plain(raw),), exclude_seen=False, model=s.name)
        ans = self.recommend(req)
        item = ans["items"][0] if ans["items"] else self._item_record(s, i)
        return {"model": s.name, "user": user, "basis": ans["basis"], "fallback": ans["fallback"], "item": item}

    # ---- feedback ------------------------------------------------------------------------
    def rate(self, rows: Sequence[FeedbackRow]) -> dict[str, Any]:
        """Validate and store ratings (acknowledged only once durably stored)."""
        from cinerec.serving.store import Rating

        if self.store is None:
            raise ServiceError("this server stores no feedback (started without a database)",
                               status=409, code="no_store")
        if not rows:
            raise ServiceError("send at least one rating", code="empty")
        if len(rows) > MAX_RATINGS:
            raise ServiceError(f"at most {MAX_RATINGS} ratings per request, got {len(rows)}", code="too_many")
        s = self.served(None)
        lo, hi = s.model.rating_scale_
        now = int(time.time())
        out = []
        for r in rows:
            user = _user_id(r.user)
            movie = _checked(validate.integer, "movieId", r.movie_id)
            if not any(m.catalogue.item_index(movie) >= 0 for m in self._models.values()):
                raise ServiceError(f"movie {movie} is not in the catalogue", code="unknown_movie")
            rating = _rating(r.rating, lo, hi, f"rating of movie {movie}")
            ts = now if r.timestamp is None else _checked(validate.integer, "timestamp", r.timestamp, lo=0,
                                                          hi=validate.INT64_MAX)
            out.append(Rating(user, movie, rating, ts))
        new = self.store.add(out)
        with self._feedback_lock:
            self.feedback_rows += new
            self._feedback_users.update(r.user_id for r in out)
        return {"stored": new, "duplicates": len(out) - new}

    # ---- health --------------------------------------------------------------------------
    def ready(self) -> dict[str, Any]:
        models = self._models
        store_ok = True
        if self.store is not None:
            try:
                self.store.count()
            except CinerecError:
                store_ok = False
        return {"ready": bool(models) and store_ok, "models": sorted(models), "store": store_ok}


def configured_api_key(api_key: str | None) -> str | None:
    """The write key: ``api_key``, else ``CINEREC_API_KEY``; empty means none (writes off)."""
    return (api_key if api_key is not None else os.environ.get("CINEREC_API_KEY")) or None


def check_api_key(configured: str | None, x_api_key: str | None, authorization: str | None,
                  where: str = "header X-API-Key or Authorization: Bearer") -> None:
    """Refuse a write (`Unauthorized`) unless it carries ``configured`` (REST and gRPC
    share this: ``where`` names how their callers send it)."""
    given = x_api_key
    if given is None and authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if configured is None:
        raise Unauthorized("this server has no API key set (--api-key or CINEREC_API_KEY): writes are off")
    if given is None or not hmac.compare_digest(given.encode(), configured.encode()):
        raise Unauthorized(f"a valid API key is required ({where})")


_RID_PREFIX = os.urandom(4).hex()
_rid_counter = itertools.count(1)


def new_request_id() -> str:
    """An id for a request that came without one: a random per-process prefix and a
    counter (unique across processes and restarts; no syscall per call, unlike uuid4)."""
    return f"{_RID_PREFIX}{next(_rid_counter):08x}"


def _checked(fn: Any, *args: Any, **kw: Any) -> Any:
    """A validate.* call whose ConfigError becomes a 400 ServiceError."""
    try:
        return fn(*args, **kw)
    except ConfigError as e:
        raise ServiceError(str(e), code="bad_value") from e


def _user_id(value: Any) -> int:
    return _checked(validate.integer, "user", value, lo=-validate.INT64_MAX, hi=validate.INT64_MAX)


def _rating(value: Any, lo: float, hi: float, what: str) -> float:
    v = _checked(validate.number, what, value)
    if not lo <= v <= hi:
        raise ServiceError(f"{what} must be on the rating scale {lo:g}..{hi:g}, got {value!r}",
                           code="bad_rating")
    return v


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _finite(v: Any) -> float | None:
    f = float(v)
    return f if math.isfinite(f) else None


def _finite_list(values: np.ndarray) -> list[float | None]:
    """Python floats, None where not finite (JSON has no NaN or infinity)."""
    arr = np.asarray(values, dtype=np.float64)
    out = arr.tolist()
    if not np.isfinite(arr).all():
        out = [v if math.isfinite(v) else None for v in out]
    return out


def _item_cards(cat: Catalogue) -> list[dict[str, Any]]:
    """{"movieId", "title", "genres"} of every item (see `ServedModel.cards`)."""
    n = len(cat.item_ids)
    raw = np.asarray(cat.item_ids.raw(np.arange(n))).tolist()
    titles = cat.titles(np.arange(n))
    genres: list[Any] = [[]] * n
    if cat.items is not None and "genres" in cat.items.columns:
        genres = [
            [] if g is None else (list(g) if not isinstance(g, str) else
                                  [x for x in g.split("|") if x and x != "(no genres listed)"])
            for g in cat.items.get_column("genres").to_list()
        ][:n]
        genres += [[]] * (n - len(genres))
    return [{"movieId": m, "title": t, "genres": g} for m, t, g in zip(raw, titles, genres, strict=True)]
