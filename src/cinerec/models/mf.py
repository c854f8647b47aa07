"""Matrix factorisation for explicit ratings: SVD (Funk/Koren SGD), SVD++ and biased ALS.

Hyper-parameter names follow Surprise (``n_factors``, ``lr_all``, ``reg_all``,
``lr_bu`` ...) so its users can carry configs over; ``seed`` replaces
``random_state``. The per-rating loops are numba kernels in `_numba_kernels`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Literal

import numpy as np
from pydantic import Field

from cinerec.data.dataset import Dataset
from cinerec.models import _numba_kernels as K
from cinerec.models.base import ModelConfig, Recommender


def _per_param(cfg: ModelConfig, prefix: str, names: tuple[str, ...], default: float) -> np.ndarray:
    """Surprise's rule: a specific ``lr_bu`` overrides ``lr_all`` when given."""
    vals = [getattr(cfg, f"{prefix}_{n}") for n in names]
    return np.array([default if v is None else v for v in vals], dtype=np.float64)


def _sgd_block(users, items, ratings, ptr, mu, bu, bi, P, Q, lr, reg, biased, block: int) -> float:
    """One stratum block of a DSGD epoch (the kernel releases the GIL)."""
    return K.svd_sgd_epoch(
        users, items, ratings, ptr[block], ptr[block + 1], mu, bu, bi, P, Q, lr, reg, biased
    )


def _init_factors(rng: np.random.Generator, rows: int, k: int, mean: float, std: float) -> np.ndarray:
    """``N(mean, std)`` float32 factors in a table padded to `K.pad_factors` columns (zeros)."""
    table = np.zeros((rows, K.pad_factors(k)), dtype=np.float32)
    values = table[:, :k]
    np.multiply(rng.standard_normal((rows, k), dtype=np.float32), np.float32(std), out=values)
    if mean:
        values += np.float32(mean)
    return table


