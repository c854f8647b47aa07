"""Matrix factorisation for explicit ratings: SVD (Funk/Koren SGD), SVD++ and biased ALS.

Hyper-parameters follow cinerec's naming (``n_factors``, ``epochs``, ``lr``, ``reg``,
``init_std``); Surprise's names (``n_epochs``, ``lr_all``, ``reg_all``,
``init_std_dev``) are accepted as aliases so its users can carry configs over, and the
per-parameter overrides keep Surprise's names (``lr_bu``, ``reg_qi`` ...). ``seed``
replaces ``random_state``. The per-rating loops are numba kernels in `_kernels`.

All three share `BiasedFactorModel`: ``r_hat = mu + b_u + b_i + q_i . u_u``, the tables
``P`` (users) and ``Q`` (items) read through `cinerec.models.tables` (so they may be
compressed), a new user folded in by ridge regression on ``Q``
(`cinerec.models.foldin`), explanations as a score breakdown, and item similarity as
the cosine of the item factors.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import AliasChoices, Field

from cinerec.data.dataset import Dataset
from cinerec.models import tables as tb
from cinerec.models.base import ModelConfig, Recommender
from cinerec.models.classic import _kernels as K
from cinerec.models.explain import Explanation, ScoreBreakdown
from cinerec.models.foldin import ridge_user_factors
from cinerec.models.query import History
from cinerec.models.retrieval import RetrievalSpace, factor_space
from cinerec.models.search import FloatRange, IntRange, Param


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


def _per_param(cfg: ModelConfig, prefix: str, names: tuple[str, ...], default: float) -> np.ndarray:
    """Surprise's rule: a specific ``lr_bu`` overrides ``lr`` when given."""
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


class BiasedFactorModel(Recommender):
    """``mu + b_u + b_i + q_i . u_u`` over tables ``P_`` / ``Q_`` and biases ``bu_`` / ``bi_``.

    Subclasses fit the arrays; `_user_vectors` gives u_u (``P`` rows here, SVD++ adds
    its implicit term) and `_fold_in_penalties` the per-rating ridge penalties of the
    user vector and bias that the training objective used.
    """

    folds_in = True
    scores_pairs = True
    factor_attrs = {"P": "P_", "Q": "Q_"}
    #: Whether predictions include the user and item biases.
    uses_biases: bool = True

    def _user_vectors(self, users: np.ndarray) -> np.ndarray:
        return tb.rows(self.P_, users)

    def _fold_in_penalties(self) -> tuple[float, float]:
        raise NotImplementedError

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        dot = np.einsum("nk,nk->n", self._user_vectors(users), tb.rows(self.Q_, items), dtype=np.float64)
        return self.mu_ + self.bu_[users] + self.bi_[items] + dot

    def _score_vectors(self, vecs: np.ndarray, bu: np.ndarray) -> np.ndarray:
        s = tb.dot_all(vecs, self.Q_)
        s += self.bi_[None, :]
        s += (self.mu_ + bu)[:, None]
        return s.astype(np.float32, copy=False)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._score_vectors(self._user_vectors(users), self.bu_[users])

    # ---- fold-in -----------------------------------------------------------------
    def _fold_offsets(self, histories: list[History]) -> tuple[list[np.ndarray] | None, np.ndarray | None]:
        """(per-history prediction offsets, per-history vector added to u_u)."""
        return None, None

    def _fold_in(self, histories: list[History]) -> tuple[np.ndarray, np.ndarray]:
        reg_p, reg_b = self._fold_in_penalties()
        offsets, extra = self._fold_offsets(histories)
        U, b = ridge_user_factors(
            histories,
            lambda idx: tb.rows(self.Q_, idx),
            self.bi_.astype(np.float64) if self.uses_biases else None,
            self.mu_,
            reg_p,
            reg_b if self.uses_biases else None,
            offsets,
        )
        if extra is not None:
            U = U + extra
        return U.astype(np.float32), b

    def _score_folded(self, folded: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        U, b = folded
        return self._score_vectors(U, b)

    def _predict_folded(self, folded: tuple[np.ndarray, np.ndarray], rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        U, b = folded
        dot = np.einsum("nk,nk->n", U[rows], tb.rows(self.Q_, items), dtype=np.float64)
        return self.mu_ + b[rows] + self.bi_[items] + dot

    # ---- explanations and similarity -------------------------------------------------
    def _breakdown(self, u: np.ndarray, bu: float, items: np.ndarray) -> list[Explanation | None]:
        items = np.asarray(items, dtype=np.int64)
        taste = tb.rows(self.Q_, items).astype(np.float64) @ np.asarray(u, dtype=np.float64)
        return list(ScoreBreakdown.biased_mf(self.mu_, bu, self.bi_[items], taste))

    def explain(self, user: int, item: int) -> Explanation | None:
        return self._explain_many(user, np.array([item]))[0]

    def _explain_many(self, user: int, items: np.ndarray) -> list[Explanation | None]:
        u = self._user_vectors(np.array([user]))[0]
        return self._breakdown(u, float(self.bu_[user]), items)

    def _explain_folded(self, folded: tuple[np.ndarray, np.ndarray], row: int, items: np.ndarray) -> list[Explanation | None]:
        U, b = folded
        return self._breakdown(U[row], float(b[row]), items)

    def _item_vectors(self) -> np.ndarray | None:
        return tb.dense(self.Q_)

    def retrieval_space(self) -> RetrievalSpace | None:
        """``y_i = [q_i, b_i]``, ``x_u = [u_u, 1]`` (mu + b_u is constant per user)."""
        self._check_fitted()
        return factor_space(self, tb.dense(self.Q_), self.bi_, self._user_vectors, lambda folded: folded[0])

    def _check_state(self) -> None:
        k = self.config.n_factors
        for name, attr in self.factor_attrs.items():
            rows = self.n_users_ if name == "P" else self.n_items_
            self._expect_shape(f"factor table {name}", tb.shape(getattr(self, attr)), (rows, k))
        self._expect_shape("bu", self.bu_.shape, (self.n_users_,))
        self._expect_shape("bi", self.bi_.shape, (self.n_items_,))

    def _state(self) -> dict[str, Any]:
        return {"mu": np.array([self.mu_]), "bu": self.bu_, "bi": self.bi_, "P": self.P_, "Q": self.Q_}

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any]) -> None:
        self.mu_ = float(np.ravel(arrays["mu"])[0])
        self.bu_ = arrays["bu"].astype(np.float32)
        self.bi_ = arrays["bi"].astype(np.float32)
        for name in self.factor_attrs:
            setattr(self, name + "_", tables[name] if name in tables else arrays[name].astype(np.float32))


