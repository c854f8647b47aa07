"""Ranking models on implicit feedback (who rated what): implicit ALS and EASE.

Both treat a rating as an interaction; the rating value can only raise the
confidence (iALS) or the weight (EASE). They rank; they do not predict ratings, so
`predict` returns the damped item mean the base class computes.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp
from pydantic import AliasChoices, Field

from cinerec.data.dataset import Dataset
from cinerec.errors import ArtifactError, ConfigError
from cinerec.models import tables as tb
from cinerec.models.base import ModelConfig, Recommender
from cinerec.models.classic import _kernels as K
from cinerec.models.explain import BecauseYouRated, Explanation
from cinerec.models.query import History
from cinerec.models.retrieval import RetrievalSpace, factor_space
from cinerec.models.search import FloatRange, IntRange, Param


def recency_weights(train: Dataset, half_life: float | None) -> np.ndarray:
    """Per train rating, aligned with ``train.to_csr()``'s entries: ``0.5 ** (age / half_life)``.

    ``age`` counts how many of the same user's ratings are more recent (0 for the
    latest), so the weight is on each user's own clock. ``None`` gives all ones.
    """
    R = train.to_csr(values=None)
    if half_life is None:
        return np.ones(R.nnz, dtype=np.float32)
    # Order of the CSR entries = (user, item) lexicographic; time ranks within user.
    csr_order = np.lexsort((train.items, train.users))
    ts = train.timestamps[csr_order]
    users = train.users[csr_order]
    by_time = np.lexsort((-np.arange(ts.shape[0]), -ts, users))  # newest first per user
    start = np.repeat(R.indptr[:-1], np.diff(R.indptr))
    age = np.empty(ts.shape[0], dtype=np.float64)
    age[by_time] = np.arange(ts.shape[0]) - start
    return (0.5 ** (age / half_life)).astype(np.float32)


def _spd_inverse(G: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix via Cholesky (half the flops of LU)."""
    c, info = scipy.linalg.lapack.dpotrf(G, lower=False, overwrite_a=True)
    if info == 0:
        inv, info = scipy.linalg.lapack.dpotri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise ConfigError(f"ease: X^T X + reg I is not positive definite (LAPACK info={info})")
    return np.triu(inv) + np.triu(inv, 1).T


def _history_recency(h: History, half_life: float | None) -> np.ndarray:
    """`recency_weights` for one history: age = how many of its ratings are newer
    (by timestamp when given, else by position: the last item is the newest)."""
    if half_life is None:
        return np.ones(len(h), dtype=np.float32)
    if h.timestamps is not None:
        order = np.lexsort((-np.arange(len(h)), -h.timestamps))  # newest first
    else:
        order = np.arange(len(h))[::-1]
    age = np.empty(len(h), dtype=np.float64)
    age[order] = np.arange(len(h))
    return (0.5 ** (age / half_life)).astype(np.float32)


def _top_contributions(items: np.ndarray, contrib: np.ndarray, n: int = 3) -> BecauseYouRated:
    top = np.argsort(-contrib, kind="stable")[:n]
    top = top[contrib[top] > 0]
    return BecauseYouRated(
        tuple(int(j) for j in items[top]), tuple(float(x) for x in contrib[top]), measure="contribution"
    )


