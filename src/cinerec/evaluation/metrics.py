"""Evaluation metrics: pure functions on numpy arrays (no model, no data set).

Rating metrics (`rmse`, `mae`, `r2`) compare predicted with true ratings row by row.

Ranking metrics work on a *batch* of users at once: `topk_from_scores` turns a
``(n_users, n_items)`` score matrix into the top-K item indices of each row (one
``argpartition``, no per-user loop), and `ranking_metrics` scores those lists against
each user's relevant items (a bool matrix or sparse rows). Relevance is binary:
a test rating ``>= threshold`` (4.0 by default on the 0.5..5 scale).

The protocol (`cinerec.evaluation.protocol`) ranks the FULL catalogue minus the
user's training items. Ranking only the few items a user rated in test (what paper
004 did, reporting NDCG@10 = 1.0 for every model) measures almost nothing: the
candidate list is usually shorter than K, so every relevant item is "retrieved"
(recall ~1, hit rate 1) and NDCG only reflects the order of a handful of candidates.
On a synthetic set, scores drawn at random get recall 0.996 and NDCG@10 0.75 under
that protocol but NDCG@10 0.009 over the full catalogue (see
``tests/evaluation/test_metrics.py::test_own_items_protocol_inflates_ndcg``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from cinerec.errors import EvaluationError

#: Keys of the per-user arrays `ranking_metrics` returns (besides ``n_rel``).
RANKING_KEYS = ("precision", "recall", "f1", "ndcg", "hit", "ap")


# ---------------------------------------------------------------------------------
# Rating metrics
# ---------------------------------------------------------------------------------
def _pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise EvaluationError(
            f"y_true has {t.shape[0]} values but y_pred has {p.shape[0]}: "
            "pass one prediction per test row"
        )
    return t, p


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error; NaN for empty input."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2))) if t.size else float("nan")


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error; NaN for empty input."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t))) if t.size else float("nan")


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination 1 - SSE/SST; NaN when empty or y_true is constant."""
    t, p = _pair(y_true, y_pred)
    if t.size == 0:
        return float("nan")
    sst = float(np.sum((t - t.mean()) ** 2))
    if sst == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((p - t) ** 2)) / sst


def normalised_rating_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, scale: tuple[float, float], liked: float = 3.5
) -> dict[str, float]:
    """Paper 004's metrics: R², MAE, MSE and RMSE on the MinMax-normalised rating
    ``(r - lo) / (hi - lo)``, and precision / recall of "liked" (``rating >= liked``)
    read off the predicted rating (``n_r2``, ``n_mae``, ``n_mse``, ``n_rmse``,
    ``precision``, ``recall``)."""
    t, p = _pair(y_true, y_pred)
    lo, hi = float(scale[0]), float(scale[1])
    if not hi > lo:
        raise EvaluationError(f"rating scale {scale} must have lo < hi")
    y, q = (t - lo) / (hi - lo), (p - lo) / (hi - lo)
    sq = (q - y) ** 2
    was, said = t >= liked, p >= liked
    tp = float((was & said).sum())
    return {
        "n_r2": r2(y, q),
        "n_mae": float(np.abs(q - y).mean()) if t.size else float("nan"),
        "n_mse": float(sq.mean()) if t.size else float("nan"),
        "n_rmse": float(np.sqrt(sq.mean())) if t.size else float("nan"),
        "precision": tp / max(float(said.sum()), 1.0),
        "recall": tp / max(float(was.sum()), 1.0),
    }