class SVD(BiasedFactorModel):
    """Biased matrix factorisation trained by SGD (Surprise ``SVD``, Koren 2009).

    ``r_hat = mu + b_u + b_i + q_i . p_u``. Ratings are visited in a seeded shuffle,
    stratum by stratum (DSGD, see ``blocks``); the learning rates are multiplied by
    ``lr_decay`` after each epoch (1.0 = Surprise's constant rate). Defaults were chosen
    on a validation split carved out of the ml-latest-small train part (see
    docs/models-classic.md). The strata run in ``FitOptions.threads`` threads (0 = as
    many as blocks and cores allow); the result does not depend on it.
    """

    name = "svd"
    #: What `cinerec tune` searches (`cinerec.models.search`).
    search_space: ClassVar[dict[str, Param]] = {"n_factors": IntRange(16, 256, log=True), "epochs": IntRange(10, 80), "lr": FloatRange(2e-3, 3e-2, log=True), "reg": FloatRange(5e-3, 0.2, log=True)}

    class Config(ModelConfig):
        n_factors: int = Field(200, ge=1)
        epochs: int = Field(60, ge=0, validation_alias=_alias("epochs", "n_epochs"))
        biased: bool = True
        init_mean: float = 0.0
        init_std: float = Field(0.05, ge=0, validation_alias=_alias("init_std", "init_std_dev"))
        lr: float = Field(0.01, gt=0, validation_alias=_alias("lr", "lr_all"))
        reg: float = Field(0.06, ge=0, validation_alias=_alias("reg", "reg_all"))
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

    @property
    def uses_biases(self) -> bool:  # type: ignore[override]
        return self.config.biased

    def _fold_in_penalties(self) -> tuple[float, float]:
        c = self.config
        return (c.reg if c.reg_pu is None else c.reg_pu), (c.reg if c.reg_bu is None else c.reg_bu)

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        rng = np.random.default_rng(c.seed)
        k = c.n_factors
        P = _init_factors(rng, train.n_users, k, c.init_mean, c.init_std)
        Q = _init_factors(rng, train.n_items, k, c.init_mean, c.init_std)
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        mu = float(train.global_mean) if c.biased else 0.0
        names = ("bu", "bi", "pu", "qi")
        lr = _per_param(c, "lr", names, c.lr)
        reg = _per_param(c, "reg", names, c.reg)
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
        threads = min(self.options_.threads or (os.cpu_count() or 1), n_blocks)
        self.train_rmse_: list[float] = []
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for epoch in range(c.epochs):
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


