"""Folding a new user into a trained factor model, in closed form.

With the item side fixed, the best user vector for a history is a ridge regression:
``min_{p, b} sum_i (r_i - mu - b_i - off_i - q_i . p - b)^2 + n (reg_p |p|^2 + reg_b b^2)``.
The penalty grows with the history length ``n`` because the models were trained with
per-rating regularisation (SGD's ``reg`` applies once per rating; ALS's weighted-lambda
is ``reg * n`` by definition), so the folded vector of a user equals, up to the other
vectors still moving, what training would have found for them.

`ridge_user_factors` solves it for a batch of histories (one small (k+1) x (k+1) solve
each); models pass how to read item vectors, so compressed tables work too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cinerec.models.query import History


def ridge_user_factors(
    histories: list[History],
    item_rows: Callable[[np.ndarray], np.ndarray],
    item_bias: np.ndarray | None,
    mu: float,
    reg_p: float,
    reg_b: float | None,
    offsets: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(U (n_hist, k) float64, b (n_hist,) float64) for each history.

    ``item_bias=None`` / ``reg_b=None``: no user bias (unbiased models, b = 0).
    ``offsets``: per history, a known part of each prediction to subtract first (e.g.
    SVD++'s implicit term ``q_i . y_N``).
    """
    users_u = []
    users_b = []
    for j, h in enumerate(histories):
        q = np.asarray(item_rows(h.items), dtype=np.float64)
        k = q.shape[1]
        y = h.ratings.astype(np.float64) - mu
        if item_bias is not None:
            y = y - item_bias[h.items]
        if offsets is not None:
            y = y - offsets[j]
        n = len(h)
        biased = reg_b is not None
        x = np.hstack([q, np.ones((n, 1))]) if biased else q
        lam = np.full(x.shape[1], reg_p * n)
        if biased:
            lam[-1] = reg_b * n
        a = x.T @ x
        a[np.diag_indices_from(a)] += np.maximum(lam, 1e-9)
        sol = np.linalg.solve(a, x.T @ y)
        users_u.append(sol[:k])
        users_b.append(sol[k] if biased else 0.0)
    if not histories:
        return np.empty((0, 0)), np.empty(0)
    return np.vstack(users_u), np.asarray(users_b, dtype=np.float64)