# ---------------------------------------------------------------------------------
# Ranking
# ---------------------------------------------------------------------------------
def topk_from_scores(scores: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` item indices per row, best first: ``(n_users, k)`` int64.

    The one top-k kernel of cinerec (`cinerec.models.ranking`, a parallel numba scan;
    ``np.argpartition`` here took three quarters of a 25M-rating evaluation). Ties
    are broken by the lower item index (deterministic). Items scored ``-inf`` or NaN
    (masked train items, cold items) are never returned: where a row has fewer than
    ``k`` finite scores the remaining slots hold ``-1``.
    """
    from cinerec.models.ranking import top_k_matrix

    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise EvaluationError(
            f"scores must be a 2-d (users x items) array, got shape {scores.shape}"
        )
    if k <= 0:
        raise EvaluationError(f"k must be a positive integer, got {k}")
    n_rows, n_items = scores.shape
    if n_rows == 0 or n_items == 0:
        return np.full((n_rows, k), -1, dtype=np.int64)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    return top_k_matrix(scores, k)


def relevance_matrix(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    n_users: int,
    n_items: int,
    threshold: float = 4.0,
) -> sp.csr_matrix:
    """Sparse bool (n_users, n_items): True where the (test) rating is ``>= threshold``."""
    keep = np.asarray(ratings) >= threshold
    m = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=bool), (np.asarray(users)[keep], np.asarray(items)[keep])),
        shape=(n_users, n_items),
        dtype=bool,
    )
    m.sum_duplicates()
    m.sort_indices()
    return m


def _hits(
    topk: np.ndarray, relevant: np.ndarray | sp.spmatrix | sp.sparray
) -> tuple[np.ndarray, np.ndarray]:
    """(hits bool (B, k), n_rel int (B,)) for top-K lists against relevant rows."""
    b, _ = topk.shape
    valid = topk >= 0
    if sp.issparse(relevant):
        rel = sp.csr_matrix(relevant, dtype=bool)
        rel.eliminate_zeros()
        rel.sum_duplicates()
        rel.sort_indices()
        if rel.shape[0] != b:
            raise EvaluationError(f"relevant has {rel.shape[0]} rows but topk has {b}")
        n_items = rel.shape[1]
        # Membership test without densifying: encode (row, item) as one sorted int key.
        rows = np.repeat(np.arange(b, dtype=np.int64), np.diff(rel.indptr))
        keys = rows * n_items + rel.indices.astype(np.int64)
        query = np.arange(b, dtype=np.int64)[:, None] * n_items + np.where(valid, topk, 0)
        pos = np.minimum(np.searchsorted(keys, query), max(keys.size - 1, 0))
        hits = (keys[pos] == query) & valid if keys.size else np.zeros_like(valid)
        n_rel = np.diff(rel.indptr).astype(np.int64)
    else:
        rel = np.asarray(relevant, dtype=bool)
        if rel.ndim != 2 or rel.shape[0] != b:
            raise EvaluationError(
                f"relevant must be (B, n_items) with B={b}, got shape {rel.shape}"
            )
        hits = rel[np.arange(b)[:, None], np.where(valid, topk, 0)] & valid
        n_rel = rel.sum(axis=1).astype(np.int64)
    return hits, n_rel


def ranking_metrics(
    topk: np.ndarray,
    relevant: np.ndarray | sp.spmatrix | sp.sparray,
    k: int | None = None,
) -> dict[str, np.ndarray]:
    """Per-user ranking metrics of top-K lists (vectorised over the batch).

    Parameters
    ----------
    topk : (B, K) item indices best first, ``-1`` for empty slots (`topk_from_scores`).
    relevant : (B, n_items) bool matrix, dense or scipy sparse: row ``j`` holds the
        relevant items of the user ranked in ``topk[j]``.
    k : cut-off; defaults to ``topk.shape[1]`` (a longer list is truncated).

    Returns
    -------
    dict of float64 arrays of length B: ``precision`` (hits / K), ``recall``
    (hits / n_rel), ``f1`` (harmonic mean of the user's P and R, 0 when both are 0),
    ``ndcg`` (binary gains, ``1/log2(rank+1)`` discount, ideal DCG over
    ``min(K, n_rel)`` positions), ``hit`` (1 if any hit), ``ap`` (sum of precision at
    each hit rank / ``min(K, n_rel)``), and ``n_rel`` (int). Users without any
    relevant item get NaN in every metric so that `mean_metrics` skips them.
    """
    topk = np.asarray(topk)
    if topk.ndim != 2:
        raise EvaluationError(f"topk must be 2-d (users x K), got shape {topk.shape}")
    k = topk.shape[1] if k is None else int(k)
    if k <= 0 or k > topk.shape[1]:
        raise EvaluationError(f"k={k} must be in 1..{topk.shape[1]} (the width of topk)")
    topk = topk[:, :k]
    hits, n_rel = _hits(topk, relevant)
    hits_f = hits.astype(np.float64)
    n_hit = hits_f.sum(axis=1)
    has_rel = n_rel > 0
    safe_rel = np.maximum(n_rel, 1)

    precision = n_hit / k
    recall = n_hit / safe_rel
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)

    discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = hits_f @ discount
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(n_rel, k)]
    ndcg = dcg / np.where(ideal > 0, ideal, 1.0)

    prec_at = np.cumsum(hits_f, axis=1) / np.arange(1, k + 1)
    ap = (prec_at * hits_f).sum(axis=1) / np.minimum(safe_rel, k)

    out = {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "ndcg": ndcg,
        "hit": (n_hit > 0).astype(np.float64),
        "ap": ap,
    }
    for v in out.values():
        v[~has_rel] = np.nan
    out["n_rel"] = n_rel
    return out


def own_items_topk(users: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(user indices, top-K lists) when each user's candidates are only his own test
    items (``users`` / ``items`` / ``scores``: one test row each), the protocol of
    papers 002 and 004. See the module docstring for why it inflates every metric."""
    users, items, scores = np.asarray(users), np.asarray(items), np.asarray(scores, dtype=np.float64)
    if not users.shape == items.shape == scores.shape:
        raise EvaluationError("users, items and scores must have one value per test row")
    if k <= 0:
        raise EvaluationError(f"k must be positive, got {k}")
    order = np.lexsort((items, -scores, users))  # by user, best score first, ties to the lower item
    u, it = users[order], items[order]
    start = np.flatnonzero(np.r_[True, u[1:] != u[:-1]]) if u.size else np.zeros(0, dtype=np.int64)
    pos = np.arange(u.size) - np.repeat(start, np.diff(np.r_[start, u.size]))
    keep = pos < k
    out_users = u[start]
    row = np.searchsorted(out_users, u[keep])
    top = np.full((out_users.size, k), -1, dtype=np.int64)
    top[row, pos[keep]] = it[keep]
    return out_users, top


def mean_metrics(per_user: dict[str, np.ndarray]) -> dict[str, float]:
    """Average of each per-user metric over users with at least one relevant item."""
    out = {}
    for key in RANKING_KEYS:
        v = per_user[key]
        v = v[~np.isnan(v)]
        out[key] = float(v.mean()) if v.size else float("nan")
    return out


def catalogue_coverage(topk: np.ndarray, n_items: int) -> float:
    """Share of the ``n_items`` catalogue that appears in at least one top-K list."""
    if n_items <= 0:
        raise EvaluationError(f"n_items must be positive, got {n_items}")
    t = np.asarray(topk).ravel()
    t = t[(t >= 0) & (t < n_items)]
    return float(np.unique(t).size / n_items)
