"""SVD's SGD kernel against a plain numpy run; SVD++ and ALS formulas."""

from __future__ import annotations

import numpy as np

from cinerec.models.classic import _kernels as K
from cinerec.models.registry import create_model
from tests.conftest import make_ratings_dataset


def _numpy_sgd(u, i, r, order, mu, bu, bi, P, Q, lr, reg):
    for n in order:
        err = r[n] - (mu + bu[u[n]] + bi[i[n]] + P[u[n]] @ Q[i[n]])
        bu[u[n]] += lr * (err - reg * bu[u[n]])
        bi[i[n]] += lr * (err - reg * bi[i[n]])
        pu = P[u[n]].copy()
        P[u[n]] += lr * (err * Q[i[n]] - reg * pu)
        Q[i[n]] += lr * (err * pu - reg * Q[i[n]])


def test_svd_kernel_matches_numpy_reference_on_20_ratings() -> None:
    rng = np.random.default_rng(0)
    u = rng.integers(0, 5, 20)
    i = rng.integers(0, 6, 20)
    r = rng.integers(1, 11, 20) / 2.0
    P0 = rng.normal(0, 0.1, (5, 3)).astype(np.float32)
    Q0 = rng.normal(0, 0.1, (6, 3)).astype(np.float32)
    mu, lr, reg = float(r.mean()), 0.05, 0.02
    ref = [np.zeros(5), np.zeros(6), P0.astype(np.float64), Q0.astype(np.float64)]
    got = [np.zeros(5), np.zeros(6), P0.copy(), Q0.copy()]
    for epoch in range(3):
        order = np.random.default_rng(epoch).permutation(20)
        _numpy_sgd(u, i, r, order, mu, *ref, lr, reg)
        K.svd_sgd_epoch(u[order], i[order], r[order], 0, 20, mu, *got, np.full(4, lr), np.full(4, reg), True)
    # factors are float32 in the kernel (SIMD); the reference runs in float64
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_svd_kernel_on_padded_factor_rows_keeps_padding_zero_and_same_model() -> None:
    rng = np.random.default_rng(3)
    n, k = 400, 5
    u, i = rng.integers(0, 30, n), rng.integers(0, 40, n)
    r = rng.integers(1, 11, n) / 2.0
    kp = K.pad_factors(k)
    assert kp % K.SIMD_FLOAT32_LANES == 0 and kp >= k and K.pad_factors(kp) == kp
    P0 = rng.normal(0, 0.1, (30, k)).astype(np.float32)
    Q0 = rng.normal(0, 0.1, (40, k)).astype(np.float32)
    plain = [np.zeros(30), np.zeros(40), P0.copy(), Q0.copy()]
    padded = [np.zeros(30), np.zeros(40), np.zeros((30, kp), np.float32), np.zeros((40, kp), np.float32)]
    padded[2][:, :k], padded[3][:, :k] = P0, Q0
    for _ in range(3):
        for state in (plain, padded):
            K.svd_sgd_epoch(u, i, r, 0, n, 3.0, *state, np.full(4, 0.05), np.full(4, 0.02), True)
    assert not padded[2][:, k:].any() and not padded[3][:, k:].any()
    np.testing.assert_allclose(padded[2][:, :k], plain[2], atol=1e-5)
    np.testing.assert_allclose(padded[3][:, :k], plain[3], atol=1e-5)
    m = create_model("svd", n_factors=k, n_epochs=2).fit(make_ratings_dataset(n_users=20, n_items=15, seed=4))
    assert m.P_.shape[1] == k and m.Q_.shape[1] == k and m.P_.flags.c_contiguous


def test_svd_learns_and_lr_all_is_overridden_per_parameter() -> None:
    d = make_ratings_dataset(n_users=50, n_items=30, seed=1)
    m = create_model("svd", n_factors=5, n_epochs=20).fit(d)
    assert m.train_rmse_[-1] < m.train_rmse_[0]
    frozen = create_model("svd", n_factors=5, n_epochs=5, lr_bu=1e-12, lr_bi=1e-12).fit(d)
    assert np.abs(frozen.bu_).max() < 1e-6 and np.abs(frozen.bi_).max() < 1e-6


