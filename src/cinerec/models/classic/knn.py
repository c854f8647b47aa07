"""Neighbourhood models: user-KNN and item-KNN with a baseline-centred prediction.

``r_hat(u, i) = b_ui + sum_n sim * z_n / sum_n |sim|`` where ``b_ui = mu + b_u + b_i``
(regularised biases, `fit_biases`) and ``z = r - b`` are residuals, taken over the
``k`` most similar neighbours that have a rating for the pair (Koren 2010,
Surprise ``KNNBaseline``).

Similarities are computed with sparse matrix products, one block of rows at a time,
and only the ``k_keep`` most similar neighbours of each user/item are kept in a
sparse matrix, so memory is O(n * k_keep) plus one bounded dense block, never the
dense n x n matrix that makes Surprise run out of memory on large catalogues.

Ranking the catalogue (`score`, `recommend`) is a different task from predicting a
rating: by default (``ranking="similarity"``) the score is the top-N form of
Deshpande & Karypis (2004), the sum of similarities between the item and the items
the user rated (item-knn) or of the user's neighbours who rated the item (user-knn).
A predicted rating ranks items that one neighbour loved above items many neighbours
rated; on ml-latest-small's per-user temporal split NDCG@10 is 0.016 that way and
0.091 with the similarity sum (``benchmarks/accuracy.py``, section 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from cinerec.data.dataset import Dataset
from cinerec.errors import ArtifactError, ConfigError
from cinerec.models.base import ModelConfig, Recommender
from cinerec.models.classic import _kernels as K
from cinerec.models.classic.baseline import fit_biases, fold_in_biases
from cinerec.models.explain import BecauseYouRated, Explanation, SimilarUsers
from cinerec.models.query import History
from cinerec.models.search import Choice, FloatRange, IntRange, Param

Similarity = Literal["cosine", "pearson", "spearman", "pearson_baseline"]
Ranking = Literal["similarity", "rating"]

#: Rated items named by `explain` (item-knn).
EXPLAIN_NEIGHBOURS = 3

#: Dense entries of one similarity block (8 bytes each, a handful alive at once).
BLOCK_ELEMENTS = 1 << 21


def rank_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    """Replace each row's stored values by their ranks within the row (ties averaged).

    The rank transform that turns Pearson into Spearman correlation (paper 001).
    """
    m = m.tocsr(copy=True)
    m.sort_indices()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.data, rows))
    pos = np.arange(order.shape[0]) - m.indptr[rows[order]] + 1.0
    # Ties: one group per run of equal (row, value); each gets the mean of its ranks.
    d, r = m.data[order], rows[order]
    new_group = np.ones(order.shape[0], dtype=bool)
    new_group[1:] = (d[1:] != d[:-1]) | (r[1:] != r[:-1])
    gid = np.cumsum(new_group) - 1
    mean_rank = np.bincount(gid, weights=pos) / np.bincount(gid)
    out = np.empty_like(m.data, dtype=np.float64)
    out[order] = mean_rank[gid]
    m.data = out
    return m


def topk_similarity(
    X: sp.csr_matrix,
    kind: Similarity = "pearson",
    shrinkage: float = 0.0,
    min_support: int = 1,
    k_keep: int = 100,
    min_sim: float = 0.0,
    block_elements: int = BLOCK_ELEMENTS,
    Y: sp.csr_matrix | None = None,
) -> sp.csr_matrix:
    """Similarity between the rows of ``X`` (and the rows of ``Y``; default ``X``
    itself) over their common columns, top-``k_keep`` per row of ``X``.

    ``X`` holds one row per entity (item for item-KNN) and the values to compare (raw
    ratings for cosine/pearson/spearman, baseline residuals for pearson_baseline,
    which is then a cosine of residuals). All sums run over *common* columns only, as
    in Surprise. Similarities are multiplied by ``n / (n + shrinkage)`` (n common
    columns), zeroed below ``min_support`` common columns, and only values above
    ``min_sim`` are kept. With ``Y`` (e.g. a new user's ratings against every known
    user's) no row is excluded as its own neighbour. Returns a CSR matrix whose rows
    list neighbours by *decreasing* similarity (indices deliberately not sorted by
    column).
    """
    same = Y is None
    X = sp.csr_matrix(X, dtype=np.float64)
    X.sort_indices()
    if kind == "spearman":
        X = rank_rows(X)
    if same:
        Y = X
    else:
        Y = sp.csr_matrix(Y, dtype=np.float64)
        Y.sort_indices()
        if kind == "spearman":
            Y = rank_rows(Y)
    n, m = X.shape[0], Y.shape[0]
    B = X.copy()
    B.data = np.ones_like(B.data)
    X2 = X.multiply(X).tocsr()
    if same:
        BY, Y2 = B, X2
    else:
        BY = Y.copy()
        BY.data = np.ones_like(BY.data)
        Y2 = Y.multiply(Y).tocsr()
    Yt, BYt, Y2t = Y.T.tocsr(), BY.T.tocsr(), Y2.T.tocsr()
    if same:
        k_keep = max(1, min(k_keep, n - 1)) if n > 1 else 1
    else:
        k_keep = max(1, min(k_keep, m))
    step = max(1, block_elements // max(m, 1))
    indptr = [0]
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    for a in range(0, n, step):
        b = min(n, a + step)
        Xb, Bb, X2b = X[a:b], B[a:b], X2[a:b]
        freq = (Bb @ BYt).toarray()
        prods = (Xb @ Yt).toarray()
        if kind in ("cosine", "pearson_baseline"):
            sqi = (X2b @ BYt).toarray()
            sqj = (Bb @ Y2t).toarray()
            num, den2 = prods, sqi * sqj
        else:
            si = (Xb @ BYt).toarray()
            sj = (Bb @ Yt).toarray()
            sqi = (X2b @ BYt).toarray()
            sqj = (Bb @ Y2t).toarray()
            num = freq * prods - si * sj
            den2 = (freq * sqi - si * si) * (freq * sqj - sj * sj)
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = np.where(den2 > 0, num / np.sqrt(np.maximum(den2, 1e-300)), 0.0)
        sim[freq < max(min_support, 1)] = 0.0
        if shrinkage > 0:
            sim *= freq / (freq + shrinkage)
        if same:
            sim[np.arange(b - a), np.arange(a, b)] = -np.inf  # never your own neighbour
        kk = min(k_keep, m)
        top = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
        vals = np.take_along_axis(sim, top, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        vals = np.take_along_axis(vals, order, axis=1)
        keep = vals > min_sim
        indices.append(top[keep])
        data.append(vals[keep])
        indptr.extend((indptr[-1] + np.cumsum(keep.sum(axis=1))).tolist())
    return sp.csr_matrix(
        (
            np.concatenate(data).astype(np.float32) if data else np.empty(0, np.float32),
            np.concatenate(indices).astype(np.int32) if indices else np.empty(0, np.int32),
            np.asarray(indptr, dtype=np.int64),
        ),
        shape=(n, m),
    )


class _KNNConfig(ModelConfig):
    k: int = Field(40, ge=1, description="neighbours used per prediction")
    min_k: int = Field(1, ge=1, description="fewer usable neighbours -> baseline only")
    similarity: Similarity = "pearson_baseline"
    shrinkage: float = Field(100.0, ge=0)
    min_support: int = Field(1, ge=1, description="minimum common ratings for a similarity")
    k_keep: int = Field(200, ge=1, description="neighbours stored per user/item")
    min_sim: float = Field(0.0, description="only similarities above this are kept")
    reg_u: float = Field(15.0, ge=0, description="baseline user-bias penalty")
    reg_i: float = Field(10.0, ge=0, description="baseline item-bias penalty")
    ranking: Ranking = Field(
        "similarity",
        description="what score/recommend rank by: the sum of neighbour similarities "
        "(top-N) or the predicted rating",
    )


@dataclass(eq=False)
class _FoldedUsers:
    """New users folded into a KNN model: biases, residual and seen rows, and (user-knn)
    their similarities to every known user."""

    bu: np.ndarray
    Z: sp.csr_matrix
    seen: sp.csr_matrix
    S: sp.csr_matrix | None


class _KNN(Recommender):
    """Shared machinery; subclasses say which side the neighbours are on."""

    user_based: bool = False
    folds_in = True
    #: What `cinerec tune` searches (`cinerec.models.search`).
    search_space: ClassVar[dict[str, Param]] = {"k": IntRange(5, 100), "shrinkage": FloatRange(1.0, 500.0, log=True), "similarity": Choice(("cosine", "pearson", "pearson_baseline"))}

    Config = _KNNConfig

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        if c.k > c.k_keep:
            # More neighbours than stored can never be used; keep the config honest.
            raise ConfigError(f"k={c.k} exceeds k_keep={c.k_keep}: raise k_keep or lower k")
        mu, bu, bi = fit_biases(train, c.reg_u, c.reg_i)
        self.mu_, self.bu_, self.bi_ = float(mu), bu.astype(np.float32), bi.astype(np.float32)
        R = train.to_csr()  # users x items, sorted: aligned with the base's seen arrays
        z = R.data.astype(np.float64) - self._baseline_of_csr(R, self.bu_)
        self.z_ = z.astype(np.float32)
        if c.similarity == "pearson_baseline":
            X = sp.csr_matrix((z, R.indices, R.indptr), shape=R.shape)
        else:
            X = R
        X = X if self.user_based else X.T.tocsr()
        S = topk_similarity(X, c.similarity, c.shrinkage, c.min_support, c.k_keep, c.min_sim)
        self.s_indptr_ = S.indptr.astype(np.int64)
        self.s_indices_ = S.indices.astype(np.int32)
        self.s_data_ = S.data.astype(np.float32)
        self._build_views()

    def _baseline_of_csr(self, R: sp.csr_matrix, bu: np.ndarray) -> np.ndarray:
        rows = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
        return self.mu_ + bu[rows].astype(np.float64) + self.bi_[R.indices]

    def _build_views(self) -> None:
        """Residual matrices in both orientations and the similarity CSR, from state."""
        shape = (self.n_users_, self.n_items_)
        self.Z_ = sp.csr_matrix((self.z_, self.seen_indices_, self.seen_indptr_), shape=shape)
        Zt = self.Z_.T.tocsr()
        Zt.sort_indices()
        self.Zt_ = Zt
        n = self.n_users_ if self.user_based else self.n_items_
        self.S_ = sp.csr_matrix((self.s_data_, self.s_indices_, self.s_indptr_), shape=(n, n))
        #: 1 where the user rated the item in train (users x items).
        self.seen_ = sp.csr_matrix(
            (np.ones(self.seen_indices_.shape[0], dtype=np.float32), self.seen_indices_, self.seen_indptr_),
            shape=shape,
        )

    @property
    def n_neighbour_entries(self) -> int:
        """Stored similarity entries (at most n * k_keep)."""
        return int(self.s_data_.shape[0])

    # ---- rating prediction -------------------------------------------------------------
    def _correction(
        self, targets: np.ndarray, anchors: np.ndarray, S: sp.csr_matrix, Z: sp.csr_matrix
    ) -> np.ndarray:
        corr, _ = K.knn_predict(
            targets.astype(np.int64),
            anchors.astype(np.int64),
            S.indptr.astype(np.int64),
            S.indices.astype(np.int64),
            S.data.astype(np.float64),
            Z.indptr.astype(np.int64),
            Z.indices.astype(np.int64),
            Z.data.astype(np.float64),
            self.config.k,
            self.config.min_k,
        )
        return corr

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        base = self.mu_ + self.bu_[users].astype(np.float64) + self.bi_[items]
        if self.user_based:
            return base + self._correction(users, items, self.S_, self.Zt_)
        return base + self._correction(items, users, self.S_, self.Z_)

    # ---- ranking -------------------------------------------------------------------------
    def _score(self, users: np.ndarray) -> np.ndarray:
        s_rows = self.S_[users] if self.user_based else None
        return self._rank(self.seen_[users], self.Z_[users], s_rows, self.bu_[users])

    def _rank(
        self, seen: sp.csr_matrix, Z: sp.csr_matrix, S: sp.csr_matrix | None, bu: np.ndarray
    ) -> np.ndarray:
        """Catalogue scores of users given their seen rows, residual rows, (user-knn)
        similarity rows and biases.

        ``ranking="similarity"``: item-knn ``sum_{j rated by u} s(j, i)``, user-knn
        ``sum_{v rated i} s(u, v)``, over the stored neighbours (one sparse product).
        ``ranking="rating"``: baseline + similarity-weighted mean residual over all
        stored neighbours (``k_keep``, not the top ``k`` per pair: two sparse products).
        """
        if self.config.ranking == "similarity":
            out = S @ self.seen_ if self.user_based else seen @ self.S_
            return out.toarray().astype(np.float32)
        if self.user_based:
            num = (S @ self.Z_).toarray()
            den = (abs(S) @ self.seen_).toarray()
        else:
            num = (Z @ self.S_.T).toarray()
            den = (seen @ abs(self.S_).T).toarray()
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        base = self.mu_ + np.asarray(bu)[:, None].astype(np.float64) + self.bi_[None, :]
        return (base + corr).astype(np.float32)

    # ---- fold-in -------------------------------------------------------------------------
    def _fold_in(self, histories: list[History]) -> _FoldedUsers:
        c = self.config
        bu = fold_in_biases(histories, self.mu_, self.bi_.astype(np.float64), c.reg_u)
        R = self._history_matrix(histories)
        z = R.data.astype(np.float64) - self._baseline_of_csr(R, bu)
        Z = sp.csr_matrix((z, R.indices, R.indptr), shape=R.shape)
        seen = sp.csr_matrix((np.ones(R.nnz, dtype=np.float32), R.indices, R.indptr), shape=R.shape)
        S = None
        if self.user_based:
            if c.similarity == "pearson_baseline":
                X, Y = Z, self.Z_
            elif self.seen_ratings_ is None:
                raise ConfigError(
                    "this format-1 artifact of user-knn lacks the training ratings its "
                    f"{c.similarity} similarity needs for fold-in; re-save it with `cinerec upgrade`"
                )
            else:
                X = R
                Y = sp.csr_matrix((self.seen_ratings_, self.seen_indices_, self.seen_indptr_),
                                  shape=(self.n_users_, self.n_items_))
            S = topk_similarity(X, c.similarity, c.shrinkage, c.min_support, c.k_keep, c.min_sim, Y=Y)
        return _FoldedUsers(bu=bu, Z=Z, seen=seen, S=S)

    def _score_folded(self, folded: _FoldedUsers) -> np.ndarray:
        return self._rank(folded.seen, folded.Z, folded.S, folded.bu)

    def _predict_folded(self, folded: _FoldedUsers, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        base = self.mu_ + folded.bu[rows] + self.bi_[items]
        if self.user_based:
            return base + self._correction(rows, items, folded.S, self.Zt_)
        return base + self._correction(items, rows, self.S_, folded.Z)

    # ---- explanations and similarity --------------------------------------------------------
    def _because(self, rated: np.ndarray, items: np.ndarray) -> list[Explanation | None]:
        """For each item, the rated items most similar to it (item-knn)."""
        sims_all = self.S_[rated][:, np.asarray(items, dtype=np.int64)].toarray()
        out: list[Explanation | None] = []
        for j in range(sims_all.shape[1]):
            sims = sims_all[:, j]
            top = np.argsort(-sims, kind="stable")[:EXPLAIN_NEIGHBOURS]
            top = top[sims[top] > 0]
            out.append(BecauseYouRated(tuple(int(x) for x in rated[top]), tuple(float(x) for x in sims[top])))
        return out

    def _neighbours_who_rated(self, s_row: sp.csr_matrix, item: int) -> SimilarUsers:
        raters = self.Zt_.indices[self.Zt_.indptr[int(item)] : self.Zt_.indptr[int(item) + 1]]
        sims = s_row.data[np.isin(s_row.indices, raters)]
        return SimilarUsers(int(sims.shape[0]), float(sims.sum()))

    def explain(self, user: int, item: int) -> Explanation | None:
        """The neighbours behind a recommendation: for item-knn the user's rated items
        most similar to ``item`` (`BecauseYouRated`, best first, with similarities); for
        user-knn how many of the user's neighbours rated it (`SimilarUsers`)."""
        self._check_fitted()
        if not (self._warm_users(np.array([user]))[0] and self._warm_items(np.array([item]))[0]):
            return None
        return self._explain_many(int(user), np.array([int(item)]))[0]

    def _explain_many(self, user: int, items: np.ndarray) -> list[Explanation | None]:
        if self.user_based:
            s_row = self.S_[int(user)]
            return [self._neighbours_who_rated(s_row, int(i)) for i in items]
        return self._because(self.seen_items(int(user)), items)

    def _explain_folded(self, folded: _FoldedUsers, row: int, items: np.ndarray) -> list[Explanation | None]:
        if self.user_based:
            s_row = folded.S[row]
            return [self._neighbours_who_rated(s_row, int(i)) for i in items]
        rated = folded.seen.indices[folded.seen.indptr[row] : folded.seen.indptr[row + 1]]
        return self._because(rated, items)

    @property
    def has_similar_items(self) -> bool:
        return not self.user_based

    def _similar_scores(self, item: int) -> tuple[np.ndarray, str] | None:
        if self.user_based:
            return None
        out = np.full(self.n_items_, -np.inf)
        row = self.S_[int(item)]
        out[row.indices] = row.data
        return out, f"{self.config.similarity} similarity (stored neighbours)"

    def _check_state(self) -> None:
        n = self.n_users_ if self.user_based else self.n_items_
        self._expect_shape("s_indptr", self.s_indptr_.shape, (n + 1,))
        self._expect_shape("z", self.z_.shape, self.seen_indices_.shape)
        if self.s_indices_.size and (self.s_indices_.min() < 0 or self.s_indices_.max() >= n):
            raise ArtifactError("the neighbour lists hold indices outside their index space")

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "mu": np.array([self.mu_]),
            "bu": self.bu_,
            "bi": self.bi_,
            "z": self.z_,
            "s_indptr": self.s_indptr_,
            "s_indices": self.s_indices_,
            "s_data": self.s_data_,
        }

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any]) -> None:
        self.mu_ = float(np.ravel(arrays["mu"])[0])
        self.bu_ = arrays["bu"].astype(np.float32)
        self.bi_ = arrays["bi"].astype(np.float32)
        self.z_ = arrays["z"].astype(np.float32)
        self.s_indptr_ = arrays["s_indptr"].astype(np.int64)
        self.s_indices_ = arrays["s_indices"].astype(np.int32)
        self.s_data_ = arrays["s_data"].astype(np.float32)
        self._build_views()


class ItemKNN(_KNN):
    """Item-based KNN (Sarwar 2001; Koren's baseline-centred form).

    Neighbours of item i are the items most similar to it; a prediction for (u, i)
    uses those of them u rated. Hyper-parameters: ``k``, ``min_k``, ``similarity``
    (cosine, pearson, spearman, pearson_baseline), ``shrinkage``, ``min_support``,
    ``k_keep``, ``min_sim``, and the baseline penalties ``reg_u`` / ``reg_i``.
    """

    name = "item-knn"
    user_based = False


class UserKNN(_KNN):
    """User-based KNN: neighbours of u are the most similar users who rated i."""

    name = "user-knn"
    user_based = True
