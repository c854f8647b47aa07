"""Candidate retrieval for serving: exact top-k, or a faiss index over a retrieval space.

A model's `RetrievalSpace` (`Recommender.retrieval_space`) writes its score as an inner
product ``x_u . y_i`` plus a per-user constant. `build_index` indexes the ``y_i``:

- ``"exact"``: numpy brute force (no faiss), the default and the reference;
- ``"flat"``: faiss ``IndexFlatIP``, exact too;
- ``"hnsw"``: faiss ``IndexHNSWFlat``, inner product (``M``, ``ef_construction``,
  ``ef_search``);
- ``"ivfpq"``: faiss ``IndexIVFPQ``, inner product (``nlist``, ``m``, ``nbits``,
  ``nprobe``, ``seed``), trained on the item vectors.

`candidates` turns `Query` objects into candidate item lists (the model's own planning:
known user, folded-in history merged over the user's training ratings, or the
fallback ranking) and searches ``n`` plus the number of excluded items, so excluding
what the user has seen still leaves ``n``. The caller then re-scores exactly:
``model.recommend_batch([dataclasses.replace(q, candidates=c) ...])``, which applies the
exclusions, risk aversion and explanations. `recall_at_k` measures that path against
the exact one. faiss is an optional extra (``cinerec[serve]``), imported lazily.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from cinerec._util import validate
from cinerec.errors import ConfigError
from cinerec.models.query import Query
from cinerec.models.ranking import top_k
from cinerec.models.retrieval import RetrievalSpace

KINDS = ("exact", "flat", "hnsw", "ivfpq")
#: Parameters each kind takes, with their defaults (None: chosen from the catalogue).
DEFAULTS: dict[str, dict[str, Any]] = {
    "exact": {},
    "flat": {},
    "hnsw": {"M": 32, "ef_construction": 200, "ef_search": 128},
    "ivfpq": {"nlist": None, "m": None, "nbits": None, "nprobe": None, "seed": 42},
}
#: k-means needs about this many points per centroid (faiss warns below it): an IVF
#: list or a PQ codebook entry trained on fewer is mostly noise.
MIN_POINTS_PER_CENTROID = 39
#: Dimensions per PQ sub-vector when ``m`` is not given.
PQ_DIMS_PER_SUBVECTOR = 4
#: Lists an IVF-PQ search visits when ``nprobe`` is not given (at most ``nlist``).
NPROBE = 16
#: Upper bound on the score cells one exact search computes at once.
MAX_CELLS = 1 << 24


class Retriever(Protocol):
    """Search over the items of a `RetrievalSpace` (``space``)."""

    kind: str
    space: RetrievalSpace
    params: dict[str, Any]

    def search(self, vectors: np.ndarray, n: int) -> np.ndarray:
        """(B, space.dim) query vectors -> (B, n) item indices, best first, -1 padded."""
        ...

    def nbytes(self) -> int:
        """Memory the index holds (item vectors, graph, codes)."""
        ...


def _as_queries(vectors: np.ndarray, dim: int) -> np.ndarray:
    q = np.ascontiguousarray(vectors, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dim:
        raise ConfigError(f"query vectors must have shape (B, {dim}), got {np.shape(vectors)}")
    if not np.isfinite(q).all():
        raise ConfigError("query vectors must be finite (no NaN or infinity)")
    return q


class ExactRetriever:
    """Brute-force inner products and `top_k` (ties: lower item index first)."""

    kind = "exact"

    def __init__(self, space: RetrievalSpace):
        self.space = space
        self.params: dict[str, Any] = {}
        self.ids = space.ids()
        self.vectors = space.index_vectors()

    def search(self, vectors: np.ndarray, n: int) -> np.ndarray:
        q = _as_queries(vectors, self.space.dim)
        n = validate.k(n, "n")
        out = np.full((q.shape[0], n), -1, dtype=np.int64)
        rows = max(1, MAX_CELLS // max(self.ids.shape[0], 1))
        for s in range(0, q.shape[0], rows):
            for r, top in enumerate(top_k(q[s : s + rows] @ self.vectors.T, n)):
                out[s + r, : top.shape[0]] = self.ids[top]
        return out

    def nbytes(self) -> int:
        return int(self.vectors.nbytes + self.ids.nbytes)


class FaissRetriever:
    """A built faiss index; ``pad`` zero columns make the width a multiple of PQ's ``m``."""

    def __init__(self, kind: str, space: RetrievalSpace, index: Any, ids: np.ndarray, pad: int, params: dict[str, Any]):
        self.kind = kind
        self.space = space
        self.index = index
        self.ids = ids
        self.pad = pad
        self.params = params
        self._nbytes: int | None = None

    def search(self, vectors: np.ndarray, n: int) -> np.ndarray:
        q = _as_queries(vectors, self.space.dim)
        n = validate.k(n, "n")
        if self.pad:
            q = np.hstack([q, np.zeros((q.shape[0], self.pad), dtype=np.float32)])
        out = np.full((q.shape[0], n), -1, dtype=np.int64)
        m = min(n, int(self.index.ntotal))
        if m:
            _, found = self.index.search(q, m)
            hit = found >= 0
            out[:, :m][hit] = self.ids[found[hit]]
        return out

    def nbytes(self) -> int:
        if self._nbytes is None:  # the serialised index: vectors or codes, graph, lists
            self._nbytes = int(_faiss(self.kind).serialize_index(self.index).nbytes)
        return self._nbytes


