"""A model's retrieval space: its score written as a maximum inner product.

A factor model scores ``score(u, i) = x_u . y_i + c_u`` where ``c_u`` is constant per
user (the global mean and user bias), so it does not change a ranking. A nearest-
neighbour index over the ``y_i`` (`cinerec.serving.index`) then retrieves candidates
for a query vector ``x_u``:

- biased MF (svd, svdpp, als, mf-torch): ``y_i = [q_i, b_i]``, ``x_u = [u_u, 1]``;
- implicit ALS: ``y_i = y_i``, ``x_u = x_u``.

Risk-averse ranking ``score - lambda * sigma_i`` is an inner product too, with one more
coordinate (``s * sigma_i`` on the item side, ``-lambda / s`` on the query side), so an
index built with `index_vectors` searches by what the risk-averse ranking needs. The
scale ``s`` (`RetrievalSpace.sigma_scale`) makes that coordinate small next to the item
vectors: at full size it dominated the item-item products HNSW builds its graph from
and cut the recall of plain queries (measured while building this: svd on
ml-latest-small, top 10 among 50 retrieved, 0.93 at full size, 0.998 at a tenth;
benchmarks/ann.py reports recall with and without risk aversion).
Models without such a form (ease, the knn models, ncf, autorec) have no space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Size of the sigma coordinate next to a typical (median) item vector's norm.
SIGMA_SHARE = 0.1

#: ``queries(users, folded)``: (B, d) query vectors for known user indices (``users``,
#: ``folded`` None) or for a model's `_fold_in` output (``users`` None).
QueryFn = Callable[[np.ndarray | None, Any], np.ndarray]


@dataclass(frozen=True, eq=False)
class RetrievalSpace:
    """Item vectors and a query-vector function whose inner products rank like the model.

    ``items`` is (n_items, d) float32, decoded when the model's tables are compressed;
    ``active`` marks the items a ranking may return (None: all); ``sigma`` is the
    per-item rating standard deviation that risk-averse queries subtract (None: the
    space ignores risk aversion), stored times ``sigma_scale``.
    """

    items: np.ndarray
    queries: QueryFn
    active: np.ndarray | None = None
    sigma: np.ndarray | None = None
    sigma_scale: float = field(init=False, default=1.0)

    def __post_init__(self) -> None:
        items = np.ascontiguousarray(self.items, dtype=np.float32)
        if items.ndim != 2:
            raise ValueError(f"retrieval items must be a 2-d array, got shape {items.shape}")
        object.__setattr__(self, "items", items)
        for name in ("active", "sigma"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != (items.shape[0],):
                raise ValueError(f"retrieval {name} must have one entry per item ({items.shape[0]})")
        if self.sigma is not None:
            ids = self.ids()
            norm = float(np.median(np.linalg.norm(items[ids], axis=1))) if ids.size else 0.0
            spread = float(np.median(np.asarray(self.sigma)[ids])) if ids.size else 0.0
            if norm > 0 and spread > 0:
                object.__setattr__(self, "sigma_scale", SIGMA_SHARE * norm / spread)

    @property
    def n_items(self) -> int:
        return int(self.items.shape[0])

    @property
    def dim(self) -> int:
        """Width of the index vectors (the sigma coordinate included)."""
        return int(self.items.shape[1]) + (self.sigma is not None)

    def ids(self) -> np.ndarray:
        """Item indices of the rows an index holds (the active items), int64."""
        if self.active is None:
            return np.arange(self.n_items, dtype=np.int64)
        return np.flatnonzero(self.active).astype(np.int64)

    def index_vectors(self) -> np.ndarray:
        """(len(ids()), dim) float32 vectors to index: items, then sigma when present."""
        rows = self.items if self.active is None else self.items[self.ids()]
        if self.sigma is None:
            return rows
        sigma = np.asarray(self.sigma, dtype=np.float32) * np.float32(self.sigma_scale)
        sigma = sigma if self.active is None else sigma[self.ids()]
        return np.ascontiguousarray(np.hstack([rows, sigma[:, None]]))

    def query_vectors(
        self, users: np.ndarray | None = None, folded: Any = None, risk_aversion: np.ndarray | None = None
    ) -> np.ndarray:
        """(B, dim) float32 query vectors matching `index_vectors` (``-lambda / s`` last)."""
        x = np.asarray(self.queries(users, folded), dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.items.shape[1]:
            raise ValueError(f"query vectors have shape {x.shape}, expected (B, {self.items.shape[1]})")
        if self.sigma is None:
            return np.ascontiguousarray(x)
        lam = np.zeros(x.shape[0], np.float32) if risk_aversion is None else np.asarray(risk_aversion, np.float32)
        return np.ascontiguousarray(np.hstack([x, -lam.reshape(-1, 1) / np.float32(self.sigma_scale)]))


def _with_ones(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return np.hstack([x, np.ones((x.shape[0], 1), dtype=np.float32)])


def factor_space(
    model: Any,
    item_vectors: np.ndarray,
    item_bias: np.ndarray | None,
    user_vectors: Callable[[np.ndarray], np.ndarray],
    folded_vectors: Callable[[Any], np.ndarray],
) -> RetrievalSpace:
    """The space of ``c_u + u . q_i (+ b_i)`` for a fitted ``model``.

    ``user_vectors(users)`` gives u_u of known users, ``folded_vectors(folded)`` the
    u_u of `_fold_in`'s output; with ``item_bias`` the vectors get the ``[b_i]`` / ``[1]``
    coordinate. Items without a training rating are inactive unless the model scores
    cold items, and ``sigma`` is the model's train-only item sigma (risk aversion).
    """
    biased = item_bias is not None
    items = np.asarray(item_vectors, dtype=np.float32)
    if biased:
        items = np.hstack([items, np.asarray(item_bias, dtype=np.float32).reshape(-1, 1)])

    def queries(users: np.ndarray | None, folded: Any = None) -> np.ndarray:
        if users is not None:
            x = user_vectors(np.asarray(users, dtype=np.int64))
        else:
            x = folded_vectors(folded)
        return _with_ones(x) if biased else np.asarray(x, dtype=np.float32)

    active = None if model.handles_cold_items else np.asarray(model.item_counts_) > 0
    return RetrievalSpace(items, queries, active=active, sigma=np.asarray(model.item_sigma_, np.float32))
