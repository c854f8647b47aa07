"""Popularity tiers, user activity tiers and popularity debiasing (cinerec.evaluation.imbalance)."""

from __future__ import annotations

import numpy as np
import pytest

from cinerec.data.splits import make_split
from cinerec.evaluation.imbalance import (
    item_tiers,
    popularity_penalty,
    tier_metrics,
    tradeoff_curve,
    user_tiers,
)
from cinerec.evaluation.metrics import EvaluationError, topk_from_scores
from cinerec.evaluation.protocol import evaluate
from cinerec.models.registry import create_model
from cinerec.testing.data import make_ratings_dataset
from tests.evaluation.conftest import RandomModel

QUIET = {"progress": False}


@pytest.fixture(scope="module")
def split():
    """Low-rank ratings, rated with a long-tailed item popularity (a few items are
    rated by most users, most items by few)."""
    full = make_ratings_dataset(n_users=200, n_items=150, density=1.0, rank=3, seed=5, noise=0.3)
    rng = np.random.default_rng(5)
    appeal = 0.8 * (1.0 + rng.permutation(150)) ** -0.7
    keep = rng.random(full.n_ratings) < np.clip(appeal[full.items] * 2, 0.01, 0.9)
    return make_split(full.subset(keep), "user-temporal:0.8", seed=42)


@pytest.fixture(scope="module")
def ease(split):
    return create_model("ease").fit(split.train, options=QUIET)


def test_item_tiers_partition_the_warm_items_by_rating_share(split):
    counts = split.train.item_counts
    tiers = item_tiers(counts)
    assert set(np.unique(tiers)) <= {-1, 0, 1, 2}
    assert np.array_equal(tiers == -1, counts == 0)
    head, torso, tail = (counts[tiers == t] for t in (0, 1, 2))
    assert head.size and torso.size and tail.size
    assert head.min() > torso.max() and torso.min() > tail.max()  # ties never straddle
    share = counts / counts.sum()
    # The head is the most-rated items up to 20% of ratings: without its least rated
    # item it holds less than 20%; the tail holds at most the last 20%.
    assert share[tiers == 0].sum() - share[tiers == 0].min() < 0.2
    assert share[tiers == 2].sum() <= 0.2 + 1e-9
    assert tail.size > head.size


def test_item_tiers_keep_equal_counts_together():
    tiers = item_tiers(np.array([10, 10, 10, 1, 1, 0]), cuts=(0.5, 0.9))
    assert list(tiers) == [0, 0, 0, 2, 2, -1]


def test_user_tiers_are_terciles():
    counts = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert list(user_tiers(counts)) == [-1, 0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_penalty_zero_keeps_the_ranking_and_the_masks():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(30, 50)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    counts = rng.integers(0, 100, 50)
    out = popularity_penalty(scores, counts, 0.0)
    assert np.array_equal(topk_from_scores(out, 50), topk_from_scores(scores, 50))
    assert np.array_equal(np.isneginf(out), np.isneginf(scores))
    big = popularity_penalty(scores, counts, 3.0)
    assert np.array_equal(np.isneginf(big), np.isneginf(scores))
    # Row-wise standardised: the penalty means the same at any score scale.
    scaled = popularity_penalty(100 * scores + 7, counts, 0.5)
    assert np.allclose(scaled, popularity_penalty(scores, counts, 0.5), atol=1e-5)
    # A large beta puts the least popular scored items first.
    first = topk_from_scores(popularity_penalty(scores, counts, 1e6), 1)[:, 0]
    finite = np.where(np.isfinite(scores), counts[None, :], np.inf)
    assert np.array_equal(counts[first], finite.min(axis=1))


def test_large_beta_raises_tail_share_and_coverage(split, ease):
    plain = tier_metrics(ease, split)
    debiased = tier_metrics(ease, split, beta=1.0)
    assert plain["beta"] == 0.0 and debiased["beta"] == 1.0
    assert debiased["share@10[tail]"] > plain["share@10[tail]"]
    assert debiased["coverage@10"] > plain["coverage@10"]
    assert debiased["novelty@10"] > plain["novelty@10"]
    assert debiased["mean_pop@10"] < plain["mean_pop@10"]
    shares = [plain[f"share@10[{t}]"] for t in ("head", "torso", "tail")]
    assert sum(shares) == pytest.approx(1.0)


def test_tier_metrics_agree_with_the_protocol(split, ease):
    got = tier_metrics(ease, split)
    report = evaluate(ease, split, fit=False, metrics=["ranking"], progress=False)
    assert got["ndcg@10"] == pytest.approx(report.metrics["ndcg@10"])
    assert got["recall@10"] == pytest.approx(report.metrics["recall@10"])
    assert got["n_users"] == report.metrics["n_rank_users"]
    assert sum(got[f"n_users[{t}]"] for t in ("light", "medium", "heavy")) == got["n_users"]


def test_popular_is_less_novel_than_random(split):
    popular = tier_metrics(create_model("popular").fit(split.train, options=QUIET), split)
    rand = tier_metrics(RandomModel().fit(split.train, options=QUIET), split)
    assert popular["novelty@10"] < rand["novelty@10"]
    assert popular["share@10[head]"] > rand["share@10[head]"]
    assert popular["coverage@10"] < rand["coverage@10"]


def test_tradeoff_curve_has_one_row_per_beta(split, ease):
    rows = tradeoff_curve(ease, split, betas=(0.0, 0.5, 2.0))
    assert [r["beta"] for r in rows] == [0.0, 0.5, 2.0]
    assert rows[0]["ndcg@10"] == pytest.approx(tier_metrics(ease, split)["ndcg@10"])
    assert rows[-1]["share@10[tail]"] > rows[0]["share@10[tail]"]
    assert {"coverage@10", "recall@10[tail]", "novelty@10"} <= set(rows[0])


def test_bad_arguments_are_refused(split, ease):
    with pytest.raises(EvaluationError, match="beta must be"):
        tier_metrics(ease, split, beta=-1.0)
    with pytest.raises(EvaluationError, match="beta must be"):
        popularity_penalty(np.zeros((1, 3)), np.ones(3), float("nan"))
    with pytest.raises(EvaluationError, match="betas is empty"):
        tradeoff_curve(ease, split, betas=())
    with pytest.raises(EvaluationError, match="cuts"):
        item_tiers(np.ones(5), cuts=(0.8, 0.2))
    with pytest.raises(EvaluationError, match="k must be"):
        tier_metrics(ease, split, k=0)
    with pytest.raises(EvaluationError, match="not fitted"):
        tier_metrics(create_model("ease"), split)
    with pytest.raises(EvaluationError, match="one per item"):
        popularity_penalty(np.zeros((2, 3)), np.ones(4), 1.0)
