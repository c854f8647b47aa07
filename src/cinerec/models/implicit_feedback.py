"""Ranking models on implicit feedback (who rated what): implicit ALS and EASE.

Both treat a rating as an interaction; the rating value can only raise the
confidence (iALS) or the weight (EASE). They rank; they do not predict ratings, so
`predict` returns the damped item mean the base class computes.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp
from pydantic import Field

from cinerec.data.dataset import Dataset
from cinerec.errors import ConfigError
from cinerec.models import _numba_kernels as K
from cinerec.models.base import ModelConfig, Recommender


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


class EASE(Recommender):
    """EASE^R (Steck 2019): ``B = I - P / diag(P)``, ``P = (X^T X + lambda I)^-1``.

    ``X`` is the user x item interaction matrix over items with a train rating;
    scores are ``x_u B``. Options beyond the paper: ``weighting="rating"`` uses
    ``r / max_rating`` instead of 1, and ``recency_half_life`` (in interactions)
    weights each user's entries by ``0.5 ** (age / half_life)``, age = how many of
    the user's ratings are newer, in the Gram matrix (``recency_in_fit``) and/or the
    scoring row. The dense inverse needs O(n^2) memory: more than ``max_items`` rated
    items raises `ConfigError`.
    """

    name = "ease"
    predicts_ratings = False

    class Config(ModelConfig):
        reg: float = Field(300.0, gt=0, description="lambda, the L2 penalty")
        weighting: Literal["binary", "rating"] = "binary"
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

    def _matrix(self, weights: np.ndarray, users: np.ndarray | None = None) -> sp.csr_matrix:
        """User rows x warm items, entries weighted, from the base class's seen arrays."""
        remap = np.full(self.n_items_, -1, dtype=np.int64)
        remap[self.warm_items_] = np.arange(self.warm_items_.shape[0])
        X = sp.csr_matrix(
            (weights, remap[self.seen_indices_], self.seen_indptr_),
            shape=(self.n_users_, self.warm_items_.shape[0]),
        )
        return X if users is None else X[users]

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = np.zeros((users.shape[0], self.n_items_), dtype=np.float32)
        s[:, self.warm_items_] = self._matrix(self.input_weight_, users) @ self.B_
        return s

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_baseline_[items].astype(np.float64)

    def _state(self) -> dict[str, np.ndarray]:
        return {"B": self.B_, "warm_items": self.warm_items_, "input_weight": self.input_weight_}

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.B_ = arrays["B"].astype(np.float32)
        self.warm_items_ = arrays["warm_items"].astype(np.int64)
        self.input_weight_ = arrays["input_weight"].astype(np.float32)


class IALS(Recommender):
    """Implicit ALS (Hu, Koren & Volinsky 2008) with exact per-row solves (numba).

    Preference 1 on rated items, 0 elsewhere; confidence ``1 + alpha * w`` on rated
    items with ``w = r`` (``confidence="rating"``), ``1`` (``"binary"``) or
    ``log(1 + r / eps)`` (``"log"``); optional recency weighting as in `EASE`.
    Score = ``x_u . y_i``.
    """

    name = "ials"
    predicts_ratings = False

    class Config(ModelConfig):
        n_factors: int = Field(64, ge=1)
        n_iter: int = Field(15, ge=1)
        reg: float = Field(10.0, gt=0)
        alpha: float = Field(1.0, gt=0)
        confidence: Literal["binary", "rating", "log"] = "rating"
        eps: float = Field(1.0, gt=0, description="scale of the log confidence")
        recency_half_life: float | None = Field(None, gt=0)
        init_std_dev: float = Field(0.01, gt=0)

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        rng = np.random.default_rng(c.seed)
        R = train.to_csr()
        if c.confidence == "binary":
            w = np.ones(R.nnz)
        elif c.confidence == "rating":
            w = R.data.astype(np.float64)
        else:
            w = np.log1p(R.data.astype(np.float64) / c.eps)
        w = w * recency_weights(train, c.recency_half_life)
        C = sp.csr_matrix((1.0 + c.alpha * w, R.indices, R.indptr), shape=R.shape)
        Ct = C.T.tocsr()
        Ct.sort_indices()
        ui = (C.indptr.astype(np.int64), C.indices.astype(np.int64), C.data.astype(np.float64))
        iu = (Ct.indptr.astype(np.int64), Ct.indices.astype(np.int64), Ct.data.astype(np.float64))
        X = rng.normal(0, c.init_std_dev, (train.n_users, c.n_factors))
        Y = rng.normal(0, c.init_std_dev, (train.n_items, c.n_factors))
        Y[train.item_counts == 0] = 0.0
        for _ in range(c.n_iter):
            K.ials_half(*ui, Y, Y.T @ Y, c.reg, X)
            K.ials_half(*iu, X, X.T @ X, c.reg, Y)
        self.X_ = X.astype(np.float32)
        self.Y_ = Y.astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.X_[users] @ self.Y_.T

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_baseline_[items].astype(np.float64)

    def _state(self) -> dict[str, np.ndarray]:
        return {"X": self.X_, "Y": self.Y_}

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.X_ = arrays["X"].astype(np.float32)
        self.Y_ = arrays["Y"].astype(np.float32)
