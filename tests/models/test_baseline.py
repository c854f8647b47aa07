"""Baselines: the bias solver against the exact ridge solution, popularity, mean."""

from __future__ import annotations

import numpy as np

from cinerec.models.classic.baseline import fit_biases
from cinerec.models.registry import create_model
from tests.conftest import make_ratings_dataset


def test_fit_biases_converges_to_the_ridge_optimum() -> None:
    d = make_ratings_dataset(n_users=15, n_items=12, density=0.4, seed=2)
    reg_u, reg_i = 3.0, 2.0
    mu, bu, bi = fit_biases(d, reg_u, reg_i, epochs=300)
    # Direct solve of the normal equations of the same quadratic objective.
    A = np.zeros((d.n_ratings, d.n_users + d.n_items))
    A[np.arange(d.n_ratings), d.users] = 1.0
    A[np.arange(d.n_ratings), d.n_users + d.items] = 1.0
    lam = np.r_[np.full(d.n_users, reg_u), np.full(d.n_items, reg_i)]
    x = np.linalg.solve(A.T @ A + np.diag(lam), A.T @ (d.ratings - mu))
    np.testing.assert_allclose(np.r_[bu, bi], x, atol=1e-6)


def test_bias_model_predicts_mu_plus_biases() -> None:
    d = make_ratings_dataset(seed=4)
    m = create_model("bias", reg_u=5.0, reg_i=5.0).fit(d)
    mu, bu, bi = fit_biases(d, 5.0, 5.0, 10)
    p = m.predict(d.users[:50], d.items[:50])
    want = np.clip(mu + bu[d.users[:50]] + bi[d.items[:50]], 0.5, 5.0)
    np.testing.assert_allclose(p, want, atol=1e-5)


def test_popular_scores_are_train_counts_and_mean_is_constant() -> None:
    d = make_ratings_dataset(seed=5)
    pop = create_model("popular").fit(d)
    np.testing.assert_array_equal(pop.score(np.array([0, 1]))[0], d.item_counts.astype(np.float32))
    mean = create_model("mean").fit(d)
    assert np.allclose(mean.predict(d.users[:10], d.items[:10]), d.ratings.mean())
