"""EASE against its dense closed form; iALS half-step against a direct solve."""

from __future__ import annotations

import numpy as np
import pytest

from cinerec.errors import ConfigError
from cinerec.models.classic import _kernels as K
from cinerec.models.classic.implicit import recency_weights
from cinerec.models.registry import create_model
from tests.conftest import make_ratings_dataset


@pytest.mark.parametrize("weighting", ["binary", "rating"])
def test_ease_matches_dense_closed_form(weighting: str) -> None:
    d = make_ratings_dataset(n_users=30, n_items=20, density=0.3, seed=1)
    lam = 7.0
    m = create_model("ease", reg=lam, weighting=weighting).fit(d)
    if weighting == "binary":  # the paper's form
        X = d.to_csr(values=None).toarray().astype(np.float64)
    else:  # the default: entries r / max rating
        X = d.to_csr().toarray().astype(np.float64) / d.rating_scale[1]
    P = np.linalg.inv(X.T @ X + lam * np.eye(d.n_items))
    B = np.eye(d.n_items) - P / np.diag(P)[None, :]
    np.testing.assert_allclose(np.diag(B), 0.0, atol=1e-9)
    np.testing.assert_allclose(m.score(np.arange(5)), X[:5] @ B, atol=1e-4)


def test_ease_refuses_too_many_items() -> None:
    d = make_ratings_dataset(n_users=20, n_items=30, seed=2)
    with pytest.raises(ConfigError, match="max_items=10"):
        create_model("ease", max_items=10).fit(d)


def test_ease_rating_weighting_changes_scores() -> None:
    d = make_ratings_dataset(n_users=30, n_items=20, seed=3)
    a = create_model("ease", reg=5.0, weighting="binary").fit(d).score(np.arange(3))
    b = create_model("ease", reg=5.0, weighting="rating").fit(d).score(np.arange(3))
    assert not np.allclose(a, b)


def test_recency_weights_halve_every_half_life() -> None:
    d = make_ratings_dataset(n_users=5, n_items=8, density=0.6, seed=4)
    w = recency_weights(d, half_life=1.0)
    R = d.to_csr(values=None)
    order = np.lexsort((d.items, d.users))
    ts = d.timestamps[order]
    for u in range(d.n_users):
        a, b = R.indptr[u], R.indptr[u + 1]
        age = np.argsort(np.argsort(-ts[a:b], kind="stable"), kind="stable")
        np.testing.assert_allclose(np.sort(w[a:b]), np.sort(0.5**age), rtol=1e-6)
        assert w[a:b][np.argmax(ts[a:b])] == 1.0


def test_ials_half_step_is_the_exact_solution() -> None:
    rng = np.random.default_rng(0)
    n_rows, n_cols, k, reg = 6, 9, 3, 0.5
    mask = rng.random((n_rows, n_cols)) < 0.5
    conf_dense = np.where(mask, 1.0 + 3.0 * rng.random((n_rows, n_cols)), 1.0)
    Y = rng.normal(size=(n_cols, k))
    indptr = np.r_[0, np.cumsum(mask.sum(1))].astype(np.int64)
    indices = np.nonzero(mask)[1].astype(np.int64)
    out = np.zeros((n_rows, k))
    K.ials_half(indptr, indices, conf_dense[mask], Y, Y.T @ Y, reg, out)
    for r in range(n_rows):
        C = np.diag(conf_dense[r])
        want = np.linalg.solve(Y.T @ C @ Y + reg * np.eye(k), Y.T @ C @ mask[r].astype(float))
        np.testing.assert_allclose(out[r], want, atol=1e-9)
