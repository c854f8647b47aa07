"""Cold-start evaluation: how good is a model for a new user after their first N ratings?

Protocol ("first N ratings known"):

1. `cold_start_split` draws a seeded share of the users with at least ``min_ratings``
   ratings as *new users* and removes all their ratings from train: the model is fitted
   on the other users only, in the same index space (the new users are there, with zero
   training ratings).
2. Each new user's ratings are ordered by time (ties: row position in the data set).
   For a given N the first N are *known* (what the person told us); the *targets* are
   the ratings after position ``max_known`` (20 by default), so the test set is the same
   for every N and the curve only moves because the model knows more.
3. `cold_start_curve` asks the fitted model, for every N, one `Query` per new user:
   ``Query(history=first N ratings)`` (fold-in models score it without retraining,
   the others fall back), or ``Query(user=u)`` for N = 0, which is the model's fallback
   for a user without training ratings (a model with ``handles_cold_users`` scores them
   itself). The full catalogue minus the known items is ranked; NDCG@K and hit rate
   are measured against the targets rated ``>= threshold``, RMSE against every target
   the model can predict (rating models only). Which path the model took (``basis``:
   "fold-in", "fallback", "model") is counted per N, so a table says who really
   personalised.

Pure functions over a fitted model; the figure is `cinerec.report.plots.plot_cold_start_curve`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from cinerec.data.dataset import Dataset
from cinerec.evaluation.metrics import (
    EvaluationError,
    mean_metrics,
    ranking_metrics,
    relevance_matrix,
    rmse,
)
from cinerec.models.base import Recommender
from cinerec.models.query import History, Query, Recommendations

#: Known-rating counts of the curve (the issue's N = 0, 1, 3, 5, 10, 20).
DEFAULT_NS = (0, 1, 3, 5, 10, 20)


@dataclass(frozen=True, eq=False)
class ColdStartSplit:
    """A `cold_start_split`: train without the new users, and the new users' ratings.

    Attributes
    ----------
    train : every rating of the other users (same id maps as the source data set).
    users : the new users' indices (sorted, int64).
    ratings : the new users' ratings, grouped by user in the order of ``users`` and
        ordered by time within a user (ties: row position in the source).
    indptr : user ``users[j]``'s ratings are rows ``indptr[j]:indptr[j + 1]`` of ``ratings``.
    max_known : the largest N that can be asked; targets are the ratings after it.
    seed : the seed the users were drawn with.
    """

    train: Dataset
    users: np.ndarray
    ratings: Dataset
    indptr: np.ndarray
    max_known: int
    seed: int

    @property
    def n_users(self) -> int:
        return int(self.users.shape[0])

    @property
    def position(self) -> np.ndarray:
        """Position of each row of ``ratings`` within its user's ordered ratings (0-based)."""
        counts = np.diff(self.indptr)
        return np.arange(self.ratings.n_ratings) - np.repeat(self.indptr[:-1], counts)

    @property
    def target_rows(self) -> np.ndarray:
        """Bool mask over ``ratings``: the test targets (position >= ``max_known``)."""
        return self.position >= self.max_known

    @property
    def targets(self) -> Dataset:
        """The test targets, identical for every N."""
        return self.ratings.subset(self.target_rows, name=f"{self.ratings.name}[targets]")

    def known(self, n: int) -> list[History]:
        """Each new user's first ``n`` ratings as a `History`, in the order of ``users``."""
        n = _check_n(n, self.max_known)
        r = self.ratings
        return [
            History(r.items[s : s + n], r.ratings[s : s + n], r.timestamps[s : s + n])
            for s in self.indptr[:-1]
        ]


