"""Data imbalance: how a model treats popular vs rare items and light vs heavy users.

Tiers (computed on ``train`` only):

- **Item popularity tiers** by share of interactions (the Pareto-style split of the
  popularity-bias literature). Items are sorted by train rating count; an item's
  *share above* is the share of all train ratings held by items strictly more popular
  than it (so items with equal counts always share a tier). **head**: share above <
  ``cuts[0]`` (20%: the few most-rated items that make up the first 20% of ratings);
  **long tail**: share above >= ``cuts[1]`` (80%: the many rarely rated items that
  together hold the last 20%); **torso**: the rest. Items without a training rating
  are **cold** (-1): no tier, no collaborative model can recommend them.
- **User activity tiers** by train-count terciles of the users with train ratings:
  **light** (count <= the 1/3 quantile), **medium** (<= the 2/3 quantile), **heavy**.

`tier_metrics` ranks the full catalogue minus each test user's training (and valid)
items (as `cinerec.evaluation.protocol`) and reports per item tier recall@K restricted
to the relevant test items of that tier and the share of recommended slots from it,
per user tier NDCG@K, plus catalogue coverage (share of warm items recommended to
anyone), novelty (mean self-information ``-log2(pop)``, ``pop`` = share of train users
who rated the item) and the mean train count of recommended items.

`popularity_penalty` re-ranks by ``z(score) - beta * z(log(1 + count))``: each row's
finite scores are standardised (so ``beta`` means the same for ratings, EASE weights or
dot products), minus ``beta`` standard deviations per standard deviation of log
popularity. ``beta = 0`` keeps the model's order; `tradeoff_curve` sweeps it. Coverage
rises with ``beta`` only up to a point: a very large ``beta`` gives everyone the same
few rarest items, so coverage falls again while the tail share keeps rising.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from cinerec.data.dataset import Dataset
from cinerec.data.splits import Split
from cinerec.evaluation.metrics import (
    EvaluationError,
    mean_metrics,
    ranking_metrics,
    relevance_matrix,
    topk_from_scores,
)
from cinerec.models.base import Recommender

ITEM_TIERS = ("head", "torso", "tail")
USER_TIERS = ("light", "medium", "heavy")
DEFAULT_BETAS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
#: Score cells (users x items) per batch, as in the protocol.
MAX_BATCH_CELLS = 1 << 24


def item_tiers(item_counts: np.ndarray, cuts: tuple[float, float] = (0.2, 0.8)) -> np.ndarray:
    """Item tier per item: 0 head, 1 torso, 2 tail (`ITEM_TIERS`), -1 cold (no rating)."""
    counts = np.asarray(item_counts, dtype=np.int64)
    lo, hi = (float(c) for c in cuts)
    if not 0.0 < lo < hi < 1.0:
        raise EvaluationError(f"cuts must satisfy 0 < head cut < tail cut < 1, got {cuts}")
    if counts.ndim != 1 or (counts < 0).any():
        raise EvaluationError("item_counts must be a 1-d array of counts >= 0")
    total = counts.sum()
    if total == 0:
        raise EvaluationError("no item has a training rating: tiers need train counts")
    # Ratings held by items strictly more popular than each item (ties share a value).
    values, inverse = np.unique(counts, return_inverse=True)
    per_value = np.bincount(inverse, weights=counts, minlength=values.size)
    above = (per_value.sum() - np.cumsum(per_value)) / total
    share_above = above[inverse]
    tiers = np.where(share_above < lo, 0, np.where(share_above >= hi, 2, 1)).astype(np.int8)
    tiers[counts == 0] = -1
    return tiers


def user_tiers(user_counts: np.ndarray) -> np.ndarray:
    """User tier per user: 0 light, 1 medium, 2 heavy (`USER_TIERS`) by train-count
    terciles of the users with train ratings, -1 for users without any."""
    counts = np.asarray(user_counts, dtype=np.int64)
    active = counts > 0
    if not active.any():
        raise EvaluationError("no user has a training rating: tiers need train counts")
    q1, q2 = np.quantile(counts[active], [1 / 3, 2 / 3])
    tiers = np.where(counts <= q1, 0, np.where(counts <= q2, 1, 2)).astype(np.int8)
    tiers[~active] = -1
    return tiers


def popularity_penalty(scores: np.ndarray, item_counts: np.ndarray, beta: float) -> np.ndarray:
    """``z(scores) - beta * z(log1p(item_counts))`` per row (see the module docstring).

    ``scores`` is (users, items); -inf (masked) stays -inf and NaN stays NaN. A row's
    z-score uses its finite entries (a constant row is only centred); the popularity
    z-score uses the items with a training rating. Returns float64.
    """
    beta = _check_beta(beta)
    s = np.asarray(scores, dtype=np.float64)
    counts = np.asarray(item_counts, dtype=np.float64)
    if s.ndim != 2 or counts.shape != (s.shape[1],):
        raise EvaluationError(
            f"scores must be (users, items) and item_counts one per item; got {s.shape} and {counts.shape}"
        )
    finite = np.isfinite(s)
    n = np.maximum(finite.sum(axis=1, keepdims=True), 1)
    filled = np.where(finite, s, 0.0)
    mean = filled.sum(axis=1, keepdims=True) / n
    sd = np.sqrt(np.where(finite, (filled - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / n)
    z = (s - mean) / np.where(sd > 0, sd, 1.0)
    logpop = np.log1p(counts)
    warm = counts > 0
    mu = logpop[warm].mean() if warm.any() else 0.0
    spread = logpop[warm].std() if warm.any() else 0.0
    zpop = (logpop - mu) / (spread if spread > 0 else 1.0)
    return z - beta * zpop[None, :]


def tier_metrics(
    model: Recommender,
    split: Split,
    k: int = 10,
    threshold: float = 4.0,
    beta: float = 0.0,
    cuts: tuple[float, float] = (0.2, 0.8),
) -> dict[str, Any]:
    """Imbalance metrics of ``model`` (fitted on ``split.train``), one flat dict.

    Keys (K = ``k``): ``model``, ``beta``, ``n_users``, ``ndcg@K``, ``recall@K``,
    ``coverage@K``, ``novelty@K``, ``mean_pop@K``; per item tier T (head, torso, tail)
    ``recall@K[T]``, ``share@K[T]``, ``n_items[T]``, ``rating_share[T]`` (its share of
    train ratings), ``n_users[T]`` (users with a relevant test item of the tier); per
    user tier U (light, medium, heavy) ``ndcg@K[U]`` and ``n_users[U]``. ``beta`` > 0
    re-ranks with `popularity_penalty`.
    """
    return _tier_rows(model, split, (beta,), k, threshold, cuts)[0]


def tradeoff_curve(
    model: Recommender,
    split: Split,
    betas: Sequence[float] = DEFAULT_BETAS,
    k: int = 10,
    threshold: float = 4.0,
    cuts: tuple[float, float] = (0.2, 0.8),
) -> list[dict[str, Any]]:
    """Per ``beta``: ``beta``, ``ndcg@K``, ``coverage@K``, ``recall@K[tail]``,
    ``share@K[tail]``, ``novelty@K``, ``mean_pop@K`` (the model is scored once)."""
    keys = ("beta", f"ndcg@{k}", f"coverage@{k}", f"recall@{k}[tail]", f"share@{k}[tail]",
            f"novelty@{k}", f"mean_pop@{k}")  # fmt: skip
    rows = _tier_rows(model, split, betas, k, threshold, cuts)
    return [{key: r[key] for key in ("model", *keys)} for r in rows]


def _tier_rows(model: Recommender, split: Split, betas: Sequence[float], k: int, threshold: float,
               cuts: tuple[float, float]) -> list[dict[str, Any]]:
    """`tier_metrics` for every ``beta`` from one pass of scoring."""
    betas = [_check_beta(b) for b in betas]
    if not betas:
        raise EvaluationError("betas is empty: give at least one penalty weight, e.g. (0, 0.5)")
    if isinstance(k, bool) or int(k) != k or k <= 0:
        raise EvaluationError(f"k must be a positive integer, got {k}")
    k = int(k)
    train, test = split.train, split.test
    if test.n_ratings == 0:
        raise EvaluationError(f"the test set of split {split.spec or '(unnamed)'} is empty")
    if not getattr(model, "fitted_", False):
        raise EvaluationError(f"model {model.name!r} is not fitted: fit it on split.train first")
    if model.n_items_ != train.n_items or model.n_users_ != train.n_users:
        raise EvaluationError(
            f"model {model.name!r} was fitted on {model.n_users_} x {model.n_items_}, the split's "
            f"train set is {train.n_users} x {train.n_items}: fit it on split.train"
        )
    counts = train.item_counts
    itier = item_tiers(counts, cuts)
    utier = user_tiers(train.user_counts)
    rel = relevance_matrix(test.users, test.items, test.ratings, train.n_users, train.n_items, threshold)
    users = np.flatnonzero(np.diff(rel.indptr) > 0)
    if users.size == 0:
        raise EvaluationError(f"no test rating reaches the threshold {threshold}: nothing is relevant")
    tops = {b: np.empty((users.size, k), dtype=np.int64) for b in betas}
    for rows, scores in _masked_scores(model, split, users):
        for b in betas:
            ranked = popularity_penalty(scores, counts, b) if b else scores
            tops[b][rows] = topk_from_scores(ranked, k)
    rel_users = rel[users]
    name = model.name or type(model).__name__
    return [_summary(name, b, tops[b], rel_users, users, itier, utier, train, k) for b in betas]


def _masked_scores(model: Recommender, split: Split, users: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows of ``users``, their scores with train and valid items at -inf), in batches."""
    known = split.train.to_csr(values=None)
    if split.valid is not None and split.valid.n_ratings:
        known = sp.csr_matrix(known + split.valid.to_csr(values=None))
    step = max(1, MAX_BATCH_CELLS // max(split.train.n_items, 1))
    for s in range(0, users.size, step):
        batch = users[s : s + step]
        scores = np.array(model.score(batch), dtype=np.float32)
        seen = known[batch].tocoo()
        scores[seen.row, seen.col] = -np.inf
        yield slice(s, s + batch.size), scores


def _summary(
    name: str, beta: float, top: np.ndarray, rel: sp.csr_matrix, users: np.ndarray,
    itier: np.ndarray, utier: np.ndarray, train: Dataset, k: int,
) -> dict[str, Any]:  # fmt: skip
    """The metrics of one set of top-K lists (rows: ``users``, relevant rows ``rel``)."""
    counts = train.item_counts
    per_user = ranking_metrics(top, rel, k)
    overall = mean_metrics(per_user)
    slots = top[top >= 0]
    warm = counts > 0
    # Share of train users who rated each item; a cold item (handles_cold_items models)
    # counts as rated once so its self-information stays finite.
    pop = np.maximum(counts, 1) / max(int((train.user_counts > 0).sum()), 1)
    out: dict[str, Any] = {
        "model": name,
        "beta": beta,
        "n_users": int(users.size),
        f"ndcg@{k}": overall["ndcg"],
        f"recall@{k}": overall["recall"],
        f"coverage@{k}": float(np.isin(np.flatnonzero(warm), slots).mean()) if warm.any() else float("nan"),
        f"novelty@{k}": float(np.mean(-np.log2(pop[slots]))) if slots.size else float("nan"),
        f"mean_pop@{k}": float(np.mean(counts[slots])) if slots.size else float("nan"),
    }
    slot_tier = itier[slots]
    for t, tier in enumerate(ITEM_TIERS):
        in_tier = sp.diags((itier == t).astype(np.float64))
        rel_t = sp.csr_matrix((rel.astype(np.float64) @ in_tier) > 0)
        res = ranking_metrics(top, rel_t, k)
        out[f"recall@{k}[{tier}]"] = mean_metrics(res)["recall"]
        out[f"share@{k}[{tier}]"] = float((slot_tier == t).mean()) if slots.size else float("nan")
        out[f"n_items[{tier}]"] = int((itier == t).sum())
        out[f"rating_share[{tier}]"] = float(counts[itier == t].sum() / max(counts.sum(), 1))
        out[f"n_users[{tier}]"] = int((res["n_rel"] > 0).sum())
    ut = utier[users]
    for t, tier in enumerate(USER_TIERS):
        v = per_user["ndcg"][ut == t]
        v = v[~np.isnan(v)]
        out[f"ndcg@{k}[{tier}]"] = float(v.mean()) if v.size else float("nan")
        out[f"n_users[{tier}]"] = int(v.size)
    return out


def _check_beta(beta: Any) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise EvaluationError(f"beta must be a number >= 0, got {beta!r}") from None
    if not np.isfinite(b) or b < 0:
        raise EvaluationError(f"beta must be a finite number >= 0 (0 keeps the model's ranking), got {beta!r}")
    return b