class SVD(Recommender):
    """Biased matrix factorisation trained by SGD (Surprise ``SVD``, Koren 2009).

    ``r_hat = mu + b_u + b_i + q_i . p_u``. Ratings are visited in a seeded shuffle,
    stratum by stratum (DSGD, see ``blocks``); the learning rates are multiplied by ``lr_decay`` after each
    epoch (1.0 = Surprise's constant rate). Defaults were chosen on a validation
    split carved out of the ml-latest-small train part (see docs/models-classic.md).
    """

    name = "svd"

    class Config(ModelConfig):
        n_factors: int = Field(200, ge=1)
        n_epochs: int = Field(60, ge=0)
        biased: bool = True
        init_mean: float = 0.0
        init_std_dev: float = Field(0.05, ge=0)
        lr_all: float = Field(0.01, gt=0)
        reg_all: float = Field(0.06, ge=0)
        lr_bu: float | None = None
        lr_bi: float | None = None
        lr_pu: float | None = None
        lr_qi: float | None = None
        reg_bu: float | None = None
        reg_bi: float | None = None
        reg_pu: float | None = None
        reg_qi: float | None = None
        lr_decay: float = Field(0.97, gt=0, le=1)
        #: "once": one seeded shuffle before the first epoch (fast; Surprise does not
        #: shuffle at all); "epoch": a fresh shuffle every epoch; "none": data order.
        shuffle: Literal["once", "epoch", "none"] = "once"
        #: DSGD (Gemulla et al. 2011): users and items are split into ``blocks``
        #: seeded groups each; the ``blocks`` blocks of one stratum share no user and no
        #: item, so they are updated by parallel threads, and the result is the same
        #: whatever the number of threads. 1 = plain sequential SGD.
        blocks: int = Field(2, ge=1, le=64)
        #: Threads that run the blocks of a stratum (0 = min(blocks, CPU count)).
        threads: int = Field(0, ge=0)

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        rng = np.random.default_rng(c.seed)
        k = c.n_factors
        P = _init_factors(rng, train.n_users, k, c.init_mean, c.init_std_dev)
        Q = _init_factors(rng, train.n_items, k, c.init_mean, c.init_std_dev)
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        mu = float(train.global_mean) if c.biased else 0.0
        names = ("bu", "bi", "pu", "qi")
        lr = _per_param(c, "lr", names, c.lr_all)
        reg = _per_param(c, "reg", names, c.reg_all)
        n_blocks = c.blocks
        key_type = np.min_scalar_type(n_blocks * n_blocks - 1)
        user_group = (rng.permutation(train.n_users) % n_blocks).astype(key_type)
        item_group = (rng.permutation(train.n_items) % n_blocks).astype(key_type)
        ratings64 = train.ratings.astype(np.float64)

        def arrange(order: np.ndarray) -> tuple[np.ndarray, ...]:
            # Rows grouped by stratum block, in ``order`` inside each block (a small
            # integer key: numpy's stable sort is a radix sort there).
            key = user_group[train.users[order]] * key_type.type(n_blocks) + item_group[train.items[order]]
            order = order[np.argsort(key, kind="stable")]
            ptr = np.zeros(n_blocks * n_blocks + 1, dtype=np.int64)
            ptr[1:] = np.cumsum(np.bincount(key, minlength=n_blocks * n_blocks))
            return train.users[order], train.items[order], ratings64[order], ptr

        n = train.n_ratings
        first = np.arange(n) if c.shuffle == "none" else rng.permutation(n)
        users, items, ratings, ptr = arrange(first)
        threads = min(c.threads or (os.cpu_count() or 1), n_blocks)
        self.train_rmse_: list[float] = []
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for epoch in range(c.n_epochs):
                if c.shuffle == "epoch" and epoch > 0:
                    users, items, ratings, ptr = arrange(rng.permutation(n))
                run = partial(_sgd_block, users, items, ratings, ptr, mu, bu, bi, P, Q, lr, reg, c.biased)

                sse = 0.0
                for s in range(n_blocks):
                    stratum = [b * n_blocks + (b + s) % n_blocks for b in range(n_blocks)]
                    parts = pool.map(run, stratum) if threads > 1 else map(run, stratum)
                    sse += sum(parts)
                self.train_rmse_.append(float(np.sqrt(sse / max(n, 1))))
                lr = lr * c.lr_decay
        self.mu_ = mu
        self.bu_, self.bi_ = bu.astype(np.float32), bi.astype(np.float32)
        self.P_, self.Q_ = np.ascontiguousarray(P[:, :k]), np.ascontiguousarray(Q[:, :k])

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        dot = np.einsum("nk,nk->n", self.P_[users], self.Q_[items], dtype=np.float64)
        return self.mu_ + self.bu_[users] + self.bi_[items] + dot

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = self.P_[users] @ self.Q_.T
        s += self.bi_[None, :]
        s += (self.mu_ + self.bu_[users])[:, None]
        return s.astype(np.float32, copy=False)

    def _state(self) -> dict[str, np.ndarray]:
        return {"mu": np.array([self.mu_]), "bu": self.bu_, "bi": self.bi_, "P": self.P_, "Q": self.Q_}

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.mu_ = float(np.ravel(arrays["mu"])[0])
        for k in ("bu", "bi", "P", "Q"):
            setattr(self, k + "_", arrays[k].astype(np.float32))