def test_svdpp_prediction_uses_implicit_term() -> None:
    d = make_ratings_dataset(n_users=30, n_items=20, seed=2)
    m = create_model("svdpp", n_factors=4, n_epochs=5).fit(d)
    u, i = 3, 4
    seen = d.items[d.users == u]
    pu = m.P_[u] + m.Y_[seen].sum(0) / np.sqrt(seen.size)
    want = m.mu_ + m.bu_[u] + m.bi_[i] + pu @ m.Q_[i]
    assert abs(m.predict(np.array([u]), np.array([i]))[0] - np.clip(want, 0.5, 5)) < 1e-5
    np.testing.assert_allclose(m.score(np.array([u]))[0, i], want, atol=1e-5)


def test_svdpp_y_decay_is_that_of_per_rating_steps_for_a_heavy_user() -> None:
    # One user with 2,000 ratings and Q = 0, so the y gradient is zero and only the weight
    # decay acts: |N(u)| per-rating steps give (1 - lr reg)^|N(u)|; the summed form
    # 1 - |N(u)| lr reg (= -3 here) flipped and grew y until svdpp returned NaN.
    n = 2000
    indptr = np.array([0, n], dtype=np.int64)
    indices = np.arange(n, dtype=np.int64)
    ratings = np.full(n, 4.0)
    rng = np.random.default_rng(0)
    Y0 = rng.normal(0, 0.1, (n, 3))
    Y, P, Q = Y0.copy(), rng.normal(0, 0.1, (1, 3)), np.zeros((n, 3))
    lr, reg = np.full(5, 0.01), np.array([0.02, 0.02, 0.02, 0.02, 0.2])
    K.svdpp_sgd_epoch(indptr, indices, ratings, np.zeros(1, dtype=np.int64), 3.5, np.zeros(1), np.zeros(n),
                      P, Q, Y, lr, reg)
    np.testing.assert_allclose(Y, Y0 * (1 - 0.01 * 0.2) ** n, rtol=1e-9)


def test_als_user_step_solves_its_ridge_problem() -> None:
    d = make_ratings_dataset(n_users=30, n_items=20, seed=3)
    m = create_model("als", n_factors=3, n_iter=3, reg=0.1).fit(d)
    # After the final item step, re-solving items must not change them (fixed point
    # of the exact half-step) up to float32 storage.
    R = d.to_csr()
    Rt = R.T.tocsr()
    Rt.sort_indices()
    Q, bi = np.zeros((20, 3)), np.zeros(20)
    K.als_biased_half(
        Rt.indptr.astype(np.int64), Rt.indices.astype(np.int64), Rt.data.astype(np.float64) - m.mu_,
        m.P_.astype(np.float64), m.bu_.astype(np.float64), 0.1, Q, bi,
    )
    np.testing.assert_allclose(Q, m.Q_, atol=1e-4)
    np.testing.assert_allclose(bi, m.bi_, atol=1e-4)


def test_svd_blocks_give_the_same_model_with_any_number_of_threads() -> None:
    d = make_ratings_dataset(n_users=80, n_items=50, seed=4)
    one = create_model("svd", n_factors=6, n_epochs=8, blocks=4).fit(d, options={"threads": 1})
    two = create_model("svd", n_factors=6, n_epochs=8, blocks=4).fit(d, options={"threads": 2})
    np.testing.assert_array_equal(one.P_, two.P_)
    np.testing.assert_array_equal(one.bi_, two.bi_)
    assert one.train_rmse_ == two.train_rmse_
    plain = create_model("svd", n_factors=6, n_epochs=8, blocks=1).fit(d)
    assert plain.train_rmse_[-1] < plain.train_rmse_[0]  # one block = plain SGD, still learns