def cold_start_split(
    ds: Dataset,
    user_frac: float = 0.2,
    min_ratings: int | None = None,
    seed: int = 42,
    max_known: int = max(DEFAULT_NS),
) -> ColdStartSplit:
    """Draw ``user_frac`` of the eligible users as new users (see the module docstring).

    Eligible users have at least ``min_ratings`` ratings (default ``max_known + 5``, so
    every N up to ``max_known`` is measurable on at least 5 targets). The count drawn is
    ``round(user_frac * eligible)``, at least 1.
    """
    if not 0.0 < float(user_frac) <= 1.0:
        raise EvaluationError(f"user_frac must be in (0, 1], got {user_frac}")
    if isinstance(max_known, bool) or int(max_known) != max_known or max_known < 0:
        raise EvaluationError(f"max_known must be a whole number >= 0, got {max_known}")
    max_known = int(max_known)
    min_ratings = max_known + 5 if min_ratings is None else int(min_ratings)
    if min_ratings <= max_known:
        raise EvaluationError(
            f"min_ratings={min_ratings} leaves no target after the first max_known={max_known} "
            f"ratings; use min_ratings >= {max_known + 1}"
        )
    counts = ds.user_counts
    eligible = np.flatnonzero(counts >= min_ratings)
    if eligible.size == 0:
        raise EvaluationError(
            f"no user of {ds.name!r} has {min_ratings} ratings or more (the most is "
            f"{int(counts.max()) if counts.size else 0}): lower min_ratings or max_known"
        )
    n_new = max(1, int(round(float(user_frac) * eligible.size)))
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(eligible, size=n_new, replace=False)).astype(np.int64)
    is_new = np.zeros(ds.n_users, dtype=bool)
    is_new[users] = True
    new_rows = is_new[ds.users]
    if new_rows.all():
        raise EvaluationError(
            "every rated user was drawn as a new user, leaving nothing to train on: "
            "lower user_frac or min_ratings"
        )
    rows = np.flatnonzero(new_rows)
    # Per user, by time; equal timestamps keep their row order (lexsort is stable).
    rows = rows[np.lexsort((rows, ds.timestamps[rows], ds.users[rows]))]
    ordered = ds.subset(rows, name=f"{ds.name}[new users]")
    indptr = np.concatenate([[0], np.cumsum(counts[users])]).astype(np.int64)
    return ColdStartSplit(
        train=ds.subset(~new_rows, name=f"{ds.name}[cold-start train]"),
        users=users,
        ratings=ordered,
        indptr=indptr,
        max_known=max_known,
        seed=int(seed),
    )


def cold_start_curve(
    model: Recommender,
    cs: ColdStartSplit,
    ns: tuple[int, ...] | list[int] = DEFAULT_NS,
    k: int = 10,
    threshold: float = 4.0,
) -> list[dict[str, Any]]:
    """One row per N: ``model``, ``N``, ``ndcg@k``, ``hr@k``, ``rmse``, ``n_users``,
    ``n_rmse``, ``basis``, ``k``.

    ``model`` must already be fitted on ``cs.train``. ``ndcg@k`` / ``hr@k`` average over
    the new users with at least one target rated ``>= threshold`` (``n_users`` of them);
    ``rmse`` covers the targets whose item has a training rating (``n_rmse`` rows: a
    collaborative model has no prediction for the others) and is None for ranking-only
    models. ``basis`` counts the users answered by each path ("fold-in", "fallback",
    "model").
    """
    ns = _check_ns(ns, cs.max_known)
    if isinstance(k, bool) or int(k) != k or k <= 0:
        raise EvaluationError(f"k must be a positive integer, got {k}")
    k = int(k)
    _check_model(model, cs)
    targets = cs.targets
    t_indptr = np.concatenate([[0], np.cumsum(np.maximum(np.diff(cs.indptr) - cs.max_known, 0))])
    # Rows of the relevance matrix are positions in cs.users.
    rows_of_user = np.zeros(cs.train.n_users, dtype=np.int64)
    rows_of_user[cs.users] = np.arange(cs.n_users)
    rel = relevance_matrix(
        rows_of_user[targets.users], targets.items, targets.ratings, cs.n_users, cs.train.n_items, threshold
    )
    target_items = [targets.items[s:e] for s, e in zip(t_indptr[:-1], t_indptr[1:], strict=True)]
    name = model.name or type(model).__name__
    out = []
    for n in ns:
        histories = cs.known(n) if n else [None] * cs.n_users
        queries = [_query(int(u), h) for u, h in zip(cs.users, histories, strict=True)]
        recs = model.recommend_batch(queries, k, explain=False)
        top = _top_matrix(recs, k)
        per_user = ranking_metrics(top, rel, k)
        means = mean_metrics(per_user)
        err, n_rmse = None, 0
        if model.predicts_ratings:
            err, n_rmse = _target_rmse(model, cs, histories, target_items, targets.ratings, t_indptr)
        out.append(
            {
                "model": name,
                "N": n,
                f"ndcg@{k}": means["ndcg"],
                f"hr@{k}": means["hit"],
                "rmse": err,
                "n_users": int((per_user["n_rel"] > 0).sum()),
                "n_rmse": n_rmse,
                "basis": dict(Counter(r.basis for r in recs)),
                "k": k,
            }
        )
    return out