class SVDpp(BiasedFactorModel):
    """SVD++ (Koren 2008): SVD plus implicit feedback from the set of rated items.

    ``r_hat = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)`` with
    N(u) the items u rated in train. Users are visited in a seeded shuffle and each
    user's implicit term is computed once per visit. A new user's implicit term comes
    from the history's items; ``p_u`` and ``b_u`` are then folded in by ridge regression.
    """

    name = "svdpp"
    #: What `cinerec tune` searches (`cinerec.models.search`).
    search_space: ClassVar[dict[str, Param]] = {"n_factors": IntRange(16, 256, log=True), "epochs": IntRange(10, 80), "lr": FloatRange(2e-3, 3e-2, log=True), "reg": FloatRange(5e-3, 0.2, log=True), "reg_yj": FloatRange(1e-3, 0.2, log=True)}
    factor_attrs = {"P": "P_", "Q": "Q_", "Y": "Y_"}

    class Config(ModelConfig):
        # svd's defaults plus a lighter y penalty (0.01, chosen on a validation part carved
        # from the ml-latest-small train part); Surprise's (20 factors, 20 epochs, lr 0.007,
        # reg 0.02) are one `--set` away
        n_factors: int = Field(200, ge=1)
        epochs: int = Field(60, ge=0, validation_alias=_alias("epochs", "n_epochs"))
        init_mean: float = 0.0
        init_std: float = Field(0.05, ge=0, validation_alias=_alias("init_std", "init_std_dev"))
        lr: float = Field(0.01, gt=0, validation_alias=_alias("lr", "lr_all"))
        reg: float = Field(0.06, ge=0, validation_alias=_alias("reg", "reg_all"))
        lr_bu: float | None = None
        lr_bi: float | None = None
        lr_pu: float | None = None
        lr_qi: float | None = None
        lr_yj: float | None = None
        reg_bu: float | None = None
        reg_bi: float | None = None
        reg_pu: float | None = None
        reg_qi: float | None = None
        reg_yj: float | None = 0.01
        lr_decay: float = Field(0.95, gt=0, le=1)

    _fold_in_penalties = SVD._fold_in_penalties

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        rng = np.random.default_rng(c.seed)
        P = rng.normal(c.init_mean, c.init_std, (train.n_users, c.n_factors))
        Q = rng.normal(c.init_mean, c.init_std, (train.n_items, c.n_factors))
        Y = rng.normal(c.init_mean, c.init_std, (train.n_items, c.n_factors))
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        mu = float(train.global_mean)
        names = ("bu", "bi", "pu", "qi", "yj")
        lr = _per_param(c, "lr", names, c.lr)
        reg = _per_param(c, "reg", names, c.reg)
        csr = train.to_csr()
        indptr = csr.indptr.astype(np.int64)
        indices = csr.indices.astype(np.int64)
        data = csr.data.astype(np.float64)
        for _ in range(c.epochs):
            order = rng.permutation(train.n_users).astype(np.int64)
            K.svdpp_sgd_epoch(indptr, indices, data, order, mu, bu, bi, P, Q, Y, lr, reg)
            lr = lr * c.lr_decay
        self.mu_ = mu
        self.bu_, self.bi_ = bu.astype(np.float32), bi.astype(np.float32)
        self.P_, self.Q_, self.Y_ = P.astype(np.float32), Q.astype(np.float32), Y.astype(np.float32)

    def _implicit(self, rows: np.ndarray, idx: np.ndarray, counts: np.ndarray, n: int) -> np.ndarray:
        """|N|^-1/2 sum_{j in N} y_j for ``n`` users whose items are ``idx`` (row ``rows``)."""
        imp = np.zeros((n, tb.shape(self.Y_)[1]), dtype=np.float64)
        np.add.at(imp, rows, tb.rows(self.Y_, idx))
        return imp / np.sqrt(np.maximum(counts, 1))[:, None]

    def _user_vectors(self, users: np.ndarray) -> np.ndarray:
        """p_u + |N(u)|^-1/2 sum y_j, from the train-seen items kept by the base class."""
        out = tb.rows(self.P_, users).astype(np.float64)
        counts = (self.seen_indptr_[users + 1] - self.seen_indptr_[users]).astype(np.int64)
        rows = np.repeat(np.arange(users.shape[0]), counts)
        starts = np.repeat(self.seen_indptr_[users] - np.cumsum(counts) + counts, counts)
        idx = self.seen_indices_[starts + np.arange(rows.shape[0])]
        return out + self._implicit(rows, idx, counts, users.shape[0])

    def _fold_offsets(self, histories: list[History]) -> tuple[list[np.ndarray], np.ndarray]:
        counts = np.array([len(h) for h in histories], dtype=np.int64)
        rows = np.repeat(np.arange(len(histories)), counts)
        idx = np.concatenate([h.items for h in histories])
        imp = self._implicit(rows, idx, counts, len(histories))
        offsets = [tb.rows(self.Q_, h.items).astype(np.float64) @ imp[j] for j, h in enumerate(histories)]
        return offsets, imp

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        uniq, inv = np.unique(users, return_inverse=True)
        pu = self._user_vectors(uniq)[inv]
        dot = np.einsum("nk,nk->n", pu, tb.rows(self.Q_, items))
        return self.mu_ + self.bu_[users] + self.bi_[items] + dot

    def _state(self) -> dict[str, Any]:
        return super()._state() | {"Y": self.Y_}


