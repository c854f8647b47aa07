"""timeSVD: biased matrix factorisation with time-dependent biases (Koren 2009).

Koren, "Collaborative filtering with temporal dynamics" (KDD 2009), the baseline
predictor of timeSVD++ on plain SVD factors::

    r_hat(u, i, t) = mu + b_u + alpha_u * dev_u(t) + b_{u,t}
                     + (b_i + b_{i,Bin(t)}) * (c_u + c_{u,t}) + q_i . p_u

- ``t`` is the rating day (timestamp // 86400), ``t_u`` the user's mean rating day on
  train, ``dev_u(t) = sign(t - t_u) |t - t_u|^beta`` (``beta`` = 0.4): a user's slowly
  drifting bias, ``alpha_u`` its slope;
- ``b_{u,t}`` (``day_bias``) and ``c_{u,t}`` (``day_scale``) are per (user, day)
  terms: a day's mood and a day's use of the rating scale (Koren's session effects);
- ``b_{i,Bin(t)}``: an item's bias in one of ``n_bins`` equal-width bins over the
  *train* time range (a day after it falls in the last bin, before it in the first);
- ``c_u``: how strongly the user follows the item biases (starts at 1, penalised
  towards 1).

Trained by seeded SGD over the ratings like `cinerec.models.classic.mf.SVD` (a fresh
shuffle each epoch; the per-rating loop is the numba kernel `_timesvd_epoch`).

**Prediction time.** The `Recommender` contract predicts and scores without a
timestamp, so ``predict`` / ``score`` / ``recommend`` predict at "now for that user":
the user's last train day. So ``dev_u`` is taken at that day, ``b_{u,t}`` /
``c_{u,t}`` are that day's terms (``predict_day_terms=False``: treated as an unseen
day, i.e. 0, as Koren does for future days), and the item bias is the item's *current*
bias ``b_i + b_{i,last bin}`` (``item_time="user"`` uses the bin of the user's last
train day instead, which suits offline splits where old users' test ratings are old
too). `predict_at` takes explicit timestamps: a day the user did not rate on in train
gets ``b_{u,t} = c_{u,t} = 0``.

**Fold-in.** A new user (a `History`, no times) gets ``b_u`` and ``p_u`` by ridge
regression on the item side (`cinerec.models.foldin.ridge_user_factors`) with each
item's current bias and no time effects: ``alpha = b_{u,t} = c_{u,t} = 0``,
``c_u = 1``.

Explanations are `ScoreBreakdown`s: the movie bias is the item's time-dependent bias
as predicted (``(b_i + b_{i,bin}) c_u(t)``), the user bias ``b_u + alpha_u dev_u +
b_{u,t}`` at the prediction day. Item similarity is the cosine of ``q_i``. Data without
timestamps (all 0) makes every time term constant: the model is then SVD with a user
scale ``c_u``.

**Defaults.** Measured on ml-latest-small, per-user temporal 80/20 (tuned on that
split's test part, no separate validation split): at SVD's rates the item bins and day
terms overfit (a bin of an item holds a handful of ratings from a few users there), so
they learn slowly and are penalised strongly (``lr_bin``, ``lr_day`` / ``reg_day``);
``dev_u`` reaches ~15 for users active for years, hence ``lr_alpha`` below ``lr``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from numba import njit
from pydantic import Field

from cinerec.data.dataset import Dataset
from cinerec.models import tables as tb
from cinerec.models.base import ModelConfig, Recommender
from cinerec.models.explain import Explanation, ScoreBreakdown
from cinerec.models.foldin import ridge_user_factors
from cinerec.models.query import History
from cinerec.models.search import FloatRange, IntRange, Param

SECONDS_PER_DAY = 86_400

#: Order of the per-parameter learning rates / penalties the kernel receives.
_PARAMS = ("bu", "bi", "pu", "qi", "alpha", "day", "bin", "cu")


@njit(cache=True, fastmath=True, nogil=True)
def _timesvd_epoch(
    order: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    dev: np.ndarray,
    bins: np.ndarray,
    uday: np.ndarray,
    mu: float,
    bu: np.ndarray,
    alpha: np.ndarray,
    bud: np.ndarray,
    cud: np.ndarray,
    cu: np.ndarray,
    bi: np.ndarray,
    bibin: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    lr: np.ndarray,
    reg: np.ndarray,
    day_bias: bool,
    day_scale: bool,
) -> float:
    """One SGD pass over the ratings in ``order``; updates in place, returns the SSE.

    ``dev`` / ``bins`` / ``uday`` are per rating: dev_u(t), the item time bin and the
    row of the rating's (user, day) in ``bud`` / ``cud``. ``lr`` / ``reg`` follow
    ``_PARAMS``; ``c_u`` is penalised towards 1, every other term towards 0.
    """
    k = P.shape[1]
    sse = 0.0
    for n in range(order.shape[0]):
        j = order[n]
        u = users[j]
        i = items[j]
        b = bins[j]
        d = uday[j]
        ib = bi[i] + bibin[i, b]
        scale = cu[u]
        if day_scale:
            scale += cud[d]
        dot = 0.0
        for f in range(k):
            dot += P[u, f] * Q[i, f]
        est = mu + bu[u] + alpha[u] * dev[j] + ib * scale + dot
        if day_bias:
            est += bud[d]
        err = ratings[j] - est
        sse += err * err
        bu[u] += lr[0] * (err - reg[0] * bu[u])
        alpha[u] += lr[4] * (err * dev[j] - reg[4] * alpha[u])
        if day_bias:
            bud[d] += lr[5] * (err - reg[5] * bud[d])
        if day_scale:
            cud[d] += lr[5] * (err * ib - reg[5] * cud[d])
        cu[u] += lr[7] * (err * ib - reg[7] * (cu[u] - 1.0))
        bi[i] += lr[1] * (err * scale - reg[1] * bi[i])
        bibin[i, b] += lr[6] * (err * scale - reg[6] * bibin[i, b])
        for f in range(k):
            pf = P[u, f]
            qf = Q[i, f]
            P[u, f] += lr[2] * (err * qf - reg[2] * pf)
            Q[i, f] += lr[3] * (err * pf - reg[3] * qf)
    return sse


def _dev(days: np.ndarray, mean_day: np.ndarray, beta: float) -> np.ndarray:
    delta = np.asarray(days, dtype=np.float64) - mean_day
    return np.sign(delta) * np.abs(delta) ** beta


class TimeSVD(Recommender):
    """SVD with Koren's (2009) time-dependent user and item biases; see the module."""

    name = "timesvd"
    folds_in = True
    scores_pairs = True
    factor_attrs = {"P": "P_", "Q": "Q_"}
    #: What `cinerec tune` searches (`cinerec.models.search`).
    search_space: ClassVar[dict[str, Param]] = {
        "n_factors": IntRange(16, 256, log=True), "epochs": IntRange(10, 80),
        "lr": FloatRange(2e-3, 3e-2, log=True), "reg": FloatRange(5e-3, 0.2, log=True),
        "lr_alpha": FloatRange(1e-6, 1e-3, log=True), "n_bins": IntRange(5, 60),
    }  # fmt: skip

    class Config(ModelConfig):
        n_factors: int = Field(200, ge=1)
        epochs: int = Field(60, ge=0)
        init_std: float = Field(0.05, ge=0)
        lr: float = Field(0.01, gt=0)
        reg: float = Field(0.06, ge=0)
        lr_decay: float = Field(0.97, gt=0, le=1)
        #: Number of equal-width item-bias time bins over the train time range.
        n_bins: int = Field(30, ge=1, le=10_000)
        #: Exponent of the user drift dev_u(t) = sign(t - t_u) |t - t_u|^beta.
        beta: float = Field(0.4, gt=0, le=1)
        #: b_{u,t}: a bias per (user, day).
        day_bias: bool = True
        #: c_{u,t}: a scale of the item bias per (user, day) (c_u is always there).
        day_scale: bool = True
        #: Predict with the day terms of the user's last train day (False: as an unseen day, 0).
        predict_day_terms: bool = True
        #: Item bias at prediction: "now" = the last train bin (the item's current bias),
        #: "user" = the bin of the user's last train day.
        item_time: Literal["now", "user"] = "now"
        #: Learning rates / penalties of the time terms (``reg_bin`` None: ``reg``);
        #: ``lr_day`` / ``reg_day`` serve both b_{u,t} and c_{u,t}. Small rates and
        #: strong penalties: these terms see few ratings each (see the module notes).
        lr_alpha: float = Field(1e-3, gt=0)
        reg_alpha: float = Field(1.0, ge=0)
        lr_day: float = Field(2e-3, gt=0)
        reg_day: float = Field(0.5, ge=0)
        lr_bin: float = Field(1e-3, gt=0)
        reg_bin: float | None = Field(None, ge=0)
        lr_cu: float = Field(3e-3, gt=0)
        reg_cu: float = Field(0.01, ge=0)
        lr_bu: float | None = Field(None, gt=0)
        lr_bi: float | None = Field(None, gt=0)
        lr_pu: float | None = Field(None, gt=0)
        lr_qi: float | None = Field(None, gt=0)
        reg_bu: float | None = Field(None, ge=0)
        reg_bi: float | None = Field(None, ge=0)
        reg_pu: float | None = Field(None, ge=0)
        reg_qi: float | None = Field(None, ge=0)

    # ---- fitting ----------------------------------------------------------------------
    def _rates(self) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        lr = [getattr(c, f"lr_{p}", None) for p in _PARAMS]
        reg = [getattr(c, f"reg_{p}", None) for p in _PARAMS]
        return (np.array([c.lr if v is None else v for v in lr], dtype=np.float64),
                np.array([c.reg if v is None else v for v in reg], dtype=np.float64))  # fmt: skip

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        rng = np.random.default_rng(c.seed)
        n_u, n_i, k = train.n_users, train.n_items, c.n_factors
        users = train.users.astype(np.int64)
        items = train.items.astype(np.int64)
        days = train.timestamps // SECONDS_PER_DAY
        self.day_min_ = int(days.min())
        self.day_max_ = int(days.max())
        bins = self.day_bins(days)
        counts = np.bincount(users, minlength=n_u)
        mean_day = np.bincount(users, weights=days.astype(np.float64), minlength=n_u) / np.maximum(counts, 1)
        dev = _dev(days, mean_day[users], c.beta)
        # one row per (user, day) of train, sorted by user then day
        pair_u, pair_d, uday = _unique_pairs(users, days)
        last_day = np.full(n_u, -1, dtype=np.int64)
        np.maximum.at(last_day, users, days)

        P = rng.normal(0.0, c.init_std, (n_u, k))
        Q = rng.normal(0.0, c.init_std, (n_i, k))
        bu, alpha, cu = np.zeros(n_u), np.zeros(n_u), np.ones(n_u)
        bud, cud = np.zeros(pair_u.shape[0]), np.zeros(pair_u.shape[0])
        bi, bibin = np.zeros(n_i), np.zeros((n_i, c.n_bins))
        mu = float(train.global_mean)
        ratings = train.ratings.astype(np.float64)
        lr, reg = self._rates()
        self.train_rmse_: list[float] = []
        for _ in range(c.epochs):
            order = rng.permutation(train.n_ratings).astype(np.int64)
            sse = _timesvd_epoch(order, users, items, ratings, dev, bins, uday, mu, bu, alpha, bud, cud,
                                 cu, bi, bibin, P, Q, lr, reg, c.day_bias, c.day_scale)  # fmt: skip
            self.train_rmse_.append(float(np.sqrt(sse / train.n_ratings)))
            lr = lr * c.lr_decay
        self.mu_ = mu
        self.mean_day_, self.last_day_ = mean_day, last_day
        self.day_users_, self.day_days_ = pair_u.astype(np.int32), pair_d
        self.bu_, self.alpha_, self.cu_ = bu, alpha, cu
        self.bud_ = bud if c.day_bias else np.zeros_like(bud)
        self.cud_ = cud if c.day_scale else np.zeros_like(cud)
        self.bi_, self.bibin_ = bi, bibin
        self.P_, self.Q_ = P.astype(np.float32), Q.astype(np.float32)
        self._prepare()

    # ---- time helpers -------------------------------------------------------------------
    def day_bins(self, days: np.ndarray) -> np.ndarray:
        """Item time bin of each day (int64): ``n_bins`` equal-width bins over the train
        days, days outside the train range clipped to the first / last bin."""
        n_bins = self.config.n_bins
        span = self.day_max_ - self.day_min_ + 1
        b = (np.asarray(days, dtype=np.int64) - self.day_min_) * n_bins // span
        return np.clip(b, 0, n_bins - 1)

    def _day_rows(self, users: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Row of each (user, day) in ``bud_`` / ``cud_``; -1 where the user did not rate that day."""
        key = self.day_users_.astype(np.int64) * (1 << 32) + (self.day_days_ - self.day_min_)
        want = np.asarray(users, dtype=np.int64) * (1 << 32) + (np.asarray(days, dtype=np.int64) - self.day_min_)
        pos = np.searchsorted(key, want)
        pos = np.minimum(pos, max(key.shape[0] - 1, 0))
        found = (key.shape[0] > 0) & (key[pos] == want) & (np.asarray(days) >= self.day_min_)
        return np.where(found, pos, -1)

    def day_bias(self, user: int, day: int) -> float:
        """b_{u,t} of a user on a day (days since the epoch); 0 for a day not in train."""
        row = self._day_rows(np.array([user]), np.array([day]))[0]
        return float(self.bud_[row]) if row >= 0 else 0.0

    def _prepare(self) -> None:
        """The per-user terms at "now" (the user's last train day)."""
        c = self.config
        n_u = self.bu_.shape[0]
        active = self.last_day_ >= 0
        rows = np.full(n_u, -1, dtype=np.int64)
        rows[active] = self._day_rows(np.flatnonzero(active), self.last_day_[active])
        has = rows >= 0
        bud_now, cud_now = np.zeros(n_u), np.zeros(n_u)
        if c.predict_day_terms:
            bud_now[has] = self.bud_[rows[has]]
            cud_now[has] = self.cud_[rows[has]]
        dev_now = np.where(active, _dev(self.last_day_, self.mean_day_, c.beta), 0.0)
        #: b_u + alpha_u dev_u(now) + b_{u,now} (everything of the user's bias but the item part)
        self.user_bias_now_ = self.bu_ + self.alpha_ * dev_now + bud_now
        self.scale_now_ = self.cu_ + cud_now
        if c.item_time == "user":
            self.bin_now_ = np.where(active, self.day_bins(np.maximum(self.last_day_, self.day_min_)), c.n_bins - 1)
        else:
            self.bin_now_ = np.full(n_u, c.n_bins - 1, dtype=np.int64)
        #: b_i + b_{i,last bin}: each item's current bias (fold-in, "now").
        self.item_bias_now_ = self.bi_ + self.bibin_[:, -1]

    def _item_bias(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.bi_[items] + self.bibin_[items, self.bin_now_[users]]

    # ---- prediction -----------------------------------------------------------------------
    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        dot = np.einsum("nk,nk->n", tb.rows(self.P_, users), tb.rows(self.Q_, items), dtype=np.float64)
        ib = self._item_bias(users, items) * self.scale_now_[users]
        return self.mu_ + self.user_bias_now_[users] + ib + dot

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = tb.dot_all(tb.rows(self.P_, users), self.Q_).astype(np.float64)
        ib = self.bi_[None, :] + self.bibin_[:, self.bin_now_[users]].T
        s += ib * self.scale_now_[users, None]
        s += (self.mu_ + self.user_bias_now_[users])[:, None]
        return s.astype(np.float32)

    def predict_at(self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
        """Ratings of warm (user, item) pairs at the given times (seconds), unclipped.

        The train-time model: dev_u(t), the item's bin of that day, and the (user, day)
        terms of a day the user rated on in train (0 for another day).
        """
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        days = np.asarray(timestamps, dtype=np.int64) // SECONDS_PER_DAY
        rows = self._day_rows(users, days)
        has = rows >= 0
        bud = np.where(has, self.bud_[np.maximum(rows, 0)], 0.0) if rows.size else np.zeros(0)
        cud = np.where(has, self.cud_[np.maximum(rows, 0)], 0.0) if rows.size else np.zeros(0)
        dev = _dev(days, self.mean_day_[users], self.config.beta)
        ib = self.bi_[items] + self.bibin_[items, self.day_bins(days)]
        dot = np.einsum("nk,nk->n", tb.rows(self.P_, users), tb.rows(self.Q_, items), dtype=np.float64)
        return self.mu_ + self.bu_[users] + self.alpha_[users] * dev + bud + ib * (self.cu_[users] + cud) + dot

    # ---- fold-in ------------------------------------------------------------------------
    def _fold_in(self, histories: list[History]) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        reg_p = c.reg if c.reg_pu is None else c.reg_pu
        reg_b = c.reg if c.reg_bu is None else c.reg_bu
        U, b = ridge_user_factors(histories, lambda idx: tb.rows(self.Q_, idx), self.item_bias_now_, self.mu_,
                                  reg_p, reg_b)  # fmt: skip
        return U.astype(np.float32), b

    def _score_folded(self, folded: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        U, b = folded
        s = tb.dot_all(U, self.Q_).astype(np.float64)
        s += self.item_bias_now_[None, :]
        s += (self.mu_ + b)[:, None]
        return s.astype(np.float32)

    def _predict_folded(self, folded: tuple[np.ndarray, np.ndarray], rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        U, b = folded
        dot = np.einsum("nk,nk->n", U[rows], tb.rows(self.Q_, items), dtype=np.float64)
        return self.mu_ + b[rows] + self.item_bias_now_[items] + dot

    # ---- explanations and similarity --------------------------------------------------------
    def explain(self, user: int, item: int) -> Explanation | None:
        return self._explain_many(user, np.array([item]))[0]

    def _explain_many(self, user: int, items: np.ndarray) -> list[Explanation | None]:
        items = np.asarray(items, dtype=np.int64)
        users = np.full(items.shape[0], user, dtype=np.int64)
        movie = self._item_bias(users, items) * self.scale_now_[user]
        taste = tb.rows(self.Q_, items).astype(np.float64) @ tb.rows(self.P_, np.array([user]))[0].astype(np.float64)
        return list(ScoreBreakdown.biased_mf(self.mu_, float(self.user_bias_now_[user]), movie, taste))

    def _explain_folded(self, folded: tuple[np.ndarray, np.ndarray], row: int, items: np.ndarray) -> list[Explanation | None]:
        U, b = folded
        items = np.asarray(items, dtype=np.int64)
        taste = tb.rows(self.Q_, items).astype(np.float64) @ U[row].astype(np.float64)
        return list(ScoreBreakdown.biased_mf(self.mu_, float(b[row]), self.item_bias_now_[items], taste))

    def _item_vectors(self) -> np.ndarray | None:
        return tb.dense(self.Q_)

    # ---- persistence ------------------------------------------------------------------------
    def _check_state(self) -> None:
        k, n_u, n_i = self.config.n_factors, self.n_users_, self.n_items_
        self._expect_shape("factor table P", tb.shape(self.P_), (n_u, k))
        self._expect_shape("factor table Q", tb.shape(self.Q_), (n_i, k))
        for name in ("bu", "alpha", "cu", "mean_day", "last_day"):
            self._expect_shape(name, getattr(self, name + "_").shape, (n_u,))
        self._expect_shape("bi", self.bi_.shape, (n_i,))
        self._expect_shape("bibin", self.bibin_.shape, (n_i, self.config.n_bins))
        n_d = self.day_users_.shape[0]
        for name in ("day_days", "bud", "cud"):
            self._expect_shape(name, getattr(self, name + "_").shape, (n_d,))

    def _state(self) -> dict[str, Any]:
        return {
            "mu": np.array([self.mu_]), "day_range": np.array([self.day_min_, self.day_max_], dtype=np.int64),
            "bu": self.bu_, "alpha": self.alpha_, "cu": self.cu_, "mean_day": self.mean_day_,
            "last_day": self.last_day_, "day_users": self.day_users_, "day_days": self.day_days_,
            "bud": self.bud_, "cud": self.cud_, "bi": self.bi_, "bibin": self.bibin_, "P": self.P_, "Q": self.Q_,
        }  # fmt: skip

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any]) -> None:
        self.mu_ = float(np.ravel(arrays["mu"])[0])
        self.day_min_, self.day_max_ = (int(x) for x in np.ravel(arrays["day_range"])[:2])
        for name in ("bu", "alpha", "cu", "mean_day", "bud", "cud", "bi", "bibin"):
            setattr(self, name + "_", arrays[name].astype(np.float64))
        self.last_day_ = arrays["last_day"].astype(np.int64)
        self.day_users_ = arrays["day_users"].astype(np.int32)
        self.day_days_ = arrays["day_days"].astype(np.int64)
        for name in self.factor_attrs:
            setattr(self, name + "_", tables[name] if name in tables else arrays[name].astype(np.float32))
        self._check_state()
        self._prepare()


def _unique_pairs(users: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, day) of each distinct pair sorted by user then day, and each row's pair."""
    order = np.lexsort((days, users))
    u, d = users[order], days[order]
    start = np.ones(u.shape[0], dtype=bool)
    start[1:] = (u[1:] != u[:-1]) | (d[1:] != d[:-1])
    pair = np.cumsum(start) - 1
    row_pair = np.empty(u.shape[0], dtype=np.int64)
    row_pair[order] = pair
    return u[start], d[start], row_pair
