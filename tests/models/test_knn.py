"""KNN: similarities against a direct dense computation, the k_keep bound, predictions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import rankdata

from cinerec.errors import ConfigError
from cinerec.models.classic.baseline import fit_biases
from cinerec.models.classic.knn import topk_similarity
from cinerec.models.explain import BecauseYouRated, SimilarUsers
from cinerec.models.registry import create_model
from tests.conftest import make_ratings_dataset


def _dense_reference(X: np.ndarray, kind: str, shrinkage: float, min_support: int) -> np.ndarray:
    """Pairwise similarity over common columns, the textbook way (0 = missing)."""
    n = X.shape[0]
    if kind == "spearman":
        X = X.copy()
        for r in range(n):
            nz = X[r] != 0
            X[r, nz] = rankdata(X[r, nz])
    S = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            common = (X[a] != 0) & (X[b] != 0)
            m = int(common.sum())
            if a == b or m < max(min_support, 1):
                continue
            x, y = X[a, common], X[b, common]
            if kind in ("pearson", "spearman"):
                x, y = x - x.mean(), y - y.mean()
            den = np.sqrt((x * x).sum() * (y * y).sum())
            s = (x * y).sum() / den if den > 0 else 0.0
            S[a, b] = s * m / (m + shrinkage)
    return S


@pytest.mark.parametrize("kind", ["cosine", "pearson", "spearman"])
@pytest.mark.parametrize("shrinkage,min_support", [(0.0, 1), (5.0, 3)])
def test_similarity_matches_dense(kind: str, shrinkage: float, min_support: int) -> None:
    rng = np.random.default_rng(1)
    X = np.where(rng.random((12, 15)) < 0.6, rng.integers(1, 11, (12, 15)) / 2.0, 0.0)
    S = topk_similarity(sp.csr_matrix(X), kind, shrinkage, min_support, k_keep=12, min_sim=-2.0)
    ref = _dense_reference(X, kind, shrinkage, min_support)
    np.fill_diagonal(ref, 0.0)
    got = S.toarray()
    # Entries kept are exact; ties at exactly 0 (no support) may be kept or not.
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_k_keep_bounds_memory_and_rows_are_sorted() -> None:
    d = make_ratings_dataset(n_users=80, n_items=60, density=0.4, seed=2)
    X = d.to_csr().T.tocsr()
    S = topk_similarity(X, "pearson", k_keep=7, block_elements=100)
    assert S.nnz <= 60 * 7
    assert (np.diff(S.indptr) <= 7).all()
    for r in range(60):
        row = S.data[S.indptr[r] : S.indptr[r + 1]]
        assert (np.diff(row) <= 0).all() and (row > 0).all()
    # The block size bounds memory but must not change the answer.
    S2 = topk_similarity(X, "pearson", k_keep=7, block_elements=10**7)
    np.testing.assert_allclose(S.toarray(), S2.toarray(), atol=1e-6)


def test_item_knn_prediction_matches_formula() -> None:
    d = make_ratings_dataset(n_users=40, n_items=25, density=0.5, seed=3)
    m = create_model("item-knn", k=5, k_keep=10, similarity="pearson", shrinkage=0.0).fit(d)
    mu, bu, bi = fit_biases(d, 15.0, 10.0)
    R = d.to_csr().toarray()
    rated = d.to_csr(values=None).toarray() > 0
    S = m.S_.toarray()
    u, i = 3, 7
    base = mu + bu[u] + bi[i]
    cand = [j for j in np.argsort(-S[i], kind="stable") if S[i, j] > 0 and rated[u, j]][:5]
    z = np.array([R[u, j] - (mu + bu[u] + bi[j]) for j in cand])
    s = S[i, cand]
    want = base + (s * z).sum() / np.abs(s).sum()
    assert m.predict(np.array([u]), np.array([i]))[0] == pytest.approx(np.clip(want, 0.5, 5), abs=1e-4)


def test_user_knn_uses_neighbour_users() -> None:
    d = make_ratings_dataset(n_users=40, n_items=25, density=0.5, seed=4)
    m = create_model("user-knn", k=3, k_keep=10, min_k=2).fit(d)
    assert m.S_.shape == (40, 40) and m.n_neighbour_entries <= 400
    s = m.score(np.arange(4))
    assert s.shape == (4, 25) and np.isfinite(s).all()


def test_k_above_k_keep_is_rejected() -> None:
    with pytest.raises(ConfigError, match="k_keep"):
        create_model("item-knn", k=50, k_keep=10).fit(make_ratings_dataset())


@pytest.mark.parametrize("name", ["item-knn", "user-knn"])
def test_similarity_ranking_is_the_sum_of_neighbour_similarities(name: str) -> None:
    d = make_ratings_dataset(n_users=40, n_items=25, density=0.4, seed=5)
    m = create_model(name, k=5, k_keep=10).fit(d)
    S = m.S_.toarray()
    rated = d.to_csr(values=None).toarray() > 0
    users = np.array([2, 9])
    if name == "item-knn":
        want = np.stack([S[rated[u]].sum(0) for u in users])  # sum over u's items j of s(j, i)
    else:
        want = np.stack([S[u] @ rated for u in users])  # sum over users v who rated i of s(u, v)
    np.testing.assert_allclose(m.score(users), want, rtol=1e-5, atol=1e-6)
    # recommend ranks by it and still reports predicted ratings from `predict`
    rec = m.recommend(int(users[0]), k=5)
    ranked = np.where(rated[users[0]], -np.inf, want[0])
    assert rec.scores[0] == pytest.approx(ranked.max(), rel=1e-5)
    np.testing.assert_allclose(rec.predicted_ratings, m.predict(np.full(5, users[0]), rec.items))


def test_rating_ranking_scores_near_the_predicted_rating() -> None:
    d = make_ratings_dataset(n_users=40, n_items=25, density=0.5, seed=6)
    # with k = k_keep the per-pair prediction and the batched score use the same neighbours
    m = create_model("item-knn", k=10, k_keep=10, ranking="rating").fit(d)
    users = np.arange(5)
    pred = m.predict(np.repeat(users, 25), np.tile(np.arange(25), 5)).reshape(5, 25)
    score = m.score(users)
    inside = (pred > 0.5) & (pred < 5.0)  # predict clips to the rating scale
    np.testing.assert_allclose(score[inside], pred[inside], atol=1e-4)


def test_item_knn_explains_with_the_most_similar_rated_items() -> None:
    d = make_ratings_dataset(n_users=40, n_items=25, density=0.4, seed=7)
    m = create_model("item-knn", k=5, k_keep=10).fit(d)
    S = m.S_.toarray()
    user = 4
    rec = m.recommend(user, k=3)
    why = rec.explanations[0]
    item = int(rec.items[0])
    rated = m.seen_items(user)
    want = sorted(((S[j, item], int(j)) for j in rated if S[j, item] > 0), reverse=True)[:3]
    assert isinstance(why, BecauseYouRated) and why.measure == "similarity"
    assert list(why.items) == [j for _, j in want]
    np.testing.assert_allclose(why.weights, [s for s, _ in want], rtol=1e-6)
    # the item scores are the similarity sums the explanation is drawn from
    assert sum(S[j, item] for j in rated) == pytest.approx(rec.scores[0], rel=1e-5)
    record = rec.to_records(d)[0]["explanation"]
    assert record["kind"] == "because_you_rated" and len(record["items"]) == len(want)
    assert [r["item_id"] for r in record["items"]] == [int(d.item_ids.raw(j)) for _, j in want]
    assert record["text"].startswith("because you rated")


def test_user_knn_explains_with_the_neighbours_who_rated_the_item() -> None:
    d = make_ratings_dataset(n_users=40, n_items=25, density=0.4, seed=8)
    m = create_model("user-knn", k=5, k_keep=10).fit(d)
    S = m.S_.toarray()
    rated = d.to_csr(values=None).toarray() > 0
    why = m.explain(6, 3)
    neighbours = np.flatnonzero(S[6] > 0)
    who = neighbours[rated[neighbours, 3]]
    assert isinstance(why, SimilarUsers)
    assert why.n_users == who.size
    assert why.similarity_sum == pytest.approx(S[6, who].sum(), rel=1e-5)
    assert m.explain(-1, 3) is None