class EASE(Recommender):
    """EASE^R (Steck 2019): ``B = I - P / diag(P)``, ``P = (X^T X + lambda I)^-1``.

    ``X`` is the user x item interaction matrix over items with a train rating;
    scores are ``x_u B``. Options beyond the paper: ``weighting="rating"`` (the
    default) uses ``r / max_rating`` instead of 1 (``"binary"`` is the paper's form), and ``recency_half_life`` (in interactions)
    weights each user's entries by ``0.5 ** (age / half_life)``, age = how many of
    the user's ratings are newer, in the Gram matrix (``recency_in_fit``) and/or the
    scoring row. The dense inverse needs O(n^2) memory: more than ``max_items`` rated
    items raises `ConfigError`.

    A new user is scored from their history row directly (``x B``: no fitting at all);
    an explanation lists the rated items with the largest terms ``x_j B_ji``.
    """

    name = "ease"
    #: What `cinerec tune` searches (`cinerec.models.search`).
    search_space: ClassVar[dict[str, Param]] = {"reg": FloatRange(10.0, 5000.0, log=True)}
    predicts_ratings = False
    folds_in = True

    class Config(ModelConfig):
        reg: float = Field(300.0, gt=0, description="lambda, the L2 penalty")
        # "rating" ranks better than the paper's binary form on ml-latest-small (per-user
        # temporal validation part: NDCG@10 0.123 vs 0.113; docs/models-classic.md)
        weighting: Literal["binary", "rating"] = "rating"
        recency_half_life: float | None = Field(None, gt=0)
        recency_in_fit: bool = False
        max_items: int = Field(40_000, ge=1)

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        warm = np.flatnonzero(train.item_counts > 0)
        if warm.shape[0] > c.max_items:
            gib = warm.shape[0] ** 2 * 8 / 2**30
            raise ConfigError(
                f"ease needs a dense {warm.shape[0]} x {warm.shape[0]} inverse (~{gib:.0f} GiB) "
                f"but max_items={c.max_items}; filter the catalogue (e.g. items with >= 5 "
                "ratings), raise max_items if memory allows, or use 'ials' / 'item-knn'"
            )
        self.warm_items_ = warm.astype(np.int64)
        self.input_weight_ = self._entry_weights(train, c.recency_half_life)
        fit_w = self._entry_weights(train, c.recency_half_life if c.recency_in_fit else None)
        X = self._matrix(fit_w)
        G = (X.T @ X).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += c.reg
        P = _spd_inverse(G)
        B = P / (-np.diag(P))[None, :]
        B[np.diag_indices_from(B)] = 0.0
        self.B_ = B.astype(np.float32)

    def _entry_weights(self, train: Dataset, half_life: float | None) -> np.ndarray:
        w = recency_weights(train, half_life)
        if self.config.weighting == "rating":
            w = w * (train.to_csr().data / train.rating_scale[1]).astype(np.float32)
        return w

    def _remap(self) -> np.ndarray:
        """Item index -> column of B (-1 for items without a train rating), cached."""
        cached = getattr(self, "_remap_cache", None)
        if cached is None or cached[0] is not self.warm_items_:
            remap = np.full(self.n_items_, -1, dtype=np.int64)
            remap[self.warm_items_] = np.arange(self.warm_items_.shape[0])
            cached = (self.warm_items_, remap)
            self._remap_cache = cached
        return cached[1]

    def _matrix(self, weights: np.ndarray, users: np.ndarray | None = None) -> sp.csr_matrix:
        """User rows x warm items, entries weighted, from the base class's seen arrays;
        with ``users``, only their rows are gathered (a request must not cost a pass
        over every rating)."""
        ptr, n_cols = self.seen_indptr_, self.warm_items_.shape[0]
        if users is None:
            return sp.csr_matrix((weights, self._remap()[self.seen_indices_], ptr), shape=(self.n_users_, n_cols))
        users = np.asarray(users, dtype=np.int64)
        starts, lengths = ptr[users], ptr[users + 1] - ptr[users]
        indptr = np.zeros(users.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        at = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return sp.csr_matrix((weights[at], self._remap()[self.seen_indices_[at]], indptr),
                             shape=(users.shape[0], n_cols))

    def _scores_of(self, X: sp.csr_matrix) -> np.ndarray:
        """``X @ B`` into the full catalogue (zeros for items without a train rating);
        the blocked kernel reads B once per column block for the whole batch, and beat
        scipy's product for a single row too (measured: 0.10 vs 0.21 ms at 9.4k items)."""
        s = np.zeros((X.shape[0], self.n_items_), dtype=np.float32)
        X = sp.csr_matrix(X)
        s[:, self.warm_items_] = K.csr_dense_matmul(
            X.indptr.astype(np.int64), X.indices.astype(np.int64), X.data.astype(np.float32),
            self.B_, K.CSR_DENSE_BLOCK,
        )
        return s

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._scores_of(self._matrix(self.input_weight_, users))

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_baseline_[items].astype(np.float64)

    # ---- fold-in ---------------------------------------------------------------------
    def _history_weights(self, h: History) -> np.ndarray:
        w = _history_recency(h, self.config.recency_half_life)
        if self.config.weighting == "rating":
            w = w * (h.ratings / self.rating_scale_[1]).astype(np.float32)
        return w

    def _fold_in(self, histories: list[History]) -> sp.csr_matrix:
        remap = self._remap()
        rows, cols, vals = [], [], []
        for j, h in enumerate(histories):
            cols_j = remap[h.items]
            keep = cols_j >= 0  # items without a train rating have no column in B
            rows.append(np.full(int(keep.sum()), j))
            cols.append(cols_j[keep])
            vals.append(self._history_weights(h)[keep])
        return sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(histories), self.warm_items_.shape[0]),
        )

    def _score_folded(self, folded: sp.csr_matrix) -> np.ndarray:
        return self._scores_of(folded)

    def _predict_folded(self, folded: sp.csr_matrix, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_baseline_[items].astype(np.float64)

    # ---- explanations and similarity ---------------------------------------------------
    def _contributions(self, rated: np.ndarray, weights: np.ndarray, items: np.ndarray) -> list[Explanation | None]:
        """The terms ``x_j B_ji`` of each item's score, largest first (rated: item indices)."""
        remap = self._remap()
        rows = remap[rated]
        cols = remap[np.asarray(items, dtype=np.int64)]
        terms = weights[:, None] * self.B_[np.ix_(rows, np.maximum(cols, 0))]
        return [
            _top_contributions(rated, terms[:, j]) if cols[j] >= 0 else None for j in range(len(cols))
        ]

    def explain(self, user: int, item: int) -> Explanation | None:
        return self._explain_many(user, np.array([item]))[0]

    def _explain_many(self, user: int, items: np.ndarray) -> list[Explanation | None]:
        s, e = self.seen_indptr_[user], self.seen_indptr_[user + 1]
        return self._contributions(self.seen_indices_[s:e].astype(np.int64), self.input_weight_[s:e], items)

    def _explain_folded(self, folded: sp.csr_matrix, row: int, items: np.ndarray) -> list[Explanation | None]:
        x = folded[row]
        return self._contributions(self.warm_items_[x.indices], x.data, items)

    def _similar_scores(self, item: int) -> tuple[np.ndarray, str] | None:
        out = np.full(self.n_items_, -np.inf)
        col = self._remap()[item]
        out[self.warm_items_] = self.B_[col]
        return out, "EASE item-item weight"

    def _check_state(self) -> None:
        n = self.warm_items_.shape[0]
        self._expect_shape("B", self.B_.shape, (n, n))
        self._expect_shape("input_weight", self.input_weight_.shape, self.seen_indices_.shape)
        if n and (self.warm_items_.min() < 0 or self.warm_items_.max() >= self.n_items_):
            raise ArtifactError("warm_items holds indices outside the catalogue")

    def _state(self) -> dict[str, np.ndarray]:
        return {"B": self.B_, "warm_items": self.warm_items_, "input_weight": self.input_weight_}

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any]) -> None:
        self.B_ = arrays["B"].astype(np.float32)
        self.warm_items_ = arrays["warm_items"].astype(np.int64)
        self.input_weight_ = arrays["input_weight"].astype(np.float32)