class ALS(BiasedFactorModel):
    """Explicit biased ALS: alternate exact ridge solves for ``[p_u, b_u]`` and ``[q_i, b_i]``.

    ``r_hat = mu + b_u + b_i + q_i . p_u``; the penalty on a row is ``reg * n_ratings``
    (weighted-lambda regularisation), so ``reg`` is scale-free across users and a new
    user's fold-in is exactly the user half-step of training.
    """

    name = "als"
    #: What `cinerec tune` searches (`cinerec.models.search`).
    search_space: ClassVar[dict[str, Param]] = {"n_factors": IntRange(8, 128, log=True), "epochs": IntRange(5, 30), "reg": FloatRange(0.01, 1.0, log=True)}

    class Config(ModelConfig):
        n_factors: int = Field(50, ge=1)
        epochs: int = Field(15, ge=1, validation_alias=_alias("epochs", "n_iter"))
        reg: float = Field(0.1, gt=0)
        init_std: float = Field(0.1, ge=0, validation_alias=_alias("init_std", "init_std_dev"))

    def _fold_in_penalties(self) -> tuple[float, float]:
        return self.config.reg, self.config.reg

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        rng = np.random.default_rng(c.seed)
        mu = float(train.global_mean)
        P = np.zeros((train.n_users, c.n_factors))
        Q = rng.normal(0.0, c.init_std, (train.n_items, c.n_factors))
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        R = train.to_csr()
        R.data -= mu
        Rt = R.T.tocsr()
        Rt.sort_indices()
        ui = (R.indptr.astype(np.int64), R.indices.astype(np.int64), R.data.astype(np.float64))
        iu = (Rt.indptr.astype(np.int64), Rt.indices.astype(np.int64), Rt.data.astype(np.float64))
        for _ in range(c.epochs):
            K.als_biased_half(*ui, Q, bi, c.reg, P, bu)
            K.als_biased_half(*iu, P, bu, c.reg, Q, bi)
        self.mu_ = mu
        self.bu_, self.bi_ = bu.astype(np.float32), bi.astype(np.float32)
        self.P_, self.Q_ = P.astype(np.float32), Q.astype(np.float32)