class SVDpp(Recommender):
    """SVD++ (Koren 2008): SVD plus implicit feedback from the set of rated items.

    ``r_hat = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)`` with
    N(u) the items u rated in train. Users are visited in a seeded shuffle and each
    user's implicit term is computed once per visit.
    """

    name = "svdpp"

    class Config(ModelConfig):
        n_factors: int = Field(20, ge=1)
        n_epochs: int = Field(20, ge=0)
        init_mean: float = 0.0
        init_std_dev: float = Field(0.05, ge=0)
        lr_all: float = Field(0.007, gt=0)
        reg_all: float = Field(0.05, ge=0)
        lr_bu: float | None = None
        lr_bi: float | None = None
        lr_pu: float | None = None
        lr_qi: float | None = None
        lr_yj: float | None = None
        reg_bu: float | None = None
        reg_bi: float | None = None
        reg_pu: float | None = None
        reg_qi: float | None = None
        reg_yj: float | None = None
        lr_decay: float = Field(0.95, gt=0, le=1)

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        rng = np.random.default_rng(c.seed)
        P = rng.normal(c.init_mean, c.init_std_dev, (train.n_users, c.n_factors))
        Q = rng.normal(c.init_mean, c.init_std_dev, (train.n_items, c.n_factors))
        Y = rng.normal(c.init_mean, c.init_std_dev, (train.n_items, c.n_factors))
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        mu = float(train.global_mean)
        names = ("bu", "bi", "pu", "qi", "yj")
        lr = _per_param(c, "lr", names, c.lr_all)
        reg = _per_param(c, "reg", names, c.reg_all)
        csr = train.to_csr()
        indptr = csr.indptr.astype(np.int64)
        indices = csr.indices.astype(np.int64)
        data = csr.data.astype(np.float64)
        for _ in range(c.n_epochs):
            order = rng.permutation(train.n_users).astype(np.int64)
            K.svdpp_sgd_epoch(indptr, indices, data, order, mu, bu, bi, P, Q, Y, lr, reg)
            lr = lr * c.lr_decay
        self.mu_ = mu
        self.bu_, self.bi_ = bu.astype(np.float32), bi.astype(np.float32)
        self.P_, self.Q_, self.Y_ = P.astype(np.float32), Q.astype(np.float32), Y.astype(np.float32)

    def _user_vectors(self, users: np.ndarray) -> np.ndarray:
        """p_u + |N(u)|^-1/2 sum y_j, from the train-seen items kept by the base class."""
        out = self.P_[users].astype(np.float64)
        counts = (self.seen_indptr_[users + 1] - self.seen_indptr_[users]).astype(np.int64)
        rows = np.repeat(np.arange(users.shape[0]), counts)
        starts = np.repeat(self.seen_indptr_[users] - np.cumsum(counts) + counts, counts)
        idx = self.seen_indices_[starts + np.arange(rows.shape[0])]
        imp = np.zeros_like(out)
        np.add.at(imp, rows, self.Y_[idx])
        out += imp / np.sqrt(np.maximum(counts, 1))[:, None]
        return out

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        uniq, inv = np.unique(users, return_inverse=True)
        pu = self._user_vectors(uniq)[inv]
        dot = np.einsum("nk,nk->n", pu, self.Q_[items])
        return self.mu_ + self.bu_[users] + self.bi_[items] + dot

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = self._user_vectors(users) @ self.Q_.T.astype(np.float64)
        s += self.bi_[None, :]
        s += (self.mu_ + self.bu_[users])[:, None]
        return s.astype(np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "mu": np.array([self.mu_]),
            "bu": self.bu_,
            "bi": self.bi_,
            "P": self.P_,
            "Q": self.Q_,
            "Y": self.Y_,
        }

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.mu_ = float(np.ravel(arrays["mu"])[0])
        for k in ("bu", "bi", "P", "Q", "Y"):
            setattr(self, k + "_", arrays[k].astype(np.float32))


class ALS(Recommender):
    """Explicit biased ALS: alternate exact ridge solves for ``[p_u, b_u]`` and ``[q_i, b_i]``.

    ``r_hat = mu + b_u + b_i + q_i . p_u``; the penalty on a row is ``reg * n_ratings``
    (weighted-lambda regularisation), so ``reg`` is scale-free across users.
    """

    name = "als"

    class Config(ModelConfig):
        n_factors: int = Field(50, ge=1)
        n_iter: int = Field(15, ge=1)
        reg: float = Field(0.1, gt=0)
        init_std_dev: float = Field(0.1, ge=0)

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        rng = np.random.default_rng(c.seed)
        mu = float(train.global_mean)
        P = np.zeros((train.n_users, c.n_factors))
        Q = rng.normal(0.0, c.init_std_dev, (train.n_items, c.n_factors))
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        R = train.to_csr()
        R.data -= mu
        Rt = R.T.tocsr()
        Rt.sort_indices()
        ui = (R.indptr.astype(np.int64), R.indices.astype(np.int64), R.data.astype(np.float64))
        iu = (Rt.indptr.astype(np.int64), Rt.indices.astype(np.int64), Rt.data.astype(np.float64))
        for _ in range(c.n_iter):
            K.als_biased_half(*ui, Q, bi, c.reg, P, bu)
            K.als_biased_half(*iu, P, bu, c.reg, Q, bi)
        self.mu_ = mu
        self.bu_, self.bi_ = bu.astype(np.float32), bi.astype(np.float32)
        self.P_, self.Q_ = P.astype(np.float32), Q.astype(np.float32)

    _predict = SVD._predict
    _score = SVD._score
    _state = SVD._state
    _load_state = SVD._load_state