class IALS(Recommender):
    """Implicit ALS (Hu, Koren & Volinsky 2008) with exact per-row solves (numba).

    Preference 1 on rated items, 0 elsewhere; confidence ``1 + alpha * w`` on rated
    items with ``w = r`` (``confidence="rating"``), ``1`` (``"binary"``) or
    ``log(1 + r / eps)`` (``"log"``); optional recency weighting as in `EASE`.
    Score = ``x_u . y_i``. A new user's ``x_u`` is the same exact solve as a training
    half-step; explanations use the paper's section 5: the score is a sum over the
    rated items, ``sum_j c_uj y_i^T W^u y_j``, and the largest terms are shown.
    """

    name = "ials"
    #: What `cinerec tune` searches (`cinerec.models.search`).
    search_space: ClassVar[dict[str, Param]] = {"n_factors": IntRange(16, 256, log=True), "epochs": IntRange(5, 30), "reg": FloatRange(0.1, 100.0, log=True), "alpha": FloatRange(0.1, 50.0, log=True)}
    scores_pairs = True
    predicts_ratings = False
    folds_in = True
    factor_attrs = {"X": "X_", "Y": "Y_"}

    class Config(ModelConfig):
        n_factors: int = Field(64, ge=1)
        epochs: int = Field(15, ge=1, validation_alias=AliasChoices("epochs", "n_iter"))
        reg: float = Field(10.0, gt=0)
        alpha: float = Field(1.0, gt=0)
        confidence: Literal["binary", "rating", "log"] = "rating"
        eps: float = Field(1.0, gt=0, description="scale of the log confidence")
        recency_half_life: float | None = Field(None, gt=0)
        init_std: float = Field(0.01, gt=0, validation_alias=AliasChoices("init_std", "init_std_dev"))

    def _weights(self, ratings: np.ndarray) -> np.ndarray:
        c = self.config
        if c.confidence == "binary":
            return np.ones(ratings.shape[0])
        if c.confidence == "rating":
            return ratings.astype(np.float64)
        return np.log1p(ratings.astype(np.float64) / c.eps)

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        rng = np.random.default_rng(c.seed)
        R = train.to_csr()
        w = self._weights(R.data) * recency_weights(train, c.recency_half_life)
        C = sp.csr_matrix((1.0 + c.alpha * w, R.indices, R.indptr), shape=R.shape)
        Ct = C.T.tocsr()
        Ct.sort_indices()
        ui = (C.indptr.astype(np.int64), C.indices.astype(np.int64), C.data.astype(np.float64))
        iu = (Ct.indptr.astype(np.int64), Ct.indices.astype(np.int64), Ct.data.astype(np.float64))
        X = rng.normal(0, c.init_std, (train.n_users, c.n_factors))
        Y = rng.normal(0, c.init_std, (train.n_items, c.n_factors))
        Y[train.item_counts == 0] = 0.0
        for _ in range(c.epochs):
            K.ials_half(*ui, Y, Y.T @ Y, c.reg, X)
            K.ials_half(*iu, X, X.T @ X, c.reg, Y)
        self.X_ = X.astype(np.float32)
        self.Y_ = Y.astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return tb.dot_all(tb.rows(self.X_, users), self.Y_)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_baseline_[items].astype(np.float64)

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.einsum("nk,nk->n", tb.rows(self.X_, users), tb.rows(self.Y_, items))

    def _score_folded_pairs(self, folded: tuple[np.ndarray, list], rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.einsum("nk,nk->n", folded[0][rows], tb.rows(self.Y_, items))

    # ---- fold-in and explanations -------------------------------------------------------
    def _solve(self, items: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x_u, W^u) for rated ``items`` with confidences ``conf``:
        ``W = (Y^T Y + Y_r^T (C - 1) Y_r + reg I)^-1``, ``x = W Y_r^T c``."""
        Yr = tb.rows(self.Y_, items).astype(np.float64)
        A = self._gram() + (Yr * (conf - 1.0)[:, None]).T @ Yr
        A[np.diag_indices_from(A)] += self.config.reg
        W = np.linalg.inv(A)
        return W @ (Yr.T @ conf), W

    def _gram(self) -> np.ndarray:
        """``Y^T Y`` (float64), cached until the item table changes."""
        cached = getattr(self, "_gram_cache", None)
        if cached is None or cached[0] is not self.Y_:
            Y = tb.dense(self.Y_).astype(np.float64)
            cached = (self.Y_, Y.T @ Y)
            self._gram_cache = cached
        return cached[1]

    def _confidence(self, h: History) -> np.ndarray:
        w = self._weights(h.ratings) * _history_recency(h, self.config.recency_half_life)
        return 1.0 + self.config.alpha * w

    def _fold_in(self, histories: list[History]) -> tuple[np.ndarray, list[tuple]]:
        solved = [self._solve(h.items, self._confidence(h)) for h in histories]
        vecs = np.vstack([x for x, _ in solved]).astype(np.float32)
        return vecs, [(h.items, self._confidence(h), W) for h, (_, W) in zip(histories, solved, strict=True)]

    def _score_folded(self, folded: tuple[np.ndarray, list]) -> np.ndarray:
        return tb.dot_all(folded[0], self.Y_)

    def _predict_folded(self, folded: Any, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_baseline_[items].astype(np.float64)

    def _contributions(self, items: np.ndarray, conf: np.ndarray, W: np.ndarray, item: int) -> Explanation:
        Y = tb.rows(self.Y_, np.concatenate([[item], items])).astype(np.float64)
        contrib = conf * ((Y[0] @ W) @ Y[1:].T)
        return _top_contributions(items, contrib)

    def _explain_folded(self, folded: tuple[np.ndarray, list], row: int, items: np.ndarray) -> list[Explanation | None]:
        rated, conf, W = folded[1][row]
        return [self._contributions(rated, conf, W, int(i)) for i in items]

    def explain(self, user: int, item: int) -> Explanation | None:
        return self._explain_many(user, np.array([item]))[0]

    def _explain_many(self, user: int, items: np.ndarray) -> list[Explanation | None]:
        """Hu et al.'s decomposition with the user's training confidences (recency
        weights, when configured, are not stored and count as 1 here)."""
        h = self.train_history(user)
        if not len(h):
            return [None] * len(items)
        conf = 1.0 + self.config.alpha * self._weights(h.ratings)
        _, W = self._solve(h.items, conf)
        return [self._contributions(h.items, conf, W, int(i)) for i in items]

    def _item_vectors(self) -> np.ndarray | None:
        return tb.dense(self.Y_)

    def retrieval_space(self) -> RetrievalSpace | None:
        """``y_i``, ``x_u``: the score is the plain inner product."""
        self._check_fitted()
        return factor_space(self, tb.dense(self.Y_), None, lambda u: tb.rows(self.X_, u), lambda folded: folded[0])

    def _check_state(self) -> None:
        k = self.config.n_factors
        self._expect_shape("factor table X", tb.shape(self.X_), (self.n_users_, k))
        self._expect_shape("factor table Y", tb.shape(self.Y_), (self.n_items_, k))

    def _state(self) -> dict[str, Any]:
        return {"X": self.X_, "Y": self.Y_}

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any]) -> None:
        for name in self.factor_attrs:
            setattr(self, name + "_", tables[name] if name in tables else arrays[name].astype(np.float32))