def _query(user: int, history: History | None, candidates: np.ndarray | None = None) -> Query:
    if history is None:
        return Query(user=user, candidates=candidates)
    return Query(history=history, candidates=candidates)


def _top_matrix(recs: list[Recommendations], k: int) -> np.ndarray:
    """The lists as a (n, k) matrix, -1 where a list is shorter than k."""
    top = np.full((len(recs), k), -1, dtype=np.int64)
    for j, r in enumerate(recs):
        top[j, : len(r.items)] = r.items[:k]
    return top


def _target_rmse(
    model: Recommender,
    cs: ColdStartSplit,
    histories: list[History | None],
    target_items: list[np.ndarray],
    target_ratings: np.ndarray,
    t_indptr: np.ndarray,
) -> tuple[float | None, int]:
    """RMSE of the model's predicted ratings for each user's targets, asked as a query
    whose candidates are exactly those targets (so fold-in is the same as for ranking)."""
    queries = [
        _query(int(u), h, candidates=items)
        for u, h, items in zip(cs.users, histories, target_items, strict=True)
    ]
    width = int(max((len(t) for t in target_items), default=1))
    recs = model.recommend_batch(queries, max(width, 1), explain=False)
    n_items = cs.train.n_items
    truth = sp.csr_matrix(
        (target_ratings.astype(np.float64), np.concatenate(target_items), t_indptr),
        shape=(cs.n_users, n_items),
    )
    rows = np.repeat(np.arange(len(recs)), [len(r.items) for r in recs])
    items = np.concatenate([r.items for r in recs]).astype(np.int64)
    pred = np.concatenate([r.predicted_ratings for r in recs if r.predicted_ratings is not None])
    if items.size == 0 or pred.shape != items.shape:
        return None, 0
    true = np.asarray(truth[rows, items]).ravel()
    return rmse(true, pred), int(items.size)


def _check_n(n: Any, max_known: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise EvaluationError(f"N must be a whole number >= 0, got {n!r}")
    if n > max_known:
        raise EvaluationError(
            f"N={n} is larger than the split's max_known={max_known}: the targets start after "
            f"the first {max_known} ratings; make the split with max_known >= {n}"
        )
    return int(n)


def _check_ns(ns: Any, max_known: int) -> list[int]:
    values = list(ns)
    if not values:
        raise EvaluationError("ns is empty: give the numbers of known ratings, e.g. (0, 1, 3, 5, 10, 20)")
    return sorted({_check_n(n, max_known) for n in values})


def _check_model(model: Recommender, cs: ColdStartSplit) -> None:
    if not getattr(model, "fitted_", False):
        raise EvaluationError(f"model {model.name!r} is not fitted: fit it on cs.train first")
    if model.n_users_ != cs.train.n_users or model.n_items_ != cs.train.n_items:
        raise EvaluationError(
            f"model {model.name!r} was fitted on {model.n_users_} users x {model.n_items_} items, "
            f"the cold-start train set has {cs.train.n_users} x {cs.train.n_items}: fit it on cs.train"
        )
    if (model.user_counts_[cs.users] > 0).any():
        raise EvaluationError(
            f"model {model.name!r} has training ratings of the new users: fit it on cs.train, "
            "which holds none of them"
        )