def _faiss(kind: str) -> Any:
    try:
        import faiss
    except ImportError:
        raise ConfigError(
            f"index kind {kind!r} needs faiss, which is not installed: pip install "
            "'cinerec[serve]' (or faiss-cpu), or use kind='exact'"
        ) from None
    return faiss


def space_of(model: Any) -> RetrievalSpace:
    """``model.retrieval_space()``, or a `ConfigError` naming the models that have one."""
    space = model.retrieval_space() if hasattr(model, "retrieval_space") else None
    if space is None:
        name = getattr(model, "name", type(model).__name__)
        raise ConfigError(
            f"model {name!r} has no retrieval space (its score is not an inner product of "
            "user and item vectors), so it cannot use an ANN index; serve it with exact "
            "scoring, or use svd, svdpp, als, ials or mf-torch"
        )
    return space


def _params(kind: str, given: dict[str, Any], n: int, dim: int) -> dict[str, Any]:
    """The kind's parameters: defaults filled in from the catalogue, then validated."""
    allowed = DEFAULTS[kind]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no parameters"
        raise ConfigError(f"index kind {kind!r} takes {takes}; got {', '.join(unknown)}")
    p = {**allowed, **{k: v for k, v in given.items() if v is not None}}
    if kind == "hnsw":
        p["M"] = validate.integer("hnsw M", p["M"], lo=2, hi=512)
        p["ef_construction"] = validate.integer("hnsw ef_construction", p["ef_construction"], lo=1, hi=100_000)
        p["ef_search"] = validate.integer("hnsw ef_search", p["ef_search"], lo=1, hi=100_000)
    elif kind == "ivfpq":
        if p["nlist"] is None:
            p["nlist"] = max(1, min(round(math.sqrt(n)), n // MIN_POINTS_PER_CENTROID))
        p["nlist"] = nlist = validate.integer("ivfpq nlist", p["nlist"], lo=1)
        if n < MIN_POINTS_PER_CENTROID * nlist:
            raise ConfigError(
                f"ivfpq nlist={nlist} needs at least {MIN_POINTS_PER_CENTROID * nlist} items to train "
                f"its lists ({MIN_POINTS_PER_CENTROID} per list), but the catalogue has {n}; use "
                f"nlist <= {max(1, n // MIN_POINTS_PER_CENTROID)}, or kind='hnsw' / 'exact'"
            )
        if p["nbits"] is None:
            p["nbits"] = int(np.clip(math.floor(math.log2(max(n / MIN_POINTS_PER_CENTROID, 1))), 1, 8))
        p["nbits"] = nbits = validate.integer("ivfpq nbits", p["nbits"], lo=1, hi=16)
        if n < 2**nbits:
            raise ConfigError(
                f"ivfpq nbits={nbits} trains {2**nbits} centroids per sub-vector, more than the "
                f"{n} items; use nbits <= {int(math.log2(n))}"
            )
        if p["m"] is None:
            p["m"] = max(1, math.ceil(dim / PQ_DIMS_PER_SUBVECTOR))
        p["m"] = validate.integer("ivfpq m", p["m"], lo=1, hi=dim)
        if p["nprobe"] is None:
            p["nprobe"] = min(NPROBE, nlist)
        p["nprobe"] = validate.integer("ivfpq nprobe", p["nprobe"], lo=1)
        if p["nprobe"] > nlist:
            raise ConfigError(f"ivfpq nprobe={p['nprobe']} exceeds nlist={nlist}; use nprobe <= nlist")
        p["seed"] = validate.seed(p["seed"], "ivfpq seed")
    return p


def build_index(space: RetrievalSpace | Any, kind: str = "exact", **params: Any) -> Retriever:
    """A retriever of ``kind`` over ``space`` (a `RetrievalSpace`, or a fitted model whose
    `retrieval_space` is used); `ConfigError` for an unknown kind, bad parameters or a
    model without a space. See the module docstring for the kinds and parameters."""
    if kind not in KINDS:
        raise ConfigError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not isinstance(space, RetrievalSpace):
        space = space_of(space)
    vectors = space.index_vectors()
    n, dim = vectors.shape
    if n == 0:
        raise ConfigError("the retrieval space has no items to index (no item has a training rating)")
    p = _params(kind, params, n, dim)
    if kind == "exact":
        return ExactRetriever(space)
    faiss = _faiss(kind)
    ids = space.ids()
    pad = 0
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, p["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = p["ef_construction"]
        index.hnsw.efSearch = p["ef_search"]
    else:
        pad = -dim % p["m"]  # PQ needs a width divisible by m: zero columns change no product
        if pad:
            vectors = np.ascontiguousarray(np.hstack([vectors, np.zeros((n, pad), dtype=np.float32)]))
        quantizer = faiss.IndexFlatIP(dim + pad)
        index = faiss.IndexIVFPQ(quantizer, dim + pad, p["nlist"], p["m"], p["nbits"], faiss.METRIC_INNER_PRODUCT)
        # Our own checks above replace faiss's per-centroid warnings (printed to stderr).
        for cp in (index.cp, index.pq.cp):
            cp.seed = p["seed"]
            cp.min_points_per_centroid = 1
        index.train(vectors)
        index.nprobe = p["nprobe"]
    index.add(vectors)
    return FaissRetriever(kind, space, index, ids, pad, p)


# ---- queries -> candidates ----------------------------------------------------------------
def _excluded(model: Any, q: Query, plan: tuple) -> np.ndarray:
    """The items ``model.recommend_batch`` masks for ``q``."""
    return np.unique(model.excluded_items(q, plan))


def _search_excluding(retriever: Retriever, vectors: np.ndarray, n: int, excluded: list[np.ndarray]) -> list[np.ndarray]:
    """Per row, the first ``n`` found items that are not excluded: each row searches
    ``n + len(excluded)``, rows grouped by the power of two above that, so one heavy
    user does not make the whole batch search deep."""
    need = n + np.array([e.shape[0] for e in excluded], dtype=np.int64)
    group = np.ceil(np.log2(need)).astype(np.int64)
    out: list[np.ndarray] = [np.empty(0, np.int64)] * len(excluded)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        found = retriever.search(vectors[rows], int(need[rows].max()))
        for r, hits in zip(rows, found, strict=True):
            hits = hits[hits >= 0]
            out[r] = hits[~np.isin(hits, excluded[r])][:n]
    return out


def candidates(model: Any, queries: Sequence[Query | int], retriever: Retriever, n: int) -> list[np.ndarray]:
    """Candidate item indices (int64, best first, up to ``n`` after exclusions) per query.

    Known users use their vectors, histories are folded in by the model (over the
    user's training ratings, as `recommend_batch` plans it), users the model falls
    back for get the fallback ranking's top ``n`` (exact, no index), and a query that
    already lists candidates keeps them. Risk aversion is part of the search (the
    space's sigma coordinate)."""
    model._check_fitted()
    n = validate.k(n, "n")
    space = retriever.space
    if space.n_items != model.n_items_:
        raise ConfigError(
            f"the index holds a catalogue of {space.n_items} items but model {model.name!r} has "
            f"{model.n_items_}; rebuild the index from this model"
        )
    qs = [q if isinstance(q, Query) else Query(user=validate.integer("user", q)) for q in queries]
    plans = [model._plan(q) for q in qs]
    excluded = [_excluded(model, q, p) for q, p in zip(qs, plans, strict=True)]
    lam = np.array([float(q.risk_aversion) for q in qs], dtype=np.float32)
    out: list[np.ndarray | None] = [None] * len(qs)
    for j, q in enumerate(qs):
        if q.candidates is not None:
            out[j] = model._items_arg(q.candidates, "candidates")
    for basis in ("model", "fold-in", "fallback"):
        idx = [j for j, p in enumerate(plans) if p[0] == basis and out[j] is None]
        if not idx:
            continue
        if basis == "fallback":
            found = _fallback_top(model, lam[idx], [excluded[j] for j in idx], n)
        else:
            if basis == "model":
                vecs = space.query_vectors(users=np.array([plans[j][1] for j in idx]), risk_aversion=lam[idx])
            else:
                folded = model._fold_in([plans[j][2] for j in idx])
                vecs = space.query_vectors(folded=folded, risk_aversion=lam[idx])
            found = _search_excluding(retriever, vecs, n, [excluded[j] for j in idx])
        for j, c in zip(idx, found, strict=True):
            out[j] = c
    return out  # type: ignore[return-value]


def _fallback_top(model: Any, lam: np.ndarray, excluded: list[np.ndarray], n: int) -> list[np.ndarray]:
    """The fallback ranking (item baseline, minus lambda sigma) as `recommend_batch` makes it."""
    ranking = np.repeat(np.asarray(model.item_baseline_, np.float32)[None, :], lam.shape[0], axis=0)
    ranking -= lam[:, None] * np.asarray(model.item_sigma_, np.float32)[None, :]
    ranking[:, np.asarray(model.item_counts_) == 0] = -np.inf
    for r, e in enumerate(excluded):
        ranking[r, e] = -np.inf
    return top_k(ranking, n)


# ---- recall --------------------------------------------------------------------------------
def recall_at_k(
    model: Any, retriever: Retriever, users: np.ndarray, k: int = 10, n_candidates: int = 100,
    risk_aversion: float = 0.0,
) -> float:
    """Mean over ``users`` of ``|retrieved-then-rescored top-k & exact top-k| / k``.

    Both lists come from ``model.recommend_batch`` with seen items excluded (and the
    same ``risk_aversion``): the exact one over the whole catalogue, the other over
    `candidates` (``n_candidates`` per user). A user whose exact list is shorter than
    ``k`` is divided by its length."""
    users = validate.index_array("users", users)
    k = validate.k(k)
    lam = validate.risk_aversion(risk_aversion)
    qs = [Query(user=int(u), risk_aversion=lam) for u in users]
    if not qs:
        raise ConfigError("recall_at_k needs at least one user")
    exact = model.recommend_batch(qs, k, explain=False)
    found = candidates(model, qs, retriever, n_candidates)
    approx = model.recommend_batch(
        [dataclasses.replace(q, candidates=c) for q, c in zip(qs, found, strict=True)], k, explain=False
    )
    return float(np.mean([_overlap(a.items, e.items, k) for a, e in zip(approx, exact, strict=True)]))


def _overlap(got: np.ndarray, truth: np.ndarray, k: int) -> float:
    want = min(k, truth.shape[0])
    return 1.0 if want == 0 else np.intersect1d(got[:k], truth[:k]).shape[0] / want


def vector_recall(retriever: Retriever, vectors: np.ndarray, k: int = 10, n_candidates: int = 100) -> float:
    """`recall_at_k` for raw query vectors (no model): ``n_candidates`` retrieved, then
    re-scored exactly against the space's vectors, against exact top-``k``."""
    k = validate.k(k)
    exact = ExactRetriever(retriever.space)
    q = _as_queries(vectors, retriever.space.dim)
    truth = exact.search(q, k)
    found = retriever.search(q, n_candidates)
    row_of = np.full(retriever.space.n_items, -1, dtype=np.int64)
    row_of[exact.ids] = np.arange(exact.ids.shape[0])
    rows = row_of[np.maximum(found, 0)]
    scores = np.einsum("bnd,bd->bn", exact.vectors[rows], q)
    scores[found < 0] = -np.inf
    top = top_k(scores, k)
    return float(np.mean([
        _overlap(found[r, t], truth[r][truth[r] >= 0], k) for r, t in enumerate(top)
    ]))
