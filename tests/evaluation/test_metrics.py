"""Hand-computed cases for every metric, top-K selection, masking and thresholds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from cinerec.evaluation.metrics import (
    EvaluationError,
    catalogue_coverage,
    mae,
    mean_metrics,
    r2,
    ranking_metrics,
    relevance_matrix,
    rmse,
    topk_from_scores,
)
from tests.conftest import make_ratings_dataset

L3 = math.log2(3)  # discount denominator at rank 2


# ---------------------------------------------------------------------------------
# rating metrics
# ---------------------------------------------------------------------------------
def test_rating_metrics_by_hand():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 3.0, 3.0])
    # errors: +0.5, 0, 0, -1 -> SSE = 1.25, MSE = 0.3125, MAE = 1.5/4
    assert rmse(y, p) == pytest.approx(math.sqrt(0.3125))
    assert mae(y, p) == pytest.approx(0.375)
    # SST = (1.5^2 + 0.5^2) * 2 = 5 -> R2 = 1 - 1.25/5
    assert r2(y, p) == pytest.approx(0.75)
    assert rmse(y, y) == 0.0 and r2(y, y) == 1.0


def test_rating_metrics_edge_cases():
    assert math.isnan(rmse(np.array([]), np.array([])))
    assert math.isnan(r2(np.array([3.0, 3.0]), np.array([2.0, 4.0])))  # constant truth
    with pytest.raises(EvaluationError, match="y_pred has 2"):
        mae(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0]))


# ---------------------------------------------------------------------------------
# top-K
# ---------------------------------------------------------------------------------
def test_topk_order_ties_and_masked():
    s = np.array(
        [
            [0.1, 0.9, 0.5, 0.9, -np.inf],
            [np.nan, 0.2, -np.inf, 0.3, -np.inf],
        ],
        dtype=np.float32,
    )
    top = topk_from_scores(s, 3)
    # Row 0: the tie at 0.9 goes to the lower item index.
    assert top[0].tolist() == [1, 3, 2]
    # Row 1: only two finite scores; NaN and -inf are never recommended.
    assert top[1].tolist() == [3, 1, -1]
    # K larger than the catalogue pads with -1.
    assert topk_from_scores(s, 7)[0].tolist() == [1, 3, 2, 0, -1, -1, -1]


def test_topk_matches_full_sort():
    rng = np.random.default_rng(3)
    s = rng.random((50, 200)).astype(np.float32)
    ref = np.argsort(-s, axis=1, kind="stable")[:, :10]
    assert np.array_equal(topk_from_scores(s, 10), ref)


def test_topk_rejects_bad_input():
    with pytest.raises(EvaluationError, match="k must be"):
        topk_from_scores(np.zeros((2, 3)), 0)
    with pytest.raises(EvaluationError, match="2-d"):
        topk_from_scores(np.zeros(3), 2)


def test_train_item_masking_removes_seen_items():
    # User scores its (train) item 0 highest; masking with -inf must drop it.
    scores = np.array([[5.0, 1.0, 4.0, 3.0, 2.0]], dtype=np.float32)
    train = sp.csr_matrix(np.array([[1, 0, 1, 0, 0]], dtype=bool)).tocoo()
    scores[train.row, train.col] = -np.inf
    top = topk_from_scores(scores, 3)
    assert top[0].tolist() == [3, 4, 1]
    assert not np.isin(top, [0, 2]).any()


# ---------------------------------------------------------------------------------
# ranking metrics by hand: 4 users, 5 items, K = 3
#   u0: top [0, 1, 2], relevant {0, 2, 4}  -> hits 1 0 1
#   u1: top [3, 4, 1], relevant {1}        -> hits 0 0 1
#   u2: top [0, 1, 2], relevant {}         -> excluded (NaN)
#   u3: top [0, 1, 2], relevant {4}        -> no hit
# ---------------------------------------------------------------------------------
TOP = np.array([[0, 1, 2], [3, 4, 1], [0, 1, 2], [0, 1, 2]])
REL = np.array(
    [
        [1, 0, 1, 0, 1],
        [0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],
    ],
    dtype=bool,
)
EXPECTED = {
    # P = hits / K
    "precision": [2 / 3, 1 / 3, 0.0],
    # R = hits / n_rel
    "recall": [2 / 3, 1.0, 0.0],
    # F1 = 2PR / (P + R): u0 2/3; u1 2*(1/3)*1 / (4/3) = 0.5
    "f1": [2 / 3, 0.5, 0.0],
    # u0: DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG (3 relevant) = 1 + 1/log2(3) + 1/2
    # u1: DCG = 1/log2(4) = 0.5; IDCG (1 relevant) = 1
    "ndcg": [1.5 / (1 + 1 / L3 + 0.5), 0.5, 0.0],
    "hit": [1.0, 1.0, 0.0],
    # AP: u0 (1/1 + 2/3) / min(3, 3); u1 (1/3) / min(3, 1)
    "ap": [(1 + 2 / 3) / 3, 1 / 3, 0.0],
}


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_ranking_metrics_by_hand(kind):
    rel = REL if kind == "dense" else sp.csr_matrix(REL)
    res = ranking_metrics(TOP, rel)
    assert res["n_rel"].tolist() == [3, 1, 0, 1]
    for key, want in EXPECTED.items():
        got = res[key]
        assert math.isnan(got[2]), key  # user without relevant items
        np.testing.assert_allclose(got[[0, 1, 3]], want, err_msg=key)


def test_users_without_relevant_items_are_excluded_from_means():
    means = mean_metrics(ranking_metrics(TOP, REL))
    for key, want in EXPECTED.items():
        assert means[key] == pytest.approx(np.mean(want)), key  # over 3 users, not 4


def test_ranking_metrics_cutoff_and_padding():
    # k=1 on the same lists: u0 hit at rank 1 -> all 1 except recall 1/3
    res = ranking_metrics(TOP, REL, k=1)
    assert res["precision"][0] == 1.0 and res["recall"][0] == pytest.approx(1 / 3)
    assert res["ndcg"][0] == 1.0 and res["ap"][0] == 1.0
    # Empty slots (-1) are never hits even though item 0 is relevant.
    padded = ranking_metrics(np.array([[-1, -1, 0]]), REL[:1])
    assert padded["precision"][0] == pytest.approx(1 / 3)
    assert padded["ndcg"][0] == pytest.approx((1 / 2) / (1 + 1 / L3 + 0.5))
    with pytest.raises(EvaluationError, match="k=4"):
        ranking_metrics(TOP, REL, k=4)


def test_perfect_ranking_scores_one():
    # Ideal DCG uses min(K, n_rel): a user with 5 relevant items and a full top-3 is perfect.
    rel = np.ones((1, 6), dtype=bool)
    rel[0, 5] = False
    res = ranking_metrics(np.array([[0, 1, 2]]), rel)
    assert res["ndcg"][0] == 1.0 and res["ap"][0] == 1.0 and res["precision"][0] == 1.0
    assert res["recall"][0] == pytest.approx(3 / 5)


def test_threshold_is_inclusive():
    users = np.array([0, 0, 0, 1])
    items = np.array([0, 1, 2, 0])
    ratings = np.array([3.5, 4.0, 4.5, 3.0], dtype=np.float32)
    m = relevance_matrix(users, items, ratings, 2, 3, threshold=4.0)
    assert m.toarray().tolist() == [[False, True, True], [False, False, False]]
    m = relevance_matrix(users, items, ratings, 2, 3, threshold=4.5)
    assert m.toarray().tolist() == [[False, False, True], [False, False, False]]
    m = relevance_matrix(users, items, ratings, 2, 3, threshold=3.0)
    assert m.toarray().sum() == 4


def test_catalogue_coverage():
    assert catalogue_coverage(np.array([[0, 1], [1, 2]]), 5) == pytest.approx(3 / 5)
    assert catalogue_coverage(np.array([[0, -1], [0, -1]]), 4) == pytest.approx(1 / 4)
    with pytest.raises(EvaluationError):
        catalogue_coverage(np.array([[0]]), 0)


def test_own_items_protocol_inflates_ndcg():
    """Ranking only each user's own test items (paper 004) makes a random scorer look
    nearly perfect; ranking the full catalogue minus train items shows it is not."""
    ds = make_ratings_dataset(n_users=200, n_items=500, density=0.05, seed=1)
    rng = np.random.default_rng(0)
    in_test = rng.random(ds.n_ratings) < 0.2
    train, test = ds.subset(~in_test), ds.subset(in_test)
    rel = relevance_matrix(test.users, test.items, test.ratings, ds.n_users, ds.n_items)
    users = np.flatnonzero(np.diff(rel.indptr) > 0)
    random_scores = rng.random((users.size, ds.n_items)).astype(np.float32)

    own = random_scores.copy()
    own[~test.to_csr(values=None)[users].toarray().astype(bool)] = -np.inf
    m_own = mean_metrics(ranking_metrics(topk_from_scores(own, 10), rel[users]))

    full = random_scores.copy()
    full[train.to_csr(values=None)[users].toarray().astype(bool)] = -np.inf
    m_full = mean_metrics(ranking_metrics(topk_from_scores(full, 10), rel[users]))

    # Own items: every relevant item is in the (short) list, so recall and hit rate
    # are ~1 and NDCG only reflects the order of 2-10 candidates.
    assert m_own["recall"] > 0.95 and m_own["hit"] == 1.0
    assert m_own["ndcg"] > 0.7
    # Full catalogue: random is (correctly) near 0.
    assert m_full["ndcg"] < 0.05 and m_full["recall"] < 0.05
